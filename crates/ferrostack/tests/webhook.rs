//! `ferrostack webhook` as a real process: `check` exit codes and output, `serve` with a
//! self-signed CA over real sockets, metrics port limited to probes and metrics, SIGTERM.

#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use support::{BIN, Proc, free_port, free_port_range, json_lines};

const GOOD: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app.kubernetes.io/name: web}}
  template:
    metadata: {labels: {app.kubernetes.io/name: web}}
    spec:
      securityContext: {runAsNonRoot: true}
      containers:
        - name: web
          image: ghcr.io/ferrostack/ferrostack:0.1.0
          resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {memory: 128Mi}}
          securityContext: {capabilities: {drop: [ALL]}, readOnlyRootFilesystem: true}
          livenessProbe: {tcpSocket: {port: 8080}}
          readinessProbe: {httpGet: {path: /readyz, port: 8080}}
"#;

fn check(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .args(["webhook", "check"])
        .args(args)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn check_exits_zero_one_or_two() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, GOOD).unwrap();
    let (code, out, _) = check(&[good.to_str().unwrap()], "");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.ends_with("1 documents, 1 workloads checked: 0 errors, 0 warnings\n"),
        "{out}"
    );

    let bad = format!(
        "{GOOD}---\n{}",
        GOOD.replace("ferrostack:0.1.0", "ferrostack:latest")
    );
    let (code, out, err) = check(&["-"], &bad);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.starts_with("-:2: Deployment/web: spec.template.spec.containers[0].image: error[image-tag]: container \"web\": image \"ghcr.io/ferrostack/ferrostack:latest\" uses the tag latest"),
        "{out}"
    );
    assert!(err.contains("enforce violations"), "{err}");

    let (code, _, err) = check(&["/nonexistent.yaml"], "");
    assert_eq!(code, 2, "{err}");
    let policy = dir.path().join("p.yaml");
    std::fs::write(&policy, "policies: {image-tag: {mode: sometimes}}\n").unwrap();
    let (code, _, err) = check(
        &[
            "--policy-file",
            policy.to_str().unwrap(),
            good.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!("policy file {}", policy.display())),
        "{err}"
    );
}

#[tokio::test]
async fn up_serves_the_webhook_over_tls_on_base_plus_3_and_metrics_on_base_plus_5() {
    let base = free_port_range(7);
    let args: Vec<String> = [
        "up",
        "--base-port",
        &base.to_string(),
        "--data-dir",
        "state",
        "--drain-delay",
        "0s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut proc = Proc::spawn(&args, &[], base + 5);
    // up stops cleanly only once it has seen every role ready and printed its table.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !proc.stderr().contains("all roles on localhost") {
        assert!(
            std::time::Instant::now() < deadline,
            "no URL table: {}",
            proc.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(proc.stderr().contains("webhook (TLS)"), "{}", proc.stderr());
    let ca = std::fs::read_to_string(proc.path().join("state/webhook-ca.pem")).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).unwrap()])
        .build()
        .unwrap();
    let review = serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "u-up", "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "resource": {"group": "", "version": "v1", "resource": "configmaps"},
            "operation": "CREATE", "userInfo": {},
            "object": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}}
    });
    let answer: serde_json::Value = client
        .post(format!("https://127.0.0.1:{}/mutate", base + 3))
        .json(&review)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        answer["response"],
        serde_json::json!({"uid": "u-up", "allowed": true})
    );
    let status = tokio::task::spawn_blocking(move || proc.stop())
        .await
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn serve_self_signed_answers_reviews_over_verified_tls_and_stops_on_sigterm() {
    let (port, metrics) = (free_port(), free_port());
    let args: Vec<String> = [
        "webhook",
        "serve",
        "--self-signed",
        "--san",
        "webhook.ferrostack.svc,127.0.0.1",
        "--ca-file",
        "ca.pem",
        "--host",
        "127.0.0.1",
        "--drain-delay",
        "0s",
        "--port",
        &port.to_string(),
        "--metrics-port",
        &metrics.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut proc = Proc::spawn(&args, &[], metrics);

    // The CA bundle as printed (base64, the webhook configuration's caBundle) is the CA file.
    let logged = json_lines(&proc.stdout());
    let bundle = logged
        .iter()
        .find_map(|l| l["ca_bundle"].as_str())
        .unwrap_or_else(|| panic!("no ca_bundle in {}", proc.stdout()));
    let ca = String::from_utf8(STANDARD.decode(bundle).unwrap()).unwrap();
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
    assert_eq!(
        ca,
        std::fs::read_to_string(proc.path().join("ca.pem")).unwrap()
    );

    // A client trusting only the printed CA reaches the webhook by its service name (a --san)
    // and by the IP SAN; localhost, not among the SANs given, is refused.
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let verified = || {
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).unwrap()])
            .resolve("webhook.ferrostack.svc", addr)
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    };
    let client = verified();
    let review = serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "7f0c", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "shop", "operation": "CREATE", "userInfo": {"username": "u"},
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop"},
                "spec": {"containers": [{"name": "c", "image": "nginx:latest"}]}}}
    });
    let answer: serde_json::Value = client
        .post(format!("https://webhook.ferrostack.svc:{port}/validate"))
        .json(&review)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["response"]["uid"], "7f0c");
    assert_eq!(answer["response"]["allowed"], false);
    assert_eq!(answer["response"]["status"]["code"], 403);
    let by_ip = verified()
        .post(format!("https://127.0.0.1:{port}/mutate"))
        .json(&review)
        .send()
        .await
        .unwrap();
    assert_eq!(by_ip.status(), 200);
    let err = verified()
        .post(format!("https://localhost:{port}/validate"))
        .json(&review)
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");

    // The body limit fits an UPDATE of a large workload (object and oldObject, 2.5 MB here).
    let mut big = review.clone();
    big["request"]["operation"] = "UPDATE".into();
    big["request"]["object"]["metadata"]["annotations"] =
        serde_json::json!({"note": "x".repeat(1_250_000)});
    big["request"]["oldObject"] = big["request"]["object"].clone();
    let answer: serde_json::Value = client
        .post(format!("https://webhook.ferrostack.svc:{port}/validate"))
        .json(&big)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["response"]["uid"], "7f0c", "{answer}");

    // Over --max-body-bytes (4 MiB): 413 as soon as the headers announce it, before the body
    // is read (the body never comes).
    let pending = futures::stream::pending::<Result<Vec<u8>, std::io::Error>>();
    let r = client
        .post(format!("https://webhook.ferrostack.svc:{port}/validate"))
        .header("content-type", "application/json")
        .header("content-length", (5 * 1024 * 1024).to_string())
        .body(reqwest::Body::wrap_stream(pending))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large", "{body}");

    // 400 with the reason for garbage and for nesting deeper than serde's recursion limit.
    let post = |body: Vec<u8>| {
        let request = client
            .post(format!("https://webhook.ferrostack.svc:{port}/validate"))
            .header("content-type", "application/json")
            .body(body);
        async move {
            let r = request.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (status, body) = post(b"{\"apiVersion\": 1".to_vec()).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_admission_review", "{body}");
    let mut deep = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"operation":"CREATE","userInfo":{},"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":"#.to_vec();
    deep.extend(std::iter::repeat_n(b'[', 50_000));
    let (status, body) = post(deep).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("recursion limit"),
        "{body}"
    );

    // Reviews only over TLS; the plain port serves probes and metrics.
    let plain = reqwest::Client::new();
    let r = plain
        .post(format!("http://127.0.0.1:{metrics}/validate"))
        .json(&review)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let m = plain
        .get(format!("http://127.0.0.1:{metrics}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        r#"ferrostack_webhook_reviews_total{operation="CREATE",kind="Pod",decision="denied"} 1"#,
        r#"ferrostack_webhook_reviews_total{operation="UPDATE",kind="Pod",decision="warned"} 1"#,
        r#"ferrostack_webhook_reviews_total{operation="CREATE",kind="Pod",decision="patched"} 1"#,
        r#"ferrostack_webhook_reviews_total{operation="unknown",kind="unknown",decision="error"} 2"#,
        r#"ferrostack_webhook_violations_total{policy="image-tag",mode="enforce"} 1"#,
        "ferrostack_webhook_review_duration_seconds_count 5",
        r#"http_requests_total{method="POST",route="/validate",status="413"} 1"#,
    ] {
        assert!(m.contains(line), "missing {line} in\n{m}");
    }

    let status = tokio::task::spawn_blocking(move || proc.stop())
        .await
        .unwrap();
    assert!(status.success());
}

#[test]
fn serve_without_a_certificate_source_exits_two() {
    let out = Command::new(BIN)
        .args(["webhook", "serve"])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--self-signed"));
}
