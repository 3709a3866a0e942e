//! logship: a shipper that moves sealed log segments (written by `logfile`'s rotating writer)
//! and small log files to object storage with deterministic keys and create-only uploads, so
//! that nothing is lost or duplicated across crashes and storage outages.
//!
//! Public surface: [`ShipArgs`] (or [`Options`]) → [`Config`], [`run`] (with the admin server)
//! or [`run_until`] (the shipper alone), [`verify()`], [`fsck()`].

/// A named failpoint (tikv/fail-rs) with the `failpoints` feature (the fault suite kills the
/// process there); nothing at all without it.
macro_rules! failpoint {
    ($name:literal) => {
        #[cfg(feature = "failpoints")]
        fail::fail_point!($name);
    };
}

pub mod args;
pub mod batch;
pub mod census;
pub mod completeness;
pub mod config;
pub mod credentials;
pub mod encoder;
pub mod fsck;
pub mod journal;
pub mod listing;
pub mod lost;
pub mod manifest;
pub mod metrics;
pub mod service;
pub mod sink;
pub mod verify;

pub use args::{FsckArgs, LogshipArgs, LogshipCommand, ShipArgs, VerifyArgs};
pub use config::{Config, ConfigError, Options};
pub use fsck::{FsckError, fsck};
/// The process's own log writer, which [`RunWith`] hands to the shipper to seal on shutdown.
pub use logfile::RotatingWriter;
pub use metrics::Metrics;
pub use service::{Error, Shipper};
pub use verify::{Report, VerifyError, verify};

use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Why the logship role stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The shipper failed.
    #[error(transparent)]
    Ship(#[from] Error),
    /// The admin server failed.
    #[error(transparent)]
    Serve(#[from] runtime::http::ServeError),
}

/// What the role runs with besides its [`Config`] (pure data): the process's servers and
/// handles, which only the caller has.
#[derive(Debug, Default)]
pub struct RunWith {
    /// The admin server (probes and `/metrics`); `None` runs the shipper alone.
    pub admin: Option<runtime::http::ServerConfig>,
    /// The process's own log writer, sealed on shutdown so its last segment ships too.
    pub seal_on_shutdown: Option<RotatingWriter>,
}

/// Runs the logship role: the shipper plus, when configured, the admin server (probes and
/// `/metrics` with the shipper's metrics), until the context's shutdown completes.
pub async fn run(config: Config, with: RunWith, ctx: runtime::Context) -> Result<(), RunError> {
    let span = ctx.span();
    async move {
        let mut registry = runtime::metrics::registry(&ctx);
        let writer = with.seal_on_shutdown.as_ref().map(|w| w.stats().clone());
        let metrics = Metrics::register_with_writer(&mut registry, writer);
        let shipper = Shipper::new(config, metrics)?.seal_on_shutdown(with.seal_on_shutdown);
        let ship = shipper.run(ctx.shutdown().clone());
        match with.admin {
            Some(admin) => {
                let api = utoipa_axum::router::OpenApiRouter::new();
                let app = runtime::http::app(api, registry, &admin, &ctx);
                let (shipped, served) = tokio::join!(ship, runtime::http::serve(&admin, &ctx, app));
                shipped?;
                served?;
            }
            None => {
                ctx.readiness().set_ready(true);
                ship.await?;
            }
        }
        Ok(())
    }
    .instrument(span)
    .await
}

/// Runs the shipper until `shutdown` is cancelled, then ships what it can within
/// `config.shutdown_timeout`.
pub async fn run_until(
    config: Config,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    Shipper::new(config, metrics)?.run(shutdown).await
}
