//! The policy file: raw YAML (unknown fields rejected) validated into [`Policies`].
//!
//! ```yaml
//! excludeNamespaces: [kube-system]      # every policy and mutation skips these (+ --namespace)
//! policies:
//!   image-tag: {mode: enforce}
//!   allowed-registries: {mode: enforce, registries: [ghcr.io/ferrostack/]}
//!   resources: {mode: enforce, require: [requests.cpu, requests.memory, limits.memory]}
//!   probes: {mode: warn}
//!   pod-security: {mode: enforce, level: restricted, version: latest, excludeNamespaces: [monitoring]}
//!   read-only-root-filesystem: {mode: warn}
//!   required-labels: {mode: warn, labels: [app.kubernetes.io/name]}
//!   priority-class: {mode: enforce, namespaceLabel: ferrostack.io/priority-required}
//!   high-availability: {mode: warn, minReplicas: 2}
//! mutations:
//!   seccompProfile: true
//!   allowPrivilegeEscalation: true
//!   defaultRequests: {cpu: 50m, memory: 64Mi}
//!   antiAffinity: {labelKeys: [app.kubernetes.io/name, app], topologyKey: kubernetes.io/hostname, weight: 100}
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::engine::Policies;
use crate::exceptions::Grants;
use crate::mutate::{AntiAffinity, Mutations};
use crate::policy::registry::{Definition, POLICIES, Policy, SettingError, Settings, names};
use crate::policy::{Mode, Scope};

/// `--policy-file` and `--namespace`, which `webhook serve` and `webhook check` both take;
/// each sets `--namespace`'s help, since the namespace means something else to each.
#[derive(clap::Args, Clone, Debug)]
pub struct PolicyArgs {
    /// Policy file (YAML); the built-in defaults when absent.
    #[arg(long, env = "FERROSTACK_POLICY_FILE")]
    pub policy_file: Option<std::path::PathBuf>,
    /// A namespace (the command's help says which).
    #[arg(long, env = "FERROSTACK_NAMESPACE")]
    pub namespace: Option<String>,
}

/// A policy file that cannot be used, naming the file and the field.
#[derive(Debug, thiserror::Error)]
#[error("policy file {file}: {field}: {message}")]
pub struct PolicyFileError {
    /// The file (or `<built-in>`).
    pub file: String,
    /// The dotted field (or the YAML position).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// The policy file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawPolicyFile {
    /// Namespaces skipped by every policy and mutation (default `[kube-system]`).
    pub exclude_namespaces: Option<Vec<String>>,
    /// Per-policy settings, by policy name.
    #[serde(default)]
    pub policies: BTreeMap<String, Settings>,
    /// Mutation settings.
    #[serde(default)]
    pub mutations: RawMutations,
    /// Exception settings.
    #[serde(default)]
    pub exceptions: RawExceptions,
}

/// Exception settings as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawExceptions {
    /// Namespaces whose objects may carry exceptions (`*`: every one; default none).
    #[serde(default)]
    pub namespaces: Vec<String>,
}

/// Mutation settings as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawMutations {
    /// Set the pod seccomp profile to RuntimeDefault where unset (default true).
    pub seccomp_profile: Option<bool>,
    /// Set `allowPrivilegeEscalation: false` where unset (default true).
    pub allow_privilege_escalation: Option<bool>,
    /// Requests added where missing (default cpu 50m, memory 64Mi; `{}` disables).
    pub default_requests: Option<BTreeMap<String, String>>,
    /// Soft pod anti-affinity on the app label where no affinity is set (null disables).
    #[serde(default = "some_default")]
    pub anti_affinity: Option<RawAntiAffinity>,
}

impl Default for RawMutations {
    fn default() -> Self {
        RawMutations {
            seccomp_profile: None,
            allow_privilege_escalation: None,
            default_requests: None,
            anti_affinity: some_default(),
        }
    }
}

fn some_default() -> Option<RawAntiAffinity> {
    Some(RawAntiAffinity::default())
}

/// Anti-affinity mutation settings as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawAntiAffinity {
    /// Label keys tried in order to find the app label.
    pub label_keys: Option<Vec<String>>,
    /// Topology key (default `kubernetes.io/hostname`).
    pub topology_key: Option<String>,
    /// Preference weight 1..=100 (default 100).
    pub weight: Option<i64>,
}

impl Policies {
    /// Reads and validates a policy file, or the built-in defaults when `path` is `None`.
    /// `own_namespace` (the webhook's) is excluded from every policy.
    pub fn load(path: Option<&Path>, own_namespace: Option<&str>) -> Result<Self, PolicyFileError> {
        match path {
            None => Self::from_raw(RawPolicyFile::default(), "<built-in>", own_namespace),
            Some(p) => {
                let file = p.display().to_string();
                // Bounded: `--policy-file /dev/zero` is an error, not an out-of-memory kill.
                let text = runtime::files::read_capped_string(p, runtime::files::MAX_CONFIG_BYTES)
                    .map_err(|e| PolicyFileError {
                        file: file.clone(),
                        field: "(file)".into(),
                        message: e.to_string(),
                    })?;
                Self::from_yaml(&text, &file, own_namespace)
            }
        }
    }

    /// Parses and validates policy YAML; `file` names it in errors.
    pub fn from_yaml(
        text: &str,
        file: &str,
        own_namespace: Option<&str>,
    ) -> Result<Self, PolicyFileError> {
        let raw: RawPolicyFile = if text.trim().is_empty() {
            RawPolicyFile::default()
        } else {
            serde_norway::from_str(text).map_err(|e| PolicyFileError {
                file: file.into(),
                field: e.location().map_or("(document)".into(), |l| {
                    format!("line {} column {}", l.line(), l.column())
                }),
                message: e.to_string(),
            })?
        };
        Self::from_raw(raw, file, own_namespace)
    }

    /// Validates a parsed policy file.
    pub fn from_raw(
        mut raw: RawPolicyFile,
        file: &str,
        own_namespace: Option<&str>,
    ) -> Result<Self, PolicyFileError> {
        let err = |field: &str, message: &str| PolicyFileError {
            file: file.into(),
            field: field.into(),
            message: message.into(),
        };
        let mut global: BTreeSet<String> = raw
            .exclude_namespaces
            .take()
            .unwrap_or_else(|| vec!["kube-system".into()])
            .into_iter()
            .collect();
        global.extend(own_namespace.filter(|n| !n.is_empty()).map(str::to_owned));

        let mut raw_policies = std::mem::take(&mut raw.policies);
        if let Some(unknown) = raw_policies.keys().find(|k| !names().any(|n| n == *k)) {
            let names: Vec<_> = names().collect();
            return Err(err(
                &format!("policies.{unknown}"),
                &format!("unknown policy (known: {})", names.join(", ")),
            ));
        }
        let mut policies = Vec::with_capacity(POLICIES.len());
        for definition in POLICIES {
            let settings = raw_policies.remove(definition.name).unwrap_or_default();
            let policy = build(definition, settings, &global).map_err(|e| {
                err(
                    &format!("policies.{}.{}", definition.name, e.field),
                    &e.message,
                )
            })?;
            policies.push((definition.name, Arc::from(policy)));
        }
        let mutations = mutations(raw.mutations, global, &err)?;
        Ok(Policies {
            policies,
            mutations,
            exceptions: Grants {
                namespaces: raw.exceptions.namespaces.into_iter().collect(),
            },
            fixed_now: None,
        })
    }
}

/// One policy from its settings: `mode` and `excludeNamespaces` (added to `global`) make its
/// scope, the rest go to the policy's own settings type.
fn build(
    definition: &Definition,
    mut settings: Settings,
    global: &BTreeSet<String>,
) -> Result<Box<dyn Policy>, SettingError> {
    let mut common = |key: &str| settings.remove(key).map(|v| (key.to_owned(), v));
    let mode: Option<Mode> = field(common("mode"))?;
    let exclude: Option<Vec<String>> = field(common("excludeNamespaces"))?;
    let mut exclude_namespaces = global.clone();
    exclude_namespaces.extend(exclude.unwrap_or_default());
    let scope = Scope {
        mode: mode.unwrap_or(definition.default_mode),
        exclude_namespaces,
    };
    (definition.build)(scope, settings)
}

/// A common setting's value, if given.
fn field<T: serde::de::DeserializeOwned>(
    entry: Option<(String, serde_norway::Value)>,
) -> Result<Option<T>, SettingError> {
    let Some((key, value)) = entry else {
        return Ok(None);
    };
    serde_norway::from_value(value)
        .map(Some)
        .map_err(|e| SettingError::new(&key, e.to_string()))
}

fn mutations(
    raw: RawMutations,
    exclude_namespaces: BTreeSet<String>,
    err: &dyn Fn(&str, &str) -> PolicyFileError,
) -> Result<Mutations, PolicyFileError> {
    let default_requests = raw.default_requests.unwrap_or_else(|| {
        BTreeMap::from([
            ("cpu".into(), "50m".into()),
            ("memory".into(), "64Mi".into()),
        ])
    });
    for (resource, quantity) in &default_requests {
        if resource != "cpu" && resource != "memory" {
            return Err(err(
                &format!("mutations.defaultRequests.{resource}"),
                "only cpu and memory are supported",
            ));
        }
        if !is_quantity(quantity) {
            return Err(err(
                &format!("mutations.defaultRequests.{resource}"),
                &format!("{quantity:?} is not a Kubernetes quantity (e.g. 100m, 64Mi)"),
            ));
        }
    }
    let anti_affinity = match raw.anti_affinity {
        None => None,
        Some(a) => {
            let weight = a.weight.unwrap_or(100);
            if !(1..=100).contains(&weight) {
                return Err(err(
                    "mutations.antiAffinity.weight",
                    "must be between 1 and 100",
                ));
            }
            let label_keys = a
                .label_keys
                .unwrap_or_else(|| vec!["app.kubernetes.io/name".into(), "app".into()]);
            if label_keys.is_empty() {
                return Err(err(
                    "mutations.antiAffinity.labelKeys",
                    "list at least one label key",
                ));
            }
            Some(AntiAffinity {
                label_keys,
                topology_key: a
                    .topology_key
                    .unwrap_or_else(|| "kubernetes.io/hostname".into()),
                weight,
            })
        }
    };
    Ok(Mutations {
        exclude_namespaces,
        seccomp_profile: raw.seccomp_profile.unwrap_or(true),
        allow_privilege_escalation: raw.allow_privilege_escalation.unwrap_or(true),
        default_requests,
        anti_affinity,
    })
}

/// A plain Kubernetes quantity: a decimal number and an optional SI or binary suffix.
pub fn is_quantity(s: &str) -> bool {
    const SUFFIXES: &[&str] = &[
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "m", "k", "M", "G", "T", "P", "E", "",
    ];
    SUFFIXES.iter().any(|suffix| {
        s.strip_suffix(suffix).is_some_and(|num| {
            let mut parts = num.splitn(2, '.');
            let int = parts.next().unwrap_or("");
            let frac = parts.next();
            !int.is_empty()
                && int.bytes().all(|b| b.is_ascii_digit())
                && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::availability::HighAvailability;
    use crate::policy::image::{AllowedRegistries, ImageTag};
    use crate::policy::metadata::{PriorityClass, RequiredLabels};
    use crate::policy::resources::{Requirement, Resources};
    use crate::policy::security::PodSecurity;
    use crate::policy::standard::{Level, Standard, Version};

    /// The mode of the policy named `name`.
    fn mode(p: &Policies, name: &str) -> Mode {
        let (_, policy) = p.policies.iter().find(|(n, _)| *n == name).unwrap();
        policy.scope().mode
    }

    #[test]
    fn defaults_exclude_kube_system_and_the_own_namespace() {
        let p = Policies::load(None, Some("ferrostack")).unwrap();
        assert_eq!(mode(&p, "image-tag"), Mode::Enforce);
        assert_eq!(mode(&p, "allowed-registries"), Mode::Off);
        assert_eq!(mode(&p, "probes"), Mode::Warn);
        let ex = &p.get::<PodSecurity>().unwrap().scope.exclude_namespaces;
        assert!(
            ex.contains("kube-system") && ex.contains("ferrostack"),
            "{ex:?}"
        );
        assert!(p.mutations.exclude_namespaces.contains("ferrostack"));
    }

    #[test]
    fn a_full_file_is_read() {
        let yaml = r#"
excludeNamespaces: [kube-system, monitoring]
policies:
  image-tag: {mode: warn}
  allowed-registries: {mode: enforce, registries: ["ghcr.io/ferrostack/"]}
  resources: {require: [limits.cpu]}
  pod-security: {mode: off}
  required-labels: {labels: [team], excludeNamespaces: [legacy]}
  priority-class: {namespaceLabel: tier=critical}
  high-availability: {minReplicas: 3}
mutations:
  defaultRequests: {}
  antiAffinity: null
"#;
        let p = Policies::from_yaml(yaml, "p.yaml", None).unwrap();
        assert_eq!(mode(&p, "image-tag"), Mode::Warn);
        assert_eq!(
            p.get::<AllowedRegistries>().unwrap().registries,
            ["ghcr.io/ferrostack/"]
        );
        assert_eq!(
            p.get::<Resources>().unwrap().require,
            [Requirement::LimitsCpu]
        );
        assert_eq!(mode(&p, "pod-security"), Mode::Off);
        assert!(
            p.get::<RequiredLabels>()
                .unwrap()
                .scope
                .exclude_namespaces
                .contains("legacy")
        );
        assert!(
            p.get::<RequiredLabels>()
                .unwrap()
                .scope
                .exclude_namespaces
                .contains("monitoring")
        );
        assert!(
            !p.get::<ImageTag>()
                .unwrap()
                .scope
                .exclude_namespaces
                .contains("legacy")
        );
        assert_eq!(
            p.get::<PriorityClass>().unwrap().namespace_label,
            "tier=critical"
        );
        assert_eq!(p.get::<HighAvailability>().unwrap().min_replicas, 3);
        assert!(p.mutations.default_requests.is_empty());
        assert!(p.mutations.anti_affinity.is_none());
    }

    #[test]
    fn pod_security_takes_a_level_and_a_version() {
        let standard = |p: &Policies| p.get::<PodSecurity>().unwrap().standard;
        assert_eq!(
            standard(&Policies::load(None, None).unwrap()),
            Standard::default()
        );
        let yaml = "policies: {pod-security: {level: baseline, version: v1.30}}";
        let q = Policies::from_yaml(yaml, "p.yaml", None).unwrap();
        assert_eq!(standard(&q).level, Level::Baseline);
        assert_eq!(standard(&q).version, Version::Minor(30));
    }

    #[test]
    fn errors_name_the_file_and_field() {
        let cases = [
            ("policies: {image-tags: {}}", "policies.image-tags"),
            (
                "policies: {image-tag: {registries: [x]}}",
                "policies.image-tag.registries",
            ),
            (
                "policies: {allowed-registries: {mode: enforce}}",
                "policies.allowed-registries.registries",
            ),
            (
                "policies: {resources: {require: [requests.gpu]}}",
                "policies.resources.require",
            ),
            (
                "policies: {high-availability: {minReplicas: 0}}",
                "policies.high-availability.minReplicas",
            ),
            (
                "mutations: {defaultRequests: {cpu: lots}}",
                "mutations.defaultRequests.cpu",
            ),
            (
                "mutations: {antiAffinity: {weight: 101}}",
                "mutations.antiAffinity.weight",
            ),
            (
                "policies: {pod-security: {level: privileged}}",
                "policies.pod-security.level",
            ),
            (
                "policies: {pod-security: {version: \"1.30\"}}",
                "policies.pod-security.version",
            ),
            (
                "policies: {probes: {level: baseline}}",
                "policies.probes.level",
            ),
            (
                "policies: {image-tag: {mode: block}}",
                "policies.image-tag.mode",
            ),
            (
                "policies: {image-tag: {excludeNamespaces: x}}",
                "policies.image-tag.excludeNamespaces",
            ),
            (
                "policies: {resources: {require: [1, {}]}}",
                "policies.resources.require",
            ),
            ("polices: {}", "line "),
        ];
        for (yaml, field) in cases {
            let e = Policies::from_yaml(yaml, "p.yaml", None).unwrap_err();
            let text = e.to_string();
            assert!(text.starts_with("policy file p.yaml: "), "{text}");
            assert!(e.field.starts_with(field), "{yaml}: {text}");
        }
    }

    #[test]
    fn quantities() {
        for ok in ["1", "100m", "0.5", "64Mi", "1Gi", "2k"] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "m", "1.", ".5", "1 Gi", "lots", "1Xi", "-1"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }
}
