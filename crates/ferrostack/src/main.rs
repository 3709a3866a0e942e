//! `ferrostack`: one binary, every role a subcommand. This file only parses the command line,
//! starts telemetry and signal handling, dispatches to the role, and maps errors to exit
//! codes (0 done, 1 failed, 2 bad configuration).

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

// jemalloc: a request allocates dozens of small blocks that live microseconds; glibc malloc
// spent a quarter of /api's instructions on them (callgrind), and mimalloc raised the RSS at
// 5,000 connections from 115 to 190 MiB (bench/http).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// One binary for every ferrostack role. Every flag can also be set through the
/// environment variable FERROSTACK_<FLAG> (e.g. --work-delay as FERROSTACK_WORK_DELAY).
#[derive(Parser, Debug)]
#[command(
    name = "ferrostack",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    #[command(flatten)]
    global: cmd::GlobalArgs,
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand, Debug)]
enum Role {
    /// GET / (3 s of work, then a log file), GET /download_external_logs, GET /api.
    BackendApi(services::BackendApiArgs),
    /// GET / (3 s of work, then a log file), GET /api.
    DataApi(services::DataApiArgs),
    /// Kubernetes admission webhook: `serve` (HTTPS) or `check` manifests offline.
    Webhook(admission::WebhookArgs),
    /// Ship sealed log segments and log files to object storage; `logship verify` checks it.
    Logship(cmd::logship::LogshipArgs),
    /// Health checker: `run` probes once (the CronJob), `serve` probes on intervals and serves
    /// a status page, /api/status and /metrics.
    #[command(subcommand)]
    Healthcheck(health::Command),
    /// Every role in one process on localhost: the embedded default for a laptop.
    Up(up::UpArgs),
    /// Print the command-line reference as Markdown (kept in README.md).
    #[command(hide = true)]
    CliReference,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return cmd::usage_error(&e),
    };
    if let Role::CliReference = cli.role {
        print!(
            "{}",
            runtime::args::reference::markdown(&<Cli as clap::CommandFactory>::command())
        );
        return ExitCode::SUCCESS;
    }
    // Before the first connection can be accepted.
    let open_files = runtime::limits::raise_open_files();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return cmd::fail(&cmd::Failure::Run(e.into())),
    };
    let Cli { mut global, role } = cli;
    if let Role::Up(args) = &role {
        global
            .log_file_dir
            .get_or_insert_with(|| args.log_file_dir());
    }
    let outcome = runtime.block_on(async {
        let (log_events, _log_guard, log_file) = cmd::init_telemetry(&global)?;
        runtime::limits::log_open_files(&open_files);
        let shutdown = CancellationToken::new();
        tokio::spawn(runtime::signals::shutdown_on_signals(shutdown.clone()));
        let outcome = match role {
            Role::BackendApi(args) => cmd::services::backend_api(args, shutdown, log_events).await,
            Role::DataApi(args) => cmd::services::data_api(args, shutdown, log_events).await,
            Role::Webhook(args) => cmd::webhook::run(args, shutdown, log_events).await,
            Role::Logship(args) => {
                let bound = global.max_pending_bytes;
                cmd::logship::run(args, shutdown, log_events, log_file.clone(), bound).await
            }
            Role::Healthcheck(cmd) => cmd::healthcheck::run(cmd, shutdown, log_events).await,
            Role::Up(args) => {
                let bound = global.max_pending_bytes;
                Ok(up::run(args, shutdown, log_events, log_file.clone(), bound).await?)
            }
            Role::CliReference => Ok(()),
        };
        // The last lines of the log file: sealed so that the next shipper run takes them.
        if let Some(Err(e)) = log_file.map(|w| w.seal()) {
            eprintln!("ferrostack: sealing the log file failed: {e}");
        }
        outcome
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => cmd::fail(&failure),
    }
}
