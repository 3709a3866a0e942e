//! The shared service runtime every ferrostack role stands on: the explicit [`Context`]
//! (shutdown, readiness, telemetry handles), JSON logs, Prometheus metrics, the HTTP server
//! with its probes and limits, graceful shutdown on signals, opt-in fault injection, the
//! process's open-files limit, bounded reads of operator-supplied files, several roles in one
//! process ([`roles`]), and the command line's defaults, refusals and reference ([`args`]).

pub mod args;
pub mod context;
pub mod error;
pub mod faults;
pub mod files;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod roles;
pub mod signals;
pub mod telemetry;

pub use context::{Context, Readiness};
pub use error::ApiError;

/// The version every role reports in `/version` and `ferrostack_build_info`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The source revision, when the build was given one (`FERROSTACK_GIT_SHA` at compile time).
pub const COMMIT: &str = match option_env!("FERROSTACK_GIT_SHA") {
    Some(sha) => sha,
    None => "unknown",
};

/// Parses a human duration (`3s`, `500ms`, `1h 30m`) for clap flags.
pub fn parse_duration(value: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(value)
        .map_err(|e| format!("{e} (expected a duration such as 3s, 500ms, 1h)"))
}

/// A duration as [`parse_duration`] reads it (`30s`, `1h 30m`), for text shown to people.
pub fn format_duration(value: std::time::Duration) -> String {
    humantime::format_duration(value).to_string()
}
