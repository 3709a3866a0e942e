//! The validated policy set: evaluates every enabled policy on a workload object.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use time::OffsetDateTime;

use crate::exceptions::{self, Grants};
use crate::mutate::Mutations;
use crate::policy::metadata::PriorityClass;
use crate::policy::registry::Policy;
use crate::policy::{Mode, Subject, Violation};
use crate::workload::Workload;

/// The review budget ran out before evaluation finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the review budget ran out")]
pub struct OutOfTime;

/// Every policy and the mutation settings, validated (built by [`Policies::load`]).
#[derive(Clone, Debug)]
pub struct Policies {
    /// Every policy of the registry, built from the policy file, in evaluation order.
    pub policies: Vec<(&'static str, Arc<dyn Policy>)>,
    /// What `/mutate` changes.
    pub mutations: Mutations,
    /// Which namespaces may grant exceptions.
    pub exceptions: Grants,
    /// The time exceptions are judged at; `None` is the clock (tests and the property test
    /// that compares every entry point fix it).
    pub fixed_now: Option<OffsetDateTime>,
}

impl Policies {
    /// Violations of every enabled policy that applies in the subject's namespace.
    pub fn evaluate(&self, s: &Subject<'_>) -> Vec<Violation> {
        self.evaluate_until(s, None).unwrap_or_default()
    }

    /// [`Policies::evaluate`], giving up with [`OutOfTime`] once `deadline` has passed: it is
    /// checked before each policy, so a review whose answer was already sent (the budget ran
    /// out) stops within one policy's pass instead of running to the end in the background.
    pub fn evaluate_until(
        &self,
        s: &Subject<'_>,
        deadline: Option<Instant>,
    ) -> Result<Vec<Violation>, OutOfTime> {
        let mut out = Vec::new();
        for (_, policy) in &self.policies {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(OutOfTime);
            }
            if policy.scope().applies(s.namespace) {
                policy.evaluate(s, &mut out);
            }
        }
        let now = self.fixed_now.unwrap_or_else(OffsetDateTime::now_utc);
        exceptions::apply(&self.exceptions, s, now, &mut out);
        Ok(out)
    }

    /// Violations of `object` of `kind`, or `None` when the kind carries no pod template.
    pub fn evaluate_object(
        &self,
        kind: &str,
        object: &Value,
        namespace: Option<&str>,
        namespace_labelled: bool,
        namespace_labels: Option<&Value>,
    ) -> Option<Vec<Violation>> {
        let workload = Workload::of(kind, object)?;
        Some(self.evaluate(&Subject {
            workload,
            namespace,
            namespace_labelled,
            namespace_labels,
        }))
    }

    /// Whether a namespace with these labels requires `priorityClassName`.
    pub fn namespace_labelled(&self, labels: &Value) -> bool {
        self.get::<PriorityClass>()
            .is_some_and(|p| p.matches(labels))
    }

    /// The policy of type `T`, for the settings the engine's callers need.
    pub fn get<T: Policy + 'static>(&self) -> Option<&T> {
        self.policies
            .iter()
            .find_map(|(_, p)| p.as_any().downcast_ref::<T>())
    }
}

/// On UPDATE, violations the old object already had are not the requester's doing: they are
/// downgraded to warnings, so a pre-existing workload can still be scaled, relabelled or
/// fixed one problem at a time, while a change cannot add a new violation.
///
/// A violation is matched on what it is about, not where it is: its policy, message and
/// index-free field path, plus the content of every list element on the path (a container's
/// name, and its image too for pod-security; anything else whole, such as a volume with its
/// hostPath) and the value of the field itself. Matching by position would let a privileged `legacy-agent` container be
/// swapped for a privileged `evil` one at the same index.
pub fn grandfather(
    new: Vec<Violation>,
    new_object: &Value,
    old: &[Violation],
    old_object: &Value,
) -> Vec<Violation> {
    let before: BTreeSet<Identity<'_>> = old.iter().map(|v| identity(v, old_object)).collect();
    new.into_iter()
        .map(|mut v| {
            if v.mode == Mode::Enforce && before.contains(&identity(&v, new_object)) {
                v.mode = Mode::Warn;
                v.message = format!("{} (pre-existing, not enforced on update)", v.message);
            }
            v
        })
        .collect()
}

/// What a violation is about: (policy, message, field path without indices, the content of
/// each list element on the path, the field's value).
type Identity<'a> = (&'a str, &'a str, String, Vec<String>, String);

/// Container lists: their elements are identified by name (and image), not by every field, so
/// fixing one problem of a container keeps its other pre-existing ones exempt.
const CONTAINER_KEYS: &[&str] = &["containers", "initContainers", "ephemeralContainers"];

fn identity<'v>(v: &'v Violation, object: &Value) -> Identity<'v> {
    let mut path = String::with_capacity(v.field.len());
    let mut anchors = Vec::new();
    let mut at = Some(object);
    for segment in v.field.split('.') {
        let (key, indices) = segment.split_once('[').unwrap_or((segment, ""));
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
        at = at.and_then(|o| o.get(key));
        for index in indices.split('[').filter(|i| !i.is_empty()) {
            path.push_str("[]");
            let element = index
                .trim_end_matches(']')
                .parse::<usize>()
                .ok()
                .and_then(|i| at.and_then(|a| a.get(i)));
            at = element;
            anchors.push(match element {
                // A pod-security exemption belongs to the image it was granted to: the same
                // container name running another image privileged is a new grant. Other
                // policies follow the container by name, so an image bump of a legacy
                // workload does not re-enforce its missing probes or requests.
                Some(e) if CONTAINER_KEYS.contains(&key) && v.policy == "pod-security" => {
                    serde_json::json!([e.get("name"), e.get("image")]).to_string()
                }
                Some(e) if CONTAINER_KEYS.contains(&key) => {
                    serde_json::json!([e.get("name")]).to_string()
                }
                Some(e) => e.to_string(),
                None => String::new(),
            });
        }
    }
    let value = at.map(Value::to_string).unwrap_or_default();
    (v.policy, v.message.as_str(), path, anchors, value)
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
            !p.evaluate_object("Deployment", &d, Some("shop"), false, None)
                .unwrap()
                .is_empty()
        );
        for ns in ["kube-system", "ferrostack"] {
            assert_eq!(
                p.evaluate_object("Deployment", &d, Some(ns), false, None),
                Some(vec![])
            );
        }
        assert_eq!(
            p.evaluate_object("ConfigMap", &d, Some("shop"), false, None),
            None
        );
    }

    #[test]
    fn evaluation_past_its_deadline_stops() {
        let p = Policies::load(None, None).unwrap();
        let d = deployment("nginx");
        let s = Subject {
            workload: Workload::of("Deployment", &d).unwrap(),
            namespace: Some("shop"),
            namespace_labelled: false,
            namespace_labels: None,
        };
        assert_eq!(p.evaluate_until(&s, Some(Instant::now())), Err(OutOfTime));
        let later = Instant::now() + std::time::Duration::from_secs(60);
        assert_eq!(p.evaluate_until(&s, Some(later)), Ok(p.evaluate(&s)));
    }

    #[test]
    fn updates_only_enforce_new_violations() {
        let p = Policies::load(None, None).unwrap();
        let old = p
            .evaluate_object("Deployment", &deployment("nginx:latest"), None, false, None)
            .unwrap();
        let same = p
            .evaluate_object("Deployment", &deployment("nginx:latest"), None, false, None)
            .unwrap();
        let g = grandfather(
            same,
            &deployment("nginx:latest"),
            &old,
            &deployment("nginx:latest"),
        );
        assert!(g.iter().all(|v| v.mode != Mode::Enforce), "{g:?}");
        let worse = p
            .evaluate_object("Deployment", &deployment("nginx"), None, false, None)
            .unwrap();
        let g = grandfather(
            worse,
            &deployment("nginx"),
            &old,
            &deployment("nginx:latest"),
        );
        // The new image's own problem, and the pod-security exemptions, which were granted to
        // the old image; the missing requests stay exempt (the container is the same one).
        let enforced: BTreeSet<_> = g
            .iter()
            .filter(|v| v.mode == Mode::Enforce)
            .map(|v| v.policy)
            .collect();
        assert_eq!(
            enforced,
            BTreeSet::from(["image-tag", "pod-security"]),
            "{g:?}"
        );
    }
}
