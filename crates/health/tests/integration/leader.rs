//! `healthcheck serve` under leadership, over real sockets: the election's channel is driven
//! by the test (the Lease itself is exercised against the real API server in
//! deploy/tests/cluster/test_healthcheck_lease.py). A follower neither probes nor alerts; a
//! new leader handed an open incident in the Lease's note resumes it: no second firing, and
//! the resolution names the alert that fired.

use std::time::Duration;

use ferrostack_health::leader::Term;
use ferrostack_health::{AlertConfig, Config, Thresholds};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::support::{Receiver, target_server, targets};

async fn status(base: &str) -> serde_json::Value {
    reqwest::get(format!("{base}/api/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn webhooks(receiver: &Receiver, wait: Duration) -> Vec<serde_json::Value> {
    tokio::time::sleep(wait).await;
    receiver
        .take()
        .into_iter()
        .map(|(_, b)| serde_json::from_str(&b).unwrap())
        .collect()
}

/// `api` on `url`, alerting `receiver` after two failures, resolving after two successes.
fn config(url: String, receiver: &Receiver) -> Config {
    Config {
        targets: targets(&format!(
            "targets: [{{name: api, url: '{url}', interval: 1s}}]"
        )),
        history: None,
        alerts: AlertConfig {
            alertmanager_url: None,
            webhook_url: Some(format!("{}/hook", receiver.url())),
            thresholds: Thresholds {
                failure: 2,
                success: 2,
            },
        },
        pushgateway_url: None,
        max_concurrent_probes: 256,
    }
}

/// Serves `config` led by the returned sender (starting as a follower); stops on drop.
async fn start_elected(
    config: Config,
) -> (
    String,
    watch::Sender<Option<Term>>,
    tokio_util::sync::DropGuard,
) {
    let shutdown = CancellationToken::new();
    let (base, service) = crate::serve::serve_app(config, &shutdown, false).await;
    let (lead, leading) = watch::channel(None);
    tokio::spawn(service.run_elected(shutdown.clone(), leading));
    (base, lead, shutdown.drop_guard())
}

#[tokio::test]
async fn a_follower_stays_silent_and_a_new_leader_resumes_the_open_incident() {
    let s = target_server().await;
    s.fail_with(503);
    let receiver = Receiver::start().await;
    let (base, lead, _stop) = start_elected(config(s.url("/status"), &receiver)).await;

    // A follower: no probe, no alert, and it says so.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let v = status(&base).await;
    assert_eq!(v["leader"]["leading"], false, "{v}");
    assert_eq!(v["targets"][0]["state"], "unknown", "{v}");
    assert!(receiver.take().is_empty());
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("ferrostack_healthcheck_leader 0"),
        "{metrics}"
    );

    // Leading, handed the old leader's note: `api` fires since `since`.
    let since = "2026-01-01T00:00:00Z";
    lead.send_replace(Some(Term {
        note: Some(format!(
            r#"{{"api":{{"firing_since":"{since}","at":"{since}"}}}}"#
        )),
        transitions: 1,
    }));
    let hooks = webhooks(&receiver, Duration::from_secs(4)).await;
    let v = status(&base).await;
    assert_eq!(v["leader"]["leading"], true, "{v}");
    assert_eq!(v["targets"][0]["alerting"], true, "{v}");
    assert!(
        v["targets"][0]["consecutive_failures"].as_u64().unwrap() >= 2,
        "{v}"
    );
    assert!(
        hooks.is_empty(),
        "the resumed incident fired again: {hooks:?}"
    );
    // The rollups resumed it too: the target was up before, so these are failures (charged
    // to the SLO), not the degraded results of a target never yet up.
    let day = &v["targets"][0]["windows"]["24h"];
    assert!(day["failures"].as_u64().unwrap() >= 2, "{v}");
    assert_eq!(day["degraded"], 0, "{v}");

    s.fail_with(200);
    let mut hooks = Vec::new();
    for _ in 0..10 {
        hooks.extend(webhooks(&receiver, Duration::from_secs(1)).await);
        if !hooks.is_empty() {
            break;
        }
    }
    let statuses: Vec<_> = hooks
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["resolved"], "{hooks:?}");
    assert_eq!(
        hooks[0]["since"], since,
        "the resolution names the alert that fired"
    );
    assert_steps_down(&base, &lead).await;
}

/// Stepping down stops the probes at once.
async fn assert_steps_down(base: &str, lead: &watch::Sender<Option<Term>>) {
    lead.send_replace(None);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = status(base).await["targets"][0]["recent"]
        .as_array()
        .unwrap()
        .len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let v = status(base).await;
    assert_eq!(v["leader"]["leading"], false, "{v}");
    assert_eq!(
        v["targets"][0]["recent"].as_array().unwrap().len(),
        before,
        "{v}"
    );
}
