//! backend-api and data-api, tested through the real binary over real sockets: every route
//! and status, the external logs API played by a real local HTTP server, the log-file
//! writer under 1,000 concurrent requests, a read-only log dir, and graceful shutdown.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{Proc, json_lines};
use test_support::upstream::{Mode, Upstream, recording_server};

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

/// data-api prints one JSON line per answered /api call with its parameters, role and
/// request id, and none for a refused one (the answers themselves are checked in process, in
/// crates/services/tests/routes.rs).
#[tokio::test(flavor = "multi_thread")]
async fn api_prints_one_line_per_answered_call() {
    let mut data = support::start(&["data-api"], &[]);
    let tags = get_json(&data.url("/api?name=ferro&tag=a&tag=b&tag=c&empty=&sp=x+y%21")).await;
    assert_eq!(tags.0, 200);
    let long = "v".repeat(10 * 1024);
    assert_eq!(
        get_json(&data.url(&format!("/api?long={long}&long=2")))
            .await
            .0,
        200
    );
    assert_eq!(get_json(&data.url("/api?bad=%FF")).await.0, 400);
    let huge = "v".repeat(20 * 1024);
    assert_eq!(get_json(&data.url(&format!("/api?x={huge}"))).await.0, 414);

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

/// A served role is ready and counts its log events (the routes, errors, request ids and
/// the other metrics are checked in process, in crates/services/tests/routes.rs).
#[tokio::test(flavor = "multi_thread")]
async fn a_served_role_is_ready_and_counts_its_log_events() {
    let backend = support::start(&["backend-api"], &[]);
    let (s, b) = get_json(&backend.url("/readyz")).await;
    assert_eq!((s, b["status"].as_str()), (200, Some("ok")));
    let text = support::get_text(&backend.url("/metrics")).await;
    for needle in [
        r#"ferrostack_log_events_total{level="info"}"#,
        r#"role="backend-api"} 1"#,
        "process_open_fds",
    ] {
        assert!(text.contains(needle), "metrics lack {needle}:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn root_writes_one_whole_log_file_per_request() {
    let data = support::start(
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
    let data = support::start(
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

const DEV_KEY: &str = "dev-key-8f2b6c1d";
const STAGING_KEY: &str = "staging-key-77aa01";
const ROTATED_KEY: &str = "rotated-key-1";

/// The status and body of `GET <backend>/download_external_logs?env=<env>`.
async fn download(backend: &Proc, env: &str) -> (u16, String) {
    let url = backend.url(&format!("/download_external_logs?env={env}"));
    let r = client().get(url).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// A backend-api process calling `up`: the development key in a file under `keys`, the
/// staging key in its environment.
fn backend_calling(up: &Upstream, keys: &std::path::Path) -> Proc {
    std::fs::write(keys.join("development"), format!("{DEV_KEY}\n")).unwrap();
    support::start(
        &[
            "backend-api",
            "--external-logs-url",
            &up.url(),
            "--external-logs-timeout",
            "500ms",
            "--integration-keys-dir",
            keys.to_str().unwrap(),
        ],
        &[("INTEGRATION_KEY_STAGING", STAGING_KEY)],
    )
}

/// Every outcome against `up` (the codes are the in-process tests' in crates/services), with
/// a key rotation; returns the bodies.
async fn every_outcome(backend: &Proc, up: &Upstream, keys: &std::path::Path) -> Vec<String> {
    let mut bodies = Vec::new();
    for (mode, env, status) in [
        (Mode::Ok, "development", 200),
        (Mode::Ok, "staging", 200),
        (Mode::Ok, "production", 503),
        (Mode::Ok, "qa", 400),
        (Mode::Fail, "development", 502),
        (Mode::Slow, "development", 502),
    ] {
        up.set_mode(mode);
        let (got, body) = download(backend, env).await;
        assert_eq!(got, status, "{mode:?} {env}: {body}");
        bodies.push(body);
    }
    up.set_mode(Mode::Ok);
    std::fs::write(keys.join("development"), ROTATED_KEY).unwrap();
    assert_eq!(download(backend, "development").await.0, 200);
    bodies
}

/// Fails when any of the keys appears in any of `texts` (what, text).
fn assert_no_key_in(texts: &[(&str, String)]) {
    for key in [DEV_KEY, STAGING_KEY, ROTATED_KEY] {
        assert_no_key_of(key, texts);
    }
}

/// Fails when `key` appears in any of `texts` (what, text).
fn assert_no_key_of(key: &str, texts: &[(&str, String)]) {
    for (what, text) in texts {
        assert!(!text.contains(key), "the key leaked into {what}: {text}");
    }
}

/// The process end of /download_external_logs: the key read from the environment's
/// INTEGRATION_KEY_<ENV> and from the keys directory is sent (as the in-process tests check
/// in detail), and never appears in stdout, stderr, /metrics or a response, whatever the
/// outcome, an unreachable upstream included.
#[tokio::test(flavor = "multi_thread")]
async fn download_external_logs_never_leaks_the_key() {
    let up = Upstream::start().await;
    let keys = tempfile::tempdir().unwrap();
    let mut backend = backend_calling(&up, keys.path());
    let mut bodies = every_outcome(&backend, &up, keys.path()).await;
    let seen = up.seen();
    assert_eq!(
        seen[..2],
        [format!("Bearer {DEV_KEY}"), format!("Bearer {STAGING_KEY}")]
    );
    assert_eq!(seen.last().unwrap(), &format!("Bearer {ROTATED_KEY}"));
    let metrics = support::get_text(&backend.url("/metrics")).await;
    assert!(backend.stop().success());

    let closed = format!("http://127.0.0.1:{}/logs", support::free_port());
    let dev_key = [("INTEGRATION_KEY_DEVELOPMENT", DEV_KEY)];
    let mut down = support::start(&["backend-api", "--external-logs-url", &closed], &dev_key);
    let (status, body) = download(&down, "development").await;
    assert_eq!(status, 502, "{body}");
    bodies.push(body);
    let down_metrics = support::get_text(&down.url("/metrics")).await;
    assert!(down.stop().success());

    let mut texts = vec![
        ("stdout", backend.stdout()),
        ("stderr", backend.stderr()),
        ("metrics", metrics),
        ("down stdout", down.stdout()),
        ("down stderr", down.stderr()),
        ("down metrics", down_metrics),
    ];
    texts.extend(bodies.into_iter().map(|b| ("a response", b)));
    assert_no_key_in(&texts);
}

/// The process end of a redirect: the key the configured API received is not in stdout,
/// stderr or /metrics, and the redirect target got nothing (the status, the error and the
/// Location are checked in process, in crates/services/tests/external.rs).
#[tokio::test(flavor = "multi_thread")]
async fn download_external_logs_never_follows_or_logs_a_redirect_with_the_key() {
    const KEY: &str = "redirect-key-5e9d";
    let (other, other_seen) = recording_server(|_| None).await;
    let (api, _) = recording_server(move |path| {
        (path == "/logs").then(|| format!("http://localhost:{}/hop?k={KEY}", other.port()))
    })
    .await;
    let url = format!("http://{api}/logs");
    let mut backend = support::start(
        &["backend-api", "--external-logs-url", &url],
        &[("INTEGRATION_KEY_DEVELOPMENT", KEY)],
    );
    let (status, body) = download(&backend, "development").await;
    assert_eq!(status, 502, "{body}");
    let other_seen = other_seen.lock().unwrap().clone();
    assert!(
        other_seen.is_empty(),
        "the redirect target was called: {other_seen:?}"
    );
    let metrics = support::get_text(&backend.url("/metrics")).await;
    assert!(backend.stop().success());
    assert_no_key_of(
        KEY,
        &[
            ("stdout", backend.stdout()),
            ("stderr", backend.stderr()),
            ("metrics", metrics),
            ("the response", body),
        ],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_with_fifty_requests_in_flight_drains_and_answers_them_all() {
    let mut data = support::start(
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

/// `--fault-injection` serves the switch and its 500s reach data-api's routes while /readyz
/// stays 200; without the flag there is no switch (the switch's routes in detail:
/// crates/runtime/tests/http.rs, in process).
#[tokio::test(flavor = "multi_thread")]
async fn fault_injection_switch_fails_api_routes_but_never_probes() {
    let data = support::start(&["data-api", "--fault-injection"], &[]);
    let enable = |proc: &Proc| client().post(proc.url("/fault_injection/enable")).send();
    assert_eq!(enable(&data).await.unwrap().status(), 202);
    let (s, e) = get_json(&data.url("/api")).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (500, Some("fault_injected"))
    );
    assert_eq!(get_json(&data.url("/readyz")).await.0, 200);

    let plain = support::start(&["data-api"], &[]);
    assert_eq!(enable(&plain).await.unwrap().status(), 404);
}

/// Runs `command` to its end, killing it after `limit` (a bad flag the binary accepted would
/// otherwise serve forever).
fn output_within(command: &mut std::process::Command, limit: Duration) -> std::process::Output {
    use std::process::Stdio;
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (done, waited) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if waited.recv_timeout(limit).is_err() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    });
    let out = child.wait_with_output().unwrap();
    let _ = done.send(());
    out
}

/// `ferrostack <args>` with only `env` exits 2 with one line on stderr naming `needle`.
fn assert_config_error(args: &[&str], env: &[(&str, &str)], needle: &str) {
    let out = output_within(
        std::process::Command::new(support::BIN)
            .args(args)
            .env_clear()
            .envs(env.iter().copied()),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(needle), "{args:?} {env:?}: {stderr}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "{args:?} {env:?}: one line: {stderr}"
    );
    assert!(
        stderr.starts_with("ferrostack: configuration error: "),
        "{args:?}: {stderr}"
    );
    assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
}

#[test]
fn bad_values_exit_2_with_one_line_naming_the_flag() {
    let url = ["backend-api", "--external-logs-url", "ftp://x"];
    assert_config_error(&url, &[], "--external-logs-url");
    let delay = ["data-api", "--work-delay", "soon"];
    assert_config_error(&delay, &[], "--work-delay");
    let ratio = ["data-api", "--random-error-ratio", "2", "--random-error"];
    assert_config_error(&ratio, &[], "--random-error-ratio");
    let level = ["data-api", "--log-level", "info,["];
    assert_config_error(&level, &[], "--log-level");
    let delay_env = [("FERROSTACK_WORK_DELAY", "soon")];
    assert_config_error(&["data-api"], &delay_env, "--work-delay");
}

/// Limits that would refuse every request, or that no request can reach.
#[test]
fn limits_out_of_range_exit_2_with_one_line_naming_the_flag() {
    for (args, needle) in [
        (
            ["data-api", "--max-header-bytes", "0"],
            "--max-header-bytes",
        ),
        (["data-api", "--max-uri-bytes", "0"], "--max-uri-bytes"),
        (["backend-api", "--max-uri-bytes", "255"], "--max-uri-bytes"),
        (["data-api", "--max-uri-bytes", "70000"], "--max-uri-bytes"),
        (
            ["data-api", "--max-header-bytes", "2000000"],
            "--max-header-bytes",
        ),
    ] {
        assert_config_error(&args, &[], needle);
    }
    let uri_env = [("FERROSTACK_MAX_URI_BYTES", "0")];
    assert_config_error(&["data-api"], &uri_env, "--max-uri-bytes");
}

/// The argument parser's own errors.
#[test]
fn parser_errors_exit_2_with_one_line_naming_the_flag() {
    let huge = ["data-api", "--max-header-bytes", "99999999999999999999999"];
    assert_config_error(&huge, &[], "--max-header-bytes");
    assert_config_error(&["data-api", "--port", "70000"], &[], "--port");
    assert_config_error(&["data-api", "--port"], &[], "--port");
    assert_config_error(&["data-api", "--no-such-flag"], &[], "--no-such-flag");
    assert_config_error(&["data-api", "--work-dely", "1s"], &[], "--work-dely");
    assert_config_error(&["webhook", "check"], &[], "<FILE>");
    assert_config_error(&["no-such-role"], &[], "no-such-role");
}

/// --help and --version are clap's, unchanged.
#[test]
fn help_and_version_exit_0_on_stdout() {
    let out = std::process::Command::new(support::BIN)
        .args(["data-api", "--help"])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Usage: ferrostack data-api [OPTIONS]"),
        "{help}"
    );
    assert!(help.contains("--max-uri-bytes"), "{help}");
    let out = std::process::Command::new(support::BIN)
        .arg("--version")
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ferrostack "));
}
