//! Validation policies: one module per family, a shared container view and the violation type.

pub mod availability;
pub mod baseline;
pub mod image;
pub mod metadata;
pub mod probes;
pub mod registry;
pub mod resources;
pub mod security;
pub mod standard;

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::workload::Workload;

/// What a policy does with a violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Deny the request.
    Enforce,
    /// Allow it with a warning.
    Warn,
    /// Do not evaluate.
    Off,
}

impl Mode {
    /// The label value in metrics and the linter's severity word.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Warn => "warn",
            Mode::Off => "off",
        }
    }
}

/// One broken rule, located to a container and a field.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Violation {
    /// The policy's name (`image-tag`).
    pub policy: &'static str,
    /// The policy's mode when it fired.
    pub mode: Mode,
    /// The container's name, when the rule is about one container.
    pub container: Option<String>,
    /// Dotted field path from the object root (`spec.template.spec.containers[0].image`).
    pub field: String,
    /// What is wrong, in a sentence without the location.
    pub message: String,
    /// Set when an exception annotation touched it (see [`crate::exceptions`]).
    pub exception: Option<crate::exceptions::State>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] ", self.policy)?;
        if let Some(c) = &self.container {
            write!(f, "container {c:?}: ")?;
        }
        write!(f, "{} ({})", self.message, self.field)
    }
}

/// What a policy sees: the workload and facts about its namespace.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    /// The workload being admitted.
    pub workload: Workload<'a>,
    /// Its namespace, when known.
    pub namespace: Option<&'a str>,
    /// Whether its namespace carries the label that makes `priorityClassName` required.
    pub namespace_labelled: bool,
    /// Its namespace's labels, when known (`pod-security.kubernetes.io/*` choose the standard).
    pub namespace_labels: Option<&'a serde_json::Value>,
}

/// Common settings of every policy: its mode and the namespaces it skips.
#[derive(Clone, Debug, PartialEq)]
pub struct Scope {
    /// Enforce, warn or off.
    pub mode: Mode,
    /// Namespaces the policy never applies to.
    pub exclude_namespaces: BTreeSet<String>,
}

impl Scope {
    /// Whether the policy applies to a subject in this namespace.
    pub fn applies(&self, namespace: Option<&str>) -> bool {
        self.mode != Mode::Off && namespace.is_none_or(|ns| !self.exclude_namespaces.contains(ns))
    }
}

/// The container lists of a pod spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// `containers`
    Containers,
    /// `initContainers`
    Init,
    /// `ephemeralContainers`
    Ephemeral,
}

impl Group {
    /// The pod spec key.
    pub fn key(self) -> &'static str {
        match self {
            Group::Containers => "containers",
            Group::Init => "initContainers",
            Group::Ephemeral => "ephemeralContainers",
        }
    }
}

/// Every container list.
pub const ALL_GROUPS: &[Group] = &[Group::Containers, Group::Init, Group::Ephemeral];
/// Containers that run with the pod (not ephemeral debug containers).
pub const RUN_GROUPS: &[Group] = &[Group::Containers, Group::Init];

/// One container of a pod spec, with its position.
#[derive(Clone, Copy, Debug)]
pub struct Container<'a> {
    /// Which list it is in.
    pub group: Group,
    /// Its index in that list.
    pub index: usize,
    /// The container object.
    pub value: &'a Value,
}

impl<'a> Container<'a> {
    /// `name` ("" when missing).
    pub fn name(&self) -> &'a str {
        self.value["name"].as_str().unwrap_or("")
    }

    /// A `securityContext` field (Null when unset).
    pub fn security(&self, key: &str) -> &'a Value {
        &self.value["securityContext"][key]
    }
}

/// The containers of the given groups in a pod spec.
pub fn containers<'a>(
    spec: &'a Value,
    groups: &'static [Group],
) -> impl Iterator<Item = Container<'a>> + 'a {
    groups.iter().flat_map(move |&group| {
        spec[group.key()]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .map(move |(index, value)| Container {
                group,
                index,
                value,
            })
    })
}

/// Collects violations for one policy over one subject, building field paths.
pub struct Report<'v> {
    policy: &'static str,
    mode: Mode,
    spec_path: &'static str,
    out: &'v mut Vec<Violation>,
}

impl<'v> Report<'v> {
    /// A collector for `policy` writing into `out`.
    pub fn new(
        policy: &'static str,
        mode: Mode,
        subject: &Subject<'_>,
        out: &'v mut Vec<Violation>,
    ) -> Self {
        Report {
            policy,
            mode,
            spec_path: subject.workload.shape.spec_path(),
            out,
        }
    }

    /// A violation on a container field (`field` relative to the container, e.g. `image`).
    pub fn container(&mut self, c: &Container<'_>, field: &str, message: impl Into<String>) {
        let field = format!(
            "{}.{}[{}].{}",
            self.spec_path,
            c.group.key(),
            c.index,
            field
        );
        self.push(Some(c.name().to_owned()), field, message.into());
    }

    /// A violation on a pod spec field (`field` relative to the pod spec).
    pub fn pod(&mut self, field: &str, message: impl Into<String>) {
        let field = format!("{}.{}", self.spec_path, field);
        self.push(None, field, message.into());
    }

    /// A violation on a field given from the object root.
    pub fn object(&mut self, field: &str, message: impl Into<String>) {
        self.push(None, field.to_owned(), message.into());
    }

    fn push(&mut self, container: Option<String>, field: String, message: String) {
        self.out.push(Violation {
            policy: self.policy,
            mode: self.mode,
            container,
            field,
            message,
            exception: None,
        });
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::*;
    use crate::workload::Workload;

    /// A Deployment wrapping `pod_spec`, with the app label set.
    pub(crate) fn deployment(pod_spec: Value) -> Value {
        serde_json::json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {
                "replicas": 3,
                "template": {
                    "metadata": {"labels": {"app.kubernetes.io/name": "web"}},
                    "spec": pod_spec
                }
            }
        })
    }

    /// The subject for a Deployment object in namespace `shop`.
    pub(crate) fn subject(object: &Value) -> Subject<'_> {
        Subject {
            workload: Workload::of("Deployment", object).expect("deployment shape"),
            namespace: Some("shop"),
            namespace_labelled: false,
            namespace_labels: None,
        }
    }

    /// The scope used in policy unit tests.
    pub(crate) fn enforce() -> Scope {
        Scope {
            mode: Mode::Enforce,
            exclude_namespaces: BTreeSet::new(),
        }
    }

    /// The `(field, message)` pairs of `violations`.
    pub(crate) fn fields(violations: &[Violation]) -> Vec<&str> {
        violations.iter().map(|v| v.field.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn containers_walks_every_group_with_indices() {
        let spec = json!({
            "containers": [{"name": "a"}, {"name": "b"}],
            "initContainers": [{"name": "i"}],
            "ephemeralContainers": [{"name": "e"}]
        });
        let names: Vec<_> = containers(&spec, ALL_GROUPS)
            .map(|c| (c.group.key(), c.index, c.name()))
            .collect();
        assert_eq!(
            names,
            [
                ("containers", 0, "a"),
                ("containers", 1, "b"),
                ("initContainers", 0, "i"),
                ("ephemeralContainers", 0, "e")
            ]
        );
        assert_eq!(containers(&spec, RUN_GROUPS).count(), 3);
    }

    #[test]
    fn scope_skips_excluded_namespaces_and_off() {
        let mut scope = test_util::enforce();
        scope.exclude_namespaces.insert("kube-system".into());
        assert!(scope.applies(Some("shop")));
        assert!(scope.applies(None));
        assert!(!scope.applies(Some("kube-system")));
        scope.mode = Mode::Off;
        assert!(!scope.applies(Some("shop")));
    }
}
