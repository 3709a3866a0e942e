//! Which Pod Security Standard `pod-security` holds a pod to: a level (`baseline` or
//! `restricted`) at a version (`v1.N` or `latest`), as the `pod-security.kubernetes.io/enforce`
//! and `-version` namespace labels name them.
//!
//! Each rule's behaviour per version follows kubernetes/pod-security-admission
//! `policy/check_*.go`: a rule applies from the version that introduced it, and some changed
//! later (Windows pods exempt from the Linux-only restricted rules since v1.25, pods in a user
//! namespace relieved of the root rules since v1.35, more safe sysctls in v1.27, v1.29, v1.32
//! and v1.37).

use std::fmt;
use std::str::FromStr;

/// The level of the standard.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Level {
    /// Prevents known privilege escalations.
    Baseline,
    /// Baseline plus current pod-hardening practice.
    #[default]
    Restricted,
}

/// The version of the standard: `latest` or the Kubernetes minor release `v1.N`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Version {
    /// The newest rules this build knows.
    #[default]
    Latest,
    /// The rules as of Kubernetes v1.N.
    Minor(u32),
}

/// A level at a version.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Standard {
    /// Baseline or restricted.
    pub level: Level,
    /// Which release's rules.
    pub version: Version,
}

impl Standard {
    /// Whether the restricted rules apply.
    pub fn restricted(self) -> bool {
        self.level == Level::Restricted
    }

    /// Whether this version has the rules of Kubernetes v1.`minor` (`latest` has all).
    pub fn since(self, minor: u32) -> bool {
        match self.version {
            Version::Latest => true,
            Version::Minor(m) => m >= minor,
        }
    }
}

/// Prefix of the namespace labels that choose a standard per mode (`enforce`, `warn`,
/// `audit`), as the built-in Pod Security admission reads them.
pub const LABEL_PREFIX: &str = "pod-security.kubernetes.io/";

/// The standard a namespace's labels ask for in `mode` (`enforce`, `warn` or `audit`), `None`
/// for no check (`privileged`), starting from `default` (`None`: privileged) as
/// `PolicyToEvaluate` does: the `<mode>` label sets the level and `<mode>-version` the version.
/// An invalid level is `restricted` when `fail_closed` (enforce) and no check otherwise; an
/// invalid version is `latest`.
pub fn labelled(
    labels: &serde_json::Value,
    mode: &str,
    default: Option<Standard>,
    fail_closed: bool,
) -> Option<Standard> {
    let label = |suffix: &str| labels[format!("{LABEL_PREFIX}{mode}{suffix}")].as_str();
    let level = match label("") {
        None => default.map(|d| d.level),
        Some("privileged") => None,
        Some(l) => l.parse().ok().or(fail_closed.then_some(Level::Restricted)),
    }?;
    let version = match label("-version") {
        None => default.map(|d| d.version).unwrap_or_default(),
        Some(v) => v.parse().unwrap_or_default(),
    };
    Some(Standard { level, version })
}

/// A level or version that is not one.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(String);

impl FromStr for Level {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "baseline" => Ok(Self::Baseline),
            "restricted" => Ok(Self::Restricted),
            "privileged" => Err(ParseError(
                "privileged is no check at all: set the policy's mode to off instead".into(),
            )),
            _ => Err(ParseError(format!(
                "unknown level {s:?} (use baseline or restricted)"
            ))),
        }
    }
}

impl FromStr for Version {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "latest" {
            return Ok(Self::Latest);
        }
        s.strip_prefix("v1.")
            .and_then(|m| m.parse().ok())
            .filter(|m: &u32| m.to_string() == s[3..])
            .map(Self::Minor)
            .ok_or_else(|| ParseError(format!("unknown version {s:?} (use v1.N or latest)")))
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Baseline => "baseline",
            Self::Restricted => "restricted",
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Latest => f.write_str("latest"),
            Self::Minor(m) => write!(f, "v1.{m}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_versions_parse_as_the_namespace_labels_write_them() {
        assert_eq!("baseline".parse(), Ok(Level::Baseline));
        assert_eq!("restricted".parse(), Ok(Level::Restricted));
        assert!("privileged".parse::<Level>().is_err());
        assert!("Restricted".parse::<Level>().is_err());
        assert_eq!("latest".parse(), Ok(Version::Latest));
        assert_eq!("v1.30".parse(), Ok(Version::Minor(30)));
        for bad in ["1.30", "v1.", "v1.x", "v2.0", "v1.030", "v1.-1", ""] {
            assert!(bad.parse::<Version>().is_err(), "{bad}");
        }
    }

    #[test]
    fn namespace_labels_choose_the_standard_as_pod_security_admission_does() {
        let std = |level, version| Some(Standard { level, version });
        let restricted = std(Level::Restricted, Version::Latest);
        let labels = serde_json::json!({
            "pod-security.kubernetes.io/enforce": "baseline",
            "pod-security.kubernetes.io/enforce-version": "v1.30",
            "pod-security.kubernetes.io/warn": "restricted",
            "pod-security.kubernetes.io/audit": "privileged",
        });
        assert_eq!(
            labelled(&labels, "enforce", restricted, true),
            std(Level::Baseline, Version::Minor(30))
        );
        assert_eq!(labelled(&labels, "warn", None, false), restricted);
        assert_eq!(labelled(&labels, "audit", restricted, false), None);
        // No label: the policy file's standard, or none where it has none for this mode.
        assert_eq!(
            labelled(&serde_json::json!({}), "enforce", restricted, true),
            restricted
        );
        assert_eq!(labelled(&serde_json::json!({}), "warn", None, false), None);
        // Invalid: enforce fails closed (restricted), warn and audit open; a bad version is latest.
        let bad = serde_json::json!({
            "pod-security.kubernetes.io/enforce": "strict",
            "pod-security.kubernetes.io/enforce-version": "1.30",
            "pod-security.kubernetes.io/warn": "strict",
        });
        assert_eq!(labelled(&bad, "enforce", None, true), restricted);
        assert_eq!(labelled(&bad, "warn", restricted, false), None);
        // A version label alone keeps the default level.
        let version_only =
            serde_json::json!({"pod-security.kubernetes.io/enforce-version": "v1.28"});
        assert_eq!(
            labelled(&version_only, "enforce", restricted, true),
            std(Level::Restricted, Version::Minor(28))
        );
        assert_eq!(labelled(&version_only, "enforce", None, true), None);
    }

    #[test]
    fn a_version_has_the_rules_of_its_release_and_earlier() {
        let at = |m| Standard {
            level: Level::Restricted,
            version: Version::Minor(m),
        };
        assert!(at(35).since(35) && at(36).since(35) && !at(34).since(35));
        assert!(Standard::default().since(999));
    }
}
