//! `run_once`, the CronJob: history, exit code, alerts replayed across runs, Pushgateway.

use ferrostack_health::alert::Transition;
use ferrostack_health::history::History;
use ferrostack_health::{AlertConfig, Config, HistoryConfig, Thresholds, run_once};

use crate::support::{Receiver, TargetServer, target_server, targets};

fn config(yaml: &str, history: Option<&std::path::Path>) -> Config {
    Config {
        targets: targets(yaml),
        history: history.map(|p| HistoryConfig {
            path: p.to_owned(),
            max_age: None,
            max_bytes: None,
        }),
        alerts: AlertConfig::default(),
        pushgateway_url: None,
        max_concurrent_probes: 256,
    }
}

#[tokio::test]
async fn no_more_probes_than_the_limit_are_in_flight_at_once() {
    let s = target_server().await;
    s.set_delay(std::time::Duration::from_millis(100));
    let yaml: String = (0..12)
        .map(|i| format!("  - {{name: t{i}, url: '{}'}}\n", s.url("/slow")))
        .collect();
    let mut config = config(&format!("targets:\n{yaml}"), None);
    config.max_concurrent_probes = 3;
    let report = run_once(&config).await;
    assert_eq!(report.exit_code(), 0, "{:?}", report.errors);
    assert_eq!(
        s.knobs
            .slow_max_in_flight
            .load(std::sync::atomic::Ordering::SeqCst),
        3
    );
}

#[tokio::test]
async fn run_appends_one_line_per_target_and_exits_1_on_a_failure() {
    let s = target_server().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    let yaml = format!(
        "targets:\n  - {{name: ok, url: '{}'}}\n  - {{name: bad, url: '{}', conditions: ['[BODY].status == DOWN']}}\n",
        s.url("/ok"),
        s.url("/ok")
    );
    let c = config(&yaml, Some(&path));
    let report = run_once(&c).await;
    assert_eq!(report.exit_code(), 1);
    let report = run_once(&c).await;
    assert_eq!(report.exit_code(), 1);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<_> = lines
        .iter()
        .map(|v| {
            (
                v["target"].as_str().unwrap(),
                v["success"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [("ok", true), ("bad", false), ("ok", true), ("bad", false)]
    );
    assert_eq!(lines[1]["failed"][0], "[BODY].status (UP) == DOWN");

    let c = config(
        &format!("targets: [{{name: ok, url: '{}'}}]", s.url("/ok")),
        Some(&path),
    );
    assert_eq!(run_once(&c).await.exit_code(), 0);
}

#[tokio::test]
async fn run_probes_every_target_concurrently() {
    let s = target_server().await;
    s.set_delay(std::time::Duration::from_millis(500));
    let yaml: String = (0..20)
        .map(|i| format!("  - {{name: t{i}, url: '{}'}}\n", s.url("/slow")))
        .collect();
    let c = config(&format!("targets:\n{yaml}"), None);
    let report = run_once(&c).await;
    assert_eq!(report.exit_code(), 0);
    // Sequential probing would take 20 × 0.5 s; concurrently, every probe overlaps the first.
    let first_end = report
        .records
        .iter()
        .map(|r| r.time + time::Duration::seconds_f64(r.duration_seconds))
        .min()
        .unwrap();
    assert!(
        report.records.iter().all(|r| r.time < first_end),
        "all probes started before any finished"
    );
}

/// One target, `api`, on `server`, with alerts to a receiver's `/am` (Alertmanager) and
/// `/hook` (webhook), and a history in `dir`.
fn alerting_config(server: &TargetServer, receiver: &Receiver, dir: &std::path::Path) -> Config {
    let mut c = config(
        &format!("targets: [{{name: api, url: '{}'}}]", server.url("/status")),
        Some(&dir.join("h.jsonl")),
    );
    c.alerts = AlertConfig {
        alertmanager_url: Some(format!("{}/am", receiver.url())),
        webhook_url: Some(format!("{}/hook", receiver.url())),
        thresholds: Thresholds::default(),
    };
    c
}

/// The JSON body of the post to the path `matches` picks.
fn posted(posts: &[(String, String)], matches: impl Fn(&str) -> bool) -> serde_json::Value {
    let (_, body) = posts
        .iter()
        .find(|(p, _)| matches(p))
        .unwrap_or_else(|| panic!("no such post in {posts:?}"));
    serde_json::from_str(body).unwrap()
}

/// Three failing runs against `c`; the third fires: returns what it posted.
async fn three_failing_runs(c: &Config, receiver: &Receiver) -> Vec<(String, String)> {
    for _ in 0..2 {
        let r = run_once(c).await;
        assert!(r.transitions.is_empty() && r.errors.is_empty(), "{r:?}");
    }
    assert!(
        receiver.take().is_empty(),
        "nothing sent before the threshold"
    );
    let r = run_once(c).await;
    assert_eq!(r.transitions, [("api".to_owned(), Transition::Fired)]);
    receiver.take()
}

#[tokio::test]
async fn alerts_fire_after_three_failed_runs_and_are_refreshed_not_repeated() {
    let (s, receiver) = (target_server().await, Receiver::start().await);
    let dir = tempfile::tempdir().unwrap();
    let c = alerting_config(&s, &receiver, dir.path());
    s.fail_with(500);
    let posts = three_failing_runs(&c, &receiver).await;
    assert_eq!(posts.len(), 2, "{posts:?}");
    let am = posted(&posts, |p| p == "/am/api/v2/alerts");
    assert_eq!(am[0]["labels"]["target"], "api");
    assert_eq!(am[0]["annotations"]["description"], "[STATUS] (500) == 200");
    let hook = posted(&posts, |p| p == "/hook");
    assert_eq!(
        (
            hook["status"].as_str(),
            hook["consecutive_failures"].as_u64()
        ),
        (Some("firing"), Some(3))
    );

    // Still failing: Alertmanager is refreshed, the webhook is not told again.
    let r = run_once(&c).await;
    assert!(r.transitions.is_empty());
    let posts = receiver.take();
    assert_eq!(
        posts.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
        ["/am/api/v2/alerts"]
    );
}

#[tokio::test]
async fn alerts_resolve_after_two_good_runs_naming_the_alert_that_fired() {
    let (s, receiver) = (target_server().await, Receiver::start().await);
    let dir = tempfile::tempdir().unwrap();
    let c = alerting_config(&s, &receiver, dir.path());
    s.fail_with(500);
    three_failing_runs(&c, &receiver).await;
    s.fail_with(200);
    let r = run_once(&c).await;
    assert!(r.transitions.is_empty(), "one success is not enough");
    receiver.take();
    let r = run_once(&c).await;
    assert_eq!(r.transitions, [("api".to_owned(), Transition::Resolved)]);
    let posts = receiver.take();
    let hook = posted(&posts, |p| p == "/hook");
    assert_eq!(hook["status"], "resolved");
    let am = posted(&posts, |p| p.ends_with("/alerts"));
    assert_eq!(
        am[0]["startsAt"], hook["since"],
        "the resolution names the alert that fired"
    );
    let ends = time::OffsetDateTime::parse(
        am[0]["endsAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(
        ends <= time::OffsetDateTime::now_utc(),
        "resolved: endsAt is not in the future"
    );
}

#[tokio::test]
async fn unreachable_alert_receiver_makes_the_run_fail_loudly() {
    let s = target_server().await;
    s.fail_with(500);
    let port = test_support::free_port();
    let mut c = config(
        &format!("targets: [{{name: api, url: '{}'}}]", s.url("/status")),
        None,
    );
    c.alerts = AlertConfig {
        alertmanager_url: None,
        webhook_url: Some(format!("http://127.0.0.1:{port}/hook")),
        thresholds: Thresholds {
            failure: 1,
            success: 1,
        },
    };
    let r = run_once(&c).await;
    assert_eq!(r.exit_code(), 1);
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    assert!(
        r.errors[0].starts_with(&format!("webhook http://127.0.0.1:{port}/hook: ")),
        "{:?}",
        r.errors
    );
}

#[tokio::test]
async fn run_pushes_results_and_last_success_to_the_pushgateway() {
    let s = target_server().await;
    let receiver = Receiver::start().await;
    let mut c = config(
        &format!("targets: [{{name: api, url: '{}'}}]", s.url("/ok")),
        None,
    );
    c.pushgateway_url = Some(receiver.url());
    assert_eq!(run_once(&c).await.exit_code(), 0);
    let posts = receiver.take();
    assert_eq!(posts.len(), 1);
    let (path, body) = &posts[0];
    assert_eq!(path, "/metrics/job/ferrostack-healthcheck");
    assert!(body.contains("probe_success{target=\"api\"} 1"), "{body}");
    assert!(
        body.contains("ferrostack_healthcheck_last_success_timestamp_seconds "),
        "{body}"
    );
}

#[tokio::test]
async fn retention_runs_after_the_append() {
    let s = target_server().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.jsonl");
    let mut c = config(
        &format!("targets: [{{name: api, url: '{}'}}]", s.url("/ok")),
        Some(&path),
    );
    for _ in 0..5 {
        run_once(&c).await;
    }
    let size = std::fs::metadata(&path).unwrap().len();
    c.history.as_mut().unwrap().max_bytes = Some(size / 2);
    run_once(&c).await;
    assert!(std::fs::metadata(&path).unwrap().len() <= size / 2);
    let left = History::new(&path).read_all().unwrap();
    assert!(!left.is_empty() && left.len() < 6, "{}", left.len());
}
