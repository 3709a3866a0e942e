//! Rollups and degraded results over real sockets and processes: a serve killed with -9 and
//! restarted keeps exact counts; a year of history answers every window with the SLO budget;
//! degraded results never reach the alert receiver.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ferrostack_health::history::History;
use ferrostack_health::record::Record;
use ferrostack_health::{AlertConfig, Config, HistoryConfig, Thresholds};
use time::OffsetDateTime;

use crate::fixtures;
use crate::serve::{start, target, wait_for};
use crate::support::{Receiver, target_server, targets};

const CHILD_ENV: &str = "FERROSTACK_TEST_ROLLUP_CHILD";
const URL_ENV: &str = "FERROSTACK_TEST_ROLLUP_URL";
const INTERVAL_ENV: &str = "FERROSTACK_TEST_ROLLUP_INTERVAL";

fn history_config(path: &std::path::Path) -> HistoryConfig {
    HistoryConfig {
        path: path.to_owned(),
        max_age: None,
        max_bytes: None,
    }
}

/// The child: one serve over the history in `CHILD_ENV`, probing `URL_ENV`; prints its base
/// URL and runs until killed.
async fn child(path: &str) {
    let url = std::env::var(URL_ENV).unwrap();
    let interval = std::env::var(INTERVAL_ENV).unwrap();
    {
        let running = start(Config {
            targets: targets(&format!(
                "targets: [{{name: api, url: '{url}', interval: {interval}}}]"
            )),
            history: Some(history_config(std::path::Path::new(path))),
            alerts: AlertConfig::default(),
            pushgateway_url: None,
            max_concurrent_probes: 256,
        })
        .await;
        println!("{}", running.base);
        std::future::pending::<()>().await;
    }
}

/// A child serve, killed with SIGKILL when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_child(path: &std::path::Path, url: &str, interval: &str) -> (Killed, String) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "rollup::a_serve_killed_with_sigkill_keeps_exact_counts",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, path)
        .env(URL_ENV, url)
        .env(INTERVAL_ENV, interval)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = lines
        // libtest prints `test <name> ... ` first, on the same line.
        .find_map(|l| Some(l.ok()?.split_once("http://")?.1.to_owned()))
        .map(|rest| format!("http://{rest}"))
        .unwrap_or_else(|| panic!("the child printed no address"));
    (Killed(child), base)
}

/// Results, failures and degraded results of `api` in the history.
fn history_counts(path: &std::path::Path) -> (u64, u64) {
    let all = History::new(path).read_all().unwrap();
    let api: Vec<&Record> = all.iter().filter(|r| r.target == "api").collect();
    let failures = api.iter().filter(|r| !r.success).count() as u64;
    (api.len() as u64, failures)
}

fn year(v: &serde_json::Value) -> (u64, u64) {
    let w = &target(v, "api")["windows"]["365d"];
    (
        w["count"].as_u64().unwrap(),
        w["failures"].as_u64().unwrap(),
    )
}

/// Killed with SIGKILL three times while probing every second, with CronJob results (older
/// ones too) appended while it is down: the year's counts equal the history's, each result
/// folded once.
#[tokio::test]
async fn a_serve_killed_with_sigkill_keeps_exact_counts() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        child(&path).await;
        return;
    }
    let s = target_server().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    let url = s.url("/ok");
    // The target has succeeded before, so the CronJob's failures count as failures.
    let mut cron = vec![fixtures::record("api", OffsetDateTime::now_utc(), true)];
    let mut seen = 0;
    for round in 0..3u64 {
        let (child, base) = spawn_child(&path, &url, "1s");
        let v = wait_for(&base, |v| year(v).0 >= seen + 3).await;
        seen = year(&v).0;
        drop(child);
        // While it is down, a CronJob appends: failures, one older than what serve folded.
        for ago in [0, 3600 * 3] {
            cron.push(fixtures::record(
                "api",
                OffsetDateTime::now_utc() - Duration::from_secs(ago + round),
                false,
            ));
        }
        History::new(&path).append(&cron).unwrap();
        cron.clear();
    }
    // The last run probes once (1 h interval), so the counts settle.
    let (child, base) = spawn_child(&path, &url, "1h");
    let want = || history_counts(&path);
    let v = wait_for(&base, |v| year(v) == want()).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = wait_for(&base, |_| true).await;
    drop(child);
    assert_eq!(year(&again), year(&v), "nothing was folded twice later");
    assert_eq!(year(&again), want());
    assert_eq!(year(&v).1, 6, "the CronJob's six failures, each once");
    assert!(dir.path().join("history.jsonl.rollups").exists());
}

/// One result every 6 h over 400 days: a failure every 40th, a retried pass every 50th,
/// latencies 10–50 ms.
fn a_year_of_results(now: OffsetDateTime) -> Vec<Record> {
    (0..1600i64)
        .rev()
        .map(|k| {
            let t = now - time::Duration::hours(6 * k) - time::Duration::minutes(1);
            let mut r = fixtures::record("api", t, k % 40 != 5);
            r.response_time_seconds = 0.01 * (1 + k % 5) as f64;
            if k % 50 == 9 {
                r.attempts = 2;
            }
            r
        })
        .collect()
}

/// What a window holds, by its definition: hours or UTC days up to now, now's included.
fn expected(records: &[Record], now: OffsetDateTime, name: &str) -> (u64, u64, u64) {
    let (hour, day) = (
        now.unix_timestamp().div_euclid(3600),
        now.unix_timestamp().div_euclid(86_400),
    );
    let inside = |r: &&Record| {
        let t = r.time.unix_timestamp();
        match name {
            "24h" => t.div_euclid(3600) > hour - 24,
            _ => {
                let n: i64 = name.trim_end_matches('d').parse().unwrap();
                t.div_euclid(86_400) > day - n
            }
        }
    };
    let rs: Vec<&Record> = records.iter().filter(inside).collect();
    let failures = rs.iter().filter(|r| !r.success).count() as u64;
    let degraded = rs.iter().filter(|r| r.success && r.attempts > 1).count() as u64;
    (rs.len() as u64, failures, degraded)
}

/// One window of `api` (SLO 99%) against the counts it must hold.
fn check_window(api: &serde_json::Value, name: &str, (count, failures, degraded): (u64, u64, u64)) {
    let w = &api["windows"][name];
    assert_eq!(
        (
            w["count"].as_u64(),
            w["failures"].as_u64(),
            w["degraded"].as_u64()
        ),
        (Some(count), Some(failures), Some(degraded)),
        "{name}: {w}"
    );
    let uptime = (count - failures) as f64 / count as f64;
    assert!(
        (w["uptime"].as_f64().unwrap() - uptime).abs() < 1e-12,
        "{name}"
    );
    assert_eq!(api["uptime"][name], w["uptime"]);
    let allowed = 0.01 * count as f64;
    let budget = &w["budget"];
    assert!((budget["allowed_failures"].as_f64().unwrap() - allowed).abs() < 1e-9);
    let remaining = 1.0 - failures as f64 / allowed;
    assert!(
        (budget["remaining"].as_f64().unwrap() - remaining).abs() < 1e-9,
        "{name}"
    );
    // Latencies 10..50 ms, evenly: p50 30 ms, p99 50 ms, within the sketch's 2%.
    let lat = &w["latency"];
    if count >= 100 {
        for (q, want) in [("p50", 0.03), ("p99", 0.05)] {
            let got = lat[q].as_f64().unwrap();
            assert!((got - want).abs() <= want * 0.02, "{name} {q}: {got}");
        }
    }
}

#[tokio::test]
async fn a_year_of_history_answers_every_window_with_its_budget() {
    let s = target_server().await;
    // Serve's own probe never ends, so only the crafted history counts.
    s.set_delay(Duration::from_secs(120));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    let now = OffsetDateTime::now_utc();
    let records = a_year_of_results(now);
    History::new(&path).append(&records).unwrap();
    let running = start(Config {
        targets: targets(&format!(
            "defaults: {{slo: 99%}}\ntargets: [{{name: api, url: '{}', interval: 1h, timeout: 60s}}]",
            s.url("/slow")
        )),
        history: Some(history_config(&path)),
        alerts: AlertConfig::default(),
        pushgateway_url: None,
        max_concurrent_probes: 256,
    })
    .await;
    let v = wait_for(&running.base, |v| year(v).0 > 0).await;
    let api = target(&v, "api");
    assert_eq!(api["slo"], 99.0);
    let names: Vec<&String> = api["windows"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["24h", "7d", "30d", "90d", "365d"]);
    let names: Vec<&String> = api["uptime"].as_object().unwrap().keys().collect();
    assert_eq!(
        names,
        ["1h", "24h", "7d", "30d", "90d", "365d"],
        "shortest first"
    );
    for name in ["24h", "7d", "30d", "90d", "365d"] {
        check_window(api, name, expected(&records, now, name));
    }
    // A year spends a 99% budget on a failure every 40th: overspent.
    assert!(
        api["windows"]["365d"]["budget"]["remaining"]
            .as_f64()
            .unwrap()
            < 0.0
    );
    let html = reqwest::get(format!("{}/", running.base)).await.unwrap();
    let html = html.text().await.unwrap();
    assert!(html.contains("<dt>uptime 365d</dt>"), "{html}");
    assert!(html.contains("budget left (99%)"), "{html}");
}

/// The targets of every webhook post so far (after a pause for those in flight).
async fn posted_targets(receiver: &Receiver) -> Vec<String> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    receiver
        .take()
        .iter()
        .map(|(_, body)| {
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            v["target"].as_str().unwrap_or_default().to_owned()
        })
        .collect()
}

/// A target that never succeeded and one that passes only on its retry are degraded: shown
/// so, counted apart, and nothing reaches the receiver; a target that was up and fails does.
#[tokio::test]
async fn degraded_results_never_reach_the_alert_receiver() {
    let (s, broken) = (target_server().await, target_server().await);
    broken.fail_with(503);
    let receiver = Receiver::start().await;
    let running = start(Config {
        targets: targets(&format!(
            "targets:\n  - {{name: never-up, url: '{}', interval: 1s}}\n  - {{name: flaky, url: '{}', interval: 1s, retries: 1, retry-backoff: 10ms}}\n  - {{name: was-up, url: '{}', interval: 1s}}\n",
            broken.url("/status"),
            s.url("/flaky"),
            s.url("/status"),
        )),
        history: None,
        alerts: AlertConfig {
            alertmanager_url: None,
            webhook_url: Some(format!("{}/hook", receiver.url())),
            thresholds: Thresholds {
                failure: 1,
                success: 1,
            },
        },
        pushgateway_url: None,
        max_concurrent_probes: 256,
    })
    .await;
    wait_for(&running.base, |v| target(v, "was-up")["state"] == "up").await;
    s.fail_with(500);
    let v = wait_for(&running.base, |v| {
        target(v, "was-up")["alerting"] == true
            && ["never-up", "flaky"]
                .iter()
                .all(|n| target(v, n)["windows"]["24h"]["degraded"].as_u64() >= Some(3))
    })
    .await;
    for name in ["never-up", "flaky"] {
        let t = target(&v, name);
        assert_eq!(t["state"], "degraded", "{name}");
        assert_eq!(t["alerting"], false, "{name}");
        assert_eq!(t["windows"]["24h"]["failures"], 0, "{name}");
        assert!(
            t["recent_outcomes"]
                .as_array()
                .unwrap()
                .iter()
                .all(|o| o == "degraded"),
            "{name}: {t}"
        );
    }
    let posted = posted_targets(&receiver).await;
    assert!(posted.iter().any(|t| t == "was-up"), "{posted:?}");
    assert!(posted.iter().all(|t| t == "was-up"), "{posted:?}");
    let html = reqwest::get(format!("{}/", running.base)).await.unwrap();
    let html = html.text().await.unwrap();
    assert!(html.contains("data-target=\"flaky\" data-state=\"degraded\""));
    assert!(html.contains("degraded (passed after a retry)"));
    assert!(html.contains("degraded (not yet up since added)"));
}
