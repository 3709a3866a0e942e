//! `resources`: containers declare the requests and limits the scheduler and the OOM killer need.

use serde::Deserialize;

use super::registry::{Definition, Policy, SettingError, Settings, impl_policy, parse};
use super::{Mode, RUN_GROUPS, Report, Scope, Subject, Violation, containers};

/// `resources`' registry entry.
pub const DEFINITION: Definition = Definition {
    name: "resources",
    default_mode: Mode::Enforce,
    build,
};

/// `resources` settings.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceSettings {
    require: Option<Vec<String>>,
}

fn build(scope: Scope, settings: Settings) -> Result<Box<dyn Policy>, SettingError> {
    let ResourceSettings { require } = parse(settings)?;
    let require = match require {
        None => vec![
            Requirement::RequestsCpu,
            Requirement::RequestsMemory,
            Requirement::LimitsMemory,
        ],
        Some(list) => list
            .iter()
            .map(|s| requirement(s))
            .collect::<Result<_, _>>()?,
    };
    Ok(Box::new(Resources { scope, require }))
}

fn requirement(s: &str) -> Result<Requirement, SettingError> {
    Requirement::ALL
        .iter()
        .find(|(n, _)| *n == s)
        .map(|(_, r)| *r)
        .ok_or_else(|| {
            let message = format!(
                "unknown entry {s:?} (use requests.cpu, requests.memory, limits.cpu, limits.memory)"
            );
            SettingError::new("require", message)
        })
}

impl_policy!(Resources);

/// One required entry, `requests.cpu` style.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// `resources.requests.cpu`
    RequestsCpu,
    /// `resources.requests.memory`
    RequestsMemory,
    /// `resources.limits.cpu`
    LimitsCpu,
    /// `resources.limits.memory`
    LimitsMemory,
}

impl Requirement {
    /// Every requirement with its spelling in the policy file.
    pub const ALL: [(&'static str, Requirement); 4] = [
        ("requests.cpu", Requirement::RequestsCpu),
        ("requests.memory", Requirement::RequestsMemory),
        ("limits.cpu", Requirement::LimitsCpu),
        ("limits.memory", Requirement::LimitsMemory),
    ];

    /// `(requests|limits, cpu|memory)`.
    pub fn keys(self) -> (&'static str, &'static str) {
        match self {
            Requirement::RequestsCpu => ("requests", "cpu"),
            Requirement::RequestsMemory => ("requests", "memory"),
            Requirement::LimitsCpu => ("limits", "cpu"),
            Requirement::LimitsMemory => ("limits", "memory"),
        }
    }
}

/// `resources`: the listed requests and limits are set on every container and init container.
#[derive(Clone, Debug, PartialEq)]
pub struct Resources {
    /// Mode and exclusions.
    pub scope: Scope,
    /// What must be set (default: requests.cpu, requests.memory, limits.memory; no CPU limit,
    /// which throttles more than it protects).
    pub require: Vec<Requirement>,
}

impl Resources {
    /// Adds a violation for every missing entry.
    pub fn evaluate(&self, subject: &Subject<'_>, out: &mut Vec<Violation>) {
        let mut report = Report::new(DEFINITION.name, self.scope.mode, subject, out);
        for c in containers(subject.workload.pod_spec(), RUN_GROUPS) {
            for req in &self.require {
                let (section, resource) = req.keys();
                let value = &c.value["resources"][section][resource];
                let set = match value {
                    serde_json::Value::String(s) => !s.is_empty(),
                    serde_json::Value::Number(_) => true,
                    _ => false,
                };
                if !set {
                    report.container(
                        &c,
                        &format!("resources.{section}.{resource}"),
                        format!("resources.{section}.{resource} is not set"),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::test_util::{deployment, enforce, fields, subject};
    use serde_json::json;

    #[test]
    fn reports_each_missing_entry_and_accepts_complete_containers() {
        let object = deployment(json!({
            "containers": [
                {"name": "ok", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}},
                {"name": "bare"},
            ],
            "initContainers": [{"name": "init", "resources": {"requests": {"cpu": 1, "memory": ""}, "limits": {"memory": "1Gi"}}}]
        }));
        let policy = Resources {
            scope: enforce(),
            require: vec![
                Requirement::RequestsCpu,
                Requirement::RequestsMemory,
                Requirement::LimitsMemory,
            ],
        };
        let mut out = Vec::new();
        policy.evaluate(&subject(&object), &mut out);
        assert_eq!(
            fields(&out),
            [
                "spec.template.spec.containers[1].resources.requests.cpu",
                "spec.template.spec.containers[1].resources.requests.memory",
                "spec.template.spec.containers[1].resources.limits.memory",
                "spec.template.spec.initContainers[0].resources.requests.memory",
            ]
        );
    }
}
