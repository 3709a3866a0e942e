//! `pod-security` (the Pod Security Standards at a level and version, see [`super::standard`];
//! the baseline checks about less common fields live in [`super::baseline`]) and
//! `read-only-root-filesystem`.
//!
//! Semantics follow kubernetes/pod-security-admission `policy/check_*.go`: container-level
//! settings override pod-level ones, and a pod-level `runAsNonRoot` / seccomp profile satisfies
//! every container that leaves it unset.

use serde_json::Value;

use serde::Deserialize;

use super::registry::{
    Definition, Policy, SettingError, Settings, impl_policy, parse, without_settings,
};
use super::standard::{Level, Standard, Version, labelled};
use super::{
    ALL_GROUPS, Container, Mode, RUN_GROUPS, Report, Scope, Subject, Violation, baseline,
    containers,
};

/// `pod-security`'s registry entry.
pub const POD_SECURITY: Definition = Definition {
    name: "pod-security",
    default_mode: Mode::Enforce,
    build: build_pod_security,
};

/// `read-only-root-filesystem`'s registry entry.
pub const READ_ONLY_ROOT_FILESYSTEM: Definition = Definition {
    name: "read-only-root-filesystem",
    default_mode: Mode::Warn,
    build: build_read_only_root,
};

/// `pod-security` settings.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StandardSettings {
    level: Option<String>,
    version: Option<String>,
}

fn build_pod_security(scope: Scope, settings: Settings) -> Result<Box<dyn Policy>, SettingError> {
    let StandardSettings { level, version } = parse(settings)?;
    let level = level.map_or(Ok(Level::default()), |l| l.parse());
    let version = version.map_or(Ok(Version::default()), |v| v.parse());
    let standard = Standard {
        level: level.map_err(|e| SettingError::new("level", e.to_string()))?,
        version: version.map_err(|e| SettingError::new("version", e.to_string()))?,
    };
    Ok(Box::new(PodSecurity { scope, standard }))
}

fn build_read_only_root(scope: Scope, settings: Settings) -> Result<Box<dyn Policy>, SettingError> {
    without_settings(settings, ReadOnlyRootFilesystem { scope })
}

impl_policy!(PodSecurity);
impl_policy!(ReadOnlyRootFilesystem);

/// Volume types the restricted profile allows.
pub const ALLOWED_VOLUME_TYPES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// Capabilities the baseline profile lets a container add (`check_capabilities_baseline.go`).
pub const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// `pod-security`: a Pod Security Standard (restricted at the newest version by default).
#[derive(Clone, Debug, PartialEq)]
pub struct PodSecurity {
    /// Mode and exclusions.
    pub scope: Scope,
    /// The level and version pods are held to.
    pub standard: Standard,
}

/// `read-only-root-filesystem`: every container mounts its root filesystem read-only.
#[derive(Clone, Debug, PartialEq)]
pub struct ReadOnlyRootFilesystem {
    /// Mode and exclusions.
    pub scope: Scope,
}

impl PodSecurity {
    /// Adds a violation for every rule of the standard the pod breaks: the policy file's level
    /// and version in the policy's mode, unless the namespace's `pod-security.kubernetes.io/*`
    /// labels choose others (enforce, and warn and audit as warnings), as the built-in Pod
    /// Security admission does. A rule broken under enforce is not repeated as a warning.
    pub fn evaluate(&self, subject: &Subject<'_>, out: &mut Vec<Violation>) {
        let plan = match subject.namespace_labels {
            Some(labels) if self.scope.mode != Mode::Off => {
                let own = |mode| (self.scope.mode == mode).then_some(self.standard);
                [
                    (
                        labelled(labels, "enforce", own(Mode::Enforce), true),
                        Mode::Enforce,
                    ),
                    (labelled(labels, "warn", own(Mode::Warn), false), Mode::Warn),
                    (labelled(labels, "audit", None, false), Mode::Warn),
                ]
            }
            _ => [
                (Some(self.standard), self.scope.mode),
                (None, Mode::Off),
                (None, Mode::Off),
            ],
        };
        let first = out.len();
        for (standard, mode) in plan {
            let Some(standard) = standard else { continue };
            let mut found = Vec::new();
            check(
                standard,
                &mut Report::new(POD_SECURITY.name, mode, subject, &mut found),
                subject,
            );
            found.retain(|v| !out[first..].iter().any(|o| o.field == v.field));
            out.extend(found);
        }
    }
}

/// Every rule of `std` over the subject's pod.
fn check(std: Standard, r: &mut Report<'_>, subject: &Subject<'_>) {
    let spec = subject.workload.pod_spec();
    let pod_sc = &spec["securityContext"];
    // Windows pods are exempt from the Linux-only restricted rules since v1.25.
    let linux = !(spec["os"]["name"] == "windows" && std.since(25));

    for ns in ["hostNetwork", "hostPID", "hostIPC"] {
        if spec[ns] == true {
            r.pod(ns, format!("{ns} must not be true"));
        }
    }
    host_volumes(spec, std.restricted(), r);
    // In a user namespace root in the container is not root on the node (since v1.35).
    if std.restricted() && !(spec["hostUsers"] == false && std.since(35)) {
        run_as_root(spec, pod_sc, std.since(23), r);
    }
    // A restricted rule replaces its baseline one (OverrideCheckIDs upstream) from the
    // version that introduced it on, even where it then exempts the pod.
    if std.restricted() && std.since(19) {
        if linux {
            seccomp(spec, pod_sc, r);
        }
    } else {
        baseline_seccomp(spec, pod_sc, r);
    }
    for c in containers(spec, ALL_GROUPS) {
        container_rules(&c, std, linux, r);
    }
    baseline::evaluate(&subject.workload, std, r);
}

/// The rules about one container's security context and ports, over every container list,
/// ephemeral ones included, as PSA's visitContainers does (`kubectl debug
/// --profile=restricted` sets them).
fn container_rules(c: &Container<'_>, std: Standard, linux: bool, r: &mut Report<'_>) {
    if c.security("privileged") == true {
        r.container(
            c,
            "securityContext.privileged",
            "privileged must not be true",
        );
    }
    if std.restricted() && linux && c.security("allowPrivilegeEscalation") != false {
        r.container(
            c,
            "securityContext.allowPrivilegeEscalation",
            "allowPrivilegeEscalation must be set to false",
        );
    }
    if std.restricted() && std.since(22) {
        if linux {
            capabilities(c, r);
        }
    } else {
        baseline_capabilities(c, r);
    }
    let ports = c.value["ports"].as_array().into_iter().flatten();
    for (i, port) in ports.enumerate() {
        if port["hostPort"].as_i64().is_some_and(|p| p != 0) {
            r.container(
                c,
                &format!("ports[{i}].hostPort"),
                "hostPort must not be set",
            );
        }
    }
}

/// hostPath volumes (baseline); with `restricted`, every type not in [`ALLOWED_VOLUME_TYPES`].
fn host_volumes(spec: &Value, restricted: bool, r: &mut Report<'_>) {
    for (i, volume) in spec["volumes"].as_array().into_iter().flatten().enumerate() {
        let Some(fields) = volume.as_object() else {
            continue;
        };
        for key in fields.keys().filter(|k| *k != "name") {
            if key == "hostPath" {
                r.pod(
                    &format!("volumes[{i}].hostPath"),
                    "hostPath volumes are not allowed",
                );
            } else if restricted && !ALLOWED_VOLUME_TYPES.contains(&key.as_str()) {
                r.pod(
                    &format!("volumes[{i}].{key}"),
                    format!(
                        "volume type {key} is not allowed (allowed: {})",
                        ALLOWED_VOLUME_TYPES.join(", ")
                    ),
                );
            }
        }
    }
}

/// `runAsNonRoot` (every version) and, with `run_as_user` (v1.23 on), `runAsUser: 0`.
fn run_as_root(spec: &Value, pod_sc: &Value, run_as_user: bool, r: &mut Report<'_>) {
    let pod_non_root = pod_sc["runAsNonRoot"] == true;
    if pod_sc["runAsNonRoot"] == false {
        r.pod(
            "securityContext.runAsNonRoot",
            "runAsNonRoot must not be false",
        );
    }
    if run_as_user && pod_sc["runAsUser"] == 0 {
        r.pod(
            "securityContext.runAsUser",
            "runAsUser must not be 0 (root)",
        );
    }
    for c in containers(spec, ALL_GROUPS) {
        let own = c.security("runAsNonRoot");
        if own == false || (own.is_null() && !pod_non_root) {
            r.container(
                &c,
                "securityContext.runAsNonRoot",
                "runAsNonRoot must be true (here or in the pod securityContext)",
            );
        }
        if run_as_user && c.security("runAsUser") == 0 {
            r.container(
                &c,
                "securityContext.runAsUser",
                "runAsUser must not be 0 (root)",
            );
        }
    }
}

fn allowed_seccomp(profile: &Value) -> bool {
    matches!(
        profile["type"].as_str(),
        Some("RuntimeDefault" | "Localhost")
    )
}

fn seccomp(spec: &Value, pod_sc: &Value, r: &mut Report<'_>) {
    let pod_profile = &pod_sc["seccompProfile"];
    let pod_ok = allowed_seccomp(pod_profile);
    if !pod_profile.is_null() && !pod_ok {
        r.pod(
            "securityContext.seccompProfile.type",
            "seccompProfile.type must be RuntimeDefault or Localhost",
        );
    }
    for c in containers(spec, ALL_GROUPS) {
        let own = c.security("seccompProfile");
        if own.is_null() {
            if !pod_ok && !pod_profile.is_null() {
                continue; // already reported at pod level
            }
            if !pod_ok {
                r.container(
                    &c,
                    "securityContext.seccompProfile.type",
                    "seccompProfile.type must be RuntimeDefault or Localhost (here or in the pod securityContext)",
                );
            }
        } else if !allowed_seccomp(own) {
            r.container(
                &c,
                "securityContext.seccompProfile.type",
                "seccompProfile.type must be RuntimeDefault or Localhost",
            );
        }
    }
}

fn capabilities(c: &Container<'_>, r: &mut Report<'_>) {
    let caps = c.security("capabilities");
    let drops_all = caps["drop"]
        .as_array()
        .is_some_and(|d| d.iter().any(|x| x == "ALL"));
    if !drops_all {
        r.container(
            c,
            "securityContext.capabilities.drop",
            "capabilities.drop must include ALL",
        );
    }
    for (i, add) in caps["add"].as_array().into_iter().flatten().enumerate() {
        if add != "NET_BIND_SERVICE" {
            r.container(
                c,
                &format!("securityContext.capabilities.add[{i}]"),
                format!("capability {add} must not be added (only NET_BIND_SERVICE is allowed)"),
            );
        }
    }
}

/// Baseline: only capabilities from [`BASELINE_CAPABILITIES`] may be added.
fn baseline_capabilities(c: &Container<'_>, r: &mut Report<'_>) {
    let added = c.security("capabilities")["add"].as_array();
    for (i, add) in added.into_iter().flatten().enumerate() {
        if !add
            .as_str()
            .is_some_and(|a| BASELINE_CAPABILITIES.contains(&a))
        {
            r.container(
                c,
                &format!("securityContext.capabilities.add[{i}]"),
                format!(
                    "capability {add} must not be added (allowed: {})",
                    BASELINE_CAPABILITIES.join(", ")
                ),
            );
        }
    }
}

/// Baseline: a seccomp profile, where set, must not be `Unconfined` (nor any other type).
fn baseline_seccomp(spec: &Value, pod_sc: &Value, r: &mut Report<'_>) {
    const FIELD: &str = "securityContext.seccompProfile.type";
    const MESSAGE: &str = "seccompProfile.type must be RuntimeDefault or Localhost where set";
    if !pod_sc["seccompProfile"].is_null() && !allowed_seccomp(&pod_sc["seccompProfile"]) {
        r.pod(FIELD, MESSAGE);
    }
    for c in containers(spec, ALL_GROUPS) {
        let own = c.security("seccompProfile");
        if !own.is_null() && !allowed_seccomp(own) {
            r.container(&c, FIELD, MESSAGE);
        }
    }
}

impl ReadOnlyRootFilesystem {
    /// Adds a violation for every container without `readOnlyRootFilesystem: true`.
    pub fn evaluate(&self, subject: &Subject<'_>, out: &mut Vec<Violation>) {
        let mut r = Report::new(
            READ_ONLY_ROOT_FILESYSTEM.name,
            self.scope.mode,
            subject,
            out,
        );
        for c in containers(subject.workload.pod_spec(), RUN_GROUPS) {
            if c.security("readOnlyRootFilesystem") != true {
                r.container(
                    &c,
                    "securityContext.readOnlyRootFilesystem",
                    "readOnlyRootFilesystem must be true",
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

    fn restricted_container(name: &str) -> Value {
        json!({"name": name, "image": "app:1", "securityContext": {
            "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}})
    }

    fn run(pod_spec: Value) -> Vec<Violation> {
        let object = deployment(pod_spec);
        let mut out = Vec::new();
        PodSecurity {
            scope: enforce(),
            standard: Default::default(),
        }
        .evaluate(&subject(&object), &mut out);
        out
    }

    #[test]
    fn a_restricted_pod_passes() {
        let v = run(json!({
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [restricted_container("a")],
            "volumes": [{"name": "tmp", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "c"}}]
        }));
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn container_level_settings_satisfy_the_profile_without_pod_level() {
        let mut c = restricted_container("a");
        c["securityContext"]["runAsNonRoot"] = json!(true);
        c["securityContext"]["seccompProfile"] =
            json!({"type": "Localhost", "localhostProfile": "p.json"});
        assert!(run(json!({"containers": [c]})).is_empty());
    }

    #[test]
    fn an_empty_security_context_breaks_every_container_rule() {
        let v = run(json!({"containers": [{"name": "a", "image": "app:1"}]}));
        assert_eq!(
            fields(&v),
            [
                "spec.template.spec.containers[0].securityContext.runAsNonRoot",
                "spec.template.spec.containers[0].securityContext.seccompProfile.type",
                "spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation",
                "spec.template.spec.containers[0].securityContext.capabilities.drop",
            ]
        );
    }

    #[test]
    fn init_and_ephemeral_containers_are_held_to_the_profile_too() {
        let v = run(json!({
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [restricted_container("a")],
            "initContainers": [{"name": "i", "securityContext": {"capabilities": {"drop": ["ALL"]}}}],
            "ephemeralContainers": [{"name": "debug", "securityContext": {"privileged": true}}]
        }));
        assert_eq!(
            fields(&v),
            [
                "spec.template.spec.initContainers[0].securityContext.allowPrivilegeEscalation",
                "spec.template.spec.ephemeralContainers[0].securityContext.privileged",
                "spec.template.spec.ephemeralContainers[0].securityContext.allowPrivilegeEscalation",
                "spec.template.spec.ephemeralContainers[0].securityContext.capabilities.drop",
            ]
        );
        assert_eq!(v[1].container.as_deref(), Some("debug"));
    }

    #[test]
    fn host_access_privilege_and_bad_volumes_are_reported() {
        let mut c = restricted_container("a");
        c["securityContext"]["privileged"] = json!(true);
        c["securityContext"]["capabilities"]["add"] = json!(["NET_BIND_SERVICE", "SYS_ADMIN"]);
        c["securityContext"]["runAsUser"] = json!(0);
        c["ports"] = json!([{"containerPort": 80}, {"containerPort": 81, "hostPort": 81}]);
        let v = run(json!({
            "hostNetwork": true, "hostPID": true, "hostIPC": false,
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "Unconfined"}},
            "containers": [c],
            "volumes": [{"name": "h", "hostPath": {"path": "/"}}, {"name": "n", "nfs": {"server": "x"}}]
        }));
        assert_eq!(
            fields(&v),
            [
                "spec.template.spec.hostNetwork",
                "spec.template.spec.hostPID",
                "spec.template.spec.volumes[0].hostPath",
                "spec.template.spec.volumes[1].nfs",
                "spec.template.spec.containers[0].securityContext.runAsUser",
                "spec.template.spec.securityContext.seccompProfile.type",
                "spec.template.spec.containers[0].securityContext.privileged",
                "spec.template.spec.containers[0].securityContext.capabilities.add[1]",
                "spec.template.spec.containers[0].ports[1].hostPort",
            ]
        );
    }

    #[test]
    fn read_only_root_filesystem_is_required_on_run_containers() {
        let object = deployment(json!({"containers": [
            {"name": "ro", "securityContext": {"readOnlyRootFilesystem": true}},
            {"name": "rw"}
        ]}));
        let mut out = Vec::new();
        ReadOnlyRootFilesystem { scope: enforce() }.evaluate(&subject(&object), &mut out);
        assert_eq!(
            fields(&out),
            ["spec.template.spec.containers[1].securityContext.readOnlyRootFilesystem"]
        );
    }

    /// (field, mode) of what the policy (restricted, enforce) reports for a pod that runs as
    /// root without a seccomp profile and adds NET_RAW, in a namespace with these labels.
    fn in_namespace(labels: Value) -> Vec<(String, Mode)> {
        let object = deployment(json!({"containers": [{"name": "a", "image": "app:1",
            "securityContext": {"allowPrivilegeEscalation": false, "runAsNonRoot": true,
                "capabilities": {"drop": ["ALL"], "add": ["NET_RAW"]}}}]}));
        let mut out = Vec::new();
        let policy = PodSecurity {
            scope: enforce(),
            standard: Standard::default(),
        };
        let subject = Subject {
            namespace_labels: Some(&labels),
            ..subject(&object)
        };
        policy.evaluate(&subject, &mut out);
        out.into_iter()
            .map(|v| {
                (
                    v.field
                        .rsplit("securityContext.")
                        .next()
                        .unwrap_or("")
                        .to_owned(),
                    v.mode,
                )
            })
            .collect()
    }

    #[test]
    fn namespace_labels_choose_the_level_per_mode() {
        use Mode::{Enforce, Warn};
        let unlabelled = vec![
            ("seccompProfile.type".into(), Enforce),
            ("capabilities.add[0]".into(), Enforce),
        ];
        assert_eq!(in_namespace(json!({})), unlabelled);
        // baseline enforced: NET_RAW is beyond the default set; seccomp is restricted's rule.
        let baseline = json!({"pod-security.kubernetes.io/enforce": "baseline"});
        assert_eq!(
            in_namespace(baseline),
            [("capabilities.add[0]".into(), Enforce)]
        );
        // restricted as a warning only: the same findings, none enforced, none twice.
        let warn = json!({"pod-security.kubernetes.io/enforce": "privileged",
                          "pod-security.kubernetes.io/warn": "restricted",
                          "pod-security.kubernetes.io/audit": "restricted"});
        assert_eq!(
            in_namespace(warn),
            [
                ("seccompProfile.type".into(), Warn),
                ("capabilities.add[0]".into(), Warn)
            ]
        );
        // baseline enforced, restricted warned: the restricted-only rule comes back as a warning.
        let both = json!({"pod-security.kubernetes.io/enforce": "baseline",
                          "pod-security.kubernetes.io/warn": "restricted"});
        assert_eq!(
            in_namespace(both),
            [
                ("capabilities.add[0]".into(), Enforce),
                ("seccompProfile.type".into(), Warn)
            ]
        );
    }
}
