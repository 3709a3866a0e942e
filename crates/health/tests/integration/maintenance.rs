//! Maintenance windows in serve mode: a failing target inside a window sends no alert and
//! shows the window on `/api/status` and the page; once the window ends it is degraded (no
//! page) until its next success, and then alerts like any other.

use std::time::Duration;

use ferrostack_health::{AlertConfig, Config, Thresholds};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::serve::{Running, start, target, wait_for};
use crate::support::{Receiver, TargetServer, config, history_in, target_server, webhook_alerts};

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

/// The webhook messages received so far as `(target, status, time)`.
fn messages(receiver: &Receiver, seen: &mut Vec<(String, String, String)>) {
    for (_, body) in receiver.take() {
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        seen.push((
            v["target"].as_str().unwrap().to_owned(),
            v["status"].as_str().unwrap().to_owned(),
            v["time"].as_str().unwrap().to_owned(),
        ));
    }
}

/// Serve with targets `plain` and `maint` failing every second once `plain` was up, `maint` in
/// a window from a minute ago until `until`; alerts after two failures go to `receiver`.
async fn serving(receiver: &Receiver, until: OffsetDateTime) -> (Running, TargetServer) {
    let server = target_server().await;
    let yaml = format!(
        "targets:\n  - {{name: plain, url: '{url}', interval: 1s}}\n  - name: maint\n    url: '{url}'\n    interval: 1s\n    maintenance-windows: [{{start: '{}', until: '{}'}}]\n",
        rfc3339(OffsetDateTime::now_utc() - time::Duration::minutes(1)),
        rfc3339(until),
        url = server.url("/status"),
    );
    let running = start(Config {
        alerts: webhook_alerts(receiver, 2, 1),
        ..config(&yaml)
    })
    .await;
    // Up once: failures of a target never yet up are degraded, and would never page.
    wait_for(&running.base, |v| target(v, "plain")["state"] == "up").await;
    server.fail_with(500);
    (running, server)
}

/// The page's maintenance line for a window ending at `until`.
fn page_line(until: OffsetDateTime) -> String {
    let clock = until.format(time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
    ));
    format!(
        "<p class=\"maintenance\">in maintenance until {}</p>",
        clock.unwrap()
    )
}

#[tokio::test]
async fn a_window_around_now_suppresses_the_alert_until_it_ends() {
    let receiver = Receiver::start().await;
    let until = OffsetDateTime::now_utc() + time::Duration::seconds(4);
    let (running, server) = serving(&receiver, until).await;
    // Inside the window: several failures, marked, no alert; the other target fires.
    let v = wait_for(&running.base, |v| {
        target(v, "maint")["recent"].as_array().unwrap().len() >= 3
            && target(v, "plain")["alerting"] == true
    })
    .await;
    let maint = target(&v, "maint");
    assert_eq!(maint["state"], "degraded", "charged to no budget");
    assert_eq!(maint["alerting"], false);
    assert_eq!(
        maint["consecutive_failures"], 0,
        "the state is left as it was"
    );
    assert_eq!(maint["last"]["maintenance"], true);
    let shown = OffsetDateTime::parse(maint["maintenance_until"].as_str().unwrap(), &Rfc3339);
    assert_eq!(shown.unwrap(), until);
    assert_eq!(
        target(&v, "plain")["maintenance_until"],
        serde_json::Value::Null
    );
    let html = reqwest::get(format!("{}/", running.base)).await.unwrap();
    let html = html.text().await.unwrap();
    assert_eq!(html.matches(&page_line(until)).count(), 1, "{html}");

    after_the_window(&running, &server, &receiver, until).await;
}

/// After the window: degraded, no page, until it is up again; then two failures fire.
async fn after_the_window(
    running: &Running,
    server: &TargetServer,
    receiver: &Receiver,
    until: OffsetDateTime,
) {
    let mut seen = Vec::new();
    let degraded = wait_for(&running.base, |v| {
        let m = target(v, "maint");
        m["maintenance_until"].is_null() && m["last"]["maintenance"] != true
    })
    .await;
    assert_eq!(target(&degraded, "maint")["state"], "degraded");
    tokio::time::sleep(Duration::from_secs(3)).await;
    messages(receiver, &mut seen);
    assert!(!seen.iter().any(|(t, _, _)| t == "maint"), "{seen:?}");
    server.fail_with(200);
    wait_for(&running.base, |v| target(v, "maint")["state"] == "up").await;
    server.fail_with(500);
    test_support::poll_async(
        "maint to fire after its window",
        Duration::from_secs(20),
        Duration::from_millis(100),
        || {
            messages(receiver, &mut seen);
            let fired = seen.iter().any(|(t, _, _)| t == "maint");
            async move { fired.then_some(()) }
        },
    )
    .await;
    let maint: Vec<_> = seen.iter().filter(|(t, _, _)| t == "maint").collect();
    assert_eq!(maint.len(), 1, "{seen:?}");
    assert_eq!(maint[0].1, "firing");
    let fired_at = OffsetDateTime::parse(&maint[0].2, &Rfc3339).unwrap();
    assert!(
        fired_at >= until,
        "fired at {fired_at}, window until {until}"
    );
    assert!(
        seen.iter().any(|(t, s, _)| t == "plain" && s == "firing"),
        "{seen:?}"
    );
    let v = wait_for(&running.base, |v| target(v, "maint")["alerting"] == true).await;
    assert_eq!(
        target(&v, "maint")["maintenance_until"],
        serde_json::Value::Null
    );
}

/// `healthcheck run` marks its results the same way: recorded in the history, no alert.
#[tokio::test]
async fn a_run_inside_a_window_records_marked_results_and_sends_nothing() {
    let server = target_server().await;
    server.fail_with(500);
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "maintenance: {{start: '{}', until: '{}'}}\ntargets:\n  - {{name: api, url: '{}'}}\n",
        rfc3339(OffsetDateTime::now_utc() - time::Duration::minutes(1)),
        rfc3339(OffsetDateTime::now_utc() + time::Duration::hours(1)),
        server.url("/status"),
    );
    let config = Config {
        history: history_in(dir.path()),
        alerts: webhook_alerts(&receiver, 1, 1),
        ..config(&yaml)
    };
    let report = ferrostack_health::run_once(&config).await;
    assert_eq!(
        report.exit_code(),
        1,
        "the failure still counts for the exit code"
    );
    assert!(report.transitions.is_empty(), "{:?}", report.transitions);
    assert!(receiver.take().is_empty());
    let history = ferrostack_health::history::History::new(dir.path().join("h.jsonl"));
    let records = history.read_all().unwrap();
    assert_eq!(records.len(), 1);
    assert!(records[0].maintenance && !records[0].success);
}

/// An alert firing when a window starts stays firing, silently: Alertmanager gets no refresh
/// during the window, and the refreshes resume after it.
#[tokio::test]
async fn a_firing_alert_is_not_refreshed_during_a_window_and_is_after_it() {
    let server = target_server().await;
    let receiver = Receiver::start().await;
    let t0 = OffsetDateTime::now_utc();
    let (start_at, until) = (
        t0 + time::Duration::seconds(5),
        t0 + time::Duration::seconds(9),
    );
    let yaml = format!(
        "targets:\n  - name: api\n    url: '{}'\n    interval: 1s\n    maintenance-windows: [{{start: '{}', until: '{}'}}]\n",
        server.url("/status"),
        rfc3339(start_at),
        rfc3339(until),
    );
    let running = start(Config {
        alerts: AlertConfig {
            alertmanager_url: Some(receiver.url()),
            thresholds: Thresholds {
                failure: 1,
                success: 1,
            },
            ..AlertConfig::default()
        },
        ..config(&yaml)
    })
    .await;
    // Up once, then failing: it fires and is refreshed before the window.
    wait_for(&running.base, |v| target(v, "api")["state"] == "up").await;
    server.fail_with(500);
    let sleep_until = |t: OffsetDateTime| {
        let left = (t - OffsetDateTime::now_utc()).max(time::Duration::ZERO);
        tokio::time::sleep(left.unsigned_abs())
    };
    sleep_until(start_at).await;
    let before = receiver.take().len();
    assert!(
        before >= 2,
        "fired and refreshed before the window: {before}"
    );
    sleep_until(start_at + time::Duration::milliseconds(1500)).await;
    receiver.take(); // a refresh of a probe just before the window may still arrive
    sleep_until(until - time::Duration::milliseconds(500)).await;
    assert_eq!(receiver.take(), [], "nothing posted during the window");
    let v = wait_for(&running.base, |v| {
        target(v, "api")["last"]["maintenance"] == true
    })
    .await;
    assert_eq!(
        target(&v, "api")["alerting"],
        true,
        "still firing, silently"
    );
    sleep_until(until + time::Duration::seconds(2)).await;
    let after = receiver.take();
    assert!(!after.is_empty(), "refreshes resume after the window");
    assert!(after.iter().all(|(path, _)| path == "/api/v2/alerts"));
}
