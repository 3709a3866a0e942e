//! The HTTP server every role runs: flags and their validation ([`ServerArgs`] →
//! [`ServerConfig`]), the router factory ([`app`]) that puts probes, metrics, request ids,
//! limits, timeouts and JSON errors around a role's API, and [`serve`] with graceful shutdown.

mod admin;
mod conn;
mod middleware;
mod server;

pub use server::{ServeError, serve, serve_on};

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, StatusCode};
use prometheus_client::registry::Registry;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use utoipa_axum::router::OpenApiRouter;

use crate::Context;
use crate::faults::{FaultArgs, FaultConfigError, Faults};
use crate::metrics::HttpMetrics;

/// `--shutdown-timeout`'s default, which `up` shares.
pub const DEFAULT_SHUTDOWN_TIMEOUT: &str = "30s";

/// Server flags shared by every HTTP role; each role adds its own `--port`.
#[derive(clap::Args, Clone, Debug)]
pub struct ServerArgs {
    /// Address to listen on.
    #[arg(long, env = "FERROSTACK_HOST", default_value = "0.0.0.0")]
    pub host: IpAddr,
    /// After SIGTERM, how long /readyz answers 503 before the listener closes, so that load
    /// balancers and Kubernetes endpoints stop sending traffic first.
    #[arg(long, env = "FERROSTACK_DRAIN_DELAY", default_value = "5s", value_parser = crate::parse_duration)]
    pub drain_delay: Duration,
    /// How long in-flight requests may take to finish once the listener is closed.
    #[arg(long, env = "FERROSTACK_SHUTDOWN_TIMEOUT", default_value = DEFAULT_SHUTDOWN_TIMEOUT, value_parser = crate::parse_duration)]
    pub shutdown_timeout: Duration,
    /// Longest time to answer one request before a 503.
    #[arg(long, env = "FERROSTACK_REQUEST_TIMEOUT", default_value = "30s", value_parser = crate::parse_duration)]
    pub request_timeout: Duration,
    /// Largest request body accepted (413 above it).
    #[arg(long, env = "FERROSTACK_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Longest request URI accepted, path and query (414 above it); 256 to 65534.
    #[arg(long, env = "FERROSTACK_MAX_URI_BYTES", default_value_t = 16 * 1024)]
    pub max_uri_bytes: usize,
    /// Largest total size of request headers accepted (431 above it, as for more than 100
    /// header fields); 1024 to 1048576.
    #[arg(long, env = "FERROSTACK_MAX_HEADER_BYTES", default_value_t = 32 * 1024)]
    pub max_header_bytes: usize,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub faults: FaultArgs,
}

/// Why server flags are invalid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A fault-injection flag is invalid.
    #[error(transparent)]
    Faults(#[from] FaultConfigError),
    /// A timeout of zero would refuse every request.
    #[error("--request-timeout must be above zero")]
    ZeroTimeout,
    /// A size limit outside its sane range.
    #[error("{flag} {value}: must be between {min} and {max}{why}")]
    Limit {
        /// The flag.
        flag: &'static str,
        /// As given.
        value: usize,
        /// The smallest accepted.
        min: usize,
        /// The largest accepted.
        max: usize,
        /// What the bounds protect.
        why: &'static str,
    },
}

/// `--max-uri-bytes` bounds: `/healthz` and ordinary queries fit the minimum; hyper refuses
/// longer URIs than the maximum itself (the most `http::Uri` holds).
pub const MAX_URI_BYTES_RANGE: (usize, usize) = (256, 65_534);
/// `--max-header-bytes` bounds: a browser's or kubelet's headers fit the minimum; the
/// maximum bounds each connection's read buffer.
pub const MAX_HEADER_BYTES_RANGE: (usize, usize) = (1024, 1 << 20);

/// Validated server settings.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Where to listen.
    pub addr: SocketAddr,
    /// See [`ServerArgs::drain_delay`].
    pub drain_delay: Duration,
    /// See [`ServerArgs::shutdown_timeout`].
    pub shutdown_timeout: Duration,
    /// See [`ServerArgs::request_timeout`].
    pub request_timeout: Duration,
    /// See [`ServerArgs::max_body_bytes`].
    pub max_body_bytes: usize,
    /// See [`ServerArgs::max_uri_bytes`].
    pub max_uri_bytes: usize,
    /// See [`ServerArgs::max_header_bytes`].
    pub max_header_bytes: usize,
    /// Fault injection, validated.
    pub faults: Faults,
}

// === impl ServerConfig ===

impl ServerConfig {
    /// Validates `args` for a role listening on `port`.
    pub fn new(args: &ServerArgs, port: u16) -> Result<Self, ConfigError> {
        if args.request_timeout.is_zero() {
            return Err(ConfigError::ZeroTimeout);
        }
        let limit = |flag, value, (min, max): (usize, usize), why| {
            if (min..=max).contains(&value) {
                Ok(value)
            } else {
                Err(ConfigError::Limit {
                    flag,
                    value,
                    min,
                    max,
                    why,
                })
            }
        };
        let max_uri_bytes = limit(
            "--max-uri-bytes",
            args.max_uri_bytes,
            MAX_URI_BYTES_RANGE,
            " (below, even /healthz would be refused; above, the URI cannot be held)",
        )?;
        let max_header_bytes = limit(
            "--max-header-bytes",
            args.max_header_bytes,
            MAX_HEADER_BYTES_RANGE,
            " (below, ordinary clients' headers would be refused; above, each connection \
             could buffer that much)",
        )?;
        Ok(Self {
            addr: SocketAddr::new(args.host, port),
            drain_delay: args.drain_delay,
            shutdown_timeout: args.shutdown_timeout,
            request_timeout: args.request_timeout,
            max_body_bytes: args.max_body_bytes,
            max_uri_bytes,
            max_header_bytes,
            faults: Faults::new(&args.faults)?,
        })
    }
}

pub(crate) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole router of a role: its `api` (with fault injection, when configured) plus
/// `/healthz`, `/readyz`, `/version`, `/metrics`, `/openapi.json`, wrapped in request ids,
/// access logs, RED metrics, size limits, the request timeout and JSON error bodies.
/// Register the role's own metrics in `registry` before calling this.
pub fn app(
    api: OpenApiRouter,
    mut registry: Registry,
    cfg: &ServerConfig,
    ctx: &Context,
) -> Router {
    let http_metrics = HttpMetrics::register(&mut registry);
    let (mut api, mut doc) = api.split_for_parts();
    if cfg.faults.active() {
        api = api.layer(axum::middleware::from_fn_with_state(
            cfg.faults.clone(),
            crate::faults::inject,
        ));
    }
    if let Some(switch) = cfg.faults.routes() {
        api = api.merge(switch);
    }
    let (admin, admin_doc) = admin::router().split_for_parts();
    doc.merge(admin_doc);
    doc.info.title = format!("ferrostack {}", ctx.role());
    doc.info.version = crate::VERSION.to_owned();
    doc.info.description = None;
    doc.info.contact = None;
    doc.info.license = None;
    let state = admin::AdminState {
        role: ctx.role(),
        readiness: ctx.readiness().clone(),
        registry: Arc::new(registry),
        openapi: Arc::from(doc.to_json().unwrap_or_else(|_| "{}".to_owned())),
    };
    let edge = middleware::Edge {
        role: ctx.role(),
        max_uri_bytes: cfg.max_uri_bytes,
        max_header_bytes: cfg.max_header_bytes,
        metrics: http_metrics,
    };
    // One ServiceBuilder stack applied once (outermost first): `Router::layer` boxes each
    // route again for every `.layer` call, and each box costs a clone and an allocation per
    // request (callgrind, with string log fields as `&str`: 62k → 51k instructions per /api
    // request; BENCHMARKS.md).
    let stack = tower::ServiceBuilder::new()
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(SetRequestIdLayer::new(
            X_REQUEST_ID.clone(),
            middleware::MakeId,
        ))
        .layer(PropagateRequestIdLayer::new(X_REQUEST_ID.clone()))
        .layer(axum::middleware::from_fn_with_state(edge, middleware::edge))
        .layer(RequestBodyLimitLayer::new(cfg.max_body_bytes))
        // The layer above is the one body limit: axum's extractors would otherwise add their
        // own 2 MB default, refusing bodies over 2 MB whatever --max-body-bytes says.
        .layer(DefaultBodyLimit::disable())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            cfg.request_timeout,
        ));
    api.merge(admin.with_state(state))
        .fallback(middleware::not_found)
        .layer(stack)
}
