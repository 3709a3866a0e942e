//! `grpc://` against a tonic server running the standard health service (tonic-health).

use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tonic_health::ServingStatus;

use ferrostack_health::metrics::Metrics;
use ferrostack_health::probe::probe;

use crate::support::targets;

/// A gRPC server on 127.0.0.1 whose health service reports `ok.Svc` SERVING and `down.Svc`
/// NOT_SERVING (and the server as a whole, the empty name, SERVING).
async fn health_server() -> std::net::SocketAddr {
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("ok.Svc", ServingStatus::Serving)
        .await;
    reporter
        .set_service_status("down.Svc", ServingStatus::NotServing)
        .await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    addr
}

#[tokio::test]
async fn grpc_health_check_serving_not_serving_and_unknown() {
    let addr = health_server().await;
    let t = targets(&format!(
        "targets:\n  - {{name: ok, url: 'grpc://{addr}/ok.Svc', conditions: ['[CONNECTED] == true', '[BODY] == SERVING', '[RESPONSE_TIME] < 5s']}}\n  - {{name: server, url: 'grpc://{addr}'}}\n  - {{name: down, url: 'grpc://{addr}/down.Svc'}}\n  - {{name: nope, url: 'grpc://{addr}/nope.Svc'}}\n"
    ));
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);

    let r = probe(&t[0]).await;
    assert!(r.success, "{r:?}");
    assert_eq!(r.detail.grpc_status_code, Some(0));
    metrics.observe(&r, 0);
    assert!(probe(&t[1]).await.success, "the server as a whole");

    let r = probe(&t[2]).await;
    assert!(!r.success);
    assert_eq!(r.error, None);
    assert_eq!(r.failed, ["[BODY] (NOT_SERVING) == SERVING"]);
    metrics.observe(&r, 1);

    let r = probe(&t[3]).await;
    assert!(!r.success);
    let e = r.error.as_deref().unwrap_or("");
    assert!(e.starts_with("gRPC health check: NotFound"), "{e}");
    assert_eq!(r.detail.grpc_status_code, Some(5));

    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    for line in [
        "probe_grpc_healthcheck_response{target=\"ok\",serving_status=\"SERVING\"} 1",
        "probe_grpc_healthcheck_response{target=\"ok\",serving_status=\"NOT_SERVING\"} 0",
        "probe_grpc_healthcheck_response{target=\"down\",serving_status=\"NOT_SERVING\"} 1",
        "probe_grpc_status_code{target=\"ok\"} 0",
        "probe_ip_protocol{target=\"ok\"} 4",
        "probe_grpc_duration_seconds{target=\"ok\",phase=\"check\"}",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    assert!(
        !text.contains("probe_http_status_code{target=\"ok\"}"),
        "{text}"
    );
    assert!(
        !text.contains("probe_http_duration_seconds{target=\"ok\""),
        "{text}"
    );
}
