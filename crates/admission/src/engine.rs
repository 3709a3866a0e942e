//! The validated policy set: evaluates every enabled policy on a workload object.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::mutate::Mutations;
use crate::policy::availability::HighAvailability;
use crate::policy::image::{AllowedRegistries, ImageTag};
use crate::policy::metadata::{PriorityClass, RequiredLabels};
use crate::policy::probes::Probes;
use crate::policy::resources::Resources;
use crate::policy::security::{PodSecurity, ReadOnlyRootFilesystem};
use crate::policy::{Mode, Subject, Violation};
use crate::workload::Workload;

/// Every policy and the mutation settings, validated (built by [`Policies::load`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Policies {
    /// `image-tag`
    pub image_tag: ImageTag,
    /// `allowed-registries`
    pub allowed_registries: AllowedRegistries,
    /// `resources`
    pub resources: Resources,
    /// `probes`
    pub probes: Probes,
    /// `pod-security`
    pub pod_security: PodSecurity,
    /// `read-only-root-filesystem`
    pub read_only_root_filesystem: ReadOnlyRootFilesystem,
    /// `required-labels`
    pub required_labels: RequiredLabels,
    /// `priority-class`
    pub priority_class: PriorityClass,
    /// `high-availability`
    pub high_availability: HighAvailability,
    /// What `/mutate` changes.
    pub mutations: Mutations,
}

impl Policies {
    /// Violations of every enabled policy that applies in the subject's namespace.
    pub fn evaluate(&self, s: &Subject<'_>) -> Vec<Violation> {
        let mut out = Vec::new();
        let ns = s.namespace;
        macro_rules! run {
            ($($p:ident),*) => {$(
                if self.$p.scope.applies(ns) {
                    self.$p.evaluate(s, &mut out);
                }
            )*};
        }
        run!(
            image_tag,
            allowed_registries,
            resources,
            probes,
            pod_security,
            read_only_root_filesystem,
            required_labels,
            priority_class,
            high_availability
        );
        out
    }

    /// Violations of `object` of `kind`, or `None` when the kind carries no pod template.
    pub fn evaluate_object(
        &self,
        kind: &str,
        object: &Value,
        namespace: Option<&str>,
        namespace_labelled: bool,
    ) -> Option<Vec<Violation>> {
        let workload = Workload::of(kind, object)?;
        Some(self.evaluate(&Subject {
            workload,
            namespace,
            namespace_labelled,
        }))
    }

    /// Whether a namespace with these labels requires `priorityClassName`.
    pub fn namespace_labelled(&self, labels: &Value) -> bool {
        self.priority_class.matches(labels)
    }
}

/// On UPDATE, violations the old object already had are not the requester's doing: they are
/// downgraded to warnings, so a pre-existing workload can still be scaled, relabelled or
/// fixed one problem at a time, while a change cannot add a new violation.
pub fn grandfather(new: Vec<Violation>, old: &[Violation]) -> Vec<Violation> {
    let before: BTreeSet<(&str, &str, &str)> = old
        .iter()
        .map(|v| (v.policy, v.field.as_str(), v.message.as_str()))
        .collect();
    new.into_iter()
        .map(|mut v| {
            if v.mode == Mode::Enforce
                && before.contains(&(v.policy, v.field.as_str(), v.message.as_str()))
            {
                v.mode = Mode::Warn;
                v.message = format!("{} (pre-existing, not enforced on update)", v.message);
            }
            v
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(image: &str) -> Value {
        json!({"metadata": {"name": "web"}, "spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}}})
    }

    #[test]
    fn excluded_namespaces_see_no_violations() {
        let p = Policies::load(None, Some("ferrostack")).unwrap();
        let d = deployment("nginx");
        assert!(
            !p.evaluate_object("Deployment", &d, Some("shop"), false)
                .unwrap()
                .is_empty()
        );
        for ns in ["kube-system", "ferrostack"] {
            assert_eq!(
                p.evaluate_object("Deployment", &d, Some(ns), false),
                Some(vec![])
            );
        }
        assert_eq!(
            p.evaluate_object("ConfigMap", &d, Some("shop"), false),
            None
        );
    }

    #[test]
    fn updates_only_enforce_new_violations() {
        let p = Policies::load(None, None).unwrap();
        let old = p
            .evaluate_object("Deployment", &deployment("nginx:latest"), None, false)
            .unwrap();
        let same = p
            .evaluate_object("Deployment", &deployment("nginx:latest"), None, false)
            .unwrap();
        let g = grandfather(same, &old);
        assert!(g.iter().all(|v| v.mode != Mode::Enforce), "{g:?}");
        let worse = p
            .evaluate_object("Deployment", &deployment("nginx"), None, false)
            .unwrap();
        let g = grandfather(worse, &old);
        let enforced: Vec<_> = g.iter().filter(|v| v.mode == Mode::Enforce).collect();
        assert_eq!(enforced.len(), 1, "{g:?}");
        assert_eq!(enforced[0].policy, "image-tag");
    }
}
