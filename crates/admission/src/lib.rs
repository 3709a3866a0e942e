//! ferrostack admission webhook: validating and mutating AdmissionReview handling over TLS,
//! a YAML policy set, and `check`, the same policies run offline over manifests.
//!
//! Entry points: [`run`] with a [`Config`] (`webhook serve`) and [`check::run`]
//! (`webhook check`).

pub mod check;
pub mod config;
pub mod engine;
pub mod metrics;
pub mod mutate;
pub mod policy;
pub mod review;
pub mod schema;
pub mod serve;
pub mod server;
pub mod tls;
pub mod workload;

pub use check::CheckArgs;
pub use config::{PolicyArgs, PolicyFileError};
pub use engine::Policies;
pub use serve::{Config, ConfigError, RunError, ServeArgs, run};
