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

use support::{BIN, free_port, free_port_range, json_lines};

const GOOD: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app.kubernetes.io/name: web}}
  template:
    metadata: {labels: {app.kubernetes.io/name: web}}
    spec:
      securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
      affinity: {podAntiAffinity: {preferredDuringSchedulingIgnoredDuringExecution: [{weight: 100, podAffinityTerm: {topologyKey: kubernetes.io/hostname, labelSelector: {matchLabels: {app.kubernetes.io/name: web}}}}]}}
      containers:
        - name: web
          image: ghcr.io/ferrostack/ferrostack:0.1.0
          resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {memory: 128Mi}}
          securityContext: {capabilities: {drop: [ALL]}, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false}
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
    let mut proc = support::spawn(&args, &[], base + 5);
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

/// A `webhook serve --self-signed` process: its TLS port, its plain metrics port and the CA
/// it printed.
struct Webhook {
    proc: support::Proc,
    port: u16,
    metrics: u16,
    ca: String,
}

impl Webhook {
    fn start() -> Webhook {
        let (port, metrics) = (free_port(), free_port());
        let (port_arg, metrics_arg) = (port.to_string(), metrics.to_string());
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
            &port_arg,
            "--metrics-port",
            &metrics_arg,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let proc = support::spawn(&args, &[], metrics);
        let logged = json_lines(&proc.stdout());
        let bundle = logged
            .iter()
            .find_map(|l| l["ca_bundle"].as_str())
            .unwrap_or_else(|| panic!("no ca_bundle in {}", proc.stdout()));
        let ca = String::from_utf8(STANDARD.decode(bundle).unwrap()).unwrap();
        Webhook {
            proc,
            port,
            metrics,
            ca,
        }
    }

    /// A client trusting only the printed CA, resolving the service name to loopback.
    fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(self.ca.as_bytes()).unwrap()])
            .resolve(
                "webhook.ferrostack.svc",
                SocketAddr::from(([127, 0, 0, 1], self.port)),
            )
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    }

    /// `https://webhook.ferrostack.svc:<port><path>`.
    fn url(&self, path: &str) -> String {
        format!("https://webhook.ferrostack.svc:{}{path}", self.port)
    }

    /// POSTs `body` as JSON to /validate; the status and the JSON answer.
    async fn validate(&self, body: Vec<u8>) -> (u16, serde_json::Value) {
        let r = self
            .client()
            .post(self.url("/validate"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    /// The plain port's /metrics, checked to contain every one of `lines`.
    async fn assert_metrics(&self, lines: &[&str]) {
        let url = format!("http://127.0.0.1:{}/metrics", self.metrics);
        let m = support::get_text(&url).await;
        for line in lines {
            assert!(m.contains(line), "missing {line} in\n{m}");
        }
    }
}

/// A Pod review whose image uses the tag latest (denied by image-tag).
fn review() -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "7f0c", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "shop", "operation": "CREATE", "userInfo": {"username": "u"},
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop"},
                "spec": {"containers": [{"name": "c", "image": "nginx:latest"}]}}}
    })
}

/// The CA bundle as printed (base64, the webhook configuration's caBundle) is the CA file;
/// SIGTERM stops the server with exit 0.
#[tokio::test]
async fn serve_self_signed_prints_the_ca_it_writes_and_stops_on_sigterm() {
    let mut webhook = Webhook::start();
    assert!(
        webhook.ca.starts_with("-----BEGIN CERTIFICATE-----"),
        "{}",
        webhook.ca
    );
    let written = std::fs::read_to_string(webhook.proc.path().join("ca.pem")).unwrap();
    assert_eq!(webhook.ca, written);
    let status = tokio::task::spawn_blocking(move || webhook.proc.stop())
        .await
        .unwrap();
    assert!(status.success());
}

/// A client trusting only the printed CA reaches the webhook by its service name (a --san)
/// and by the IP SAN; localhost, not among the SANs given, is refused.
#[tokio::test]
async fn serve_self_signed_answers_reviews_over_tls_verified_by_its_sans() {
    let webhook = Webhook::start();
    let body = serde_json::to_vec(&review()).unwrap();
    let (_, answer) = webhook.validate(body).await;
    assert_eq!(answer["response"]["uid"], "7f0c");
    assert_eq!(answer["response"]["allowed"], false);
    assert_eq!(answer["response"]["status"]["code"], 403);
    let by_ip = webhook
        .client()
        .post(format!("https://127.0.0.1:{}/mutate", webhook.port))
        .json(&review())
        .send()
        .await
        .unwrap();
    assert_eq!(by_ip.status(), 200);
    let localhost = format!("https://localhost:{}/validate", webhook.port);
    let err = webhook
        .client()
        .post(localhost)
        .json(&review())
        .send()
        .await;
    assert!(err.as_ref().is_err_and(|e| e.is_connect()), "{err:?}");
    webhook
        .assert_metrics(&[
            r#"ferrostack_webhook_reviews_total{operation="CREATE",kind="Pod",decision="denied"} 1"#,
            r#"ferrostack_webhook_reviews_total{operation="CREATE",kind="Pod",decision="patched"} 1"#,
            r#"ferrostack_webhook_violations_total{policy="image-tag",mode="enforce"} 1"#,
            "ferrostack_webhook_review_duration_seconds_count 2",
        ])
        .await;
}

/// The body limit fits an UPDATE of a large workload (object and oldObject, 2.5 MB here);
/// over --max-body-bytes (4 MiB) is a 413 as soon as the headers announce it, before the
/// body is read (the body never comes).
#[tokio::test]
async fn serve_takes_a_large_update_and_refuses_an_oversized_body_unread() {
    let webhook = Webhook::start();
    let mut big = review();
    big["request"]["operation"] = "UPDATE".into();
    big["request"]["object"]["metadata"]["annotations"] =
        serde_json::json!({"note": "x".repeat(1_250_000)});
    big["request"]["oldObject"] = big["request"]["object"].clone();
    let (_, answer) = webhook.validate(serde_json::to_vec(&big).unwrap()).await;
    assert_eq!(answer["response"]["uid"], "7f0c", "{answer}");

    let pending = futures::stream::pending::<Result<Vec<u8>, std::io::Error>>();
    let r = webhook
        .client()
        .post(webhook.url("/validate"))
        .header("content-type", "application/json")
        .header("content-length", (5 * 1024 * 1024).to_string())
        .body(reqwest::Body::wrap_stream(pending))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
    webhook
        .assert_metrics(&[
            r#"ferrostack_webhook_reviews_total{operation="UPDATE",kind="Pod",decision="warned"} 1"#,
            r#"http_requests_total{method="POST",route="/validate",status="413"} 1"#,
            "ferrostack_webhook_review_duration_seconds_count 1",
        ])
        .await;
}

/// 400 with the reason for garbage and for nesting deeper than serde's recursion limit.
#[tokio::test]
async fn serve_answers_garbage_and_deep_nesting_with_a_400_naming_why() {
    let webhook = Webhook::start();
    let (status, body) = webhook.validate(b"{\"apiVersion\": 1".to_vec()).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_admission_review", "{body}");
    let mut deep = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"operation":"CREATE","userInfo":{},"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":"#.to_vec();
    deep.extend(std::iter::repeat_n(b'[', 50_000));
    let (status, body) = webhook.validate(deep).await;
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("recursion limit"), "{body}");
    webhook
        .assert_metrics(&[
            r#"ferrostack_webhook_reviews_total{operation="unknown",kind="unknown",decision="error"} 2"#,
            "ferrostack_webhook_review_duration_seconds_count 2",
        ])
        .await;
}

/// Reviews only over TLS; the plain port serves probes and metrics.
#[tokio::test]
async fn serve_takes_no_reviews_on_the_plain_metrics_port() {
    let webhook = Webhook::start();
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/validate", webhook.metrics))
        .json(&review())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    webhook
        .assert_metrics(&["ferrostack_webhook_review_duration_seconds_count 0"])
        .await;
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

/// A sparse file one byte over runtime's 16 MiB cap: cheap to make, refused by size.
fn oversized(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("huge.yaml");
    let f = std::fs::File::create(&path).unwrap();
    f.set_len((16 << 20) + 1).unwrap();
    path
}

/// `ferrostack webhook check ARGS` with the address space capped at 2 GiB, so an unbounded
/// read ends in an allocation failure rather than in the machine's memory.
fn check_capped(args: &[&str], stdin: Stdio) -> (Option<i32>, String) {
    let mut script = format!("ulimit -v 2097152; exec {BIN} webhook check");
    for a in args {
        script.push_str(&format!(" '{a}'"));
    }
    let out = Command::new("sh")
        .args(["-c", &script])
        .env_clear()
        .stdin(stdin)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn check_refuses_endless_and_oversized_inputs_with_exit_two_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, GOOD).unwrap();
    let huge = oversized(dir.path());
    let (good, huge) = (good.to_str().unwrap(), huge.to_str().unwrap());

    for args in [
        vec!["/dev/zero"],
        vec![huge],
        vec!["--policy-file", "/dev/zero", good],
        vec!["--policy-file", huge, good],
    ] {
        let (code, out) = check_capped(&args, Stdio::null());
        assert_eq!(code, Some(2), "{args:?}: {out}");
        let named = args
            .iter()
            .find(|a| **a == "/dev/zero" || **a == huge)
            .unwrap();
        assert!(
            out.contains(&format!("{named} is larger than 16777216 bytes")),
            "{args:?}: {out}"
        );
    }
    // stdin: `-` reading an endless stream.
    let zero = std::fs::File::open("/dev/zero").unwrap();
    let (code, out) = check_capped(&["-"], Stdio::from(zero));
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("- is larger than 16777216 bytes"), "{out}");
}

/// `webhook serve` flags on free ports, plus `extra`; returns (args, https port, metrics port).
fn serve_args(extra: &[&str]) -> (Vec<String>, u16, u16) {
    let (port, metrics) = (free_port(), free_port());
    let mut args: Vec<String> = [
        "webhook",
        "serve",
        "--host",
        "127.0.0.1",
        "--drain-delay",
        "0s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(["--port".into(), port.to_string()]);
    args.extend(["--metrics-port".into(), metrics.to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    (args, port, metrics)
}

/// Whether a client trusting only `ca_pem` completes a handshake with the server on `port`.
async fn trusts(ca_pem: &str, port: u16) -> bool {
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap()])
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    client
        .get(format!("https://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .is_ok()
}

#[tokio::test]
async fn a_fifo_at_the_certificate_path_is_refused_and_later_reloads_still_happen() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let a = admission::tls::self_signed(&["127.0.0.1".into()], 1).unwrap();
    std::fs::write(&cert, &a.cert_pem).unwrap();
    std::fs::write(&key, &a.key_pem).unwrap();
    let (args, port, metrics) = serve_args(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let mut proc = support::spawn(&args, &[], metrics);
    assert!(trusts(&a.ca_pem, port).await);

    // The certificate becomes a FIFO no one writes: opening it for reading would block.
    std::fs::remove_file(&cert).unwrap();
    let made = Command::new("mkfifo").arg(&cert).status().unwrap();
    assert!(made.success());
    let reloads = |outcome: &'static str| {
        let url = format!("http://127.0.0.1:{metrics}/metrics");
        async move {
            let m = reqwest::get(url).await.unwrap().text().await.unwrap();
            let line =
                format!("ferrostack_webhook_certificate_reloads_total{{outcome=\"{outcome}\"}} ");
            m.lines()
                .find_map(|l| l.strip_prefix(&line))
                .map_or(0, |n| n.trim().parse::<u64>().unwrap())
        }
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while reloads("failure").await == 0 {
        assert!(std::time::Instant::now() < deadline, "no failed reload");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(trusts(&a.ca_pem, port).await, "the old pair is kept");

    // A valid pair written afterwards is still picked up: the FIFO stalled nothing.
    let b = admission::tls::self_signed(&["127.0.0.1".into()], 1).unwrap();
    let tmp = dir.path().join("new");
    std::fs::create_dir(&tmp).unwrap();
    std::fs::write(tmp.join("tls.key"), &b.key_pem).unwrap();
    std::fs::write(tmp.join("tls.crt"), &b.cert_pem).unwrap();
    std::fs::rename(tmp.join("tls.key"), &key).unwrap();
    std::fs::rename(tmp.join("tls.crt"), &cert).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !trusts(&b.ca_pem, port).await {
        assert!(
            std::time::Instant::now() < deadline,
            "the new pair was never served: {}",
            proc.stdout()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = tokio::task::spawn_blocking(move || proc.stop())
        .await
        .unwrap();
    assert!(status.success());
}

/// `utime + stime` of a process, in seconds (Linux `/proc/PID/stat`).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

/// An AdmissionReview of a Deployment whose pod spec is `spec`.
fn deployment_review(operation: &str, spec: serde_json::Value) -> serde_json::Value {
    let object = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"replicas": 3, "template": {"metadata": {"labels": {"app": "web"}}, "spec": spec}}});
    serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "hostile", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "namespace": "shop", "operation": operation, "userInfo": {}, "object": object}
    })
}

#[tokio::test]
async fn hostile_reviews_get_bounded_answers_and_stop_costing_cpu_once_answered() {
    let (args, port, metrics) = serve_args(&["--self-signed", "--ca-file", "ca.pem"]);
    let mut proc = support::spawn(&args, &[], metrics);
    let ca = std::fs::read_to_string(proc.path().join("ca.pem")).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).unwrap()])
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let post = |path: &str, review: &serde_json::Value| {
        let request = client
            .post(format!("https://127.0.0.1:{port}{path}"))
            .json(review);
        async move {
            let r = request.send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.bytes().await.unwrap()
        }
    };

    // 20,000 hostPath volumes (under 1 MB): every one is a violation, the message lists 20.
    let volumes: Vec<_> = (0..20_000)
        .map(|i| serde_json::json!({"name": format!("v{i}"), "hostPath": {"path": "/"}}))
        .collect();
    let spec =
        serde_json::json!({"containers": [{"name": "c", "image": "nginx:1"}], "volumes": volumes});
    let body = post("/validate", &deployment_review("CREATE", spec)).await;
    assert!(body.len() < 64 * 1024, "{} bytes", body.len());
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let message = answer["response"]["status"]["message"].as_str().unwrap();
    assert_eq!(message.lines().count(), 1 + 20 + 1, "{message}");
    assert!(message.ends_with("more"), "{message}");
    assert!(answer["response"]["warnings"].as_array().unwrap().len() <= 40);

    // 100,000 containers (about 4 MB): answered at once and small, on both endpoints, and
    // the process does not keep computing once it has answered.
    let containers: Vec<_> = (0..100_000)
        .map(|i| serde_json::json!({"name": format!("c{i}"), "image": "nginx"}))
        .collect();
    let review = deployment_review("CREATE", serde_json::json!({"containers": containers}));
    let pid = proc.child.as_ref().unwrap().id();
    for path in ["/mutate", "/validate"] {
        let body = post(path, &review).await;
        assert!(body.len() < 64 * 1024, "{path}: {} bytes", body.len());
        let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(answer["response"]["uid"], "hostile");
        let before = cpu_seconds(pid);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let spent = cpu_seconds(pid) - before;
        assert!(spent < 0.5, "{path}: {spent:.2} s of CPU after the answer");
    }
    let status = tokio::task::spawn_blocking(move || proc.stop())
        .await
        .unwrap();
    assert!(status.success());
}

/// A body that sends one byte and then nothing.
fn held_body() -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    use futures::StreamExt as _;
    futures::stream::once(async { Ok(b"{".to_vec()) }).chain(futures::stream::pending())
}

/// A client announcing a 4 MiB body (the default --max-body-bytes, the whole budget) and
/// sending one byte of it (so the client flushes the head): admitted, it holds the budget.
fn hold_the_budget(
    client: &reqwest::Client,
    url: &str,
) -> tokio::task::JoinHandle<reqwest::Result<reqwest::Response>> {
    let request = client
        .post(url)
        .header("content-type", "application/json")
        .header("content-length", (4 << 20).to_string())
        .body(reqwest::Body::wrap_stream(held_body()));
    tokio::spawn(async move { request.send().await })
}

fn small_review() -> serde_json::Value {
    deployment_review(
        "CREATE",
        serde_json::json!({"containers": [{"name": "c", "image": "nginx:1"}]}),
    )
}

/// Sends small reviews while a holder holds the budget until one is refused; returns the
/// refusal and the holder.
async fn refused_while_held(
    client: &reqwest::Client,
    url: &str,
) -> (
    serde_json::Value,
    tokio::task::JoinHandle<reqwest::Result<reqwest::Response>>,
) {
    let mut holder = hold_the_budget(client, url);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        // A holder arriving while a small review is in flight finds part of the budget taken
        // and is itself answered 503 at once (seen under load): it is sent again.
        if holder.is_finished() {
            let answer = holder.await.unwrap().unwrap();
            assert_eq!(
                answer.status(),
                503,
                "the holder was answered without its body"
            );
            holder = hold_the_budget(client, url);
        }
        let r = client.post(url).json(&small_review()).send().await.unwrap();
        if r.status() == 503 {
            return (r.json().await.unwrap(), holder);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never refused: {}",
            r.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn bodies_in_flight_share_a_budget_and_the_excess_is_answered_503() {
    let (args, port, metrics) = serve_args(&["--self-signed", "--ca-file", "ca.pem"]);
    let mut proc = support::spawn(&args, &[], metrics);
    let ca = std::fs::read_to_string(proc.path().join("ca.pem")).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).unwrap()])
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let url = format!("https://127.0.0.1:{port}/validate");
    let (busy, holder) = refused_while_held(&client, &url).await;
    assert_eq!(busy["error"]["code"], "webhook_busy", "{busy}");
    // Once it goes, the budget is back.
    holder.abort();
    let (client, url) = (&client, &url);
    let pause = Duration::from_millis(100);
    test_support::poll_async(
        "the budget back",
        Duration::from_secs(10),
        pause,
        || async move {
            let r = client.post(url).json(&small_review()).send().await.unwrap();
            (r.status() == 200).then_some(())
        },
    )
    .await;
    let status = tokio::task::spawn_blocking(move || proc.stop())
        .await
        .unwrap();
    assert!(status.success());
}

/// The JSON document at `url`.
async fn json_at(client: &reqwest::Client, url: String) -> serde_json::Value {
    let r = client.get(url).send().await.unwrap();
    r.json().await.unwrap()
}

/// Every path the metrics port lists answers there, and none is a review path.
async fn assert_plain_port_serves_what_it_lists(metrics: u16) {
    let plain = json_at(
        &reqwest::Client::new(),
        format!("http://127.0.0.1:{metrics}/openapi.json"),
    )
    .await;
    let paths: Vec<&String> = plain["paths"].as_object().unwrap().keys().collect();
    for p in &paths {
        let r = reqwest::get(format!("http://127.0.0.1:{metrics}{p}"))
            .await
            .unwrap();
        assert_ne!(
            r.status(),
            404,
            "{p} is listed on the metrics port but 404s"
        );
    }
    assert!(
        paths
            .iter()
            .all(|p| !p.starts_with("/validate") && *p != "/mutate"),
        "{paths:?}"
    );
}

/// The review paths document their answers and the AdmissionReview request they take.
fn assert_review_paths_documented(api: &serde_json::Value) {
    for path in ["/validate", "/validate/labelled-namespace", "/mutate"] {
        let post = &api["paths"][path]["post"];
        for status in ["200", "400", "413", "415", "503"] {
            assert!(
                post["responses"][status].is_object(),
                "{path} {status}: {post}"
            );
        }
        let schema = &post["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(
            schema["$ref"], "#/components/schemas/AdmissionReviewRequest",
            "{path}: {schema}"
        );
    }
    let request = &api["components"]["schemas"]["AdmissionRequestBody"]["properties"];
    for field in ["uid", "operation", "object", "oldObject"] {
        assert!(request[field].is_object(), "{field}: {request}");
    }
}

#[tokio::test]
async fn each_ports_openapi_lists_only_what_it_serves() {
    let (args, port, metrics) = serve_args(&["--self-signed", "--ca-file", "ca.pem"]);
    let mut proc = support::spawn(&args, &[], metrics);
    let ca = std::fs::read_to_string(proc.path().join("ca.pem")).unwrap();
    let tls = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).unwrap()])
        .build()
        .unwrap();
    assert_plain_port_serves_what_it_lists(metrics).await;
    let api = json_at(&tls, format!("https://127.0.0.1:{port}/openapi.json")).await;
    assert_review_paths_documented(&api);
    let status = tokio::task::spawn_blocking(move || proc.stop())
        .await
        .unwrap();
    assert!(status.success());
}

#[test]
fn check_expands_lists_inside_lists() {
    let pod = "{apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: [{name: c, image: 'nginx:latest'}]}}";
    let nested = format!(
        "apiVersion: v1\nkind: List\nitems:\n- {{apiVersion: v1, kind: List, items: [{pod}]}}\n"
    );
    let (code, out, _) = check(&["-"], &nested);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("-:1: Pod/p: spec.containers[0].image: error[image-tag]"),
        "{out}"
    );
}

#[test]
fn serve_refuses_an_oversized_or_special_certificate_file_with_exit_two_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let huge = oversized(dir.path());
    let key = dir.path().join("tls.key");
    std::fs::write(&key, "not read").unwrap();
    for cert in [huge.to_str().unwrap(), "/dev/zero"] {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -v 2097152; exec {BIN} webhook serve --tls-cert '{cert}' --tls-key '{}'",
                key.display()
            ))
            .env_clear()
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cert}: {err}");
        assert!(err.contains(cert), "{cert}: {err}");
    }
}
