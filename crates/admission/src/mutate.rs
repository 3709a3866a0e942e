//! Mutations: safe defaults set only where unset, so applying them twice changes nothing.
//!
//! - pod `securityContext.seccompProfile: {type: RuntimeDefault}` when the pod sets none;
//! - container `allowPrivilegeEscalation: false` when unset (not for privileged containers or
//!   those adding `SYS_ADMIN`, where the API server would reject it);
//! - `resources.requests` where missing: the container's limit when it has one (what the API
//!   server defaults for Pods), else the configured default;
//! - a preferred (soft) pod anti-affinity on the app label when the pod template of a replicated
//!   workload has no anti-affinity and no topology spread (case study 3.2.a).
//!
//! Linux-only fields are never added to `os.name: windows` pods.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::policy::availability::spreads;
use crate::workload::{Workload, is_replicated, shape_of};

/// Mutation settings, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Mutations {
    /// Namespaces never mutated.
    pub exclude_namespaces: BTreeSet<String>,
    /// Add the RuntimeDefault seccomp profile.
    pub seccomp_profile: bool,
    /// Add `allowPrivilegeEscalation: false`.
    pub allow_privilege_escalation: bool,
    /// Requests to add where missing, by resource (`cpu`, `memory`).
    pub default_requests: BTreeMap<String, String>,
    /// The soft anti-affinity to add, if enabled.
    pub anti_affinity: Option<AntiAffinity>,
}

/// Soft anti-affinity settings.
#[derive(Clone, Debug, PartialEq)]
pub struct AntiAffinity {
    /// Label keys tried in order on the pod template to find the app label.
    pub label_keys: Vec<String>,
    /// The topology key (`kubernetes.io/hostname`).
    pub topology_key: String,
    /// The preference weight.
    pub weight: i64,
}

/// Whether an UPDATE may change the pod template of this kind: a Pod's spec and a Job's
/// template are immutable, so mutating them on UPDATE would make the request fail.
pub fn template_mutable_on_update(kind: &str) -> bool {
    !matches!(kind, "Pod" | "Job")
}

/// The object under `key`, created when absent; `None` when something else is there.
fn child<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Map<String, Value>> {
    let map = v.as_object_mut()?;
    let entry = map.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if entry.is_null() {
        *entry = Value::Object(Map::new());
    }
    entry.as_object_mut()
}

impl Mutations {
    /// Whether objects in `namespace` are mutated.
    pub fn applies(&self, namespace: Option<&str>) -> bool {
        namespace.is_none_or(|ns| !self.exclude_namespaces.contains(ns))
    }

    /// Applies every enabled mutation to `object` of `kind` in place and names what changed.
    pub fn apply(&self, kind: &str, object: &mut Value) -> Vec<&'static str> {
        let mut changed = Vec::new();
        let Some(shape) = shape_of(kind) else {
            return changed;
        };
        // Read-only facts first, from a shared borrow.
        let anti_affinity = match Workload::of(kind, object) {
            None => return changed,
            Some(w) => self.anti_affinity_term(&w),
        };
        let mut template = &mut *object;
        for key in shape.template_keys() {
            match template.get_mut(*key) {
                Some(t) => template = t,
                None => return changed,
            }
        }
        let Some(spec) = template.get_mut("spec").filter(|s| s.is_object()) else {
            return changed;
        };
        let linux = spec["os"]["name"] != "windows";
        if self.seccomp_profile
            && linux
            && spec["securityContext"]["seccompProfile"].is_null()
            && let Some(sc) = child(spec, "securityContext")
        {
            sc.insert("seccompProfile".into(), json!({"type": "RuntimeDefault"}));
            changed.push("seccompProfile");
        }
        for group in ["containers", "initContainers"] {
            let Some(list) = spec.get_mut(group).and_then(Value::as_array_mut) else {
                continue;
            };
            for c in list.iter_mut().filter(|c| c.is_object()) {
                self.mutate_container(c, linux, &mut changed);
            }
        }
        if let Some(term) = anti_affinity
            && let Some(anti) = child(spec, "affinity").and_then(|a| {
                a.insert("podAntiAffinity".into(), json!({}));
                a.get_mut("podAntiAffinity").and_then(Value::as_object_mut)
            })
        {
            anti.insert(
                "preferredDuringSchedulingIgnoredDuringExecution".into(),
                Value::Array(vec![term]),
            );
            changed.push("antiAffinity");
        }
        let mut once = Vec::with_capacity(changed.len());
        for c in changed {
            if !once.contains(&c) {
                once.push(c);
            }
        }
        once
    }

    /// A container's mutations: no privilege escalation where that is valid, and the default
    /// requests where unset (the limit when there is one).
    fn mutate_container(&self, c: &mut Value, linux: bool, changed: &mut Vec<&'static str>) {
        if self.allow_privilege_escalation
            && linux
            && no_escalation_is_valid(c)
            && let Some(sc) = child(c, "securityContext")
        {
            sc.insert("allowPrivilegeEscalation".into(), Value::Bool(false));
            changed.push("allowPrivilegeEscalation");
        }
        for (resource, default) in &self.default_requests {
            if !c["resources"]["requests"][resource].is_null() {
                continue;
            }
            let value = match &c["resources"]["limits"][resource] {
                Value::Null => Value::String(default.clone()),
                limit => limit.clone(),
            };
            if let Some(requests) = child(c, "resources").and_then(|r| {
                let e = r
                    .entry("requests")
                    .or_insert_with(|| Value::Object(Map::new()));
                if e.is_null() {
                    *e = Value::Object(Map::new());
                }
                e.as_object_mut()
            }) {
                requests.insert(resource.clone(), value);
                changed.push("defaultRequests");
            }
        }
    }

    fn anti_affinity_term(&self, w: &Workload<'_>) -> Option<Value> {
        let a = self.anti_affinity.as_ref()?;
        if !is_replicated(w.kind) || spreads(w.pod_spec()) {
            return None;
        }
        let spec = w.pod_spec();
        if !spec["affinity"]["podAntiAffinity"].is_null()
            || !(spec["affinity"].is_null() || spec["affinity"].is_object())
        {
            return None;
        }
        let (key, value) = a
            .label_keys
            .iter()
            .find_map(|k| w.pod_label(k).filter(|v| !v.is_empty()).map(|v| (k, v)))?;
        Some(json!({
            "weight": a.weight,
            "podAffinityTerm": {
                "labelSelector": {"matchLabels": {key: value}},
                "topologyKey": a.topology_key,
            }
        }))
    }
}

/// `allowPrivilegeEscalation: false` is unset and may be set: the API server rejects it next
/// to `privileged: true` or an added `SYS_ADMIN` capability.
fn no_escalation_is_valid(c: &Value) -> bool {
    let sc = &c["securityContext"];
    if !sc["allowPrivilegeEscalation"].is_null() || !(sc.is_null() || sc.is_object()) {
        return false;
    }
    let privileged = sc["privileged"] == true;
    let sys_admin = sc["capabilities"]["add"]
        .as_array()
        .is_some_and(|a| a.iter().any(|c| c == "SYS_ADMIN" || c == "CAP_SYS_ADMIN"));
    !privileged && !sys_admin
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Policies;

    fn mutations() -> Mutations {
        Policies::load(None, Some("ferrostack")).unwrap().mutations
    }

    fn deployment(pod_spec: Value) -> Value {
        json!({"kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 2, "template": {
            "metadata": {"labels": {"app.kubernetes.io/name": "web"}}, "spec": pod_spec}}})
    }

    #[test]
    fn fills_every_unset_default() {
        let mut d = deployment(json!({"containers": [{"name": "web", "image": "web:1",
            "resources": {"limits": {"memory": "256Mi"}}}]}));
        let changed = mutations().apply("Deployment", &mut d);
        assert_eq!(
            changed,
            [
                "seccompProfile",
                "allowPrivilegeEscalation",
                "defaultRequests",
                "antiAffinity"
            ]
        );
        let spec = &d["spec"]["template"]["spec"];
        assert_eq!(
            spec["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        let c = &spec["containers"][0];
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(
            c["resources"]["requests"],
            json!({"cpu": "50m", "memory": "256Mi"})
        );
        assert_eq!(
            spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
                [0],
            json!({"weight": 100, "podAffinityTerm": {
                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "web"}},
                "topologyKey": "kubernetes.io/hostname"}})
        );
    }

    #[test]
    fn applying_twice_changes_nothing() {
        let mut d =
            deployment(json!({"containers": [{"name": "web"}], "initContainers": [{"name": "i"}]}));
        let m = mutations();
        assert!(!m.apply("Deployment", &mut d).is_empty());
        let once = d.clone();
        assert!(m.apply("Deployment", &mut d).is_empty());
        assert_eq!(d, once);
    }

    #[test]
    fn explicit_settings_are_left_alone() {
        let spec = json!({
            "securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "x"}},
            "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": []}},
            "containers": [
                {"name": "a", "securityContext": {"allowPrivilegeEscalation": true},
                 "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}},
                {"name": "p", "securityContext": {"privileged": true}, "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}},
                {"name": "s", "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}, "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}
            ]
        });
        let mut d = deployment(spec);
        let before = d.clone();
        assert!(mutations().apply("Deployment", &mut d).is_empty());
        assert_eq!(d, before);
    }

    #[test]
    fn anti_affinity_only_where_nothing_spreads_the_pods() {
        let c = json!([{"name": "web", "securityContext": {"allowPrivilegeEscalation": false},
            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]);
        let seccomp = json!({"seccompProfile": {"type": "RuntimeDefault"}});
        let mut spread = deployment(json!({"securityContext": seccomp, "containers": c,
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway"}]}));
        assert!(mutations().apply("Deployment", &mut spread).is_empty());

        // Node affinity alone does not spread: the pod anti-affinity is added beside it.
        let node =
            json!({"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}});
        let mut d = deployment(json!({"securityContext": seccomp, "containers": c,
            "affinity": {"nodeAffinity": node}}));
        assert_eq!(mutations().apply("Deployment", &mut d), ["antiAffinity"]);
        let affinity = &d["spec"]["template"]["spec"]["affinity"];
        assert_eq!(affinity["nodeAffinity"], node);
        assert!(
            affinity["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"]
                == 100
        );
    }

    #[test]
    fn windows_pods_get_no_linux_fields_and_pods_get_no_anti_affinity() {
        let mut pod = json!({"kind": "Pod", "metadata": {"labels": {"app": "w"}},
            "spec": {"os": {"name": "windows"}, "containers": [{"name": "w", "resources": {"requests": {"cpu": "1", "memory": "1"}}}]}});
        assert!(mutations().apply("Pod", &mut pod).is_empty());
    }

    #[test]
    fn cronjobs_are_mutated_at_their_nested_template() {
        let mut cj = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}}}});
        let changed = mutations().apply("CronJob", &mut cj);
        assert!(changed.contains(&"seccompProfile"), "{changed:?}");
        assert!(!changed.contains(&"antiAffinity"));
        assert_eq!(
            cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["securityContext"]
                ["allowPrivilegeEscalation"],
            false
        );
    }
}
