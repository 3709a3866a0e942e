//! Headless Chromium renders the status page: the DOM shows every target and its state, and
//! a phone-sized screenshot is kept in target/artifacts/.

use std::process::Command;
use std::time::Duration;

use ferrostack_health::history::History;
use ferrostack_health::{AlertConfig, Config, HistoryConfig};

use crate::serve::{cron_record, start, target, wait_for};
use crate::support::{target_server, targets};
use crate::tools::{artifacts_dir, tool};

fn chromium(args: &[&str]) -> std::process::Output {
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
    let s = target_server().await;
    s.set_delay(Duration::from_secs(120));
    let failing = target_server().await;
    failing.fail_with(503);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    let mut records = Vec::new();
    for i in 0..30u64 {
        records.push(cron_record(
            "nightly-cron",
            i % 7 != 3,
            Duration::from_secs(60 * (30 - i)),
        ));
    }
    History::new(&path).append(&records).unwrap();
    let yaml = format!(
        "targets:\n  - {{name: backend-api, url: '{}', interval: 1s}}\n  - {{name: data-api, url: '{}', interval: 1s, conditions: ['[STATUS] == 200', '[RESPONSE_TIME] < 2s']}}\n  - {{name: download-external-logs, url: '{}', interval: 1s}}\n  - {{name: slow-starting, url: '{}', timeout: 60s}}\n",
        s.url("/ok"),
        s.url("/ok"),
        failing.url("/status"),
        s.url("/slow")
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
    })
    .await;
    wait_for(&running.base, |v| {
        ["backend-api", "data-api", "download-external-logs"]
            .iter()
            .all(|n| {
                target(v, n)["recent"]
                    .as_array()
                    .is_some_and(|r| r.len() >= 3)
            })
    })
    .await;

    let url = format!("{}/", running.base);
    let base = running.base.clone();
    let dom = tokio::task::spawn_blocking(move || {
        let out = chromium(&["--dump-dom", &url]);
        String::from_utf8(out.stdout).unwrap()
    })
    .await
    .unwrap();
    let expected = [
        ("backend-api", "up"),
        ("data-api", "up"),
        ("download-external-logs", "down"),
        ("slow-starting", "unknown"),
        ("nightly-cron", "up"),
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
        dom.contains("[STATUS] (503) == 200"),
        "the failure reason is on the page"
    );
    assert!(
        dom.contains("5 targets · 3 up · 1 down · 1 unknown"),
        "{dom}"
    );

    let shot = artifacts_dir().join("health-status-page.png");
    let _ = std::fs::remove_file(&shot);
    let arg = format!("--screenshot={}", shot.display());
    tokio::task::spawn_blocking(move || {
        chromium(&[&arg, "--window-size=412,915", &format!("{base}/")])
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
