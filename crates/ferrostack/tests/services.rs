//! backend-api and data-api, tested through the real binary over real sockets: every route
//! and status, the external logs API played by a real local HTTP server, the log-file
//! writer under 1,000 concurrent requests, a read-only log dir, and graceful shutdown.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use serde_json::Value;
use support::{Proc, json_lines};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn get_json(url: &str) -> (u16, Value) {
    let r = client().get(url).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn api_answers_the_query_parameters_and_prints_them() {
    let mut data = Proc::start(&["data-api"], &[]);
    let (status, body) =
        get_json(&data.url("/api?name=ferro&tag=a&tag=b&tag=c&empty=&sp=x+y%21")).await;
    assert_eq!(status, 200);
    assert_eq!(body["params"]["name"], "ferro");
    assert_eq!(body["params"]["tag"], serde_json::json!(["a", "b", "c"]));
    assert_eq!(body["params"]["empty"], "");
    assert_eq!(body["params"]["sp"], "x y!");

    // A 10 KB query is answered whole.
    let long = "v".repeat(10 * 1024);
    let (status, body) = get_json(&data.url(&format!("/api?long={long}&long=2"))).await;
    assert_eq!(status, 200);
    assert_eq!(body["params"]["long"][0].as_str().unwrap().len(), 10 * 1024);

    // Invalid UTF-8 is a 400 naming the problem.
    let (status, body) = get_json(&data.url("/api?bad=%FF")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_query"))
    );

    // Over the URI limit: 414 with the JSON envelope.
    let huge = "v".repeat(20 * 1024);
    let (status, body) = get_json(&data.url(&format!("/api?x={huge}"))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (414, Some("uri_too_long"))
    );

    assert!(data.stop().success());
    let printed: Vec<Value> = json_lines(&data.stdout())
        .into_iter()
        .filter(|l| l["message"] == "query parameters")
        .collect();
    assert_eq!(
        printed.len(),
        2,
        "one stdout line per /api call: {}",
        data.stdout()
    );
    let params: Value = serde_json::from_str(printed[0]["params"].as_str().unwrap()).unwrap();
    assert_eq!(params["tag"], serde_json::json!(["a", "b", "c"]));
    assert_eq!(printed[0]["role"], "data-api");
    assert!(
        printed[0]["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn probes_version_metrics_openapi_and_json_errors() {
    let backend = Proc::start(&["backend-api"], &[]);
    let (s, b) = get_json(&backend.url("/healthz")).await;
    assert_eq!((s, b["status"].as_str()), (200, Some("ok")));
    assert_eq!(get_json(&backend.url("/readyz")).await.0, 200);
    let (s, v) = get_json(&backend.url("/version")).await;
    assert_eq!((s, v["role"].as_str()), (200, Some("backend-api")));
    assert!(v["version"].as_str().is_some());

    let (s, doc) = get_json(&backend.url("/openapi.json")).await;
    assert_eq!(s, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/",
        "/api",
        "/download_external_logs",
        "/healthz",
        "/readyz",
        "/version",
        "/metrics",
    ] {
        assert!(doc["paths"][path].is_object(), "openapi lacks {path}");
    }

    let (s, e) = get_json(&backend.url("/no/such/path")).await;
    assert_eq!((s, e["error"]["code"].as_str()), (404, Some("not_found")));
    let r = client().post(backend.url("/api")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "method_not_allowed");

    // A client's request id is echoed; one is made when absent.
    let r = client()
        .get(backend.url("/api"))
        .header("x-request-id", "req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "req-42");
    let r = client().get(backend.url("/api")).send().await.unwrap();
    assert_eq!(r.headers()["x-request-id"].len(), 32);

    let text = support::get_text(&backend.url("/metrics")).await;
    for needle in [
        r#"http_requests_total{method="GET",route="/api",status="200"}"#,
        r#"http_requests_total{method="GET",route="unmatched",status="404"}"#,
        r#"http_request_duration_seconds_bucket{le="3.0",method="GET",route="/api"}"#,
        "http_requests_in_flight",
        r#"ferrostack_build_info{version=""#,
        r#"role="backend-api"} 1"#,
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_start_time_seconds",
        r#"ferrostack_log_events_total{level="info"}"#,
    ] {
        assert!(text.contains(needle), "metrics lack {needle}:\n{text}");
    }
    assert!(
        !text.contains("no/such/path"),
        "raw paths must never become labels"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn root_writes_one_whole_log_file_per_request() {
    let data = Proc::start(
        &["data-api", "--work-delay", "50ms", "--log-dir", "logs"],
        &[],
    );
    let (s, body) = get_json(&data.url("/")).await;
    assert_eq!(s, 200);
    let file = data
        .path()
        .join("logs")
        .join(body["file"].as_str().unwrap());
    let doc: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(doc["message"], body["message"]);
    assert_eq!(doc["level"], body["level"]);
    assert_eq!(doc["service"], "data-api");
    let text = support::get_text(&data.url("/metrics")).await;
    assert!(
        text.contains("ferrostack_generated_logs_total{level="),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_log_dir_gives_a_500_with_the_reason_and_the_process_stays_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    let _mount = ReadOnly::make(&ro);
    let data = Proc::start(
        &[
            "data-api",
            "--work-delay",
            "10ms",
            "--log-dir",
            ro.to_str().unwrap(),
        ],
        &[],
    );
    let (s, e) = get_json(&data.url("/")).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (500, Some("log_write_failed"))
    );
    let message = e["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("Read-only file system") || message.contains("Permission denied"),
        "the reason is named: {message}"
    );
    assert_eq!(get_json(&data.url("/healthz")).await.0, 200);
    assert_eq!(get_json(&data.url("/readyz")).await.0, 200);
    assert_eq!(get_json(&data.url("/api?still=up")).await.0, 200);
    let text = support::get_text(&data.url("/metrics")).await;
    assert!(
        text.contains("ferrostack_log_write_errors_total 1"),
        "{text}"
    );
}

/// A read-only directory: a read-only tmpfs mounted over it when running as root (root
/// ignores permission bits), else mode 0555.
struct ReadOnly(Option<std::path::PathBuf>);

impl ReadOnly {
    fn make(path: &std::path::Path) -> ReadOnly {
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs"])
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        if mounted {
            return ReadOnly(Some(path.to_owned()));
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o555)).unwrap();
        let probe = path.join("probe");
        assert!(
            std::fs::write(&probe, b"x").is_err(),
            "cannot make a read-only directory here"
        );
        ReadOnly(None)
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = std::process::Command::new("umount").arg(path).status();
        }
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    Ok,
    Fail,
    Slow,
}

#[derive(Clone)]
struct Upstream {
    mode: Arc<Mutex<Mode>>,
    seen: Arc<Mutex<Vec<String>>>,
}

async fn upstream_logs(State(up): State<Upstream>, headers: HeaderMap) -> (StatusCode, String) {
    let auth = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    up.seen.lock().unwrap().push(auth);
    let mode = *up.mode.lock().unwrap();
    match mode {
        Mode::Ok => (StatusCode::OK, "line one\nline two\n".into()),
        Mode::Fail => (StatusCode::INTERNAL_SERVER_ERROR, "boom".into()),
        Mode::Slow => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            (StatusCode::OK, "late".into())
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn download_external_logs_covers_every_outcome_and_never_leaks_the_key() {
    const DEV_KEY: &str = "dev-key-8f2b6c1d";
    const STAGING_KEY: &str = "staging-key-77aa01";
    let up = Upstream {
        mode: Arc::new(Mutex::new(Mode::Ok)),
        seen: Arc::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/logs", get(upstream_logs))
        .with_state(up.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let keys = tempfile::tempdir().unwrap();
    std::fs::write(keys.path().join("development"), format!("{DEV_KEY}\n")).unwrap();
    let url = format!("http://{up_addr}/logs");
    let mut backend = Proc::start(
        &[
            "backend-api",
            "--external-logs-url",
            &url,
            "--external-logs-timeout",
            "500ms",
            "--integration-keys-dir",
            keys.path().to_str().unwrap(),
        ],
        &[("INTEGRATION_KEY_STAGING", STAGING_KEY)],
    );
    let mut bodies = Vec::new();
    let mut call = async |query: &str| {
        let r = client()
            .get(backend.url(&format!("/download_external_logs{query}")))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        bodies.push(text.clone());
        (
            status,
            serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text)),
        )
    };

    let (s, body) = call("?env=development").await;
    assert_eq!((s, body.as_str()), (200, Some("line one\nline two\n")));
    let (s, _) = call("?env=staging").await;
    assert_eq!(s, 200);
    assert_eq!(
        *up.seen.lock().unwrap(),
        vec![format!("Bearer {DEV_KEY}"), format!("Bearer {STAGING_KEY}")],
        "each environment's key is sent as a bearer token"
    );

    let (s, e) = call("").await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (400, Some("missing_environment"))
    );
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("development, staging, production")
    );
    let (s, e) = call("?env=qa").await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (400, Some("unknown_environment"))
    );
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("development, staging, production")
    );
    let (s, e) = call("?env=production").await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (503, Some("integration_key_missing"))
    );
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("INTEGRATION_KEY_PRODUCTION")
    );

    *up.mode.lock().unwrap() = Mode::Fail;
    let (s, e) = call("?env=development").await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (502, Some("upstream_error"))
    );
    assert!(
        e["error"]["message"].as_str().unwrap().contains("500"),
        "{e}"
    );

    *up.mode.lock().unwrap() = Mode::Slow;
    let (s, e) = call("?env=development").await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (502, Some("upstream_timeout"))
    );

    // A rotated Secret file takes effect without a restart.
    *up.mode.lock().unwrap() = Mode::Ok;
    std::fs::write(keys.path().join("development"), "rotated-key-1").unwrap();
    assert_eq!(call("?env=development").await.0, 200);
    assert_eq!(
        up.seen.lock().unwrap().last().unwrap(),
        "Bearer rotated-key-1"
    );

    let metrics = support::get_text(&backend.url("/metrics")).await;
    assert!(metrics.contains(
        r#"ferrostack_external_logs_requests_total{env="development",outcome="upstream_timeout"} 1"#
    ));
    assert!(backend.stop().success());

    // Upstream down: nothing listens on the URL.
    let closed = support::free_port();
    let mut down = Proc::start(
        &[
            "backend-api",
            "--external-logs-url",
            &format!("http://127.0.0.1:{closed}/logs"),
        ],
        &[("INTEGRATION_KEY_DEVELOPMENT", DEV_KEY)],
    );
    let r = client()
        .get(down.url("/download_external_logs?env=development"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    let text = r.text().await.unwrap();
    let e: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(e["error"]["code"], "upstream_unreachable");
    bodies.push(text);
    let down_metrics = support::get_text(&down.url("/metrics")).await;
    assert!(down.stop().success());

    // Not configured at all.
    let bare = Proc::start(&["backend-api"], &[]);
    let (s, e) = get_json(&bare.url("/download_external_logs?env=staging")).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (503, Some("external_logs_not_configured"))
    );

    for key in [DEV_KEY, STAGING_KEY, "rotated-key-1"] {
        for (what, text) in [
            ("stdout", backend.stdout()),
            ("stderr", backend.stderr()),
            ("metrics", metrics.clone()),
            ("down stdout", down.stdout()),
            ("down stderr", down.stderr()),
            ("down metrics", down_metrics.clone()),
        ] {
            assert!(!text.contains(key), "the key leaked into {what}");
        }
        for body in &bodies {
            assert!(
                !body.contains(key),
                "the key leaked into a response: {body}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_with_fifty_requests_in_flight_drains_and_answers_them_all() {
    let mut data = Proc::start(
        &[
            "data-api",
            "--work-delay",
            "2s",
            "--drain-delay",
            "1s",
            "--log-dir",
            "logs",
        ],
        &[],
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let url = data.url("/");
    let inflight: Vec<_> = (0..50)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move { client.get(&url).send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(400)).await;
    data.signal("TERM");

    let mut saw_503 = false;
    let readyz = data.url("/readyz");
    for _ in 0..40 {
        match client.get(&readyz).send().await {
            Ok(r) if r.status() == 503 => {
                saw_503 = true;
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    assert!(saw_503, "/readyz must answer 503 during the drain");
    for task in inflight {
        assert_eq!(task.await.unwrap().expect("answered, not dropped"), 200);
    }
    let status = tokio::task::spawn_blocking(move || {
        let status = data.wait_exit(Duration::from_secs(20));
        (
            status,
            support::log_dir_files(&data.path().join("logs")).len(),
        )
    })
    .await
    .unwrap();
    assert!(
        status.0.success(),
        "exit 0 after a graceful shutdown: {:?}",
        status.0
    );
    assert_eq!(status.1, 50);
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_injection_switch_fails_api_routes_but_never_probes() {
    let data = Proc::start(&["data-api", "--fault-injection"], &[]);
    let r = client()
        .post(data.url("/fault_injection/enable"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let (s, e) = get_json(&data.url("/api")).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (500, Some("fault_injected"))
    );
    assert_eq!(get_json(&data.url("/healthz")).await.0, 200);
    assert_eq!(get_json(&data.url("/readyz")).await.0, 200);
    let (_, st) = get_json(&data.url("/fault_injection/status")).await;
    assert_eq!(st["fault_injection"], "enabled");
    client()
        .post(data.url("/fault_injection/disable"))
        .send()
        .await
        .unwrap();
    assert_eq!(get_json(&data.url("/api")).await.0, 200);

    let plain = Proc::start(&["data-api"], &[]);
    assert_eq!(
        client()
            .post(plain.url("/fault_injection/enable"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    for (args, needle) in [
        (
            vec!["backend-api", "--external-logs-url", "ftp://x"],
            "--external-logs-url",
        ),
        (vec!["data-api", "--work-delay", "soon"], "--work-delay"),
        (
            vec!["data-api", "--random-error-ratio", "2", "--random-error"],
            "--random-error-ratio",
        ),
        (vec!["data-api", "--log-level", "info,["], "--log-level"),
    ] {
        let out = std::process::Command::new(support::BIN)
            .args(&args)
            .env_clear()
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}
