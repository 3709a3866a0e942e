//! Headless Chromium renders the status page: the DOM shows every target and its state, the
//! failure reasons (also on hover), uptimes, sparklines and bars, and a phone-width
//! screenshot is kept in target/artifacts/.

use std::process::Command;
use std::time::Duration;

use ferrostack_health::history::History;
use ferrostack_health::{AlertConfig, Config, HistoryConfig};
use test_support::tool;

use crate::serve::{Running, cron_record, start, target, wait_for};
use crate::support::{TargetServer, target_server, targets};
use crate::tools::artifacts_dir;

pub(crate) fn chromium(args: &[&str]) -> std::process::Output {
    let bin = tool("chromium").unwrap();
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs chromium; run by `make test-health`"]
async fn chromium_renders_every_target_and_state() {
    if tool("chromium").is_none() {
        return;
    }
    let every_state = serve_every_state().await;
    let url = format!("{}/", every_state.running.base);
    let dom = tokio::task::spawn_blocking(move || {
        let out = chromium(&["--dump-dom", &url]);
        String::from_utf8(out.stdout).unwrap()
    })
    .await
    .unwrap();
    assert_every_state(&dom);
    assert_failure_reasons(&card(&dom, "download-external-logs"));
    assert_degraded(&card(&dom, "flaky-retry"));
    assert_cronjob_bars_and_uptimes(&card(&dom, "nightly-cron"));
    assert_sparklines(&dom);
    assert_phone_screenshot(every_state.running.base.clone()).await;
}

/// Serve with targets in every state: two up, one failing (503) after a CronJob saw it up,
/// one passing only on its retry (degraded), one whose first probe never ends (unknown), and
/// one whose results come from a CronJob's history (30, 4 failed; SLO 99.9%); once the
/// probed ones have three results each.
struct EveryState {
    running: Running,
    _servers: [TargetServer; 2],
    _dir: tempfile::TempDir,
}

/// The CronJob's results: 30 of `nightly-cron` over the last half hour (4 failed), and one
/// success of `download-external-logs` five minutes ago.
fn cron_history(path: &std::path::Path) {
    let mut records = Vec::new();
    for i in 0..30u64 {
        records.push(cron_record(
            "nightly-cron",
            i % 7 != 3,
            Duration::from_secs(60 * (30 - i)),
        ));
    }
    // Up once before serve started, so its failures are down, not degraded.
    records.push(cron_record(
        "download-external-logs",
        true,
        Duration::from_secs(300),
    ));
    History::new(path).append(&records).unwrap();
}

async fn serve_every_state() -> EveryState {
    let s = target_server().await;
    s.set_delay(Duration::from_secs(120));
    let failing = target_server().await;
    failing.fail_with(503);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    cron_history(&path);
    let yaml = format!(
        "targets:\n  - {{name: backend-api, url: '{}', interval: 1s}}\n  - {{name: data-api, url: '{}', interval: 1s, conditions: ['[STATUS] == 200', '[RESPONSE_TIME] < 2s']}}\n  - {{name: download-external-logs, url: '{}', interval: 1s}}\n  - {{name: slow-starting, url: '{}', timeout: 60s}}\n  - {{name: nightly-cron, url: '{}', interval: 1h, timeout: 60s, slo: 99.9%}}\n  - {{name: flaky-retry, url: '{}', interval: 1s, retries: 1, retry-backoff: 10ms}}\n",
        s.url("/ok"),
        s.url("/ok"),
        failing.url("/status"),
        s.url("/slow"),
        // The status page shows the CronJob's results for the targets it shares with it (the
        // chart mounts one targets file in both); serve's own probe of it stays in flight.
        s.url("/slow"),
        failing.url("/flaky")
    );
    let running = start(Config {
        targets: targets(&yaml),
        history: Some(HistoryConfig {
            path,
            max_age: None,
            max_bytes: None,
        }),
        alerts: AlertConfig::default(),
        pushgateway_url: None,
        max_concurrent_probes: 256,
    })
    .await;
    wait_for(&running.base, |v| {
        [
            "backend-api",
            "data-api",
            "download-external-logs",
            "flaky-retry",
        ]
        .iter()
        .all(|n| {
            target(v, n)["recent"]
                .as_array()
                .is_some_and(|r| r.len() >= 3)
        })
    })
    .await;

    EveryState {
        running,
        _servers: [s, failing],
        _dir: dir,
    }
}

/// Each card as Chromium parsed it.
fn card(dom: &str, name: &str) -> String {
    let start = dom
        .find(&format!("data-target=\"{name}\""))
        .unwrap_or_else(|| panic!("no card for {name}"));
    let end = dom[start..].find("</section>").unwrap() + start;
    dom[start..end].to_owned()
}

fn assert_every_state(dom: &str) {
    let expected = [
        ("backend-api", "up"),
        ("data-api", "up"),
        ("download-external-logs", "down"),
        ("slow-starting", "unknown"),
        ("nightly-cron", "up"),
        ("flaky-retry", "degraded"),
    ];
    for (name, state) in expected {
        assert!(
            dom.contains(&format!(
                "<section class=\"target {state}\" data-target=\"{name}\" data-state=\"{state}\">"
            )),
            "{name} should be {state} in the DOM:\n{dom}"
        );
    }
    assert!(
        dom.contains("6 targets · 3 up · 1 degraded · 1 down · 1 unknown"),
        "{dom}"
    );
}

/// The failure reason is shown, and on hover over each failed bar.
fn assert_failure_reasons(failing: &str) {
    assert!(failing.contains("<p class=\"reason\">[STATUS] (503) == 200</p>"));
    let bad_bars = failing.matches("class=\"bar bad\"").count();
    assert!(bad_bars >= 3, "{failing}");
    assert_eq!(
        failing.matches(" · 503 · ").count(),
        bad_bars,
        "every failed bar's title gives status and reason:\n{failing}"
    );
    assert_eq!(
        failing.matches("failed: [STATUS] (503) == 200\"").count(),
        bad_bars
    );
}

/// The CronJob's 30 results: 4 failed, all within the hour; 20 of the 50 bars empty.
fn assert_cronjob_bars_and_uptimes(cron: &str) {
    assert_eq!(cron.matches("class=\"bar ok\"").count(), 26, "{cron}");
    assert_eq!(cron.matches("class=\"bar bad\"").count(), 4);
    assert_eq!(cron.matches("class=\"bar empty\"").count(), 20);
    for window in ["1h", "24h", "7d", "30d", "90d", "365d"] {
        assert!(
            cron.contains(&format!("<dt>uptime {window}</dt><dd>86.67%</dd>")),
            "{window}:\n{cron}"
        );
    }
    // 4 failures against a 99.9% budget of 0.03: spent 133 times over.
    assert!(cron.contains("<th>budget left (99.9%)</th>"), "{cron}");
    assert!(
        cron.contains("<td>365d</td><td>0</td><td>19ms</td><td>19ms</td><td>19ms</td><td class=\"spent\">-13233.3%</td>"),
        "{cron}"
    );
}

/// Passing only on its retry: degraded bars, each saying why, and degraded counts.
fn assert_degraded(flaky: &str) {
    assert!(
        flaky.contains("<span class=\"badge degraded\">DEGRADED</span>"),
        "{flaky}"
    );
    let bars = flaky.matches("class=\"bar deg\"").count();
    assert!(bars >= 3, "{flaky}");
    assert_eq!(
        flaky.matches("degraded (passed after a retry)").count(),
        bars
    );
    assert!(!flaky.contains("class=\"bar bad\""), "{flaky}");
}

/// Every target with results has its sparkline; the one without says so.
fn assert_sparklines(dom: &str) {
    for name in [
        "backend-api",
        "data-api",
        "download-external-logs",
        "nightly-cron",
        "flaky-retry",
    ] {
        assert!(card(dom, name).contains("<svg class=\"spark\""), "{name}");
    }
    let waiting = card(dom, "slow-starting");
    assert!(waiting.contains("NO DATA") && !waiting.contains("<svg"));
}

/// A phone-width (412 CSS px) screenshot, tall enough for all six cards, kept in
/// target/artifacts/.
async fn assert_phone_screenshot(base: String) {
    let shot = artifacts_dir().join("health-status-page.png");
    let _ = std::fs::remove_file(&shot);
    let arg = format!("--screenshot={}", shot.display());
    tokio::task::spawn_blocking(move || {
        chromium(&[&arg, "--window-size=412,3600", &format!("{base}/")])
    })
    .await
    .unwrap();
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert!(
        png.len() > 10_000,
        "a rendered page, not a blank image ({} bytes)",
        png.len()
    );
}
