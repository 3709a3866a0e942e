//! A real Pushgateway (Debian's prometheus-pushgateway) accepts what `run` pushes; read back
//! through its own /metrics.

use std::process::{Child, Command, Stdio};

use ferrostack_health::{AlertConfig, Config, run_once};
use test_support::{free_port, tool};

use crate::support::{target_server, targets};
use crate::tools::wait_ready;

struct Pushgateway(Child);

impl Drop for Pushgateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
#[ignore = "needs prometheus-pushgateway; run by `make test-health`"]
async fn pushgateway_accepts_the_results_and_last_success() {
    let Some(bin) = tool("prometheus-pushgateway") else {
        return;
    };
    let port = free_port();
    let _pgw = Pushgateway(
        Command::new(bin)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--persistence.file=")
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}");
    wait_ready("pushgateway to be ready", &format!("{url}/-/ready")).await;
    let s = target_server().await;
    s.fail_with(503);
    let config = Config {
        targets: targets(&format!(
            "targets: [{{name: ok, url: '{}'}}, {{name: down, url: '{}'}}]",
            s.url("/ok"),
            s.url("/status")
        )),
        history: None,
        alerts: AlertConfig::default(),
        pushgateway_url: Some(url.clone()),
        max_concurrent_probes: 256,
    };
    let report = run_once(&config).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let text = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let job = "instance=\"\",job=\"ferrostack-healthcheck\"";
    for needle in [
        format!("probe_success{{{job},target=\"ok\"}} 1"),
        format!("probe_success{{{job},target=\"down\"}} 0"),
        format!("probe_http_status_code{{{job},target=\"down\"}} 503"),
        format!("ferrostack_healthcheck_consecutive_failures{{{job},target=\"down\"}} 1"),
        format!("ferrostack_healthcheck_last_success_timestamp_seconds{{{job}}} "),
    ] {
        assert!(text.contains(&needle), "missing {needle} in\n{text}");
    }
}
