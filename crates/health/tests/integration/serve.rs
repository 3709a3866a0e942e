//! Serve mode in process over a real socket: probes on intervals, the status API and page,
//! metrics, and results appended to the history by other processes (CronJob runs).

use std::time::Duration;

use ferrostack_health::history::History;
use ferrostack_health::record::Record;
use ferrostack_health::{AlertConfig, Config, HistoryConfig, Service, Thresholds};
use runtime::Context;
use runtime::http::{ServerArgs, ServerConfig};
use runtime::telemetry::LogEvents;
use tokio_util::sync::CancellationToken;

use crate::fixtures;
use crate::support::{Receiver, target_server, targets, tls_server};

/// A running serve instance, served through the runtime like `healthcheck serve`.
pub(crate) struct Running {
    pub(crate) base: String,
    shutdown: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub(crate) async fn start(config: Config) -> Running {
    let shutdown = CancellationToken::new();
    let (base, service) = serve_app(config, &shutdown, true).await;
    tokio::spawn(service.run(shutdown.clone()));
    Running { base, shutdown }
}

/// A service for `config` (its history read first when `load`) and its HTTP app on a free
/// loopback port until `shutdown`: the base URL. The caller starts the service's loop.
pub(crate) async fn serve_app(
    config: Config,
    shutdown: &CancellationToken,
    load: bool,
) -> (String, Service) {
    let ctx = Context::new("healthcheck", shutdown.clone(), LogEvents::default());
    let mut registry = runtime::metrics::registry(&ctx);
    let service = Service::new(config, &mut registry).unwrap();
    if load {
        service.load().await.unwrap();
    }
    let args = ServerArgs {
        drain_delay: Duration::ZERO,
        ..runtime::args::defaults().unwrap()
    };
    let server = ServerConfig::new(&args, 0).unwrap();
    let router = runtime::http::app(
        ferrostack_health::app(service.clone()),
        registry,
        &server,
        &ctx,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { runtime::http::serve_on(listener, &server, &ctx, router).await });
    (base, service)
}

/// Polls `/api/status` until `done` holds (bounded: 20 s).
pub(crate) async fn wait_for(
    base: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let (client, done) = (&reqwest::Client::new(), &done);
    let url = &format!("{base}/api/status");
    test_support::poll_async(
        "the status to reach the expected state",
        Duration::from_secs(20),
        Duration::from_millis(100),
        || async move {
            let r = client.get(url).send().await.ok()?;
            let v: serde_json::Value = r.json().await.unwrap();
            done(&v).then_some(v)
        },
    )
    .await
}

pub(crate) fn target<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {v}"))
}

/// A CronJob's result `ago` before now.
pub(crate) fn cron_record(target: &str, success: bool, ago: Duration) -> Record {
    fixtures::record(target, time::OffsetDateTime::now_utc() - ago, success)
}

#[tokio::test]
async fn serve_keeps_no_more_probes_in_flight_than_the_limit() {
    let s = target_server().await;
    s.set_delay(Duration::from_millis(100));
    let yaml: String = (0..12)
        .map(|i| {
            format!(
                "  - {{name: t{i}, url: '{}', interval: 1h}}\n",
                s.url("/slow")
            )
        })
        .collect();
    let running = start(Config {
        targets: targets(&format!("targets:\n{yaml}")),
        history: None,
        alerts: AlertConfig::default(),
        pushgateway_url: None,
        max_concurrent_probes: 3,
    })
    .await;
    wait_for(&running.base, |v| {
        v["targets"]
            .as_array()
            .is_some_and(|ts| ts.len() == 12 && ts.iter().all(|t| t["state"] == "up"))
    })
    .await;
    assert_eq!(
        s.knobs
            .slow_max_in_flight
            .load(std::sync::atomic::Ordering::SeqCst),
        3
    );
}

/// History-only targets a CronJob of another config wrote.
const OTHERS: usize = 500;

/// Serve started over a history a CronJob wrote first (two results of `shared`, a target serve
/// probes too, and results of [`OTHERS`] targets this config does not have), with targets `ok`,
/// `failing` (500) and `shared`; once each shows its results.
struct SharedHistory {
    running: Running,
    path: std::path::PathBuf,
    status: serde_json::Value,
    _dir: tempfile::TempDir,
    _target: crate::support::TargetServer,
}

async fn serve_over_a_cronjob_history() -> SharedHistory {
    let s = target_server().await;
    s.fail_with(500);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    let mut cron = vec![
        cron_record("shared", false, Duration::from_secs(120)),
        cron_record("shared", true, Duration::from_secs(60)),
    ];
    cron.extend(
        (0..OTHERS).map(|i| cron_record(&format!("cron-only-{i}"), true, Duration::from_secs(60))),
    );
    History::new(&path).append(&cron).unwrap();
    let yaml = format!(
        "targets:\n  - {{name: ok, url: '{0}', interval: 1s}}\n  - {{name: failing, url: '{1}', interval: 1s}}\n  - {{name: shared, url: '{0}', interval: 1h}}\n",
        s.url("/ok"),
        s.url("/status")
    );
    let history = HistoryConfig {
        path: path.clone(),
        max_age: None,
        max_bytes: None,
    };
    let running = start(Config {
        targets: targets(&yaml),
        history: Some(history),
        alerts: AlertConfig::default(),
        pushgateway_url: None,
        max_concurrent_probes: 256,
    })
    .await;
    let status = wait_for(&running.base, |v| {
        v["targets"].as_array().is_some_and(|ts| {
            ts.iter().all(|t| {
                let want = if t["name"] == "shared" { 3 } else { 2 };
                t["recent"].as_array().is_some_and(|r| r.len() >= want)
            })
        })
    })
    .await;
    SharedHistory {
        running,
        path,
        status,
        _dir: dir,
        _target: s,
    }
}

#[tokio::test]
async fn serve_shows_its_targets_with_the_cronjob_results_from_the_shared_history() {
    let shared = serve_over_a_cronjob_history().await;
    let v = &shared.status;
    let names: Vec<_> = v["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["ok", "failing", "shared"],
        "only configured targets"
    );
    assert_eq!(v["other_results"], OTHERS, "the others are only counted");
    assert_eq!(target(v, "ok")["state"], "up");
    assert_eq!(target(v, "ok")["uptime"]["1h"], 1.0);
    // It has never succeeded since it was added: degraded, not down (and it never pages).
    assert_eq!(target(v, "failing")["state"], "degraded");
    assert_eq!(target(v, "failing")["alerting"], false);
    assert_eq!(
        target(v, "failing")["last"]["failed"][0],
        "[STATUS] (500) == 200"
    );
    // The CronJob's failure and success, then serve's own success.
    assert_eq!(target(v, "shared")["state"], "up");
    let uptime = target(v, "shared")["uptime"]["1h"].as_f64().unwrap();
    assert!((uptime - 2.0 / 3.0).abs() < 1e-9, "{uptime}");
    assert_eq!(target(v, "shared")["configured"], true);

    // Serve's own results went to the history too, each once.
    let lines = History::new(&shared.path).read_all().unwrap();
    let ours = lines.iter().filter(|r| r.target == "ok").count();
    let shown = target(v, "ok")["recent"].as_array().unwrap().len();
    assert!(ours >= shown, "{ours} in history, {shown} shown");
}

/// A CronJob run appends while serve runs: it shows up, in the status and on the page, which
/// lists every configured target with its state and no history-only one.
#[tokio::test]
async fn a_cronjob_run_appending_while_serve_runs_shows_up_on_the_page() {
    let shared = serve_over_a_cronjob_history().await;
    History::new(&shared.path)
        .append(&[
            cron_record("shared", false, Duration::ZERO),
            cron_record("cron-only-0", false, Duration::ZERO),
        ])
        .unwrap();
    let base = &shared.running.base;
    let v = wait_for(base, |v| target(v, "shared")["state"] == "down").await;
    assert_eq!(target(&v, "shared")["recent"].as_array().unwrap().len(), 4);
    assert_eq!(v["other_results"], OTHERS + 1);

    let html = reqwest::get(format!("{base}/")).await.unwrap();
    let html = html.text().await.unwrap();
    assert!(
        !html.contains("cron-only"),
        "history-only targets are not on the page"
    );
    for (name, state) in [("ok", "up"), ("failing", "degraded"), ("shared", "down")] {
        assert!(
            html.contains(&format!("data-target=\"{name}\" data-state=\"{state}\"")),
            "{name} {state}"
        );
    }
}

/// Metrics carry blackbox_exporter's names, every phase of a plain-http probe and no `tls`
/// phase, the runtime's metrics too, and only probed targets.
#[tokio::test]
async fn serve_metrics_carry_blackbox_names_for_probed_targets_only() {
    let shared = serve_over_a_cronjob_history().await;
    let metrics = reqwest::get(format!("{}/metrics", shared.running.base)).await;
    let text = metrics.unwrap().text().await.unwrap();
    for name in [
        "ferrostack_build_info{",
        "probe_success{target=\"ok\"} 1",
        "probe_success{target=\"failing\"} 0",
        "probe_http_status_code{target=\"failing\"} 500",
        "probe_duration_seconds{target=\"ok\"} ",
        "probe_http_status_code{target=\"ok\"} 200",
        "probe_http_duration_seconds{target=\"ok\",phase=\"resolve\"} ",
        "probe_http_duration_seconds{target=\"ok\",phase=\"connect\"} ",
        "probe_http_duration_seconds{target=\"ok\",phase=\"processing\"} ",
        "probe_http_duration_seconds{target=\"ok\",phase=\"transfer\"} ",
    ] {
        assert!(text.contains(name), "missing {name} in\n{text}");
    }
    assert!(
        !text.contains("phase=\"tls\""),
        "plain http measures no TLS phase:\n{text}"
    );
    assert!(
        !text.contains("target=\"cron-only-0\""),
        "only probed targets are exported:\n{text}"
    );
}

#[tokio::test]
async fn serve_without_history_keeps_results_in_memory_and_alerts() {
    let s = target_server().await;
    let receiver = Receiver::start().await;
    let running = start(Config {
        targets: targets(&format!(
            "targets: [{{name: api, url: '{}', interval: 1s}}]",
            s.url("/status")
        )),
        history: None,
        alerts: AlertConfig {
            alertmanager_url: None,
            webhook_url: Some(format!("{}/hook", receiver.url())),
            thresholds: Thresholds {
                failure: 2,
                success: 1,
            },
        },
        pushgateway_url: None,
        max_concurrent_probes: 256,
    })
    .await;
    // Up first: before its first success a target's failures are degraded and never page.
    wait_for(&running.base, |v| target(v, "api")["state"] == "up").await;
    s.fail_with(503);
    let v = wait_for(&running.base, |v| target(v, "api")["alerting"] == true).await;
    assert!(target(&v, "api")["consecutive_failures"].as_u64().unwrap() >= 2);
    s.fail_with(200);
    wait_for(&running.base, |v| target(v, "api")["alerting"] == false).await;
    let mut hooks: Vec<serde_json::Value> = Vec::new();
    for _ in 0..50 {
        hooks.extend(
            receiver
                .take()
                .into_iter()
                .map(|(_, b)| serde_json::from_str(&b).unwrap()),
        );
        if hooks.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    hooks.sort_by_key(|h| h["status"].as_str().unwrap().to_owned());
    let statuses: Vec<_> = hooks
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["firing", "resolved"]);
    assert_eq!(
        hooks[1]["since"], hooks[0]["since"],
        "the resolution names the alert that fired"
    );
}

#[tokio::test]
async fn serve_exports_the_tls_phase_and_the_certificate_expiry() {
    let s = tls_server(time::Duration::days(30)).await;
    let ca = s.ca_file.as_ref().unwrap().display();
    let running = start(Config {
        targets: targets(&format!(
            "targets: [{{name: tls, url: '{}', interval: 1s, tls: {{ca-file: '{ca}'}}}}]",
            s.url("/ok")
        )),
        history: None,
        alerts: AlertConfig::default(),
        pushgateway_url: None,
        max_concurrent_probes: 256,
    })
    .await;
    let v = wait_for(&running.base, |v| target(v, "tls")["state"] == "up").await;
    let not_after = target(&v, "tls")["last"]["certificate_not_after"]
        .as_i64()
        .unwrap();
    let text = reqwest::get(format!("{}/metrics", running.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "probe_success{target=\"tls\"} 1".to_owned(),
        "probe_http_duration_seconds{target=\"tls\",phase=\"tls\"} ".to_owned(),
        format!("probe_ssl_earliest_cert_expiry{{target=\"tls\"}} {not_after}"),
    ] {
        assert!(text.contains(&line), "missing {line} in\n{text}");
    }
}

/// The page is HTML and /openapi.json documents the status API (moved here from the
/// `healthcheck serve` process test, which keeps the command line and SIGTERM).
#[tokio::test]
async fn serve_page_is_html_and_openapi_documents_the_status_api() {
    let s = target_server().await;
    let running = start(Config {
        targets: targets(&format!(
            "targets: [{{name: api, url: '{}', interval: 1h}}]",
            s.url("/ok")
        )),
        history: None,
        alerts: AlertConfig::default(),
        pushgateway_url: None,
        max_concurrent_probes: 256,
    })
    .await;
    let page = reqwest::get(format!("{}/", running.base)).await.unwrap();
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let openapi = reqwest::get(format!("{}/openapi.json", running.base)).await;
    let openapi = openapi.unwrap().text().await.unwrap();
    assert!(openapi.contains("\"/api/status\""), "{openapi}");
}
