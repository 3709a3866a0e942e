//! Finds the pod spec inside every supported workload kind, with the field path that leads to it.

use serde_json::Value;

/// Where a kind keeps its pod template, as JSON object keys from the object root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `spec` (a Pod).
    Pod,
    /// `spec.template` (Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, Rollout).
    Template,
    /// `spec.jobTemplate.spec.template` (CronJob).
    CronJob,
}

/// A kind the policies apply to: its API group and version, name, plural (its REST resource)
/// and where it keeps its pod template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind {
    /// API group (`""` for the core group).
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// `kind`.
    pub kind: &'static str,
    /// The REST resource (`deployments`).
    pub plural: &'static str,
    /// Where its pod template is.
    pub shape: Shape,
}

const fn kind(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    shape: Shape,
) -> Kind {
    Kind {
        group,
        version,
        kind,
        plural,
        shape,
    }
}

/// Every kind the policies apply to: the one list that [`shape_of`], [`metric_kind`] and
/// `webhook audit` read (the kinds are also the only `kind` label values of the review metric
/// besides `other`, which keeps its cardinality bounded whatever clients send).
pub const KINDS: &[Kind] = &[
    kind("", "v1", "Pod", "pods", Shape::Pod),
    kind("apps", "v1", "Deployment", "deployments", Shape::Template),
    kind("apps", "v1", "StatefulSet", "statefulsets", Shape::Template),
    kind("apps", "v1", "DaemonSet", "daemonsets", Shape::Template),
    kind("apps", "v1", "ReplicaSet", "replicasets", Shape::Template),
    kind(
        "",
        "v1",
        "ReplicationController",
        "replicationcontrollers",
        Shape::Template,
    ),
    kind("batch", "v1", "Job", "jobs", Shape::Template),
    kind(
        "argoproj.io",
        "v1alpha1",
        "Rollout",
        "rollouts",
        Shape::Template,
    ),
    kind("batch", "v1", "CronJob", "cronjobs", Shape::CronJob),
];

/// `kind` when the policies apply to it, else `other`.
pub fn metric_kind(kind: &str) -> &'static str {
    KINDS
        .iter()
        .find(|k| k.kind == kind)
        .map_or("other", |k| k.kind)
}

/// The kinds the policies apply to and where their pod template lives.
pub fn shape_of(kind: &str) -> Option<Shape> {
    KINDS.iter().find(|k| k.kind == kind).map(|k| k.shape)
}

/// Whether a kind runs a fixed number of long-lived replicas (the high-availability policy).
pub fn is_replicated(kind: &str) -> bool {
    matches!(
        kind,
        "Deployment" | "StatefulSet" | "ReplicaSet" | "ReplicationController" | "Rollout"
    )
}

/// Whether a kind runs to completion (no probes expected).
pub fn is_batch(kind: &str) -> bool {
    matches!(kind, "Job" | "CronJob")
}

impl Shape {
    /// Object keys from the root to the pod template's parent object (the one holding `metadata`
    /// and `spec` of the pod).
    pub fn template_keys(self) -> &'static [&'static str] {
        match self {
            Shape::Pod => &[],
            Shape::Template => &["spec", "template"],
            Shape::CronJob => &["spec", "jobTemplate", "spec", "template"],
        }
    }

    /// Dotted path prefix of the pod spec, for messages (`spec.template.spec`).
    pub fn spec_path(self) -> &'static str {
        match self {
            Shape::Pod => "spec",
            Shape::Template => "spec.template.spec",
            Shape::CronJob => "spec.jobTemplate.spec.template.spec",
        }
    }

    /// Dotted path prefix of the pod metadata, for messages.
    pub fn meta_path(self) -> &'static str {
        match self {
            Shape::Pod => "metadata",
            Shape::Template => "spec.template.metadata",
            Shape::CronJob => "spec.jobTemplate.spec.template.metadata",
        }
    }
}

/// A borrowed view of one workload object: its kind, identity and pod template.
#[derive(Clone, Copy, Debug)]
pub struct Workload<'a> {
    /// Kubernetes kind (`Deployment`).
    pub kind: &'a str,
    /// The whole object.
    pub object: &'a Value,
    /// Where the pod template lives.
    pub shape: Shape,
    /// The pod template object (`metadata` + `spec`); for a Pod, the object itself.
    pub template: &'a Value,
}

impl<'a> Workload<'a> {
    /// The workload view of `object`, or `None` when the kind carries no pod template or the
    /// template is absent (an Argo Rollout using `workloadRef`, for example).
    pub fn of(kind: &'a str, object: &'a Value) -> Option<Self> {
        let shape = shape_of(kind)?;
        let mut template = object;
        for key in shape.template_keys() {
            template = template.get(key)?;
        }
        template.get("spec")?.as_object()?;
        Some(Workload {
            kind,
            object,
            shape,
            template,
        })
    }

    /// The pod spec as JSON.
    pub fn pod_spec(&self) -> &'a Value {
        &self.template["spec"]
    }

    /// `metadata.name` of the object ("" when unnamed, e.g. `generateName`).
    pub fn name(&self) -> &'a str {
        self.object["metadata"]["name"]
            .as_str()
            .or_else(|| self.object["metadata"]["generateName"].as_str())
            .unwrap_or("")
    }

    /// A label of the pod template (for a Pod, of the Pod).
    pub fn pod_label(&self, key: &str) -> Option<&'a str> {
        self.template["metadata"]["labels"][key].as_str()
    }

    /// `spec.replicas` when the kind has it (absent means 1, as the API server defaults it).
    pub fn replicas(&self) -> Option<i64> {
        if !is_replicated(self.kind) {
            return None;
        }
        Some(self.object["spec"]["replicas"].as_i64().unwrap_or(1))
    }

    /// Whether a Pod belongs to a Job (ownerReferences), so it runs to completion.
    pub fn owned_by_job(&self) -> bool {
        self.object["metadata"]["ownerReferences"]
            .as_array()
            .is_some_and(|owners| owners.iter().any(|o| o["kind"] == "Job"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_the_pod_template_of_every_kind() {
        let template = json!({"metadata": {"labels": {"app": "x"}}, "spec": {"containers": []}});
        let cases = [
            ("Pod", template.clone(), "spec"),
            (
                "Deployment",
                json!({"spec": {"template": template}}),
                "spec.template.spec",
            ),
            (
                "CronJob",
                json!({"spec": {"jobTemplate": {"spec": {"template": template}}}}),
                "spec.jobTemplate.spec.template.spec",
            ),
        ];
        for (kind, object, path) in &cases {
            let w = Workload::of(kind, object).expect(kind);
            assert_eq!(w.shape.spec_path(), *path);
            assert_eq!(w.pod_label("app"), Some("x"));
            assert!(w.pod_spec()["containers"].is_array());
        }
    }

    #[test]
    fn kinds_without_templates_are_not_workloads() {
        assert!(Workload::of("ConfigMap", &json!({"data": {}})).is_none());
        assert!(Workload::of("Rollout", &json!({"spec": {"workloadRef": {}}})).is_none());
    }

    #[test]
    fn every_listed_kind_has_a_shape_and_other_kinds_share_one_metric_label() {
        for k in KINDS {
            assert_eq!(shape_of(k.kind), Some(k.shape), "{}", k.kind);
            assert_eq!(metric_kind(k.kind), k.kind);
        }
        assert_eq!(metric_kind("ConfigMap"), "other");
        assert_eq!(metric_kind("Pod\"} 1\nx{"), "other");
    }

    #[test]
    fn replicas_default_to_one_for_replicated_kinds_only() {
        let d = json!({"spec": {"template": {"spec": {}}}});
        assert_eq!(Workload::of("Deployment", &d).unwrap().replicas(), Some(1));
        assert_eq!(Workload::of("DaemonSet", &d).unwrap().replicas(), None);
    }
}
