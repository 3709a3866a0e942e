//! The baseline Pod Security Standard checks that `pod-security` runs besides the restricted ones:
//! Windows hostProcess, procMount, sysctls, SELinux options, AppArmor profiles and the `host` of
//! probes and lifecycle hooks.
//!
//! Semantics follow kubernetes/pod-security-admission `policy/check_windowsHostProcess.go`,
//! `check_procMount.go`, `check_sysctls.go`, `check_seLinuxOptions.go` and
//! `check_appArmorProfile.go` and `check_hostProbesAndhostLifecycle.go`, version by version
//! (see [`super::standard`]): pod and container settings are each checked where they are set
//! (no inheritance), over every container list.

use serde_json::Value;

use super::standard::Standard;
use super::{ALL_GROUPS, Report, containers};
use crate::workload::Workload;

/// Sysctls the baseline profile allows, each with the minor release that made it safe
/// (`check_sysctls.go`).
pub const SAFE_SYSCTLS: &[(&str, u32)] = &[
    ("kernel.shm_rmid_forced", 0),
    ("net.ipv4.ip_local_port_range", 0),
    ("net.ipv4.ip_unprivileged_port_start", 0),
    ("net.ipv4.tcp_syncookies", 0),
    ("net.ipv4.ping_group_range", 0),
    ("net.ipv4.ip_local_reserved_ports", 27),
    ("net.ipv4.tcp_keepalive_time", 29),
    ("net.ipv4.tcp_fin_timeout", 29),
    ("net.ipv4.tcp_keepalive_intvl", 29),
    ("net.ipv4.tcp_keepalive_probes", 29),
    ("net.ipv4.tcp_rmem", 32),
    ("net.ipv4.tcp_wmem", 32),
    ("net.ipv4.tcp_slow_start_after_idle", 37),
    ("net.ipv4.tcp_notsent_lowat", 37),
];

/// SELinux types the baseline profile allows besides unset or empty, each with the minor
/// release that allowed it (`check_seLinuxOptions.go`).
pub const ALLOWED_SELINUX_TYPES: &[(&str, u32)] = &[
    ("container_t", 0),
    ("container_init_t", 0),
    ("container_kvm_t", 0),
    ("container_engine_t", 31),
];

/// The names in `table` that `standard` allows.
fn allowed(table: &'static [(&'static str, u32)], standard: Standard) -> Vec<&'static str> {
    table
        .iter()
        .filter(|(_, since)| standard.since(*since))
        .map(|(name, _)| *name)
        .collect()
}

/// Key prefix of the legacy per-container AppArmor annotations on the pod (template).
pub const APPARMOR_ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

/// Adds a violation for every baseline rule of this module the pod breaks.
pub(super) fn evaluate(workload: &Workload<'_>, standard: Standard, r: &mut Report<'_>) {
    let spec = workload.pod_spec();
    let pod_sc = &spec["securityContext"];
    host_process(spec, pod_sc, r);
    proc_mount(spec, standard, r);
    sysctls(pod_sc, standard, r);
    selinux(spec, pod_sc, standard, r);
    apparmor(workload, pod_sc, r);
    if standard.since(34) {
        handler_hosts(spec, r);
    }
}

fn host_process(spec: &Value, pod_sc: &Value, r: &mut Report<'_>) {
    const FIELD: &str = "securityContext.windowsOptions.hostProcess";
    const MESSAGE: &str = "windowsOptions.hostProcess must not be true";
    if pod_sc["windowsOptions"]["hostProcess"] == true {
        r.pod(FIELD, MESSAGE);
    }
    for c in containers(spec, ALL_GROUPS) {
        if c.security("windowsOptions")["hostProcess"] == true {
            r.container(&c, FIELD, MESSAGE);
        }
    }
}

fn proc_mount(spec: &Value, standard: Standard, r: &mut Report<'_>) {
    // In a user namespace the /proc masks no longer guard the node: baseline allows every value
    // there since v1.35 (API validation admits only Default and Unmasked); restricted never does.
    if spec["hostUsers"] == false && standard.since(35) && !standard.restricted() {
        return;
    }
    for c in containers(spec, ALL_GROUPS) {
        let pm = c.security("procMount");
        if !pm.is_null() && pm != "Default" {
            r.container(
                &c,
                "securityContext.procMount",
                proc_mount_message(pm, standard),
            );
        }
    }
}

fn proc_mount_message(pm: &Value, standard: Standard) -> String {
    if standard.restricted() || !standard.since(35) {
        format!("procMount {pm} is not allowed (allowed: unset or Default)")
    } else {
        format!(
            "procMount {pm} is not allowed (allowed: unset or Default; Unmasked needs hostUsers: false)"
        )
    }
}

fn sysctls(pod_sc: &Value, standard: Standard, r: &mut Report<'_>) {
    let safe = allowed(SAFE_SYSCTLS, standard);
    for (i, sysctl) in pod_sc["sysctls"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let name = &sysctl["name"];
        if !name.as_str().is_some_and(|n| safe.contains(&n)) {
            r.pod(
                &format!("securityContext.sysctls[{i}].name"),
                format!(
                    "sysctl {name} is not allowed (allowed: {})",
                    safe.join(", ")
                ),
            );
        }
    }
}

/// Whether a string field is unset or empty.
fn unset(value: &Value) -> bool {
    value.is_null() || value == ""
}

/// The broken rules of one `seLinuxOptions` object, as (field under the security context, message).
fn selinux_problems(options: &Value, types: &[&str]) -> Vec<(&'static str, String)> {
    let mut problems = Vec::new();
    let ty = &options["type"];
    if !unset(ty) && !ty.as_str().is_some_and(|t| types.contains(&t)) {
        problems.push((
            "securityContext.seLinuxOptions.type",
            format!(
                "seLinuxOptions.type {ty} is not allowed (allowed: unset, {})",
                types.join(", ")
            ),
        ));
    }
    for (key, field) in [
        ("user", "securityContext.seLinuxOptions.user"),
        ("role", "securityContext.seLinuxOptions.role"),
    ] {
        if !unset(&options[key]) {
            problems.push((field, format!("seLinuxOptions.{key} must not be set")));
        }
    }
    problems
}

fn selinux(spec: &Value, pod_sc: &Value, standard: Standard, r: &mut Report<'_>) {
    let types = allowed(ALLOWED_SELINUX_TYPES, standard);
    for (field, message) in selinux_problems(&pod_sc["seLinuxOptions"], &types) {
        r.pod(field, message);
    }
    for c in containers(spec, ALL_GROUPS) {
        for (field, message) in selinux_problems(c.security("seLinuxOptions"), &types) {
            r.container(&c, field, message);
        }
    }
}

/// Whether an `appArmorProfile` is unset or of an allowed type.
fn allowed_apparmor(profile: &Value) -> bool {
    profile.is_null()
        || matches!(
            profile["type"].as_str(),
            Some("RuntimeDefault" | "Localhost")
        )
}

/// Whether a legacy AppArmor annotation value is allowed.
fn allowed_apparmor_annotation(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|v| v.is_empty() || v == "runtime/default" || v.starts_with("localhost/"))
}

fn apparmor(workload: &Workload<'_>, pod_sc: &Value, r: &mut Report<'_>) {
    const FIELD: &str = "securityContext.appArmorProfile.type";
    const MESSAGE: &str = "appArmorProfile.type must be RuntimeDefault or Localhost";
    if !allowed_apparmor(&pod_sc["appArmorProfile"]) {
        r.pod(FIELD, MESSAGE);
    }
    for c in containers(workload.pod_spec(), ALL_GROUPS) {
        if !allowed_apparmor(c.security("appArmorProfile")) {
            r.container(&c, FIELD, MESSAGE);
        }
    }
    let annotations = workload.template["metadata"]["annotations"].as_object();
    for (key, value) in annotations.into_iter().flatten() {
        if key.starts_with(APPARMOR_ANNOTATION_PREFIX) && !allowed_apparmor_annotation(value) {
            r.object(
                &format!("{}.annotations[{key:?}]", workload.shape.meta_path()),
                format!("AppArmor profile {value} is not allowed (allowed: runtime/default or localhost/<profile>)"),
            );
        }
    }
}

/// Probes and lifecycle hooks whose handlers name a host to contact.
const HANDLERS: &[&str] = &[
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle.postStart",
    "lifecycle.preStop",
];

/// A probe or hook aimed at another host lets the kubelet reach anything the node can (the
/// kubelet runs the check from the node): `host` must be unset or empty.
fn handler_hosts(spec: &Value, r: &mut Report<'_>) {
    for c in containers(spec, ALL_GROUPS) {
        for handler in HANDLERS {
            let value = handler.split('.').fold(c.value, |v, key| &v[key]);
            for action in ["httpGet", "tcpSocket"] {
                let host = &value[action]["host"];
                if !unset(host) {
                    r.container(
                        &c,
                        &format!("{handler}.{action}.host"),
                        format!("{handler}.{action}.host {host} is not allowed (allowed: unset or empty)"),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::policy::Violation;
    use crate::policy::security::PodSecurity;
    use crate::policy::standard::Standard;
    use crate::policy::test_util::{deployment, enforce, fields, subject};
    use serde_json::{Value, json};

    /// A Deployment whose pod meets the restricted profile, for the tests to break.
    fn restricted() -> Value {
        deployment(json!({
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "a", "image": "app:1", "securityContext": {
                "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]
        }))
    }

    fn run(object: &Value) -> Vec<Violation> {
        run_at(object, "restricted", "latest")
    }

    /// The policy holding pods to `level` at `version`.
    fn run_at(object: &Value, level: &str, version: &str) -> Vec<Violation> {
        let mut out = Vec::new();
        let standard = Standard {
            level: level.parse().unwrap(),
            version: version.parse().unwrap(),
        };
        PodSecurity {
            scope: enforce(),
            standard,
        }
        .evaluate(&subject(object), &mut out);
        out
    }

    fn pod_sc(object: &mut Value) -> &mut Value {
        &mut object["spec"]["template"]["spec"]["securityContext"]
    }

    fn container_sc(object: &mut Value) -> &mut Value {
        &mut object["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    }

    #[test]
    fn probes_and_lifecycle_hooks_must_not_name_a_host() {
        let mut object = restricted();
        let c = &mut object["spec"]["template"]["spec"]["containers"][0];
        c["livenessProbe"] = json!({"httpGet": {"path": "/healthz", "port": 8080, "host": ""}});
        c["readinessProbe"] = json!({"tcpSocket": {"port": 8080}});
        assert!(run(&object).is_empty());

        let c = &mut object["spec"]["template"]["spec"]["containers"][0];
        c["startupProbe"] = json!({"httpGet": {"port": 80, "host": "169.254.169.254"}});
        c["lifecycle"] = json!({"preStop": {"tcpSocket": {"port": 22, "host": "10.0.0.1"}}});
        let v = run(&object);
        assert_eq!(
            fields(&v),
            [
                "spec.template.spec.containers[0].startupProbe.httpGet.host",
                "spec.template.spec.containers[0].lifecycle.preStop.tcpSocket.host",
            ]
        );
        assert!(v[0].message.contains("169.254.169.254"), "{}", v[0].message);
    }

    #[test]
    fn the_restricted_fixture_passes() {
        let v = run(&restricted());
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn host_process_is_reported_at_pod_and_container_level() {
        let mut object = restricted();
        container_sc(&mut object)["windowsOptions"] = json!({"hostProcess": false});
        assert!(run(&object).is_empty());

        pod_sc(&mut object)["windowsOptions"] = json!({"hostProcess": true});
        container_sc(&mut object)["windowsOptions"] = json!({"hostProcess": true});
        let v = run(&object);
        assert_eq!(
            fields(&v),
            [
                "spec.template.spec.securityContext.windowsOptions.hostProcess",
                "spec.template.spec.containers[0].securityContext.windowsOptions.hostProcess",
            ]
        );
        assert_eq!(v[1].container.as_deref(), Some("a"));
    }

    #[test]
    fn proc_mount_must_be_default_unless_the_pod_has_its_own_user_namespace() {
        let mut object = restricted();
        container_sc(&mut object)["procMount"] = json!("Default");
        assert!(run(&object).is_empty());

        container_sc(&mut object)["procMount"] = json!("Unmasked");
        let v = run(&object);
        assert_eq!(
            fields(&v),
            ["spec.template.spec.containers[0].securityContext.procMount"]
        );
        assert!(v[0].message.contains("Unmasked"), "{}", v[0].message);

        // A user namespace relieves baseline of the /proc masks since v1.35, never restricted.
        object["spec"]["template"]["spec"]["hostUsers"] = json!(false);
        assert!(run_at(&object, "baseline", "latest").is_empty());
        assert!(run_at(&object, "baseline", "v1.35").is_empty());
        assert_eq!(run_at(&object, "baseline", "v1.34").len(), 1);
        assert_eq!(fields(&run(&object)), fields(&v));
    }

    #[test]
    fn rules_change_with_the_version_as_upstream_changed_them() {
        let mut object = restricted();
        object["spec"]["template"]["spec"]["securityContext"]["sysctls"] =
            json!([{"name": "net.ipv4.tcp_notsent_lowat", "value": "1"}]);
        assert!(run_at(&object, "baseline", "v1.37").is_empty());
        assert_eq!(run_at(&object, "baseline", "v1.36").len(), 1);

        let mut object = restricted();
        pod_sc(&mut object)["seLinuxOptions"] = json!({"type": "container_engine_t"});
        assert!(run_at(&object, "baseline", "v1.31").is_empty());
        assert_eq!(run_at(&object, "baseline", "v1.30").len(), 1);

        let mut object = restricted();
        container_sc(&mut object)["runAsUser"] = json!(0);
        assert!(run_at(&object, "baseline", "latest").is_empty());
        object["spec"]["template"]["spec"]["hostUsers"] = json!(false);
        assert!(run_at(&object, "restricted", "v1.35").is_empty());
        assert_eq!(run_at(&object, "restricted", "v1.34").len(), 1);

        let mut object = restricted();
        object["spec"]["template"]["spec"]["containers"][0]["livenessProbe"] =
            json!({"httpGet": {"host": "10.0.0.1", "port": 80}});
        assert!(run_at(&object, "restricted", "v1.33").is_empty());
        assert_eq!(run_at(&object, "restricted", "v1.34").len(), 1);
    }

    #[test]
    fn baseline_allows_what_only_restricted_forbids() {
        let mut object = deployment(json!({
            "volumes": [{"name": "n", "nfs": {"server": "s", "path": "/"}},
                        {"name": "i", "image": {"reference": "data:1"}}],
            "containers": [{"name": "a", "image": "app:1", "securityContext": {
                "capabilities": {"add": ["CHOWN", "NET_BIND_SERVICE"]}}}]
        }));
        assert!(run_at(&object, "baseline", "latest").is_empty());
        let at_restricted = run(&object);
        let restricted_fields = fields(&at_restricted);
        assert!(restricted_fields.contains(&"spec.template.spec.volumes[0].nfs"));
        assert!(!restricted_fields.iter().any(|f| f.contains("volumes[1]")));

        object["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] =
            json!(["NET_RAW"]);
        assert_eq!(
            fields(&run_at(&object, "baseline", "latest")),
            ["spec.template.spec.containers[0].securityContext.capabilities.add[0]"]
        );
    }

    #[test]
    fn windows_pods_skip_the_linux_only_restricted_rules_since_v1_25() {
        let object = deployment(json!({
            "os": {"name": "windows"},
            "securityContext": {"runAsNonRoot": true},
            "containers": [{"name": "a", "image": "app:1"}]
        }));
        assert!(run_at(&object, "restricted", "v1.25").is_empty());
        let old = run_at(&object, "restricted", "v1.24");
        assert_eq!(old.len(), 3, "{:?}", fields(&old));
    }

    #[test]
    fn only_safe_sysctls_are_allowed() {
        let mut object = restricted();
        pod_sc(&mut object)["sysctls"] = json!([
            {"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"},
            {"name": "kernel.msgmax", "value": "65536"},
            {"name": "net.ipv4.tcp_keepalive_time", "value": "60"}
        ]);
        let v = run(&object);
        assert_eq!(
            fields(&v),
            ["spec.template.spec.securityContext.sysctls[1].name"]
        );
        assert!(v[0].message.contains("net.ipv4.tcp_syncookies"));
    }

    #[test]
    fn selinux_type_user_and_role_are_restricted() {
        let mut object = restricted();
        pod_sc(&mut object)["seLinuxOptions"] = json!({"type": "container_t", "level": "s0:c1"});
        container_sc(&mut object)["seLinuxOptions"] = json!({"type": "", "user": ""});
        assert!(run(&object).is_empty());

        pod_sc(&mut object)["seLinuxOptions"] = json!({"type": "spc_t"});
        container_sc(&mut object)["seLinuxOptions"] =
            json!({"type": "container_init_t", "user": "system_u", "role": "system_r"});
        assert_eq!(
            fields(&run(&object)),
            [
                "spec.template.spec.securityContext.seLinuxOptions.type",
                "spec.template.spec.containers[0].securityContext.seLinuxOptions.user",
                "spec.template.spec.containers[0].securityContext.seLinuxOptions.role",
            ]
        );
    }

    #[test]
    fn apparmor_profiles_and_legacy_annotations_are_restricted() {
        let mut object = restricted();
        pod_sc(&mut object)["appArmorProfile"] = json!({"type": "RuntimeDefault"});
        container_sc(&mut object)["appArmorProfile"] =
            json!({"type": "Localhost", "localhostProfile": "k8s-app"});
        object["spec"]["template"]["metadata"]["annotations"] = json!({
            "container.apparmor.security.beta.kubernetes.io/a": "localhost/k8s-app",
            "container.apparmor.security.beta.kubernetes.io/b": "runtime/default",
            "example.com/unrelated": "unconfined"
        });
        assert!(run(&object).is_empty());

        pod_sc(&mut object)["appArmorProfile"] = json!({"type": "Unconfined"});
        container_sc(&mut object)["appArmorProfile"] = json!({});
        object["spec"]["template"]["metadata"]["annotations"]["container.apparmor.security.beta.kubernetes.io/a"] =
            json!("unconfined");
        let v = run(&object);
        assert_eq!(
            fields(&v),
            [
                "spec.template.spec.securityContext.appArmorProfile.type",
                "spec.template.spec.containers[0].securityContext.appArmorProfile.type",
                "spec.template.metadata.annotations[\"container.apparmor.security.beta.kubernetes.io/a\"]",
            ]
        );
        assert!(v[2].container.is_none());
    }
}
