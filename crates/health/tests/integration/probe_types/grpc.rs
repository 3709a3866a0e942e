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
        "probe_grpc_ssl{target=\"ok\"} 0",
        "probe_ip_protocol{target=\"ok\"} 4",
        "probe_grpc_duration_seconds{target=\"ok\",phase=\"check\"}",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    assert!(
        !text.contains("probe_http_status_code{target=\"ok\"}"),
        "{text}"
    );
    // blackbox_exporter's gRPC prober has no `connect` phase: its `check` covers it.
    assert!(!text.contains("phase=\"connect\""), "{text}");
    assert!(
        !text.contains("probe_http_duration_seconds{target=\"ok\""),
        "{text}"
    );
}

/// A gRPC health server over TLS for `localhost`, its certificate signed by a fresh CA
/// written to `dir/ca.pem` (returned).
async fn tls_health_server(dir: &std::path::Path) -> (u16, std::path::PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    use tonic::transport::{Identity, ServerTlsConfig};

    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let identity = Identity::from_pem(cert.pem(), key.serialize_pem());
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("ok.Svc", ServingStatus::Serving)
        .await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tonic::transport::Server::builder()
        .tls_config(ServerTlsConfig::new().identity(identity))
        .unwrap()
        .add_service(service)
        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
    tokio::spawn(server);
    (port, ca_file)
}

#[tokio::test]
async fn grpcs_verifies_the_server_and_checks_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (port, ca) = tls_health_server(dir.path()).await;
    let ca = ca.display();
    let t = targets(&format!(
        "targets:\n  - {{name: ok, url: 'grpcs://localhost:{port}/ok.Svc', tls: {{ca-file: '{ca}'}}, conditions: ['[BODY] == SERVING', '[CERTIFICATE_EXPIRATION] > 48h']}}\n  - {{name: untrusted, url: 'grpcs://localhost:{port}/ok.Svc'}}\n"
    ));
    let r = probe(&t[0]).await;
    assert!(r.success, "{r:?}");
    assert!(r.phases.tls.is_some(), "{r:?}");
    assert_eq!(r.detail.tls_version.as_deref(), Some("TLS 1.3"));
    assert_eq!(r.detail.grpc_serving_status.as_deref(), Some("SERVING"));
    let r = probe(&t[1]).await;
    assert!(!r.success);
    let e = r.error.as_deref().unwrap_or("");
    assert!(
        e.starts_with("TLS handshake: invalid peer certificate: UnknownIssuer"),
        "{e}"
    );
}
