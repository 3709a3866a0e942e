//! `probes`: long-running containers have liveness and readiness probes, and not the same one.

use super::registry::{Definition, Policy, SettingError, Settings, impl_policy, without_settings};
use super::{Group, Mode, Report, Scope, Subject, Violation, containers};

/// `probes`' registry entry.
pub const DEFINITION: Definition = Definition {
    name: "probes",
    default_mode: Mode::Warn,
    build,
};

fn build(scope: Scope, settings: Settings) -> Result<Box<dyn Policy>, SettingError> {
    without_settings(settings, Probes { scope })
}

impl_policy!(Probes);
use crate::workload::is_batch;

/// `probes`: every container (not init, not ephemeral) of a long-running workload has a
/// `livenessProbe` and a `readinessProbe`, and they differ: an identical pair restarts a
/// container whenever it should only be taken out of the endpoints.
#[derive(Clone, Debug, PartialEq)]
pub struct Probes {
    /// Mode and exclusions.
    pub scope: Scope,
}

impl Probes {
    /// Adds violations for missing or identical probes. Run-to-completion pods are skipped:
    /// Jobs, CronJobs, their Pods, and Pods with `restartPolicy` Never or OnFailure (such as
    /// `helm test` hooks).
    pub fn evaluate(&self, subject: &Subject<'_>, out: &mut Vec<Violation>) {
        let w = &subject.workload;
        let completes = matches!(
            w.pod_spec()["restartPolicy"].as_str(),
            Some("Never" | "OnFailure")
        );
        if is_batch(w.kind) || (w.kind == "Pod" && (w.owned_by_job() || completes)) {
            return;
        }
        let mut report = Report::new(DEFINITION.name, self.scope.mode, subject, out);
        for c in containers(w.pod_spec(), &[Group::Containers]) {
            let liveness = &c.value["livenessProbe"];
            let readiness = &c.value["readinessProbe"];
            if liveness.is_null() {
                report.container(&c, "livenessProbe", "livenessProbe is not set");
            }
            if readiness.is_null() {
                report.container(&c, "readinessProbe", "readinessProbe is not set");
            }
            if !liveness.is_null() && liveness == readiness {
                report.container(
                    &c,
                    "livenessProbe",
                    "livenessProbe is identical to readinessProbe: a dependency outage would restart the container instead of only removing it from the endpoints",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::test_util::{deployment, enforce, fields, subject};
    use serde_json::json;

    fn run(pod_spec: serde_json::Value) -> Vec<Violation> {
        let object = deployment(pod_spec);
        let mut out = Vec::new();
        Probes { scope: enforce() }.evaluate(&subject(&object), &mut out);
        out
    }

    #[test]
    fn distinct_probes_pass() {
        let v = run(json!({"containers": [{"name": "a",
            "livenessProbe": {"tcpSocket": {"port": 8080}},
            "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}}}]}));
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn missing_and_identical_probes_are_reported() {
        let probe = json!({"httpGet": {"path": "/healthz", "port": 8080}});
        let v = run(json!({"containers": [
            {"name": "none"},
            {"name": "same", "livenessProbe": probe, "readinessProbe": probe}
        ], "initContainers": [{"name": "init"}]}));
        assert_eq!(
            fields(&v),
            [
                "spec.template.spec.containers[0].livenessProbe",
                "spec.template.spec.containers[0].readinessProbe",
                "spec.template.spec.containers[1].livenessProbe"
            ]
        );
        assert!(v[2].message.contains("identical"));
    }

    #[test]
    fn jobs_and_job_pods_are_skipped() {
        let job =
            json!({"kind": "Job", "spec": {"template": {"spec": {"containers": [{"name": "a"}]}}}});
        let pod = json!({"kind": "Pod", "metadata": {"ownerReferences": [{"kind": "Job", "name": "j"}]},
            "spec": {"containers": [{"name": "a"}]}});
        let test_hook = json!({"kind": "Pod", "metadata": {"annotations": {"helm.sh/hook": "test"}},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "a"}]}});
        for (kind, object) in [("Job", &job), ("Pod", &pod), ("Pod", &test_hook)] {
            let s = Subject {
                workload: crate::workload::Workload::of(kind, object).unwrap(),
                namespace: None,
                namespace_labelled: false,
                namespace_labels: None,
            };
            let mut out = Vec::new();
            Probes { scope: enforce() }.evaluate(&s, &mut out);
            assert!(out.is_empty(), "{kind}: {out:?}");
        }
    }
}
