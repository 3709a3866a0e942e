//! Headless Chromium renders the new states: a target in a maintenance window ("in
//! maintenance until …"), a push target with its pushed result, and a badge; screenshots are
//! kept in target/artifacts/.

use ferrostack_health::{AlertConfig, Config};
use test_support::tool;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::browser::chromium;
use crate::serve::{Running, start, target, wait_for};
use crate::support::{TargetServer, target_server, targets};
use crate::tools::artifacts_dir;

/// Serve with `database` (failing in a window until `until`: degraded) and the push target
/// `nightly-backup`, which has pushed one success; once both show.
async fn serving() -> (Running, TargetServer, tempfile::TempDir, OffsetDateTime) {
    let server = target_server().await;
    server.fail_with(503);
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "t0ken").unwrap();
    let until = OffsetDateTime::now_utc() + time::Duration::hours(2);
    let yaml = format!(
        "targets:\n  - name: database\n    url: '{}'\n    interval: 1s\n    maintenance-windows: [{{until: '{}'}}]\n\
         external-endpoints:\n  - {{name: nightly-backup, heartbeat: 25h, token-file: '{}'}}\n",
        server.url("/status"),
        until.format(&Rfc3339).unwrap(),
        token.display()
    );
    let running = start(Config {
        targets: targets(&yaml),
        history: None,
        alerts: AlertConfig::default(),
        pushgateway_url: None,
        max_concurrent_probes: 8,
    })
    .await;
    let base = running.base.clone();
    let pushed = reqwest::Client::new()
        .post(format!(
            "{base}/api/push/nightly-backup?success=true&duration=42s"
        ))
        .bearer_auth("t0ken")
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), 200);
    wait_for(&base, |v| {
        target(v, "nightly-backup")["state"] == "up" && target(v, "database")["state"] == "degraded"
    })
    .await;

    (running, server, dir, until)
}

/// Phone-width screenshots of the page and a badge, kept in target/artifacts/.
async fn screenshots(base: &str) {
    for (name, path, height) in [
        ("health-maintenance-page.png", "/", 1200),
        ("health-badge.png", "/badge/database/health.svg", 40),
    ] {
        let shot = artifacts_dir().join(name);
        let _ = std::fs::remove_file(&shot);
        let args = [
            format!("--screenshot={}", shot.display()),
            format!("--window-size=412,{height}"),
            format!("{base}{path}"),
        ];
        tokio::task::spawn_blocking(move || {
            chromium(&args.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .await
        .unwrap();
        let png = std::fs::read(&shot).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name} is a PNG");
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs chromium; run by `make test-health`"]
async fn chromium_renders_maintenance_push_targets_and_badges() {
    if tool("chromium").is_none() {
        return;
    }
    let (running, _server, _dir, until) = serving().await;
    let base = running.base.clone();
    let url = format!("{base}/");
    let dom = tokio::task::spawn_blocking(move || {
        String::from_utf8(chromium(&["--dump-dom", &url]).stdout).unwrap()
    })
    .await
    .unwrap();
    let clock = until.format(time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
    ));
    assert!(
        dom.contains(&format!(
            "<p class=\"maintenance\">in maintenance until {}</p>",
            clock.unwrap()
        )),
        "{dom}"
    );
    assert!(
        dom.contains("data-target=\"nightly-backup\" data-state=\"up\""),
        "{dom}"
    );
    assert!(
        dom.contains("<p class=\"url\">/api/push/nightly-backup</p>"),
        "{dom}"
    );

    screenshots(&base).await;
}
