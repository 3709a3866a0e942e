//! Test servers on 127.0.0.1: a target that can be made slow or failing, the same over TLS
//! with a certificate of chosen lifetime from a test CA, and a receiver that records POSTs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{any, get, post};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;

/// The body of `/ok`, byte for byte.
pub(crate) const OK_BODY: &str = r#"{"status":"UP","items":[1,2,3]}"#;

/// Knobs shared with the running server.
#[derive(Debug, Default)]
pub(crate) struct Knobs {
    /// Status `/status` answers with (default 200).
    pub(crate) status: AtomicU16,
    /// Delay before `/slow` answers, in ms.
    pub(crate) delay_ms: AtomicU64,
    /// Requests seen on `/status`.
    pub(crate) hits: AtomicU64,
    /// Requests on `/slow` being answered now, and the most there ever were at once.
    pub(crate) slow_in_flight: AtomicU64,
    pub(crate) slow_max_in_flight: AtomicU64,
    /// When each request to `/status` arrived.
    pub(crate) arrivals: Mutex<Vec<Instant>>,
    /// TLS handshakes completed, and how many of them resumed an earlier session.
    pub(crate) handshakes: AtomicU64,
    pub(crate) resumed: AtomicU64,
    /// Requests seen on `/flaky`, which fails every odd one (a probe passes on its retry).
    pub(crate) flaky: AtomicU64,
}

/// A running target server.
pub(crate) struct TargetServer {
    pub(crate) addr: SocketAddr,
    pub(crate) knobs: Arc<Knobs>,
    pub(crate) scheme: &'static str,
    /// For TLS servers: the CA that signed the certificate, as a PEM file.
    pub(crate) ca_file: Option<PathBuf>,
    _dir: Option<tempfile::TempDir>,
}

impl TargetServer {
    pub(crate) fn url(&self, path: &str) -> String {
        let host = if self.scheme == "https" {
            "localhost".to_owned()
        } else {
            self.addr.ip().to_string()
        };
        format!("{}://{host}:{}{path}", self.scheme, self.addr.port())
    }

    pub(crate) fn fail_with(&self, status: u16) {
        self.knobs.status.store(status, Ordering::SeqCst);
    }

    pub(crate) fn set_delay(&self, d: Duration) {
        self.knobs
            .delay_ms
            .store(d.as_millis() as u64, Ordering::SeqCst);
    }
}

fn app(knobs: Arc<Knobs>) -> Router {
    knobs.status.store(200, Ordering::SeqCst);
    Router::new()
        .route(
            "/ok",
            get(|| async {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    OK_BODY,
                )
            }),
        )
        .route(
            "/status",
            get(|State(k): State<Arc<Knobs>>| async move {
                k.hits.fetch_add(1, Ordering::SeqCst);
                k.arrivals.lock().unwrap().push(Instant::now());
                let code =
                    StatusCode::from_u16(k.status.load(Ordering::SeqCst)).unwrap_or(StatusCode::OK);
                (code, format!("status {}", code.as_u16()))
            }),
        )
        .route(
            "/slow",
            get(|State(k): State<Arc<Knobs>>| async move {
                let now = k.slow_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                k.slow_max_in_flight.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(k.delay_ms.load(Ordering::SeqCst))).await;
                k.slow_in_flight.fetch_sub(1, Ordering::SeqCst);
                "slow done"
            }),
        )
        .route(
            "/flaky",
            get(|State(k): State<Arc<Knobs>>| async move {
                if k.flaky.fetch_add(1, Ordering::SeqCst) % 2 == 0 {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                }
            }),
        )
        .route("/redirect", get(|| async { Redirect::temporary("/ok") }))
        .route("/loop", get(|| async { Redirect::temporary("/loop") }))
        .route(
            "/echo",
            any(
                |method: Method, headers: HeaderMap, body: String| async move {
                    let h = headers
                        .get("x-test")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    axum::Json(
                        serde_json::json!({"method": method.as_str(), "header": h, "body": body}),
                    )
                },
            ),
        )
        .with_state(knobs)
}

/// A plain HTTP target on 127.0.0.1.
pub(crate) async fn target_server() -> TargetServer {
    let knobs = Arc::new(Knobs::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app(knobs.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    TargetServer {
        addr,
        knobs,
        scheme: "http",
        ca_file: None,
        _dir: None,
    }
}

/// An HTTPS target for `localhost` whose certificate expires in `valid_for`, signed by a
/// fresh test CA (written to `ca_file`, which the probe trusts only if told to).
pub(crate) async fn tls_server(valid_for: time::Duration) -> TargetServer {
    let dir = tempfile::tempdir().unwrap();
    let (ca_file, config) = certified_config(dir.path(), valid_for);
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let knobs = Arc::new(Knobs::default());
    let router = app(knobs.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_tls(listener, acceptor, router, knobs.clone()));
    TargetServer {
        addr,
        knobs,
        scheme: "https",
        ca_file: Some(ca_file),
        _dir: Some(dir),
    }
}

/// A fresh test CA, written to `dir/ca.pem`, and a server config whose `localhost`
/// certificate it signed, valid from a day ago until `valid_for` from now.
fn certified_config(dir: &Path, valid_for: time::Duration) -> (PathBuf, rustls::ServerConfig) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ferrostack test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + valid_for;
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(cert.der().to_vec())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
    .unwrap();
    (ca_file, config)
}

/// Serves `router` over TLS on every accepted connection, counting handshakes and
/// resumptions in `counts` so tests can see whether the probe reuses sessions.
async fn serve_tls(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    router: Router,
    counts: Arc<Knobs>,
) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let (acceptor, router, counts) = (acceptor.clone(), router.clone(), counts.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            counts.handshakes.fetch_add(1, Ordering::SeqCst);
            if tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
                counts.resumed.fetch_add(1, Ordering::SeqCst);
            }
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), TowerToHyperService::new(router))
                .await;
        });
    }
}

/// `(path, body)` of every POST received.
type Posts = Arc<Mutex<Vec<(String, String)>>>;

/// Records JSON bodies POSTed to any path.
#[derive(Clone, Default)]
pub(crate) struct Receiver {
    pub(crate) posts: Posts,
    pub(crate) addr: Option<SocketAddr>,
}

impl Receiver {
    pub(crate) async fn start() -> Self {
        let posts: Posts = Arc::default();
        let state = posts.clone();
        let router = Router::new()
            .route(
                "/{*path}",
                post(
                    |State(p): State<Posts>, uri: axum::http::Uri, body: String| async move {
                        p.lock().unwrap().push((uri.path().to_owned(), body));
                        StatusCode::OK.into_response()
                    },
                ),
            )
            .with_state(state);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            posts,
            addr: Some(addr),
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr.unwrap())
    }

    pub(crate) fn take(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.posts.lock().unwrap())
    }
}

/// Targets YAML → validated targets.
pub(crate) fn targets(yaml: &str) -> Vec<ferrostack_health::Target> {
    ferrostack_health::config::parse_targets("test.yaml", yaml).unwrap_or_else(|e| panic!("{e}"))
}

/// `yaml`'s targets, no history, no alerts, 8 probes at once: what a test starts from.
pub(crate) fn config(yaml: &str) -> ferrostack_health::Config {
    ferrostack_health::Config {
        targets: targets(yaml),
        history: None,
        alerts: ferrostack_health::AlertConfig::default(),
        pushgateway_url: None,
        max_concurrent_probes: 8,
    }
}

/// A history file `h.jsonl` in `dir`, kept whole.
pub(crate) fn history_in(dir: &Path) -> Option<ferrostack_health::HistoryConfig> {
    Some(ferrostack_health::HistoryConfig {
        path: dir.join("h.jsonl"),
        max_age: None,
        max_bytes: None,
    })
}

/// Alerts to `receiver`'s `/hook` after `failure` failures, resolved after `success` passes.
pub(crate) fn webhook_alerts(
    receiver: &Receiver,
    failure: u32,
    success: u32,
) -> ferrostack_health::AlertConfig {
    ferrostack_health::AlertConfig {
        webhook_url: Some(format!("{}/hook", receiver.url())),
        thresholds: ferrostack_health::Thresholds { failure, success },
        ..ferrostack_health::AlertConfig::default()
    }
}
