//! What every subcommand shares: global flags, telemetry start-up, and the mapping of
//! failures to exit codes.

pub(crate) mod healthcheck;
pub(crate) mod logship;
pub(crate) mod services;
pub(crate) mod webhook;

use std::process::ExitCode;

use runtime::args::usage;
use runtime::telemetry::LogEvents;

/// Flags of the process rather than of a role.
#[derive(clap::Args, Debug)]
pub(crate) struct GlobalArgs {
    /// Log filter, as RUST_LOG (e.g. `info`, `debug,hyper=info`).
    #[arg(
        long,
        global = true,
        env = "FERROSTACK_LOG_LEVEL",
        default_value = "info"
    )]
    pub(crate) log_level: String,
    /// Also write the JSON log lines to rotating files in this directory (sealed at 64 MiB or
    /// 1 h, for `ferrostack logship`); `up` defaults it to <data-dir>/logs/up.
    #[arg(long, global = true, env = "FERROSTACK_LOG_FILE_DIR")]
    pub(crate) log_file_dir: Option<std::path::PathBuf>,
    /// The pending bound, for the --log-file-dir writer and for `logship`'s sources: at this
    /// many unshipped bytes writers stop writing files (stdout goes on), the pending_full
    /// metrics go to 1 and a warning is logged; unshipped files are never deleted (0 = none).
    #[arg(
        long,
        global = true,
        env = "FERROSTACK_MAX_PENDING_BYTES",
        default_value_t = ::logfile::DEFAULT_MAX_PENDING_BYTES
    )]
    pub(crate) max_pending_bytes: u64,
}

/// How a command failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Bad configuration: exit 2.
    Config(anyhow::Error),
    /// Failed while running: exit 1.
    Run(anyhow::Error),
}

/// Each role error as the failure it is: `?` then sorts bad configuration (exit 2) from
/// failures while running (exit 1) without a `map_err` at every call.
macro_rules! failure_from {
    ($variant:ident: $($error:ty),+) => {$(
        impl From<$error> for Failure {
            fn from(e: $error) -> Self {
                Self::$variant(e.into())
            }
        }
    )+};
}

impl From<admission::audit::AuditError> for Failure {
    fn from(e: admission::audit::AuditError) -> Self {
        use admission::audit::AuditError as E;
        match e {
            E::Policy(_) | E::NoSource | E::Client(_) => Self::Config(e.into()),
            E::List { .. } | E::Output(_) => Self::Run(e.into()),
        }
    }
}

impl From<health::ServeError> for Failure {
    fn from(e: health::ServeError) -> Self {
        match e {
            // An unreadable kubeconfig or a pod without its ServiceAccount token.
            health::ServeError::Election(_) => Self::Config(e.into()),
            _ => Self::Run(e.into()),
        }
    }
}

impl From<up::UpError> for Failure {
    fn from(e: up::UpError) -> Self {
        match e {
            up::UpError::Config(e) => Self::Config(anyhow::Error::from_boxed(e)),
            up::UpError::Run(e) => Self::Run(anyhow::Error::from_boxed(e)),
        }
    }
}

failure_from!(Config:
    clap::Error,
    runtime::http::ConfigError,
    ::services::ConfigError,
    health::ConfigError,
    health::ServeConfigError,
    admission::ConfigError,
    admission::PolicyFileError,
    ::logship::ConfigError,
    // fsck's "unusable" (exit 2): the state directory or the store cannot be read.
    ::logship::FsckError,
    // verify's "unusable" (exit 2): the archive cannot be listed.
    ::logship::VerifyError
);
failure_from!(Run:
    ::services::ServiceError,
    ::services::sample_upstream::keys::KeyError,
    runtime::http::ServeError,
    runtime::roles::RolesError,
    health::RunFailed,
    admission::RunError,
    ::logship::RunError
);

pub(crate) fn fail(failure: &Failure) -> ExitCode {
    match failure {
        Failure::Config(e) => {
            eprintln!(
                "ferrostack: configuration error: {}",
                usage::one_line(&format!("{e:#}"))
            );
            ExitCode::from(2)
        }
        Failure::Run(e) => {
            eprintln!("ferrostack: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// A command line or environment clap refused: one line naming the flag, exit 2. `--help`,
/// `--version` and the help shown for a missing subcommand print as clap prints them.
pub(crate) fn usage_error(e: &clap::Error) -> ExitCode {
    let Some(what) = usage::refusal(e) else {
        e.exit()
    };
    eprintln!("ferrostack: configuration error: {what}");
    ExitCode::from(2)
}

/// Starts JSON logging on stdout and, with `--log-file-dir`, into the rotating log file too.
pub(crate) fn init_telemetry(
    global: &GlobalArgs,
) -> Result<
    (
        LogEvents,
        runtime::telemetry::Guard,
        Option<::logfile::RotatingWriter>,
    ),
    Failure,
> {
    let writer = match &global.log_file_dir {
        Some(dir) => Some(
            ::logfile::RotatingWriter::open(::logfile::WriterConfig {
                max_pending_bytes: global.max_pending_bytes,
                ..::logfile::WriterConfig::new(dir)
            })
            .map_err(|e| {
                Failure::Config(anyhow::anyhow!("--log-file-dir {}: {e}", dir.display()))
            })?,
        ),
        None => None,
    };
    let extra = writer
        .clone()
        .map(tracing_subscriber::fmt::writer::BoxMakeWriter::new);
    let (mut events, guard) = runtime::telemetry::init(&global.log_level, extra)
        .map_err(|e| Failure::Config(e.into()))?;
    if let Some(w) = &writer {
        events = events.with_log_file_metrics(std::sync::Arc::new(w.stats().clone()));
    }
    Ok((events, guard, writer))
}
