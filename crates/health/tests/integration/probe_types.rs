//! The probe types beside HTTP against real peers on loopback: TCP and TLS listeners, a
//! real dnsmasq, a tonic gRPC health server, and ICMP echo to 127.0.0.1.

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use ferrostack_health::probe::probe;

use crate::support::{targets, tls_server};

mod dns;
mod grpc;
mod icmp;

/// A line server on 127.0.0.1: greets with `+OK ready`, answers each line with `+PONG`, and
/// keeps the connection open (as Redis does) until the client closes it.
async fn line_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let _ = write.write_all(b"+OK ready\r\n").await;
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(_)) = lines.next_line().await {
                    let _ = write.write_all(b"+PONG\r\n").await;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn tcp_connects_sends_and_judges_the_reply() {
    let addr = line_server().await;
    let t = targets(&format!(
        "targets:\n  - {{name: up, url: 'tcp://{addr}'}}\n  - {{name: ping, url: 'tcp://{addr}', body: \"PING\\n\", conditions: ['[CONNECTED] == true', '[BODY] contains PONG', '[RESPONSE_TIME] < 5s']}}\n  - {{name: banner, url: 'tcp://{addr}', conditions: ['[BODY] contains ready', '[BODY] contains PONG', '[IP] == 127.0.0.1']}}\n"
    ));
    let r = probe(&t[0]).await;
    assert!(r.success, "{r:?}");
    assert_eq!(r.url, format!("tcp://{addr}"), "as written, no `/` added");
    assert!(
        r.phases.connect.is_some() && r.phases.transfer.is_none(),
        "{r:?}"
    );
    assert_eq!(r.detail.ip_protocol, Some(4));
    // The server keeps the connection open: the reply ends at the pause, long before the
    // 10 s timeout.
    let r = probe(&t[1]).await;
    assert!(r.success, "{r:?}");
    assert!(r.response_time_seconds < 5.0, "{r:?}");
    // Nothing sent: the banner alone is the reply, and the failed condition shows it.
    let r = probe(&t[2]).await;
    assert!(!r.success);
    assert_eq!(r.failed.len(), 1, "{:?}", r.failed);
    assert!(
        r.failed[0].starts_with("[BODY] (+OK ready") && r.failed[0].ends_with(" contains PONG"),
        "{}",
        r.failed[0]
    );
}

#[tokio::test]
async fn tcp_refused_is_a_failure_naming_the_address() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let t = targets(&format!(
        "targets: [{{name: down, url: 'tcp://{addr}', retries: 1, retry-backoff: 10ms}}]"
    ));
    let r = probe(&t[0]).await;
    assert!(!r.success);
    assert_eq!(r.attempts, 2, "retries apply to tcp too");
    let e = r.error.as_deref().unwrap_or("");
    assert!(e.starts_with(&format!("connect {addr}: ")), "{e}");
    assert_eq!(r.failed, ["[CONNECTED] (false) == true"]);
}

#[tokio::test]
async fn conditions_that_do_not_fit_the_type_are_config_errors() {
    let e = ferrostack_health::config::parse_targets(
        "t.yaml",
        "targets: [{name: db, url: 'tcp://127.0.0.1:5432', conditions: ['[STATUS] == 200']}]",
    )
    .unwrap_err();
    assert_eq!(
        (e.file(), e.target(), e.field()),
        ("t.yaml", Some("db"), Some("conditions"))
    );
    assert!(
        e.to_string()
            .contains("[STATUS] does not apply to a tcp target"),
        "{e}"
    );
}

#[tokio::test]
async fn tls_handshakes_verifies_the_chain_and_reads_the_expiry() {
    let s = tls_server(time::Duration::days(30)).await;
    let ca = s.ca_file.as_ref().unwrap().display();
    let port = s.addr.port();
    let request = "GET /ok HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n";
    let t = targets(&format!(
        "targets:\n  - {{name: ok, url: 'tls://localhost:{port}', tls: {{ca-file: '{ca}'}}, conditions: ['[CONNECTED] == true', '[CERTIFICATE_EXPIRATION] > 48h']}}\n  - {{name: http, url: 'tls://localhost:{port}', tls: {{ca-file: '{ca}'}}, body: \"{request}\", conditions: ['[BODY] contains \"200 OK\"']}}\n  - {{name: soon, url: 'tls://localhost:{port}', tls: {{ca-file: '{ca}'}}, conditions: ['[CERTIFICATE_EXPIRATION] > 45d']}}\n  - {{name: untrusted, url: 'tls://localhost:{port}'}}\n"
    ));
    let r = probe(&t[0]).await;
    assert!(r.success, "{r:?}");
    assert!(r.phases.tls.is_some(), "{r:?}");
    assert_eq!(r.detail.tls_version.as_deref(), Some("TLS 1.3"));
    assert!(r.certificate_not_after.is_some());
    let r = probe(&t[1]).await;
    assert!(r.success, "{r:?}");
    let r = probe(&t[2]).await;
    assert!(!r.success);
    let shown = &r.failed[0];
    assert!(
        shown.starts_with("[CERTIFICATE_EXPIRATION] (29days")
            || shown.starts_with("[CERTIFICATE_EXPIRATION] (30days)"),
        "{shown}"
    );
    let r = probe(&t[3]).await;
    assert!(!r.success);
    let e = r.error.as_deref().unwrap_or("");
    assert!(
        e.starts_with("TLS handshake: invalid peer certificate: UnknownIssuer"),
        "{e}"
    );
}

#[tokio::test]
async fn tls_expired_chain_fails_unless_verification_is_off() {
    let s = tls_server(-time::Duration::hours(2)).await;
    let ca = s.ca_file.as_ref().unwrap().display();
    let port = s.addr.port();
    let t = targets(&format!(
        "targets:\n  - {{name: v, url: 'tls://localhost:{port}', tls: {{ca-file: '{ca}'}}}}\n  - {{name: i, url: 'tls://localhost:{port}', tls: {{insecure-skip-verify: true}}, conditions: ['[CONNECTED] == true', '[CERTIFICATE_EXPIRATION] > 0']}}\n"
    ));
    let r = probe(&t[0]).await;
    assert!(!r.success);
    let e = r.error.as_deref().unwrap_or("");
    assert!(
        e.starts_with("TLS handshake: invalid peer certificate: certificate expired"),
        "{e}"
    );
    // Verification off: the handshake passes, the expiry condition still catches it.
    let r = probe(&t[1]).await;
    assert_eq!(r.error, None, "{r:?}");
    assert_eq!(r.failed.len(), 1, "{:?}", r.failed);
    assert!(
        r.failed[0].starts_with("[CERTIFICATE_EXPIRATION] (expired 2h"),
        "{:?}",
        r.failed
    );
}

/// A timeout names the stage for non-HTTP probes as well.
#[tokio::test]
async fn tcp_reply_that_never_comes_times_out_naming_the_stage() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts and holds connections without a word.
    let held = tokio::spawn(async move {
        let mut kept = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            kept.push(s);
        }
    });
    let t = targets(&format!(
        "targets: [{{name: mute, url: 'tcp://{addr}', timeout: 300ms, conditions: ['[BODY] contains x']}}]"
    ));
    let r = probe(&t[0]).await;
    assert_eq!(
        r.error.as_deref(),
        Some("timeout after 300ms (reading the reply)"),
        "{r:?}"
    );
    held.abort();
}

/// `serve` with tcp and tls targets: `/api/status` carries what each measured, `/metrics`
/// the per-type series under blackbox_exporter's names and no `probe_http_*` for them, and
/// the history lines keep the detail.
#[tokio::test]
async fn serve_exports_per_type_results_and_metrics() {
    use ferrostack_health::{AlertConfig, Config, HistoryConfig};

    use crate::serve::{start, target, wait_for};

    let addr = line_server().await;
    let s = tls_server(time::Duration::days(30)).await;
    let ca = s.ca_file.as_ref().unwrap().display();
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history.jsonl");
    let running = start(Config {
        targets: targets(&format!(
            "targets:\n  - {{name: db, url: 'tcp://{addr}', interval: 1s}}\n  - {{name: tls, url: 'tls://localhost:{}', tls: {{ca-file: '{ca}'}}, interval: 1s}}\n",
            s.addr.port()
        )),
        history: Some(HistoryConfig {
            path: history.clone(),
            max_age: None,
            max_bytes: None,
        }),
        alerts: AlertConfig::default(),
        pushgateway_url: None,
        max_concurrent_probes: 256,
    })
    .await;
    let v = wait_for(&running.base, |v| {
        target(v, "db")["last"]["success"] == true && target(v, "tls")["last"]["success"] == true
    })
    .await;
    assert_eq!(target(&v, "db")["last"]["detail"]["ip_protocol"], 4);
    assert_eq!(
        target(&v, "tls")["last"]["detail"]["tls_version"],
        "TLS 1.3"
    );
    let text = reqwest::get(format!("{}/metrics", running.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "probe_success{target=\"db\"} 1",
        "probe_ip_protocol{target=\"db\"} 4",
        "probe_tls_version_info{target=\"tls\",version=\"TLS 1.3\"} 1",
        "probe_ssl_earliest_cert_expiry{target=\"tls\"} ",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    assert!(
        !text.contains("probe_http_status_code{target=\"db\"}"),
        "{text}"
    );
    let page = reqwest::get(&running.base).await.unwrap().text().await;
    let page = page.unwrap();
    assert!(
        page.contains(" · connected · "),
        "the page says what tcp answered:\n{page}"
    );
    let lines = std::fs::read_to_string(&history).unwrap();
    assert!(
        lines.contains(&format!("\"url\":\"tcp://{addr}\"")) && lines.contains("\"detail\":{"),
        "{lines}"
    );
}
