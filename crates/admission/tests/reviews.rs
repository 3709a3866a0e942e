//! Allow, deny, warn and patch over TLS for every workload kind and operation.

use std::time::Duration;

use admission::engine::Policies;
use admission::metrics::ReviewLabels;
use serde_json::{Value, json};

use crate::support::{self, compliant_pod_spec, gvk, kinds, object, patch_of, post, review};

fn policies() -> Policies {
    Policies::load(None, Some("ferrostack")).unwrap()
}

fn non_compliant_pod_spec() -> Value {
    let mut spec = compliant_pod_spec();
    spec["containers"][0]["image"] = json!("nginx:latest");
    spec["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = json!(true);
    spec["hostNetwork"] = json!(true);
    spec
}

fn assert_echoes(request: &Value, answer: &Value) {
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(answer["response"]["uid"], request["request"]["uid"]);
}

#[tokio::test]
async fn compliant_workloads_of_every_kind_are_allowed_silently() {
    let server = support::serve(policies()).await;
    for (g, v, k, p) in kinds() {
        let req = review(
            (g, v, k, p),
            "CREATE",
            object(g, v, k, compliant_pod_spec()),
            Value::Null,
            false,
        );
        let (status, answer) = post(&server, "/validate", &req).await;
        assert_eq!(status, 200);
        assert_echoes(&req, &answer);
        assert_eq!(answer["response"]["allowed"], true, "{k}: {answer}");
        let warnings = &answer["response"]["warnings"];
        // Jobs and DaemonSets need no replicas; everything else here is compliant.
        assert!(warnings.is_null(), "{k}: {warnings}");
        assert!(answer["response"].get("patch").is_none());
    }
}

#[tokio::test]
async fn violations_of_every_kind_are_denied_with_each_container_and_field() {
    let server = support::serve(policies()).await;
    for (g, v, k, p) in kinds() {
        let req = review(
            (g, v, k, p),
            "CREATE",
            object(g, v, k, non_compliant_pod_spec()),
            Value::Null,
            false,
        );
        let (status, answer) = post(&server, "/validate", &req).await;
        assert_eq!(status, 200);
        assert_echoes(&req, &answer);
        let r = &answer["response"];
        assert_eq!(r["allowed"], false, "{k}");
        assert_eq!(r["status"]["code"], 403);
        assert_eq!(r["status"]["status"], "Failure");
        let msg = r["status"]["message"].as_str().unwrap();
        let prefix = match k {
            "Pod" => "spec",
            "CronJob" => "spec.jobTemplate.spec.template.spec",
            _ => "spec.template.spec",
        };
        assert!(
            msg.starts_with(&format!("{k} shop/web violates 3 policies:")),
            "{msg}"
        );
        for expected in [
            format!(
                "[image-tag] container \"web\": image \"nginx:latest\" uses the tag latest: pin a version or a digest ({prefix}.containers[0].image)"
            ),
            format!("[pod-security] hostNetwork must not be true ({prefix}.hostNetwork)"),
            format!(
                "[pod-security] container \"web\": allowPrivilegeEscalation must be set to false ({prefix}.containers[0].securityContext.allowPrivilegeEscalation)"
            ),
        ] {
            assert!(
                msg.contains(&expected),
                "{k}: missing {expected:?} in {msg}"
            );
        }
    }
}

#[tokio::test]
async fn warn_mode_violations_allow_with_warnings() {
    let server = support::serve(policies()).await;
    let mut spec = compliant_pod_spec();
    spec["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("livenessProbe");
    spec.as_object_mut().unwrap().remove("affinity");
    let mut d = object("apps", "v1", "Deployment", spec);
    d["spec"]["replicas"] = json!(1);
    let req = review(gvk("Deployment"), "CREATE", d, Value::Null, false);
    let (_, answer) = post(&server, "/validate", &req).await;
    let r = &answer["response"];
    assert_eq!(r["allowed"], true);
    assert!(r.get("status").is_none());
    let warnings: Vec<&str> = r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    assert!(
        warnings[0].starts_with("[probes] container \"web\": livenessProbe is not set"),
        "{warnings:?}"
    );
    assert!(
        warnings[1].starts_with("[high-availability] spec.replicas is 1"),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn updates_enforce_only_what_they_introduce() {
    let server = support::serve(policies()).await;
    let old = object("apps", "v1", "Deployment", non_compliant_pod_spec());
    let mut scaled = old.clone();
    scaled["spec"]["replicas"] = json!(5);
    let req = review(gvk("Deployment"), "UPDATE", scaled, old.clone(), false);
    let (_, answer) = post(&server, "/validate", &req).await;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    assert!(
        answer["response"]["warnings"][0]
            .as_str()
            .unwrap()
            .contains("pre-existing")
    );

    let mut worse = old.clone();
    worse["spec"]["template"]["spec"]["hostPID"] = json!(true);
    let req = review(gvk("Deployment"), "UPDATE", worse, old, false);
    let (_, answer) = post(&server, "/validate", &req).await;
    let msg = answer["response"]["status"]["message"].as_str().unwrap();
    assert!(
        msg.contains("violates 1 policy:") && msg.contains("hostPID"),
        "{msg}"
    );
}

/// A Deployment with the compliant `web` container plus a privileged `name`/`image`
/// container at index 1 and a hostPath volume at index 1.
fn with_privileged_agent(name: &str, image: &str, host_path: &str) -> Value {
    let mut spec = compliant_pod_spec();
    let mut agent = spec["containers"][0].clone();
    agent["name"] = json!(name);
    agent["image"] = json!(image);
    agent["securityContext"]["privileged"] = json!(true);
    agent["securityContext"]["allowPrivilegeEscalation"] = json!(true);
    spec["containers"].as_array_mut().unwrap().push(agent);
    spec["volumes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "logs", "hostPath": {"path": host_path}}));
    object("apps", "v1", "Deployment", spec)
}

/// A Deployment that already runs a privileged `legacy-agent` with a hostPath volume.
fn legacy_deployment() -> Value {
    with_privileged_agent(
        "legacy-agent",
        "ghcr.io/acme/legacy-agent:1.0",
        "/var/log/app",
    )
}

/// The denial message of a refused review.
fn denial(answer: &Value) -> String {
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    answer["response"]["status"]["message"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Only replicas change: the old violations pass as warnings.
#[tokio::test]
async fn an_update_keeping_pre_existing_violations_is_allowed_with_warnings() {
    let server = support::serve(policies()).await;
    let old = legacy_deployment();
    let mut scaled = old.clone();
    scaled["spec"]["replicas"] = json!(5);
    let req = review(gvk("Deployment"), "UPDATE", scaled, old, false);
    let (_, answer) = post(&server, "/validate", &req).await;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    let warnings = strings(&answer["response"]["warnings"]);
    for what in ["privileged", "hostPath"] {
        assert!(
            warnings
                .iter()
                .any(|w| w.contains(what) && w.contains("pre-existing")),
            "{what}: {warnings:?}"
        );
    }
}

/// Another privileged container and a wider hostPath at the same positions: denied, as the
/// same object is on CREATE.
#[tokio::test]
async fn updates_cannot_swap_a_pre_existing_violation_for_another_at_the_same_place() {
    let server = support::serve(policies()).await;
    let evil = with_privileged_agent("evil", "docker.io/evil:6.6.6", "/");
    let req = review(
        gvk("Deployment"),
        "CREATE",
        evil.clone(),
        Value::Null,
        false,
    );
    let (_, created) = post(&server, "/validate", &req).await;
    denial(&created);
    let req = review(
        gvk("Deployment"),
        "UPDATE",
        evil,
        legacy_deployment(),
        false,
    );
    let (_, answer) = post(&server, "/validate", &req).await;
    let msg = denial(&answer);
    assert!(
        msg.contains("container \"evil\": privileged must not be true"),
        "{msg}"
    );
    assert!(
        msg.contains("hostPath volumes are not allowed (spec.template.spec.volumes[1].hostPath)"),
        "{msg}"
    );
}

/// The same name with another image is another container too.
#[tokio::test]
async fn an_update_reimaging_a_privileged_container_is_denied() {
    let server = support::serve(policies()).await;
    let reimaged = with_privileged_agent("legacy-agent", "docker.io/evil:6.6.6", "/var/log/app");
    let req = review(
        gvk("Deployment"),
        "UPDATE",
        reimaged,
        legacy_deployment(),
        false,
    );
    let (_, answer) = post(&server, "/validate", &req).await;
    let msg = denial(&answer);
    assert!(
        msg.contains("container \"legacy-agent\": privileged must not be true"),
        "{msg}"
    );
    assert!(
        !msg.contains("hostPath"),
        "the unchanged volume stays exempt: {msg}"
    );
}

#[tokio::test]
async fn deletes_are_allowed_with_the_uid_echoed_and_no_patch() {
    let server = support::serve(policies()).await;
    let old = object("apps", "v1", "Deployment", non_compliant_pod_spec());
    let req = review(gvk("Deployment"), "DELETE", Value::Null, old, false);
    for path in ["/validate", "/mutate"] {
        let (status, answer) = post(&server, path, &req).await;
        assert_eq!(status, 200);
        assert_echoes(&req, &answer);
        assert_eq!(answer["response"]["allowed"], true);
        assert!(answer["response"].get("patch").is_none());
        assert!(answer["response"].get("patchType").is_none());
    }
}

#[tokio::test]
async fn dry_run_gets_the_same_answer_but_counts_no_violations() {
    let server = support::serve(policies()).await;
    let d = object("apps", "v1", "Deployment", non_compliant_pod_spec());
    let dry = review(gvk("Deployment"), "CREATE", d.clone(), Value::Null, true);
    let (_, answer) = post(&server, "/validate", &dry).await;
    assert_eq!(answer["response"]["allowed"], false);
    assert!(server.metrics.violations.get(&vio("image-tag")).is_none());
    let wet = review(gvk("Deployment"), "CREATE", d, Value::Null, false);
    let (_, answer2) = post(&server, "/validate", &wet).await;
    assert_eq!(answer["response"]["status"], answer2["response"]["status"]);
    assert_eq!(
        server
            .metrics
            .violations
            .get(&vio("image-tag"))
            .map(|c| c.get()),
        Some(1)
    );
    let denied = ReviewLabels {
        operation: "CREATE",
        kind: "Deployment",
        decision: "denied",
    };
    assert_eq!(
        server.metrics.reviews.get(&denied).map(|c| c.get()),
        Some(2)
    );
}

fn vio(policy: &'static str) -> admission::metrics::ViolationLabels {
    admission::metrics::ViolationLabels {
        policy,
        mode: "enforce",
    }
}

#[tokio::test]
async fn excluded_namespaces_are_not_evaluated() {
    let server = support::serve(policies()).await;
    for ns in ["kube-system", "ferrostack"] {
        let mut req = review(
            gvk("Pod"),
            "CREATE",
            object("", "v1", "Pod", non_compliant_pod_spec()),
            Value::Null,
            false,
        );
        req["request"]["namespace"] = json!(ns);
        req["request"]["object"]["metadata"]["namespace"] = json!(ns);
        let (_, answer) = post(&server, "/validate", &req).await;
        assert_eq!(answer["response"]["allowed"], true, "{ns}");
        let (_, answer) = post(&server, "/mutate", &req).await;
        assert!(answer["response"].get("patch").is_none(), "{ns}");
    }
}

#[tokio::test]
async fn the_labelled_namespace_path_requires_a_priority_class() {
    let server = support::serve(policies()).await;
    let d = object("apps", "v1", "Deployment", compliant_pod_spec());
    let req = review(gvk("Deployment"), "CREATE", d.clone(), Value::Null, false);
    let (_, answer) = post(&server, "/validate/labelled-namespace", &req).await;
    let msg = answer["response"]["status"]["message"].as_str().unwrap();
    assert!(
        msg.contains("[priority-class] priorityClassName is required in namespace shop"),
        "{msg}"
    );
    let mut with = d;
    with["spec"]["template"]["spec"]["priorityClassName"] = json!("high-priority");
    let req = review(gvk("Deployment"), "CREATE", with, Value::Null, false);
    let (_, answer) = post(&server, "/validate/labelled-namespace", &req).await;
    assert_eq!(answer["response"]["allowed"], true);
}

#[tokio::test]
async fn mutate_patches_every_kind_and_the_patch_applies_to_the_expected_object() {
    let server = support::serve(policies()).await;
    for (g, v, k, p) in kinds() {
        let mut spec = compliant_pod_spec();
        spec.as_object_mut().unwrap().remove("securityContext");
        spec.as_object_mut().unwrap().remove("affinity");
        let c = &mut spec["containers"][0];
        c["securityContext"]
            .as_object_mut()
            .unwrap()
            .remove("allowPrivilegeEscalation");
        c["resources"]["requests"]
            .as_object_mut()
            .unwrap()
            .remove("cpu");
        c["securityContext"]["runAsNonRoot"] = json!(true);
        let original = object(g, v, k, spec);
        let req = review((g, v, k, p), "CREATE", original.clone(), Value::Null, false);
        let (status, answer) = post(&server, "/mutate", &req).await;
        assert_eq!(status, 200);
        assert_echoes(&req, &answer);
        assert_eq!(answer["response"]["allowed"], true);
        let patch = patch_of(&answer).unwrap_or_else(|| panic!("{k}: no patch in {answer}"));
        let mut patched = original.clone();
        json_patch::patch(&mut patched, &patch).unwrap();

        let (tpl, spec_path): (&[&str], _) = match k {
            "Pod" => (&[], "spec"),
            "CronJob" => (&["spec", "jobTemplate", "spec", "template"], "spec"),
            _ => (&["spec", "template"], "spec"),
        };
        let mut expected = original.clone();
        let mut t = &mut expected;
        for key in tpl {
            t = &mut t[*key];
        }
        let s = &mut t[spec_path];
        s["securityContext"] = json!({"seccompProfile": {"type": "RuntimeDefault"}});
        s["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = json!(false);
        s["containers"][0]["resources"]["requests"]["cpu"] = json!("50m");
        if matches!(
            k,
            "Deployment" | "StatefulSet" | "ReplicaSet" | "ReplicationController" | "Rollout"
        ) {
            s["affinity"] = json!({"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
                "weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "web"}}}}]}});
        }
        assert_eq!(patched, expected, "{k}");

        // The patched object passes validation, and mutating it again adds nothing.
        let req = review((g, v, k, p), "CREATE", patched.clone(), Value::Null, false);
        let (_, validated) = post(&server, "/validate", &req).await;
        assert_eq!(validated["response"]["allowed"], true, "{k}: {validated}");
        let (_, again) = post(&server, "/mutate", &req).await;
        assert!(
            patch_of(&again).is_none(),
            "{k}: second mutation patched {again}"
        );
    }
}

#[tokio::test]
async fn updates_of_pods_and_jobs_are_not_mutated_but_deployments_are() {
    let server = support::serve(policies()).await;
    let mut spec = compliant_pod_spec();
    spec.as_object_mut().unwrap().remove("securityContext");
    for (kind, patched) in [
        ("Pod", false),
        ("Job", false),
        ("Deployment", true),
        ("CronJob", true),
    ] {
        let (g, v, k, p) = gvk(kind);
        let o = object(g, v, k, spec.clone());
        let req = review((g, v, k, p), "UPDATE", o.clone(), o, false);
        let (_, answer) = post(&server, "/mutate", &req).await;
        assert_eq!(patch_of(&answer).is_some(), patched, "{kind}: {answer}");
    }
}

#[tokio::test]
async fn non_workloads_pass_through() {
    let server = support::serve(policies()).await;
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "shop"}, "data": {"a": "b"}});
    let req = review(
        ("", "v1", "ConfigMap", "configmaps"),
        "CREATE",
        cm,
        Value::Null,
        false,
    );
    for path in ["/validate", "/mutate"] {
        let (_, answer) = post(&server, path, &req).await;
        assert_eq!(
            answer["response"],
            json!({"uid": req["request"]["uid"], "allowed": true})
        );
    }
    // Kinds the policies ignore share one metric label, whatever clients send.
    let other = ReviewLabels {
        operation: "CREATE",
        kind: "other",
        decision: "allowed",
    };
    assert_eq!(server.metrics.reviews.get(&other).map(|c| c.get()), Some(2));
}

/// `review` of a Deployment in `namespace` (the request's and the object's).
fn in_namespace(spec: Value, namespace: &str) -> Value {
    let mut d = object("apps", "v1", "Deployment", spec);
    d["metadata"]["namespace"] = json!(namespace);
    let mut req = review(gvk("Deployment"), "CREATE", d, Value::Null, false);
    req["request"]["namespace"] = json!(namespace);
    req
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

#[tokio::test]
async fn policy_file_modes_and_exclusions_change_the_answer() {
    let yaml = r#"
policies:
  image-tag: {mode: warn}
  pod-security: {mode: off}
  probes: {mode: off}
  resources: {mode: enforce, excludeNamespaces: [legacy]}
"#;
    let p = Policies::from_yaml(yaml, "p.yaml", Some("ferrostack")).unwrap();
    let server = support::serve(p).await;

    // nginx:latest, allowPrivilegeEscalation true, hostNetwork: image-tag only warns and
    // pod-security is off, so this is allowed with exactly one warning.
    let req = in_namespace(non_compliant_pod_spec(), "shop");
    let (_, answer) = post(&server, "/validate", &req).await;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    let warnings = strings(&answer["response"]["warnings"]);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with("[image-tag] "), "{warnings:?}");

    // resources is enforced, except in the namespace the policy excludes.
    let mut spec = compliant_pod_spec();
    spec["containers"][0]["resources"]["requests"]
        .as_object_mut()
        .unwrap()
        .remove("cpu");
    let (_, answer) = post(&server, "/validate", &in_namespace(spec.clone(), "shop")).await;
    let msg = answer["response"]["status"]["message"]
        .as_str()
        .unwrap_or("");
    assert!(
        msg.contains("[resources] container \"web\": resources.requests.cpu is not set"),
        "{answer}"
    );
    let (_, answer) = post(&server, "/validate", &in_namespace(spec, "legacy")).await;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    assert!(answer["response"].get("warnings").is_none(), "{answer}");
}

#[tokio::test]
async fn connect_requests_are_answered_with_the_uid() {
    let server = support::serve(policies()).await;
    let exec = json!({"apiVersion": "v1", "kind": "PodExecOptions", "stdin": true,
        "stdout": true, "tty": true, "container": "web", "command": ["sh"]});
    let mut req = review(gvk("Pod"), "CONNECT", exec, Value::Null, false);
    req["request"]["kind"] = json!({"group": "", "version": "v1", "kind": "PodExecOptions"});
    req["request"]["subResource"] = json!("exec");
    req["request"]["options"] = Value::Null;
    for path in ["/validate", "/mutate"] {
        let (status, answer) = post(&server, path, &req).await;
        assert_eq!(status, 200, "{path}: {answer}");
        assert_echoes(&req, &answer);
        assert_eq!(
            answer["response"],
            json!({"uid": req["request"]["uid"], "allowed": true})
        );
    }
}

#[tokio::test]
async fn reviews_over_the_budget_are_answered_with_the_uid() {
    // 1 ms cannot cover parsing and evaluating 1,000 containers (the most reviewed), so the
    // budget path answers; the evaluation, stopped at its next check, cannot delay the answer.
    let server = support::serve_with_budget(policies(), Duration::from_millis(1)).await;
    let containers: Vec<Value> = (0..1000)
        .map(|i| json!({"name": format!("c{i}"), "image": "nginx"}))
        .collect();
    let d = object(
        "apps",
        "v1",
        "Deployment",
        json!({"containers": containers}),
    );
    let req = review(gvk("Deployment"), "CREATE", d, Value::Null, false);

    let (status, answer) = post(&server, "/validate", &req).await;
    assert_eq!(status, 200);
    assert_echoes(&req, &answer);
    let r = &answer["response"];
    assert_eq!(r["allowed"], false, "{r}");
    assert_eq!(r["status"]["code"], 503, "{r}");
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap()
            .contains("review budget"),
        "{r}"
    );

    let (status, answer) = post(&server, "/mutate", &req).await;
    assert_eq!(status, 200);
    assert_echoes(&req, &answer);
    let r = &answer["response"];
    assert_eq!(r["allowed"], true, "{r}");
    assert!(
        r.get("patch").is_none() && r.get("patchType").is_none(),
        "{r}"
    );
    assert!(strings(&r["warnings"])[0].contains("review budget"), "{r}");

    let timeouts = ReviewLabels {
        operation: "CREATE",
        kind: "Deployment",
        decision: "timeout",
    };
    assert_eq!(
        server.metrics.reviews.get(&timeouts).map(|c| c.get()),
        Some(2)
    );
}
