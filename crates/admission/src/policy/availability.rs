//! `high-availability`: replicated workloads run at least N replicas spread across nodes.

use serde_json::Value;

use serde::Deserialize;

use super::registry::{Definition, Policy, SettingError, Settings, impl_policy, parse};
use super::{Mode, Report, Scope, Subject, Violation};

/// `high-availability`'s registry entry.
pub const DEFINITION: Definition = Definition {
    name: "high-availability",
    default_mode: Mode::Warn,
    build,
};

/// `high-availability` settings.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AvailabilitySettings {
    min_replicas: Option<i64>,
}

fn build(scope: Scope, settings: Settings) -> Result<Box<dyn Policy>, SettingError> {
    let AvailabilitySettings { min_replicas } = parse(settings)?;
    let min_replicas = min_replicas.unwrap_or(2);
    if min_replicas < 1 {
        return Err(SettingError::new("minReplicas", "must be at least 1"));
    }
    Ok(Box::new(HighAvailability {
        scope,
        min_replicas,
    }))
}

impl_policy!(HighAvailability);

/// `high-availability` (warn by default): `spec.replicas` of at least `min_replicas` and either
/// a pod anti-affinity or a topology spread constraint (case study 3.2.a), for Deployments,
/// StatefulSets, ReplicaSets, ReplicationControllers and Rollouts.
#[derive(Clone, Debug, PartialEq)]
pub struct HighAvailability {
    /// Mode and exclusions.
    pub scope: Scope,
    /// The smallest acceptable replica count (default 2).
    pub min_replicas: i64,
}

/// Whether a pod spec spreads its replicas: any pod anti-affinity term or topology spread.
pub fn spreads(spec: &Value) -> bool {
    let anti = &spec["affinity"]["podAntiAffinity"];
    let non_empty = |v: &Value| v.as_array().is_some_and(|a| !a.is_empty());
    non_empty(&anti["preferredDuringSchedulingIgnoredDuringExecution"])
        || non_empty(&anti["requiredDuringSchedulingIgnoredDuringExecution"])
        || non_empty(&spec["topologySpreadConstraints"])
}

impl HighAvailability {
    /// Adds violations for too few replicas or no spreading. A workload scaled to zero on
    /// purpose (an Argo Rollout's `workloadRef` Deployment, a paused service) runs no pods and
    /// is skipped.
    pub fn evaluate(&self, subject: &Subject<'_>, out: &mut Vec<Violation>) {
        let w = &subject.workload;
        let Some(replicas) = w.replicas().filter(|r| *r != 0) else {
            return;
        };
        let mut r = Report::new(DEFINITION.name, self.scope.mode, subject, out);
        if replicas < self.min_replicas {
            r.object(
                "spec.replicas",
                format!(
                    "spec.replicas is {replicas}: run at least {} so one pod can fail or be evicted",
                    self.min_replicas
                ),
            );
        }
        if !spreads(w.pod_spec()) {
            r.pod(
                "affinity.podAntiAffinity",
                "no pod anti-affinity or topologySpreadConstraints: replicas may land on one node",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::test_util::{deployment, enforce, fields};
    use crate::workload::Workload;
    use serde_json::json;

    fn run(kind: &str, object: &Value) -> Vec<Violation> {
        let s = Subject {
            workload: Workload::of(kind, object).unwrap(),
            namespace: None,
            namespace_labelled: false,
            namespace_labels: None,
        };
        let mut out = Vec::new();
        HighAvailability {
            scope: enforce(),
            min_replicas: 2,
        }
        .evaluate(&s, &mut out);
        out
    }

    #[test]
    fn one_replica_without_spread_gives_two_findings() {
        let mut d = deployment(json!({"containers": []}));
        d["spec"].as_object_mut().unwrap().remove("replicas");
        assert_eq!(
            fields(&run("Deployment", &d)),
            [
                "spec.replicas",
                "spec.template.spec.affinity.podAntiAffinity"
            ]
        );
    }

    #[test]
    fn soft_anti_affinity_or_topology_spread_satisfies_it() {
        let anti = deployment(json!({"affinity": {"podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100}]}}}));
        assert!(run("Deployment", &anti).is_empty());
        let spread = deployment(json!({"topologySpreadConstraints": [{"maxSkew": 1}]}));
        assert!(run("Deployment", &spread).is_empty());
    }

    #[test]
    fn workloads_scaled_to_zero_are_skipped() {
        let mut d = deployment(json!({"containers": []}));
        d["spec"]["replicas"] = json!(0);
        assert!(run("Deployment", &d).is_empty());
    }

    #[test]
    fn daemonsets_and_jobs_are_not_replicated() {
        let d = deployment(json!({}));
        assert!(run("DaemonSet", &d).is_empty());
        assert!(run("Job", &d).is_empty());
    }
}
