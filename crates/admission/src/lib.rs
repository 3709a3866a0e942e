//! ferrostack admission webhook: validating and mutating AdmissionReview handling over TLS,
//! a YAML policy set, and `check`, the same policies run offline over manifests.
//!
//! Entry points: [`run`] with a [`Config`] (`webhook serve`) and [`check::run`]
//! (`webhook check`).

pub mod audit;
pub mod check;
pub mod config;
pub mod engine;
pub mod exceptions;
pub mod format;
pub mod metrics;
pub mod mutate;
pub mod namespaces;
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

/// `ferrostack webhook` subcommands.
#[derive(clap::Args, Debug)]
pub struct WebhookArgs {
    /// Which one.
    #[command(subcommand)]
    pub command: WebhookCommand,
}

/// `webhook serve`, `webhook check` or `webhook audit`.
// Parsed once at start-up: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(clap::Subcommand, Debug)]
pub enum WebhookCommand {
    /// Serve POST /validate and POST /mutate over HTTPS; probes and metrics on --metrics-port.
    Serve(ServeArgs),
    /// Check manifests against the policies offline, printed like a linter; exit 1 on an
    /// enforce violation, 2 on an unreadable file or policy file.
    Check(CheckArgs),
    /// Audit the objects that exist (from the API server, read-only, or from `kubectl get -A
    /// -o yaml` output): one JSON line per finding, then a summary; exit codes as check.
    Audit(audit::AuditArgs),
}
