//! The case studies' services rebuilt: `backend-api` (`GET /`, `GET /download_external_logs`,
//! `GET /api`) and `data-api` (`GET /`, `GET /api`), plus the sample external-logs API that
//! `ferrostack up` serves so `/download_external_logs` works out of the box.

mod config;
mod error;
mod external;
mod generate;
mod logdir;
mod metrics;
mod params;
pub mod sample_upstream;

pub use config::{
    BackendApiArgs, Config, ConfigError, DEFAULT_WORK_DELAY, DataApiArgs, ExternalConfig, Role,
    ServiceArgs,
};
pub use logdir::LogDir;

use std::sync::Arc;

use runtime::Context;
use runtime::http::ServeError;
use tracing::Instrument;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Shared state of a service's handlers.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    logs: LogDir,
    metrics: metrics::ServiceMetrics,
    http: reqwest::Client,
}

/// Why a service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The HTTP client for the external logs API could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// The log directory's committer thread could not start.
    #[error("cannot start the log directory writer: {0}")]
    LogDir(std::io::Error),
}

// === impl AppState ===

impl AppState {
    /// Builds the state, registering the service's metrics in `registry`.
    pub fn new(
        config: Config,
        registry: &mut prometheus_client::registry::Registry,
    ) -> Result<Self, StartError> {
        let timeout = config
            .external
            .as_ref()
            .map_or(std::time::Duration::from_secs(10), |e| e.timeout);
        // No redirects: reqwest drops `Authorization` only when the latest hop changes
        // origin and puts the original headers back on every hop, so a second redirect would
        // carry the integration key to whatever host the first one named. A 3xx is a 502
        // naming its Location (external.rs); the operator points the URL at the final host.
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let logs = LogDir::new(config.log_dir.clone()).map_err(StartError::LogDir)?;
        let metrics = metrics::ServiceMetrics::register(registry);
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                logs,
                metrics,
                http,
            }),
        })
    }
}

/// The service's API routes (runtime adds probes, metrics and the rest).
pub fn app(state: AppState) -> OpenApiRouter {
    let mut router = OpenApiRouter::new()
        .routes(routes!(generate::generate))
        .routes(routes!(params::api));
    if state.inner.config.role == Role::BackendApi {
        router = router.routes(routes!(external::download_external_logs));
    }
    router.with_state(state)
}

/// Runs the service until the context's shutdown completes.
pub async fn run(config: Config, ctx: Context) -> Result<(), ServiceError> {
    let span = ctx.span();
    async move {
        let mut registry = runtime::metrics::registry(&ctx);
        let server = config.server.clone();
        let log_dir = config.log_dir.clone();
        let state = AppState::new(config, &mut registry)?;
        let router = runtime::http::app(app(state), registry, &server, &ctx);
        tracing::info!(log_dir = %log_dir.display(), "starting");
        runtime::http::serve(&server, &ctx, router).await?;
        Ok(())
    }
    .instrument(span)
    .await
}

/// Why a service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Start-up failed.
    #[error(transparent)]
    Start(#[from] StartError),
    /// Serving failed.
    #[error(transparent)]
    Serve(#[from] ServeError),
}
