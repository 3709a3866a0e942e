//! `webhook serve`: flags, their validation into [`Config`], and [`run`], which serves the API
//! over TLS on `--port` and probes plus metrics over plain HTTP on `--metrics-port`.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use runtime::Context;
use runtime::http::{ServeError, ServerArgs, ServerConfig};
use tokio::net::TcpListener;
use tracing::Instrument as _;

use crate::config::PolicyArgs;
use crate::engine::Policies;
use crate::metrics::{Metrics, ReloadLabels};
use crate::namespaces::{self, ApiAccess, ClientError, NamespaceLabels};
use crate::server::{AppState, INFLIGHT_BODY_BYTES, Inflight, api};
use crate::tls::{self, CertStore, SelfSigned, TlsError, TlsListener};

/// Days the self-signed CA and serving certificate are valid.
const SELF_SIGNED_DAYS: u32 = 365;

/// Largest AdmissionReview accepted by default. An UPDATE carries the object and the old
/// object, each up to etcd's 1.5 MiB, so the runtime's 1 MiB default would answer 413 to
/// legitimate reviews of large workloads, and the API server would then fail the request.
pub const DEFAULT_MAX_BODY_BYTES: &str = "4194304";

/// `ferrostack webhook serve` flags.
#[derive(clap::Args, Clone, Debug)]
#[command(mut_arg("max_body_bytes", |a| a.default_value(DEFAULT_MAX_BODY_BYTES)))]
#[command(mut_arg("namespace", |a| a.help(
    "The webhook's own namespace: never evaluated or mutated (nor is kube-system)"
)))]
pub struct ServeArgs {
    /// HTTPS port of POST /validate and POST /mutate.
    #[arg(long, env = "FERROSTACK_PORT", default_value_t = 8443)]
    pub port: u16,
    /// Plain-HTTP port of /healthz, /readyz, /metrics and /version (kubelet and Prometheus).
    #[arg(long, env = "FERROSTACK_METRICS_PORT", default_value_t = 8085)]
    pub metrics_port: u16,
    /// PEM certificate chain; reloaded while serving when it (or its Secret volume) changes.
    #[arg(
        long,
        env = "FERROSTACK_TLS_CERT",
        requires = "tls_key",
        conflicts_with = "self_signed"
    )]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "FERROSTACK_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Generate a CA and a serving certificate at start-up instead; the CA (the webhook
    /// configuration's caBundle) is logged and written to --ca-file.
    #[arg(long, env = "FERROSTACK_SELF_SIGNED")]
    pub self_signed: bool,
    /// DNS name or IP of the self-signed serving certificate (repeatable or comma-separated;
    /// default localhost, 127.0.0.1, ::1), e.g. webhook.ferrostack.svc.
    #[arg(long = "san", env = "FERROSTACK_SAN", value_delimiter = ',')]
    pub sans: Vec<String>,
    /// Write the self-signed CA certificate (PEM) here.
    #[arg(long, env = "FERROSTACK_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub policy: PolicyArgs,
    /// Kubeconfig of the cluster whose Namespace labels (pod-security.kubernetes.io/*) choose
    /// the Pod Security level, as the built-in admission does; in a pod the ServiceAccount is
    /// used without it. Neither: every namespace gets the policy file's level.
    #[arg(long, env = "FERROSTACK_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Longest a review may take; less when the API server's ?timeout= is shorter.
    #[arg(long, env = "FERROSTACK_REVIEW_TIMEOUT", default_value = "2s", value_parser = runtime::parse_duration)]
    pub review_timeout: Duration,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub server: ServerArgs,
}

/// Where the serving certificate comes from.
#[derive(Clone, Debug)]
pub enum TlsSource {
    /// PEM files, watched for changes.
    Files {
        /// Certificate chain.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
    },
    /// Generated at start-up.
    SelfSigned(SelfSigned),
}

/// Validated `webhook serve` settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// The HTTPS server (API).
    pub server: ServerConfig,
    /// The plain-HTTP server (probes and metrics).
    pub metrics: ServerConfig,
    /// The serving certificate.
    pub tls: TlsSource,
    /// Where to write the self-signed CA.
    pub ca_file: Option<PathBuf>,
    /// The policies.
    pub policies: Policies,
    /// The review budget.
    pub review_timeout: Duration,
    /// Where namespace labels come from.
    pub api: ApiAccess,
}

/// Why the flags or the policy file cannot be used (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Server flags.
    #[error(transparent)]
    Server(#[from] runtime::http::ConfigError),
    /// The policy file.
    #[error(transparent)]
    Policy(#[from] crate::config::PolicyFileError),
    /// No certificate source.
    #[error("give --tls-cert and --tls-key, or --self-signed")]
    NoTls,
    /// The same port twice.
    #[error("--port and --metrics-port must differ (both {0})")]
    SamePort(u16),
    /// A zero budget.
    #[error("--review-timeout must be above zero")]
    ZeroBudget,
    /// Generating or reading the certificate failed.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Why serving stopped with an error (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Binding a port.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// TLS set-up.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Writing --ca-file.
    #[error("cannot write the CA to {path}: {source}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Serving.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// Connecting to the API server for namespace labels.
    #[error(transparent)]
    Api(#[from] ClientError),
}

// === impl Config ===

impl Config {
    /// Validates the flags, reads the policy file and, with --self-signed, generates the CA.
    pub fn from_args(args: &ServeArgs) -> Result<Self, ConfigError> {
        if args.port == args.metrics_port {
            return Err(ConfigError::SamePort(args.port));
        }
        if args.review_timeout.is_zero() {
            return Err(ConfigError::ZeroBudget);
        }
        let server = ServerConfig::new(&args.server, args.port)?;
        let metrics = ServerConfig::new(&args.server, args.metrics_port)?;
        let policies = Policies::load(
            args.policy.policy_file.as_deref(),
            args.policy.namespace.as_deref(),
        )?;
        let tls = match (&args.tls_cert, &args.tls_key, args.self_signed) {
            (Some(cert), Some(key), false) => {
                // Fail at start-up, not at the first handshake.
                tls::load_files(cert, key)?;
                TlsSource::Files {
                    cert: cert.clone(),
                    key: key.clone(),
                }
            }
            (None, None, true) => {
                let sans = if args.sans.is_empty() {
                    vec![
                        "localhost".into(),
                        Ipv4Addr::LOCALHOST.to_string(),
                        Ipv6Addr::LOCALHOST.to_string(),
                    ]
                } else {
                    args.sans.clone()
                };
                TlsSource::SelfSigned(tls::self_signed(&sans, SELF_SIGNED_DAYS)?)
            }
            _ => return Err(ConfigError::NoTls),
        };
        Ok(Config {
            api: ApiAccess::detect(args.kubeconfig.as_deref()),
            server,
            metrics,
            tls,
            ca_file: args.ca_file.clone(),
            policies,
            review_timeout: args.review_timeout,
        })
    }

    /// The CA of a self-signed configuration, PEM.
    pub fn ca_pem(&self) -> Option<&str> {
        match &self.tls {
            TlsSource::SelfSigned(s) => Some(&s.ca_pem),
            TlsSource::Files { .. } => None,
        }
    }
}

/// Paths served on the plain-HTTP port.
const PLAIN_PATHS: &[&str] = &[
    "/healthz",
    "/readyz",
    "/version",
    "/metrics",
    "/openapi.json",
];

async fn plain_paths_only(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path == "/openapi.json" {
        return plain_openapi(next.run(req).await).await;
    }
    if PLAIN_PATHS.contains(&path) {
        return next.run(req).await;
    }
    runtime::ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "the metrics port serves /healthz, /readyz, /version, /metrics and /openapi.json; reviews go to the HTTPS port",
    )
    .into_response()
}

/// The shared OpenAPI document with only the paths this port serves: the review endpoints
/// answer 404 here, so listing them would send clients to the wrong port.
async fn plain_openapi(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    // The document is the server's own, a few KiB; the cap only guards against a surprise.
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    };
    if let Some(paths) = doc
        .get_mut("paths")
        .and_then(serde_json::Value::as_object_mut)
    {
        paths.retain(|p, _| PLAIN_PATHS.contains(&p.as_str()));
    }
    let filtered = serde_json::to_vec(&doc).unwrap_or_else(|_| bytes.to_vec());
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(filtered))
}

/// Serves the webhook until the context's shutdown completes.
pub async fn run(config: Config, ctx: Context) -> Result<(), RunError> {
    let span = ctx.span();
    async move {
        let mut registry = runtime::metrics::registry(&ctx);
        let metrics = Metrics::register(&mut registry);
        let store = cert_store(&config, &metrics, &ctx)?;
        let state = AppState {
            namespaces: namespace_labels(&config.api, &ctx).await?,
            policies: Arc::new(config.policies.clone()),
            metrics,
            review_timeout: config.review_timeout,
            inflight: Inflight::new(INFLIGHT_BODY_BYTES, config.server.max_body_bytes),
        };
        let router = runtime::http::app(api(state), registry, &config.server, &ctx);
        let plain = router
            .clone()
            .layer(axum::middleware::from_fn(plain_paths_only));

        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| RunError::Bind { addr, source })
        };
        let https = TlsListener::new(bind(config.server.addr).await?, tls::server_config(store)?)
            .map_err(|source| RunError::Bind {
            addr: config.server.addr,
            source,
        })?;
        let http = bind(config.metrics.addr).await?;
        tracing::info!(
            https = %config.server.addr, metrics = %config.metrics.addr,
            review_timeout = ?config.review_timeout, "webhook starting"
        );
        let (a, b) = tokio::join!(
            runtime::http::serve_on(https, &config.server, &ctx, router),
            runtime::http::serve_on(http, &config.metrics, &ctx, plain),
        );
        a?;
        b?;
        Ok(())
    }
    .instrument(span)
    .await
}

/// The serving certificate: from files, watched and reloaded (each reload counted), or the
/// self-signed one generated at start-up, whose CA is logged and written to `--ca-file`.
fn cert_store(
    config: &Config,
    metrics: &Metrics,
    ctx: &Context,
) -> Result<Arc<CertStore>, RunError> {
    let store = match &config.tls {
        TlsSource::Files { cert, key } => {
            let store = CertStore::new(tls::load_files(cert, key)?);
            let reloads = metrics.reloads.clone();
            tls::watch(
                Arc::clone(&store),
                cert.clone(),
                key.clone(),
                ctx.shutdown().clone(),
                move |ok| {
                    let outcome = if ok { "success" } else { "failure" };
                    reloads.get_or_create(&ReloadLabels { outcome }).inc();
                },
            )?;
            store
        }
        TlsSource::SelfSigned(generated) => {
            if let Some(path) = &config.ca_file {
                std::fs::write(path, &generated.ca_pem).map_err(|source| RunError::CaFile {
                    path: path.clone(),
                    source,
                })?;
            }
            let ca_bundle = base64::engine::general_purpose::STANDARD.encode(&generated.ca_pem);
            tracing::info!(
                ca_bundle = %ca_bundle,
                ca_file = config.ca_file.as_ref().map(|p| tracing::field::display(p.display())),
                "self-signed CA generated: put ca_bundle in the webhook configuration's clientConfig.caBundle"
            );
            CertStore::new(tls::certified_key(
                generated.cert_pem.as_bytes(),
                generated.key_pem.as_bytes(),
            )?)
        }
    };
    Ok(store)
}

/// The namespace watch for `api`, or `None` (said once) without API access.
async fn namespace_labels(
    api: &ApiAccess,
    ctx: &Context,
) -> Result<Option<NamespaceLabels>, ClientError> {
    let Some(client) = namespaces::client(api).await? else {
        tracing::info!(
            "no Kubernetes API access (not in a pod, no --kubeconfig): pod-security holds every namespace to the policy file's level"
        );
        return Ok(None);
    };
    let labels = namespaces::watch(client, ctx.shutdown().child_token());
    let synced = labels.clone();
    tokio::spawn(async move {
        synced.synced().await;
        tracing::info!("namespace labels synced: pod-security.kubernetes.io/* labels apply");
    });
    Ok(Some(labels))
}
