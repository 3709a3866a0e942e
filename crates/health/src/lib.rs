//! ferrostack health checker: probes HTTP targets against Gatus-style conditions, keeps a
//! JSON-lines history, alerts through Alertmanager or a webhook, and serves a status page and
//! blackbox_exporter-style metrics. `run_once` is the CronJob (`healthcheck run`), `run` the
//! long-running service (`healthcheck serve`).

pub mod alert;
pub mod board;
pub mod condition;
pub mod config;
pub mod history;
pub mod metrics;
pub mod probe;
pub mod record;
mod tls;

pub use config::{ConfigError, Target};
pub use record::Record;
