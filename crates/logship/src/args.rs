//! The flags of `ferrostack logship` and `logship verify` (parsed raw by clap) and their
//! conversion into [`Options`] and a validated [`Config`]; the flags' defaults live here only.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use runtime::http::{ServerArgs, ServerConfig};
use url::Url;

use crate::config::{Config, ConfigError, Options};
use crate::sink::{S3UploadFlags, SinkOptions};
use crate::{RotatingWriter, RunWith};

/// The defaults of the shipper's flags, written once: the clap attributes below and
/// [`Options::new`] both read them.
pub mod defaults {
    use std::time::Duration;

    /// `--port`.
    pub const PORT: u16 = 8084;
    /// `--state-dir`.
    pub const STATE_DIR: &str = "./.logship";
    /// `--batch-max-files`.
    pub const BATCH_MAX_FILES: usize = 1000;
    /// `--batch-max-bytes`.
    pub const BATCH_MAX_BYTES: u64 = 64 * 1024 * 1024;
    /// `--batch-max-age`, as the flag's text.
    pub const BATCH_MAX_AGE: &str = "60s";
    /// `--batch-max-age` as a duration. A constant, so a text [`whole_seconds`] cannot read
    /// fails the build rather than a run.
    pub const BATCH_MAX_AGE_DURATION: Duration = whole_seconds(BATCH_MAX_AGE);
    /// `--quiet-period`, as the flag's text.
    pub const QUIET_PERIOD: &str = "2s";
    /// `--quiet-period` as a duration.
    pub const QUIET_PERIOD_DURATION: Duration = whole_seconds(QUIET_PERIOD);
    /// `--compression`.
    pub const COMPRESSION: &str = "zstd";
    /// `--key-template`.
    pub const KEY_TEMPLATE: &str = "{date}/{host}/{role}/{seq}.{ext}";
    /// `--multipart-threshold`.
    pub const MULTIPART_THRESHOLD: u64 = 32 * 1024 * 1024;
    /// `--part-size`.
    pub const PART_SIZE: u64 = 8 * 1024 * 1024;
    /// The profile of `--s3-credentials-file` without `AWS_PROFILE`.
    pub const S3_PROFILE: &str = "default";

    /// `"60s"` as a duration: whole seconds only (all a default needs); panics, which in a
    /// constant is a build error, on anything else.
    const fn whole_seconds(text: &str) -> Duration {
        let bytes = text.as_bytes();
        assert!(bytes.len() >= 2 && bytes[bytes.len() - 1] == b's');
        let mut secs = 0u64;
        let mut i = 0;
        while i < bytes.len() - 1 {
            assert!(bytes[i].is_ascii_digit());
            secs = secs * 10 + (bytes[i] - b'0') as u64;
            i += 1;
        }
        Duration::from_secs(secs)
    }
}

/// `ferrostack logship` flags.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct LogshipArgs {
    /// `logship verify`, or `None` to ship.
    #[command(subcommand)]
    pub command: Option<LogshipCommand>,
    /// The shipper's flags.
    #[command(flatten)]
    pub ship: ShipArgs,
}

/// The subcommands of `ferrostack logship`.
#[derive(Subcommand, Debug)]
pub enum LogshipCommand {
    /// List, decompress and check the archive: every object against its manifest (size,
    /// sha256, line count), no gap or overlap in any source's line ranges, lines are JSON, the
    /// test producer's seqs. Exit 0 clean, 1 problems found, 2 unusable.
    Verify(VerifyArgs),
    /// Check the state directory (journal, staging area, referenced files) and, with --to,
    /// the store's staging objects and unfinished uploads; --repair fixes what is safe. Exit 0
    /// clean, 1 problems found (also when all were repaired), 2 unusable. Run it while the
    /// shipper is stopped.
    Fsck(FsckArgs),
}

/// `logship fsck` flags.
#[derive(Args, Debug)]
pub struct FsckArgs {
    /// The shipper's state directory.
    #[arg(long, env = "FERROSTACK_STATE_DIR", default_value = defaults::STATE_DIR)]
    pub state_dir: PathBuf,
    /// Also check the store: file:///path, s3://bucket/prefix, gs://…, az://….
    #[arg(long, env = "FERROSTACK_TO")]
    pub to: Option<String>,
    /// Endpoint of an S3-compatible server.
    #[arg(long, env = "FERROSTACK_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// S3 credentials file (AWS shared-credentials format, profile $AWS_PROFILE or default).
    #[arg(long, env = "FERROSTACK_S3_CREDENTIALS_FILE")]
    pub s3_credentials_file: Option<PathBuf>,
    /// Fix what can be fixed without losing an unshipped byte.
    #[arg(long, env = "FERROSTACK_REPAIR")]
    pub repair: bool,
    /// One JSON object per finding and a summary object, instead of text lines.
    #[arg(long, env = "FERROSTACK_JSON")]
    pub json: bool,
}

/// `logship verify` flags.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The archive: file:///path, s3://bucket/prefix, gs://…, az://….
    #[arg(long, env = "FERROSTACK_TO")]
    pub to: String,
    /// Endpoint of an S3-compatible server.
    #[arg(long, env = "FERROSTACK_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// S3 credentials file (AWS shared-credentials format, profile $AWS_PROFILE or default).
    #[arg(long, env = "FERROSTACK_S3_CREDENTIALS_FILE")]
    pub s3_credentials_file: Option<PathBuf>,
    /// One JSON object per finding and a summary object, instead of text lines.
    #[arg(long, env = "FERROSTACK_JSON")]
    pub json: bool,
}

/// The shipper's flags (README "logship" has the guarantees and the key template).
#[derive(Args, Debug, Clone)]
pub struct ShipArgs {
    /// Admin port: /healthz, /readyz, /metrics.
    #[arg(long, env = "FERROSTACK_PORT", default_value_t = defaults::PORT)]
    pub port: u16,
    /// A directory to ship, DIR or NAME=DIR (repeatable or comma-separated; NAME, by default
    /// the directory's name, is {role} in keys). Names starting with `.` are skipped.
    #[arg(long = "source", env = "FERROSTACK_SOURCE", value_delimiter = ',')]
    pub sources: Vec<String>,
    /// Destination: file:///path, s3://bucket/prefix, gs://bucket/prefix, az://container/prefix.
    #[arg(long, env = "FERROSTACK_TO")]
    pub to: Option<String>,
    /// Endpoint of an S3-compatible server.
    #[arg(long, env = "FERROSTACK_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// S3 credentials from this file (AWS shared-credentials format, profile $AWS_PROFILE or
    /// default), re-read when it changes (a mounted Secret); without it: AWS_* env, IRSA web
    /// identity, ECS/EC2 instance credentials.
    #[arg(long, env = "FERROSTACK_S3_CREDENTIALS_FILE")]
    pub s3_credentials_file: Option<PathBuf>,
    /// S3 server-side encryption of uploaded objects: AES256 or aws:kms.
    #[arg(long, env = "FERROSTACK_S3_SSE")]
    pub s3_sse: Option<String>,
    /// The KMS key for --s3-sse aws:kms (else the bucket's default key).
    #[arg(long, env = "FERROSTACK_S3_SSE_KMS_KEY_ID")]
    pub s3_sse_kms_key_id: Option<String>,
    /// S3 storage class of objects up to --multipart-threshold: STANDARD, STANDARD_IA,
    /// ONEZONE_IA, INTELLIGENT_TIERING, GLACIER_IR, GLACIER, DEEP_ARCHIVE, ...
    #[arg(long, env = "FERROSTACK_S3_STORAGE_CLASS")]
    pub s3_storage_class: Option<String>,
    /// S3 object tags KEY=VALUE (repeatable or comma-separated; at most 10) of objects up to
    /// --multipart-threshold.
    #[arg(long = "s3-tags", env = "FERROSTACK_S3_TAGS", value_delimiter = ',')]
    pub s3_tags: Vec<String>,
    /// The delivery journal and staged objects.
    #[arg(long, env = "FERROSTACK_STATE_DIR", default_value = defaults::STATE_DIR)]
    pub state_dir: PathBuf,
    /// At most this many files per object.
    #[arg(long, env = "FERROSTACK_BATCH_MAX_FILES", default_value_t = defaults::BATCH_MAX_FILES)]
    pub batch_max_files: usize,
    /// At most this many uncompressed bytes per object (a larger file is an object of its own).
    #[arg(long, env = "FERROSTACK_BATCH_MAX_BYTES", default_value_t = defaults::BATCH_MAX_BYTES)]
    pub batch_max_bytes: u64,
    /// Ship a partial batch once its oldest file is this old.
    #[arg(long, env = "FERROSTACK_BATCH_MAX_AGE", default_value = defaults::BATCH_MAX_AGE, value_parser = runtime::parse_duration)]
    pub batch_max_age: Duration,
    /// A file is read only once it has not been modified for this long, and deleted after
    /// delivery only if still unchanged: a producer must not write to a file quiet this long.
    #[arg(long, env = "FERROSTACK_QUIET_PERIOD", default_value = defaults::QUIET_PERIOD, value_parser = runtime::parse_duration)]
    pub quiet_period: Duration,
    /// zstd (level 3) or gzip (level 6).
    #[arg(long, env = "FERROSTACK_COMPRESSION", default_value = defaults::COMPRESSION)]
    pub compression: String,
    /// Object key under the URL prefix: {date} {hour} {host} {role} {seq} {ext}; {seq} required.
    #[arg(long, env = "FERROSTACK_KEY_TEMPLATE", default_value = defaults::KEY_TEMPLATE)]
    pub key_template: String,
    /// Objects above this size use a resumable multipart upload.
    #[arg(long, env = "FERROSTACK_MULTIPART_THRESHOLD", default_value_t = defaults::MULTIPART_THRESHOLD)]
    pub multipart_threshold: u64,
    /// Multipart part size (at least 5 MiB).
    #[arg(long, env = "FERROSTACK_PART_SIZE", default_value_t = defaults::PART_SIZE)]
    pub part_size: u64,
    /// The admin server's flags.
    #[command(flatten)]
    pub server: ServerArgs,
}

// === impl ShipArgs ===

impl ShipArgs {
    /// The raw settings of these flags; `max_pending_bytes` is the global
    /// `--max-pending-bytes`, shared with the log-file writer.
    pub fn options(&self, max_pending_bytes: u64) -> Options {
        Options {
            s3_endpoint: self.s3_endpoint.clone(),
            s3_credentials_file: self.s3_credentials_file.clone(),
            s3_credentials_profile: aws_profile(),
            s3_upload: S3UploadFlags {
                sse: self.s3_sse.clone(),
                sse_kms_key_id: self.s3_sse_kms_key_id.clone(),
                storage_class: self.s3_storage_class.clone(),
                tags: self.s3_tags.clone(),
            },
            state_dir: self.state_dir.clone(),
            batch_max_files: self.batch_max_files,
            batch_max_bytes: self.batch_max_bytes,
            batch_max_age: self.batch_max_age,
            quiet_period: self.quiet_period,
            compression: self.compression.clone(),
            max_pending_bytes,
            key_template: self.key_template.clone(),
            multipart_threshold: self.multipart_threshold,
            part_size: self.part_size,
            shutdown_timeout: self.server.shutdown_timeout,
            request_timeout: self.server.request_timeout,
            ..Options::new(self.sources.clone(), self.to.clone().unwrap_or_default())
        }
    }

    /// The validated shipper configuration (see [`ShipArgs::options`]).
    pub fn config(&self, max_pending_bytes: u64) -> Result<Config, ConfigError> {
        self.options(max_pending_bytes).validate()
    }

    /// What [`crate::run`] runs with: the validated admin server (`--port` and the server
    /// flags) and the process's own log writer, sealed on shutdown so its last lines ship.
    pub fn run_with(
        &self,
        seal_on_shutdown: Option<RotatingWriter>,
    ) -> Result<RunWith, runtime::http::ConfigError> {
        Ok(RunWith {
            admin: Some(ServerConfig::new(&self.server, self.port)?),
            seal_on_shutdown,
        })
    }
}

// === impl VerifyArgs ===

impl VerifyArgs {
    /// The validated archive URL and store settings.
    pub fn destination(&self) -> Result<(Url, SinkOptions), ConfigError> {
        Options {
            s3_endpoint: self.s3_endpoint.clone(),
            s3_credentials_file: self.s3_credentials_file.clone(),
            s3_credentials_profile: aws_profile(),
            ..Options::new(Vec::new(), self.to.clone())
        }
        .destination()
    }
}

// === impl FsckArgs ===

impl FsckArgs {
    /// The validated store to check, if `--to` was given.
    pub fn destination(&self) -> Result<Option<(Url, SinkOptions)>, ConfigError> {
        let Some(to) = &self.to else {
            return Ok(None);
        };
        Options {
            s3_endpoint: self.s3_endpoint.clone(),
            s3_credentials_file: self.s3_credentials_file.clone(),
            s3_credentials_profile: aws_profile(),
            ..Options::new(Vec::new(), to.clone())
        }
        .destination()
        .map(Some)
    }
}

/// The profile of the credentials file: `AWS_PROFILE`, else `default`.
fn aws_profile() -> String {
    std::env::var("AWS_PROFILE")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| defaults::S3_PROFILE.into())
}

#[cfg(test)]
mod tests {
    use clap::{FromArgMatches, Parser};

    use super::*;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        args: LogshipArgs,
    }

    /// The flags at their defaults with the environment ignored (as `ferrostack up` reads them).
    fn parse(argv: &[&str]) -> ShipArgs {
        let command = <Cli as clap::CommandFactory>::command().mut_args(|a| a.env(None::<&str>));
        let matches = command
            .try_get_matches_from(std::iter::once("logship").chain(argv.iter().copied()))
            .unwrap();
        Cli::from_arg_matches(&matches).unwrap().args.ship
    }

    #[test]
    fn flag_defaults_and_options_new_agree() {
        let args = parse(&["--source", "/var/log/app", "--to", "file:///tmp/a"]);
        let from_flags = args.options(7);
        let plain = Options::new(vec!["/var/log/app".into()], "file:///tmp/a");
        assert_eq!(
            format!("{from_flags:?}"),
            format!(
                "{:?}",
                Options {
                    max_pending_bytes: 7,
                    ..plain
                }
            )
        );
        assert_eq!(args.batch_max_age, Duration::from_secs(60));
    }

    #[test]
    fn config_validates_and_names_the_flag() {
        let ok = parse(&["--source", "/var/log/app", "--to", "file:///tmp/a"]);
        let config = ok.config(0).unwrap();
        assert_eq!(config.sources[0].name, "app");
        assert_eq!(config.max_pending_bytes, 0);
        let bad = parse(&[
            "--source",
            "/x",
            "--to",
            "file:///tmp/a",
            "--part-size",
            "1",
        ]);
        assert_eq!(bad.config(0).unwrap_err().flag, "part-size");
        let no_to = parse(&["--source", "/x"]);
        assert_eq!(no_to.config(0).unwrap_err().flag, "to");
    }

    #[test]
    fn admin_validates_the_server_flags() {
        let ok = parse(&[]);
        assert!(ok.run_with(None).is_ok());
        let bad = parse(&["--request-timeout", "0s"]);
        assert!(bad.run_with(None).is_err());
    }
}
