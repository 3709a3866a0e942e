//! Hostile and malformed bodies get a clean 400/413/415 with a JSON error (or, when their uid
//! can be read, an AdmissionReview answer to it: `envelope.rs`), never a panic, and the server
//! keeps serving afterwards.

use admission::engine::Policies;
use serde_json::{Value, json};

use crate::support::{self, compliant_pod_spec, gvk, object, post, post_raw, review};

fn error_code(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(body)));
    v["error"]["code"].as_str().unwrap().to_owned()
}

/// Bodies that are not an AdmissionReview v1 with a request, by what is wrong with them.
fn malformed_bodies() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("empty", vec![]),
        (
            "truncated",
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionRev"#.to_vec(),
        ),
        ("not json", b"\xff\xfe garbage".to_vec()),
        ("array", b"[1,2,3]".to_vec()),
        (
            "no request",
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(),
        ),
        (
            "v1beta1",
            br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{}}"#
                .to_vec(),
        ),
        (
            "wrong types",
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":5}}"#
                .to_vec(),
        ),
        (
            "v1beta1 with a uid",
            br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u"}}"#
                .to_vec(),
        ),
        (
            "empty uid",
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"","operation":5}}"#
                .to_vec(),
        ),
    ]
}

#[tokio::test]
async fn malformed_bodies_get_400_with_the_reason() {
    let server = support::serve(Policies::load(None, None).unwrap()).await;
    let cases = malformed_bodies();
    let count = cases.len() as u64;
    for (name, body) in cases {
        let (status, resp) = post_raw(&server, "/validate", "application/json", body).await;
        assert_eq!(status, 400, "{name}: {}", String::from_utf8_lossy(&resp));
        assert_eq!(error_code(&resp), "invalid_admission_review", "{name}");
        let v: Value = serde_json::from_slice(&resp).unwrap();
        assert!(
            !v["error"]["message"].as_str().unwrap().is_empty(),
            "{name}"
        );
    }
    // Each is counted as an error review, so a misconfigured API server shows in the metrics.
    let errors = admission::metrics::ReviewLabels {
        operation: "unknown",
        kind: "unknown",
        decision: "error",
    };
    assert_eq!(
        server.metrics.reviews.get(&errors).map(|c| c.get()),
        Some(count)
    );
}

#[tokio::test]
async fn deeply_nested_json_is_rejected_not_overflowing_the_stack() {
    let server = support::serve(Policies::load(None, None).unwrap()).await;
    let depth = 100_000;
    let mut body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"operation":"CREATE","userInfo":{},"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":"#.to_vec();
    body.extend(std::iter::repeat_n(b'[', depth));
    body.extend(std::iter::repeat_n(b']', depth));
    body.extend(b"}}}");
    for path in ["/validate", "/mutate"] {
        let (status, resp) = post_raw(&server, path, "application/json", body.clone()).await;
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(&resp));
        assert!(
            String::from_utf8_lossy(&resp).contains("recursion limit"),
            "{}",
            String::from_utf8_lossy(&resp)
        );
    }
}

#[tokio::test]
async fn huge_bodies_get_413_and_the_server_keeps_serving() {
    let server = support::serve(Policies::load(None, None).unwrap()).await;
    let mut big = review(
        gvk("Pod"),
        "CREATE",
        object("", "v1", "Pod", compliant_pod_spec()),
        Value::Null,
        false,
    );
    big["request"]["object"]["metadata"]["annotations"]["x"] = json!("a".repeat(2 * 1024 * 1024));
    let (status, _) = post_raw(
        &server,
        "/validate",
        "application/json",
        serde_json::to_vec(&big).unwrap(),
    )
    .await;
    assert_eq!(status, 413);
    let ok = review(
        gvk("Pod"),
        "CREATE",
        object("", "v1", "Pod", compliant_pod_spec()),
        Value::Null,
        false,
    );
    let (status, answer) = post(&server, "/validate", &ok).await;
    assert_eq!(
        (status, &answer["response"]["allowed"]),
        (200, &json!(true))
    );
}

#[tokio::test]
async fn non_json_content_types_get_415() {
    let server = support::serve(Policies::load(None, None).unwrap()).await;
    let body = serde_json::to_vec(&review(
        gvk("Pod"),
        "CREATE",
        object("", "v1", "Pod", compliant_pod_spec()),
        Value::Null,
        false,
    ))
    .unwrap();
    let (status, resp) = post_raw(&server, "/mutate", "application/yaml", body.clone()).await;
    assert_eq!(status, 415);
    assert_eq!(error_code(&resp), "unsupported_media_type");
    let (status, _) = post_raw(&server, "/mutate", "application/json; charset=utf-8", body).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn wrongly_typed_objects_inside_a_valid_review_are_answered() {
    // The API server validates schemas before calling webhooks, but the webhook must not rely
    // on it: odd shapes are answered (allowed or denied), never a 500 or a panic.
    let server = support::serve(Policies::load(None, None).unwrap()).await;
    let odd_specs = [
        json!({"containers": "nope"}),
        json!({"containers": [1, null, "x", {"securityContext": 7, "resources": []}]}),
        json!({"securityContext": [], "volumes": [{"name": "v", "hostPath": null}], "affinity": 3}),
        json!(null),
    ];
    for spec in odd_specs {
        for kind in ["Pod", "Deployment", "CronJob"] {
            let (g, v, k, p) = gvk(kind);
            let req = review(
                (g, v, k, p),
                "CREATE",
                object(g, v, k, spec.clone()),
                Value::Null,
                false,
            );
            for path in ["/validate", "/mutate"] {
                let (status, answer) = post(&server, path, &req).await;
                assert_eq!(status, 200, "{kind} {path} {spec}");
                assert_eq!(answer["response"]["uid"], req["request"]["uid"]);
            }
        }
    }
}
