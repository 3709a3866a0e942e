//! A real Alertmanager (Debian's prometheus-alertmanager), started by the test, receives the
//! alert and its resolution; both are read back through its API and its webhook notifications.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ferrostack_health::{AlertConfig, Config, HistoryConfig, Thresholds, run_once};
use test_support::{free_port, tool_any};

use crate::support::{Receiver, TargetServer, target_server, targets};
use crate::tools::wait_ready;

struct Alertmanager {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_alertmanager(notify_url: &str) -> Option<Alertmanager> {
    // Debian names the binary prometheus-alertmanager; upstream, alertmanager.
    let bin = tool_any(&["prometheus-alertmanager", "alertmanager"])?;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &config,
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname, target]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n  - name: hook\n    webhook_configs:\n      - url: '{notify_url}'\n        send_resolved: true\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let child = Command::new(bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let am = Alertmanager {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    wait_ready("alertmanager to be ready", &format!("{}/-/ready", am.url)).await;
    Some(am)
}

async fn our_alerts(am: &Alertmanager) -> Vec<serde_json::Value> {
    let url = format!(
        "{}/api/v2/alerts?filter=alertname%3D%22HealthCheckFailing%22",
        am.url
    );
    let v: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    v.as_array().unwrap().clone()
}

/// One target, `api`, on `server`, alerting `alertmanager` after two failures and resolving
/// after two successes, with a history in `dir`.
fn alerting_config(server: &TargetServer, alertmanager: &str, dir: &std::path::Path) -> Config {
    Config {
        targets: targets(&format!(
            "targets: [{{name: api, url: '{}'}}]",
            server.url("/status")
        )),
        history: Some(HistoryConfig {
            path: dir.join("h.jsonl"),
            max_age: None,
            max_bytes: None,
        }),
        alerts: AlertConfig {
            alertmanager_url: Some(alertmanager.to_owned()),
            webhook_url: None,
            thresholds: Thresholds {
                failure: 2,
                success: 2,
            },
        },
        pushgateway_url: None,
        max_concurrent_probes: 256,
    }
}

/// A run that reported no error.
async fn run_cleanly(config: &Config) {
    let report = run_once(config).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
}

#[tokio::test]
#[ignore = "needs alertmanager; run by `make test-health`"]
async fn alertmanager_receives_the_alert_and_its_resolution() {
    let notified = Receiver::start().await;
    let Some(am) = start_alertmanager(&format!("{}/notify", notified.url())).await else {
        return;
    };
    let s = target_server().await;
    let dir = tempfile::tempdir().unwrap();
    let config = alerting_config(&s, &am.url, dir.path());

    s.fail_with(500);
    run_cleanly(&config).await;
    assert!(
        our_alerts(&am).await.is_empty(),
        "one failure is below the threshold"
    );
    run_cleanly(&config).await;
    let alerts = our_alerts(&am).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(a["labels"]["target"], "api");
    assert_eq!(a["labels"]["job"], "healthcheck");
    assert_eq!(a["status"]["state"], "active");
    assert_eq!(a["annotations"]["description"], "[STATUS] (500) == 200");
    let fired = notification(&notified, "firing").await;
    assert_eq!(fired["alerts"][0]["labels"]["target"], "api");

    s.fail_with(200);
    run_once(&config).await;
    assert_eq!(
        our_alerts(&am).await.len(),
        1,
        "one success does not resolve"
    );
    run_cleanly(&config).await;
    // Resolved: endsAt is now, so the default (active) listing no longer has it, long before
    // the firing alert's endsAt (5 minutes) would have expired it.
    let active = format!(
        "{}/api/v2/alerts?active=true&filter=target%3D%22api%22",
        am.url
    );
    let v: serde_json::Value = reqwest::get(active).await.unwrap().json().await.unwrap();
    assert_eq!(v.as_array().unwrap().len(), 0, "{v}");
    let resolved = notification(&notified, "resolved").await;
    assert_eq!(resolved["alerts"][0]["labels"]["target"], "api");
    assert_eq!(resolved["alerts"][0]["status"], "resolved");
}

/// Waits (bounded: 15 s) for Alertmanager's webhook notification with `status`.
async fn notification(receiver: &Receiver, status: &str) -> serde_json::Value {
    let what = format!("alertmanager's {status} notification");
    let pause = Duration::from_millis(100);
    test_support::poll_async(&what, Duration::from_secs(15), pause, || async move {
        receiver
            .take()
            .into_iter()
            .map(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).unwrap())
            .find(|v| v["status"] == status)
    })
    .await
}
