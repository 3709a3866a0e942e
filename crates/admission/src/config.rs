//! The policy file: raw YAML (unknown fields rejected) validated into [`Policies`].
//!
//! ```yaml
//! excludeNamespaces: [kube-system]      # every policy and mutation skips these (+ --namespace)
//! policies:
//!   image-tag: {mode: enforce}
//!   allowed-registries: {mode: enforce, registries: [ghcr.io/ferrostack/]}
//!   resources: {mode: enforce, require: [requests.cpu, requests.memory, limits.memory]}
//!   probes: {mode: warn}
//!   pod-security: {mode: enforce, excludeNamespaces: [monitoring]}
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

use serde::Deserialize;

use crate::engine::Policies;
use crate::mutate::{AntiAffinity, Mutations};
use crate::policy::Mode;
use crate::policy::Scope;
use crate::policy::availability::HighAvailability;
use crate::policy::image::{AllowedRegistries, ImageTag};
use crate::policy::metadata::{PriorityClass, RequiredLabels};
use crate::policy::probes::Probes;
use crate::policy::resources::{Requirement, Resources};
use crate::policy::security::{PodSecurity, ReadOnlyRootFilesystem};

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
    pub policies: BTreeMap<String, RawPolicy>,
    /// Mutation settings.
    #[serde(default)]
    pub mutations: RawMutations,
}

/// One policy's settings; which of the optional fields apply depends on the policy.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawPolicy {
    /// `enforce`, `warn` or `off`.
    pub mode: Option<Mode>,
    /// Namespaces this policy skips, in addition to the global list.
    #[serde(default)]
    pub exclude_namespaces: Vec<String>,
    /// allowed-registries: registry hosts or repository prefixes.
    pub registries: Option<Vec<String>>,
    /// resources: `requests.cpu`, `requests.memory`, `limits.cpu`, `limits.memory`.
    pub require: Option<Vec<String>>,
    /// required-labels: label keys.
    pub labels: Option<Vec<String>>,
    /// priority-class: `key` or `key=value` on the namespace.
    pub namespace_label: Option<String>,
    /// high-availability: the smallest replica count.
    pub min_replicas: Option<i64>,
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

/// Every policy name, in evaluation order, with its default mode.
pub const POLICY_NAMES: &[(&str, Mode)] = &[
    ("image-tag", Mode::Enforce),
    ("allowed-registries", Mode::Off),
    ("resources", Mode::Enforce),
    ("probes", Mode::Warn),
    ("pod-security", Mode::Enforce),
    ("read-only-root-filesystem", Mode::Warn),
    ("required-labels", Mode::Warn),
    ("priority-class", Mode::Enforce),
    ("high-availability", Mode::Warn),
];

/// Default label that makes `priorityClassName` required in a namespace.
pub const DEFAULT_PRIORITY_LABEL: &str = "ferrostack.io/priority-required";

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

        if let Some(unknown) = raw
            .policies
            .keys()
            .find(|k| !POLICY_NAMES.iter().any(|(n, _)| n == k))
        {
            let names: Vec<_> = POLICY_NAMES.iter().map(|(n, _)| *n).collect();
            return Err(err(
                &format!("policies.{unknown}"),
                &format!("unknown policy (known: {})", names.join(", ")),
            ));
        }
        let mut take = |name: &'static str,
                        default: Mode,
                        allowed: &[&str]|
         -> Result<(Scope, RawPolicy), PolicyFileError> {
            let p = raw.policies.remove(name).unwrap_or_default();
            let present = [
                ("registries", p.registries.is_some()),
                ("require", p.require.is_some()),
                ("labels", p.labels.is_some()),
                ("namespaceLabel", p.namespace_label.is_some()),
                ("minReplicas", p.min_replicas.is_some()),
            ];
            if let Some((field, _)) = present.iter().find(|(f, set)| *set && !allowed.contains(f)) {
                return Err(err(
                    &format!("policies.{name}.{field}"),
                    "not a setting of this policy",
                ));
            }
            let mut exclude = global.clone();
            exclude.extend(p.exclude_namespaces.iter().cloned());
            Ok((
                Scope {
                    mode: p.mode.unwrap_or(default),
                    exclude_namespaces: exclude,
                },
                p,
            ))
        };
        let mode = |name: &str| {
            POLICY_NAMES
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(Mode::Off, |(_, m)| *m)
        };

        let (scope, _) = take("image-tag", mode("image-tag"), &[])?;
        let image_tag = ImageTag { scope };

        let (scope, p) = take(
            "allowed-registries",
            mode("allowed-registries"),
            &["registries"],
        )?;
        let registries = p.registries.unwrap_or_default();
        if scope.mode != Mode::Off && registries.iter().all(|r| r.trim().is_empty()) {
            return Err(err(
                "policies.allowed-registries.registries",
                "list at least one registry when the policy is on",
            ));
        }
        let allowed_registries = AllowedRegistries { scope, registries };

        let (scope, p) = take("resources", mode("resources"), &["require"])?;
        let require = match p.require {
            None => vec![Requirement::RequestsCpu, Requirement::RequestsMemory, Requirement::LimitsMemory],
            Some(list) => list
                .iter()
                .map(|s| {
                    Requirement::ALL.iter().find(|(n, _)| n == s).map(|(_, r)| *r).ok_or_else(|| {
                        err(
                            "policies.resources.require",
                            &format!("unknown entry {s:?} (use requests.cpu, requests.memory, limits.cpu, limits.memory)"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let resources = Resources { scope, require };

        let (scope, _) = take("probes", mode("probes"), &[])?;
        let probes = Probes { scope };
        let (scope, _) = take("pod-security", mode("pod-security"), &[])?;
        let pod_security = PodSecurity { scope };
        let (scope, _) = take(
            "read-only-root-filesystem",
            mode("read-only-root-filesystem"),
            &[],
        )?;
        let read_only_root_filesystem = ReadOnlyRootFilesystem { scope };

        let (scope, p) = take("required-labels", mode("required-labels"), &["labels"])?;
        let labels = p
            .labels
            .unwrap_or_else(|| vec!["app.kubernetes.io/name".into()]);
        if labels.iter().any(|l| l.trim().is_empty()) {
            return Err(err(
                "policies.required-labels.labels",
                "label keys must not be empty",
            ));
        }
        let required_labels = RequiredLabels { scope, labels };

        let (scope, p) = take(
            "priority-class",
            mode("priority-class"),
            &["namespaceLabel"],
        )?;
        let namespace_label = p
            .namespace_label
            .unwrap_or_else(|| DEFAULT_PRIORITY_LABEL.into());
        if namespace_label
            .split('=')
            .next()
            .is_none_or(|k| k.trim().is_empty())
        {
            return Err(err(
                "policies.priority-class.namespaceLabel",
                "must be key or key=value",
            ));
        }
        let priority_class = PriorityClass {
            scope,
            namespace_label,
        };

        let (scope, p) = take(
            "high-availability",
            mode("high-availability"),
            &["minReplicas"],
        )?;
        let min_replicas = p.min_replicas.unwrap_or(2);
        if min_replicas < 1 {
            return Err(err(
                "policies.high-availability.minReplicas",
                "must be at least 1",
            ));
        }
        let high_availability = HighAvailability {
            scope,
            min_replicas,
        };

        let mutations = mutations(raw.mutations, global, &err)?;
        Ok(Policies {
            image_tag,
            allowed_registries,
            resources,
            probes,
            pod_security,
            read_only_root_filesystem,
            required_labels,
            priority_class,
            high_availability,
            mutations,
        })
    }
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

    #[test]
    fn defaults_exclude_kube_system_and_the_own_namespace() {
        let p = Policies::load(None, Some("ferrostack")).unwrap();
        assert_eq!(p.image_tag.scope.mode, Mode::Enforce);
        assert_eq!(p.allowed_registries.scope.mode, Mode::Off);
        assert_eq!(p.probes.scope.mode, Mode::Warn);
        let ex = &p.pod_security.scope.exclude_namespaces;
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
        assert_eq!(p.image_tag.scope.mode, Mode::Warn);
        assert_eq!(p.allowed_registries.registries, ["ghcr.io/ferrostack/"]);
        assert_eq!(p.resources.require, [Requirement::LimitsCpu]);
        assert_eq!(p.pod_security.scope.mode, Mode::Off);
        assert!(
            p.required_labels
                .scope
                .exclude_namespaces
                .contains("legacy")
        );
        assert!(
            p.required_labels
                .scope
                .exclude_namespaces
                .contains("monitoring")
        );
        assert!(!p.image_tag.scope.exclude_namespaces.contains("legacy"));
        assert_eq!(p.priority_class.namespace_label, "tier=critical");
        assert_eq!(p.high_availability.min_replicas, 3);
        assert!(p.mutations.default_requests.is_empty());
        assert!(p.mutations.anti_affinity.is_none());
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
            ("policies: {image-tag: {mode: block}}", "line "),
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
