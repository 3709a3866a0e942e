//! ferrostack health checker: probes HTTP, TCP, TLS, DNS, gRPC and ICMP targets against
//! Gatus-style conditions, keeps a JSON-lines history, alerts through Alertmanager or a
//! webhook, and serves a status page and blackbox_exporter-style metrics. `run_once` is the
//! CronJob (`healthcheck run`), `run` the long-running service (`healthcheck serve`).

use std::path::PathBuf;
use std::time::Duration;

pub mod alert;
mod args;
mod badge;
pub mod board;
pub mod condition;
pub mod config;
mod deliver;
pub mod history;
pub mod leader;
pub mod maintenance;
pub mod metrics;
pub mod outcome;
pub mod page;
pub mod probe;
pub mod push;
pub mod pushed;
pub mod record;
pub mod rollup;
mod run;
pub mod serve;
pub mod slo;
pub mod status;
pub mod tls;

pub use alert::{AlertConfig, Thresholds};
pub use args::{CheckArgs, Command, RunArgs, ServeArgs, ServeConfig, ServeConfigError};
pub use config::{ConfigError, Target, default_targets, load_targets};
pub use record::Record;
pub use run::{RunFailed, RunReport, run_once};
pub use serve::{ServeError, Service, app, run};

/// What the health checker does and where it keeps and sends things.
#[derive(Debug, Clone)]
pub struct Config {
    /// Targets to probe.
    pub targets: Vec<Target>,
    /// Where results are appended (none: results are only logged and kept in memory).
    pub history: Option<HistoryConfig>,
    /// Alert receivers and thresholds.
    pub alerts: AlertConfig,
    /// Pushgateway base URL (`run` only).
    pub pushgateway_url: Option<String>,
    /// Probes in flight at once (at least 1; more than Tokio's semaphore limit counts as that limit).
    pub max_concurrent_probes: usize,
}

/// The history file and its retention.
#[derive(Debug, Clone)]
pub struct HistoryConfig {
    /// JSON-lines file.
    pub path: PathBuf,
    /// Drop results older than this.
    pub max_age: Option<Duration>,
    /// Keep the file at most this large (oldest results go first).
    pub max_bytes: Option<u64>,
}

// === impl Config ===

impl Config {
    fn history_path(&self) -> String {
        self.history
            .as_ref()
            .map_or_else(String::new, |h| h.path.display().to_string())
    }
}
