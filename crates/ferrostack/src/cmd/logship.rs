//! `ferrostack logship`: ship sealed log segments and log files to object storage (probes and
//! `/metrics` on the admin `--port`, 8084); `ferrostack logship verify --to URL`: check the
//! archive, exit 1 on a problem.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use runtime::Context;
use runtime::http::{ServerArgs, ServerConfig};
use runtime::telemetry::LogEvents;
use tokio_util::sync::CancellationToken;

use super::Failure;

/// `ferrostack logship` flags.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct LogshipArgs {
    #[command(subcommand)]
    command: Option<LogshipCommand>,
    #[command(flatten)]
    ship: ShipArgs,
}

#[derive(Subcommand, Debug)]
enum LogshipCommand {
    /// List, decompress and check the archive (objects readable, line counts, sequence gaps
    /// of the test producer); exit 1 on a problem.
    Verify(VerifyArgs),
}

#[derive(Args, Debug)]
struct VerifyArgs {
    /// The archive: file:///path, s3://bucket/prefix, gs://…, az://….
    #[arg(long, env = "FERROSTACK_TO")]
    to: String,
    /// Endpoint of an S3-compatible server.
    #[arg(long, env = "FERROSTACK_S3_ENDPOINT")]
    s3_endpoint: Option<String>,
    /// S3 credentials file (AWS shared-credentials format, profile $AWS_PROFILE or default).
    #[arg(long, env = "FERROSTACK_S3_CREDENTIALS_FILE")]
    s3_credentials_file: Option<PathBuf>,
}

/// The shipper's flags (README "logship" has the guarantees and the key template).
#[derive(Args, Debug, Clone)]
pub(crate) struct ShipArgs {
    /// Admin port: /healthz, /readyz, /metrics.
    #[arg(long, env = "FERROSTACK_PORT", default_value_t = 8084)]
    pub(crate) port: u16,
    /// A directory to ship, DIR or NAME=DIR (repeatable or comma-separated; NAME, by default
    /// the directory's name, is {role} in keys). Names starting with `.` are skipped.
    #[arg(long = "source", env = "FERROSTACK_SOURCE", value_delimiter = ',')]
    pub(crate) sources: Vec<String>,
    /// Destination: file:///path, s3://bucket/prefix, gs://bucket/prefix, az://container/prefix.
    #[arg(long, env = "FERROSTACK_TO")]
    pub(crate) to: Option<String>,
    /// Endpoint of an S3-compatible server.
    #[arg(long, env = "FERROSTACK_S3_ENDPOINT")]
    pub(crate) s3_endpoint: Option<String>,
    /// S3 credentials from this file (AWS shared-credentials format, profile $AWS_PROFILE or
    /// default), re-read when it changes (a mounted Secret); without it: AWS_* env, IRSA web
    /// identity, ECS/EC2 instance credentials.
    #[arg(long, env = "FERROSTACK_S3_CREDENTIALS_FILE")]
    pub(crate) s3_credentials_file: Option<PathBuf>,
    /// The delivery journal and staged objects.
    #[arg(long, env = "FERROSTACK_STATE_DIR", default_value = "./.logship")]
    pub(crate) state_dir: PathBuf,
    /// At most this many files per object.
    #[arg(long, env = "FERROSTACK_BATCH_MAX_FILES", default_value_t = 1000)]
    pub(crate) batch_max_files: usize,
    /// At most this many uncompressed bytes per object (a larger file is an object of its own).
    #[arg(long, env = "FERROSTACK_BATCH_MAX_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub(crate) batch_max_bytes: u64,
    /// Ship a partial batch once its oldest file is this old.
    #[arg(long, env = "FERROSTACK_BATCH_MAX_AGE", default_value = "60s", value_parser = runtime::parse_duration)]
    pub(crate) batch_max_age: Duration,
    /// zstd (level 3) or gzip (level 6).
    #[arg(long, env = "FERROSTACK_COMPRESSION", default_value = "zstd")]
    pub(crate) compression: String,
    /// Object key under the URL prefix: {date} {hour} {host} {role} {seq} {ext}; {seq} required.
    #[arg(long, env = "FERROSTACK_KEY_TEMPLATE", default_value = logship::config::DEFAULT_KEY_TEMPLATE)]
    pub(crate) key_template: String,
    /// Objects above this size use a resumable multipart upload.
    #[arg(long, env = "FERROSTACK_MULTIPART_THRESHOLD", default_value_t = 32 * 1024 * 1024)]
    pub(crate) multipart_threshold: u64,
    /// Multipart part size (at least 5 MiB).
    #[arg(long, env = "FERROSTACK_PART_SIZE", default_value_t = 8 * 1024 * 1024)]
    pub(crate) part_size: u64,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

impl ShipArgs {
    /// The validated logship configuration (admin server included); `max_pending_bytes` is
    /// the global `--max-pending-bytes`, shared with the log-file writer.
    pub(crate) fn config(&self, max_pending_bytes: u64) -> Result<logship::Config, Failure> {
        let mut opts =
            logship::Options::new(self.sources.clone(), self.to.clone().unwrap_or_default());
        opts.s3_endpoint = self.s3_endpoint.clone();
        opts.s3_credentials_file = self.s3_credentials_file.clone();
        opts.s3_credentials_profile = aws_profile();
        opts.state_dir = self.state_dir.clone();
        opts.batch_max_files = self.batch_max_files;
        opts.batch_max_bytes = self.batch_max_bytes;
        opts.batch_max_age = self.batch_max_age;
        opts.compression = self.compression.clone();
        opts.max_pending_bytes = max_pending_bytes;
        opts.key_template = self.key_template.clone();
        opts.multipart_threshold = self.multipart_threshold;
        opts.part_size = self.part_size;
        opts.shutdown_timeout = self.server.shutdown_timeout;
        opts.request_timeout = self.server.request_timeout;
        let mut config = opts.validate().map_err(|e| Failure::Config(e.into()))?;
        config.admin = Some(
            ServerConfig::new(&self.server, self.port).map_err(|e| Failure::Config(e.into()))?,
        );
        Ok(config)
    }
}

pub(crate) async fn run(
    args: LogshipArgs,
    shutdown: CancellationToken,
    events: LogEvents,
    log_file: Option<logship::RotatingWriter>,
    max_pending_bytes: u64,
) -> Result<(), Failure> {
    match args.command {
        Some(LogshipCommand::Verify(v)) => verify(v).await,
        None => {
            let mut config = args.ship.config(max_pending_bytes)?;
            config.seal_on_shutdown = log_file;
            let ctx = Context::new("logship", shutdown, events);
            logship::run(config, ctx)
                .await
                .map_err(|e| Failure::Run(e.into()))
        }
    }
}

/// The profile of the credentials file: `AWS_PROFILE`, else `default`.
fn aws_profile() -> String {
    std::env::var("AWS_PROFILE")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "default".into())
}

async fn verify(args: VerifyArgs) -> Result<(), Failure> {
    let mut opts = logship::Options::new(Vec::new(), args.to);
    opts.s3_endpoint = args.s3_endpoint;
    opts.s3_credentials_file = args.s3_credentials_file;
    opts.s3_credentials_profile = aws_profile();
    let (url, sink) = opts.destination().map_err(|e| Failure::Config(e.into()))?;
    let report = logship::verify(&url, sink)
        .await
        .map_err(|e| Failure::Run(e.into()))?;
    println!("{report}");
    if report.ok() {
        Ok(())
    } else {
        Err(Failure::Run(anyhow::anyhow!(
            "the archive at {url} has problems (see above)"
        )))
    }
}
