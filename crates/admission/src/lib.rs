//! ferrostack admission webhook: validating and mutating AdmissionReview handling over TLS,
//! a YAML policy set, and `check`, the same policies run offline over manifests.

pub mod check;
pub mod config;
pub mod engine;
pub mod mutate;
pub mod policy;
pub mod review;
pub mod workload;

pub use config::ConfigError;
pub use engine::Policies;
pub mod metrics;
pub mod server;
pub mod tls;
