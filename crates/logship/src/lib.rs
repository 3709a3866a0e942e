//! logship: a rotating JSON-lines log writer for every role, and a shipper that moves sealed
//! segments and small log files to object storage with deterministic keys and create-only
//! uploads, so that nothing is lost or duplicated across crashes and storage outages.
//!
//! Public surface: [`Options`] → [`Config`], [`run`], [`RotatingWriter`], [`verify()`].

pub mod batch;
pub mod config;
pub mod encoder;
pub mod journal;
pub mod metrics;
pub mod service;
pub mod sink;
pub mod verify;
pub mod writer;

pub use config::{Config, ConfigError, Options};
pub use metrics::Metrics;
pub use service::{Error, Shipper};
pub use verify::{Report, verify};
pub use writer::{RotatingWriter, WriterConfig, WriterStats};

use tokio_util::sync::CancellationToken;

/// Runs the shipper until `shutdown` is cancelled, then ships what it can within
/// `config.shutdown_timeout`.
pub async fn run_until(
    config: Config,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    Shipper::new(config, metrics)?.run(shutdown).await
}
