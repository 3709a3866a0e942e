//! `ferrostack healthcheck` through the real binary: exit codes, one-line config errors,
//! concurrent CronJob runs sharing one history, serve mode, and `up` probing its own services.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::Value;
use support::BIN;

/// A local target: `/ok` answers 200, `/down` 503.
async fn target() -> String {
    let app = Router::new().route("/ok", get(|| async { "ok" })).route(
        "/down",
        get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down") }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn healthcheck(args: &[&str], dir: &std::path::Path) -> Output {
    Command::new(BIN)
        .arg("healthcheck")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_bad_config_exits_2_with_one_line_naming_file_target_and_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("targets.yaml"),
        "targets:\n  - name: data-api\n    url: http://data-api/\n    conditions: ['[STATUS]==200']\n",
    )
    .unwrap();
    let out = healthcheck(&["run", "--config", "targets.yaml"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(r#"ferrostack: configuration error: targets.yaml: target "data-api": field "conditions": invalid condition "[STATUS]==200""#),
        "{stderr}"
    );
    let out = healthcheck(&["serve", "--config", "missing.yaml"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("missing.yaml: cannot read"), "{stderr}");
}

/// `healthcheck` under a 2 GiB address-space limit and a 30 s timeout, so that an unbounded
/// read fails the test quickly instead of growing until the OOM killer.
fn healthcheck_bounded(args: &[&str], dir: &std::path::Path) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -v 2097152; exec timeout 30 "$0" healthcheck "$@""#)
        .arg(BIN)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn endless_config_and_ca_files_exit_2_naming_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.yaml"),
        "targets:\n  - {name: a, url: 'https://127.0.0.1:1/', tls: {ca-file: /dev/zero}}\n",
    )
    .unwrap();
    let cases: [(&[&str], &str); 2] = [
        (
            &["run", "--config", "/dev/zero"],
            "/dev/zero: larger than 16777216 bytes",
        ),
        (
            &["run", "--config", "t.yaml"],
            r#"t.yaml: target "a": field "tls.ca-file": /dev/zero is larger than 16777216 bytes"#,
        ),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|(args, want)| exits_2_with_one_line(args, dir.path(), want).err())
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn interval_and_retention_below_their_minimum_exit_2_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &["serve", "--port", "0", "--interval", "0s"],
            r#"flags: field "--interval": must be at least 1s, not 0s"#,
        ),
        (
            &["run", "--history", "h.jsonl", "--history-max-bytes", "0"],
            r#"flags: field "--history-max-bytes": 0 is less than the minimum 1048576"#,
        ),
        (
            &["run", "--history", "h.jsonl", "--history-max-age", "0s"],
            r#"flags: field "--history-max-age": 0s is less than the minimum 1h"#,
        ),
        (
            // Probed hourly, fired by 3 failures, resolved by 2 successes: 5 results, 5 h.
            &["run", "--config", "t.yaml", "--history-max-age", "2h"],
            r#"flags: field "--history-max-age": 2h is less than the minimum 5h"#,
        ),
    ];
    std::fs::write(
        dir.path().join("t.yaml"),
        "targets: [{name: a, url: 'http://127.0.0.1:1/', interval: 1h}]\n",
    )
    .unwrap();
    // Every case is tried before failing, so that a regression shows all it breaks.
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|(args, want)| exits_2_with_one_line(args, dir.path(), want).err())
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// `Ok` when `healthcheck <args>` exits 2 with one stderr line starting with the
/// configuration error `want`; else what it did instead.
fn exits_2_with_one_line(args: &[&str], dir: &std::path::Path, want: &str) -> Result<(), String> {
    let out = healthcheck_bounded(args, dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let want = format!("ferrostack: configuration error: {want}");
    if out.status.code() == Some(2) && stderr.lines().count() == 1 && stderr.starts_with(&want) {
        Ok(())
    } else {
        Err(format!("{args:?}: {:?} {stderr}", out.status))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn run_exits_0_when_all_pass_and_1_when_one_fails() {
    let base = target().await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = |down: bool| {
        format!(
            "targets:\n  - {{name: a, url: '{base}/ok'}}\n  - {{name: b, url: '{base}/{}'}}\n",
            if down { "down" } else { "ok" }
        )
    };
    std::fs::write(dir.path().join("good.yaml"), yaml(false)).unwrap();
    std::fs::write(dir.path().join("bad.yaml"), yaml(true)).unwrap();
    let p = dir.path().to_owned();
    let (good, bad) = tokio::task::spawn_blocking(move || {
        (
            healthcheck(
                &["run", "--config", "good.yaml", "--history", "h.jsonl"],
                &p,
            ),
            healthcheck(&["run", "--config", "bad.yaml", "--history", "h.jsonl"], &p),
        )
    })
    .await
    .unwrap();
    assert_eq!(
        good.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("1 of 2 targets failed"));
    let logs = support::json_lines(&String::from_utf8_lossy(&bad.stdout));
    let failed = logs
        .iter()
        .find(|l| l["message"] == "probe failed")
        .unwrap();
    assert_eq!(failed["reason"], "[STATUS] (503) == 200");
    let history = std::fs::read_to_string(dir.path().join("h.jsonl")).unwrap();
    assert_eq!(history.lines().count(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_runs_never_corrupt_the_shared_history() {
    const RUNS: usize = 8;
    const TARGETS: usize = 40;
    let base = target().await;
    let dir = tempfile::tempdir().unwrap();
    let targets: String = (0..TARGETS)
        .map(|i| format!("  - {{name: t{i}, url: '{base}/ok'}}\n"))
        .collect();
    std::fs::write(dir.path().join("t.yaml"), format!("targets:\n{targets}")).unwrap();
    let children: Vec<_> = (0..RUNS)
        .map(|_| {
            Command::new(BIN)
                .args([
                    "healthcheck",
                    "run",
                    "--config",
                    "t.yaml",
                    "--history",
                    "state/h.jsonl",
                ])
                // Retention rewrites race with the appends of the other runs.
                .args([
                    "--history-max-bytes",
                    "100000000",
                    "--history-max-age",
                    "1h",
                ])
                .current_dir(dir.path())
                .env_clear()
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let statuses = tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|mut c| c.wait().unwrap())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    assert!(statuses.iter().all(|s| s.success()), "{statuses:?}");
    let text = std::fs::read_to_string(dir.path().join("state/h.jsonl")).unwrap();
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("corrupt line ({e}): {l}")))
        .collect();
    assert_eq!(records.len(), RUNS * TARGETS);
    for i in 0..TARGETS {
        let n = records
            .iter()
            .filter(|r| r["target"] == format!("t{i}"))
            .count();
        assert_eq!(n, RUNS, "t{i}");
    }
}

/// Polls `url` (an /api/status) until no target is unknown; returns that status.
async fn settled_status(url: &str) -> Value {
    let pause = Duration::from_millis(100);
    test_support::poll_async(
        "every target probed",
        Duration::from_secs(10),
        pause,
        || async move {
            let status: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
            let targets = status["targets"].as_array().unwrap();
            targets
                .iter()
                .all(|t| t["state"] != "unknown")
                .then_some(status)
        },
    )
    .await
}

/// (name, state, url) of every target in a status.
fn targets_of(status: &Value) -> Vec<(&str, &str, &str)> {
    status["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let field = |k: &str| t[k].as_str().unwrap();
            (field("name"), field("state"), field("url"))
        })
        .collect()
}

/// `healthcheck serve` from its command line: probes the configured targets and stops on
/// SIGTERM with exit 0 (its page, metrics and OpenAPI are checked in process, in
/// crates/health/tests/integration/serve.rs).
#[tokio::test(flavor = "multi_thread")]
async fn serve_probes_the_configured_targets_and_stops_on_sigterm() {
    let base = target().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("t.yaml");
    std::fs::write(
        &config,
        format!("targets:\n  - {{name: up, url: '{base}/ok', interval: 1s}}\n  - {{name: down, url: '{base}/down', interval: 1s}}\n"),
    )
    .unwrap();
    let config = config.display().to_string();
    let mut serve = tokio::task::spawn_blocking(move || {
        let args = ["healthcheck", "serve", "--config", &config];
        support::start(
            &[&args[..], &["--history", "h.jsonl", "--drain-delay", "0s"]].concat(),
            &[],
        )
    })
    .await
    .unwrap();
    let status = settled_status(&serve.url("/api/status")).await;
    let states: Vec<_> = targets_of(&status).iter().map(|t| (t.0, t.1)).collect();
    // `down` has never answered since it was added: degraded (it never pages) until it has.
    assert_eq!(states, [("up", "up"), ("down", "degraded")]);
    let status = tokio::task::spawn_blocking(move || serve.stop())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn up_runs_the_health_checker_against_its_own_services() {
    let base = support::free_port_range(7);
    let args: Vec<String> = ["up", "--base-port", &base.to_string()]
        .into_iter()
        .chain(["--work-delay", "50ms", "--data-dir", "state"])
        .map(str::to_owned)
        .collect();
    let mut up = tokio::task::spawn_blocking(move || {
        let up = support::spawn(&args, &[], base);
        up.wait_ready(&format!("http://127.0.0.1:{}/readyz", base + 2));
        up
    })
    .await
    .unwrap();
    let status = settled_status(&format!("http://127.0.0.1:{}/api/status", base + 2)).await;
    let url = |offset: u16, path: &str| format!("http://127.0.0.1:{}{path}", base + offset);
    let download = url(0, "/download_external_logs?env=development");
    let (backend, data) = (url(0, "/"), url(1, "/"));
    assert_eq!(
        targets_of(&status),
        [
            ("backend-api", "up", backend.as_str()),
            ("data-api", "up", data.as_str()),
            ("download-external-logs", "up", download.as_str()),
        ]
    );
    let history =
        std::fs::read_to_string(up.path().join("state/healthcheck/history.jsonl")).unwrap();
    assert!(
        history.lines().count() >= 3,
        "results are kept under the data dir"
    );
    assert!(
        up.stderr().contains(&url(2, "/")),
        "the table lists the health checker"
    );
    up.signal("INT");
    let status = tokio::task::spawn_blocking(move || up.wait_exit(Duration::from_secs(30)))
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
}

/// Where the process may not open an unprivileged ping socket, an icmp:// target stops
/// `healthcheck run` at start-up: exit 2, one line naming the sysctl and what to set. Needs
/// root to set `net.ipv4.ping_group_range` to `1 0` (nobody) for a moment; restored after.
#[test]
fn icmp_target_without_a_ping_socket_exits_2_naming_the_sysctl() {
    const SYSCTL: &str = "/proc/sys/net/ipv4/ping_group_range";
    struct Restore(String);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = std::fs::write(SYSCTL, self.0.trim());
        }
    }
    let Ok(saved) = std::fs::read_to_string(SYSCTL) else {
        return;
    };
    if let Err(e) = std::fs::write(SYSCTL, "1 0") {
        eprintln!("SKIP icmp start-up error: cannot write {SYSCTL} ({e}); needs root");
        return;
    }
    let restore = Restore(saved);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("targets.yaml"),
        "targets:\n  - name: gateway\n    url: icmp://127.0.0.1\n",
    )
    .unwrap();
    let out = healthcheck(&["run", "--config", "targets.yaml"], dir.path());
    drop(restore);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(r#"ferrostack: configuration error: targets.yaml: target "gateway": field "url": icmp targets need an unprivileged ICMP (ping) socket, but gid 0 is outside the sysctl net.ipv4.ping_group_range (now "1 0"): set it to a range holding that group, e.g. sysctl -w net.ipv4.ping_group_range="0 2147483647""#),
        "{stderr}"
    );
}
