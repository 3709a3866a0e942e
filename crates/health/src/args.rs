//! The flags of `healthcheck run` and `healthcheck serve` (parsed raw by clap) and their
//! validation into [`Config`]. Targets come from `--config` or, without it, from the flags
//! for the case study's three checks.

use std::path::PathBuf;
use std::time::Duration;

use runtime::http::{ServerArgs, ServerConfig};

use crate::alert::{AlertConfig, Thresholds};
use crate::config::{ConfigError, Target, check_interval, default_targets, load_targets};
use crate::{Config, HistoryConfig};

/// The shortest `--history-max-age`: the page's shortest uptime window.
const MIN_HISTORY_AGE: Duration = Duration::from_secs(3600);
/// The smallest `--history-max-bytes`.
const MIN_HISTORY_BYTES: u64 = 1 << 20;
/// Room per result when sizing `--history-max-bytes`: a line is usually under 1 KiB; failed
/// conditions and error messages make it longer.
const BYTES_PER_RESULT: u64 = 4096;

/// `ferrostack healthcheck` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Probe every target once, append the results to the history, alert, push; exit 0 when
    /// all passed, 1 when one failed, 2 on a bad configuration (the CronJob).
    Run(RunArgs),
    /// Probe every target on its interval; serve the status page (/), /api/status, /metrics.
    Serve(ServeArgs),
}

/// Flags both modes share.
#[derive(clap::Args, Clone, Debug)]
pub struct CheckArgs {
    /// YAML file of targets (see README); without it the three default targets are probed.
    #[arg(long, env = "FERROSTACK_CONFIG")]
    pub config: Option<PathBuf>,
    /// backend-api base URL for the default targets (`/` and `/download_external_logs`).
    #[arg(
        long,
        env = "FERROSTACK_BACKEND_URL",
        default_value = "http://localhost:8080"
    )]
    pub backend_url: String,
    /// data-api base URL for the default targets (`/`).
    #[arg(
        long,
        env = "FERROSTACK_DATA_URL",
        default_value = "http://localhost:8081"
    )]
    pub data_url: String,
    /// Environment the default `/download_external_logs?env=` target asks for.
    #[arg(
        long,
        env = "FERROSTACK_EXTERNAL_LOGS_ENV",
        default_value = "development"
    )]
    pub external_logs_env: String,
    /// Probe interval of the default targets in serve mode (a config file sets its own); at
    /// least 1s, as in the file.
    #[arg(long, env = "FERROSTACK_INTERVAL", default_value = "60s", value_parser = runtime::parse_duration)]
    pub interval: Duration,
    /// JSON-lines file results are appended to (and, in serve mode, read from).
    #[arg(long, env = "FERROSTACK_HISTORY")]
    pub history: Option<PathBuf>,
    /// Drop history results older than this (e.g. 7d); at least 1h and (failure + success
    /// threshold) × the longest interval, which the alerts are replayed from.
    #[arg(long, env = "FERROSTACK_HISTORY_MAX_AGE", value_parser = runtime::parse_duration)]
    pub history_max_age: Option<Duration>,
    /// Keep the history file at most this many bytes, dropping the oldest results; at least
    /// 1 MiB and targets × (failure + success threshold) × 4 KiB.
    #[arg(long, env = "FERROSTACK_HISTORY_MAX_BYTES")]
    pub history_max_bytes: Option<u64>,
    /// Alertmanager base URL; alerts are posted to <url>/api/v2/alerts.
    #[arg(long, env = "FERROSTACK_ALERTMANAGER_URL")]
    pub alertmanager_url: Option<String>,
    /// URL that receives a JSON POST when a target's alert fires or resolves.
    #[arg(long, env = "FERROSTACK_ALERT_WEBHOOK_URL")]
    pub alert_webhook_url: Option<String>,
    /// Consecutive failures that fire a target's alert.
    #[arg(long, env = "FERROSTACK_FAILURE_THRESHOLD", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub failure_threshold: u32,
    /// Consecutive successes that resolve it.
    #[arg(long, env = "FERROSTACK_SUCCESS_THRESHOLD", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub success_threshold: u32,
    /// Probes in flight at once; the others wait their turn (bounds sockets and the load on
    /// shared upstreams).
    #[arg(long, env = "FERROSTACK_MAX_CONCURRENT_PROBES", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_probes: u32,
}

/// `healthcheck run` flags.
#[derive(clap::Args, Clone, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub check: CheckArgs,
    /// Pushgateway base URL; results and the last-success time go to job ferrostack-healthcheck.
    #[arg(long, env = "FERROSTACK_PUSHGATEWAY_URL")]
    pub pushgateway_url: Option<String>,
}

/// `healthcheck serve` flags.
#[derive(clap::Args, Clone, Debug)]
pub struct ServeArgs {
    /// Port to listen on.
    #[arg(long, env = "FERROSTACK_PORT", default_value_t = 8082)]
    pub port: u16,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub check: CheckArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub server: ServerArgs,
    /// File holding the bearer token of POST /api/push/<target> (a mounted Secret), for push
    /// targets (external-endpoints) without their own token-file; without a token push is refused.
    #[arg(long, env = "FERROSTACK_PUSH_TOKEN_FILE")]
    pub push_token_file: Option<PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub lease: Box<crate::leader::LeaseArgs>,
}

/// Validated serve-mode configuration.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// What to probe and where results go.
    pub health: Config,
    /// The HTTP server.
    pub server: ServerConfig,
    /// Leader election among replicas.
    pub election: crate::leader::ElectionConfig,
}

/// Why serve flags are invalid.
#[derive(Debug, thiserror::Error)]
pub enum ServeConfigError {
    /// Targets, history or alert flags.
    #[error(transparent)]
    Health(#[from] ConfigError),
    /// Server flags.
    #[error(transparent)]
    Server(#[from] runtime::http::ConfigError),
}

// === impl Config ===

impl Config {
    /// Validates the shared flags (reads the targets file).
    pub fn from_args(args: &CheckArgs) -> Result<Self, ConfigError> {
        check_interval(args.interval).map_err(|e| ConfigError::flag("--interval", e))?;
        let targets = match &args.config {
            Some(path) => load_targets(path)?,
            None => {
                let mut targets =
                    default_targets(&args.backend_url, &args.data_url, &args.external_logs_env)?;
                for t in &mut targets {
                    t.interval = args.interval;
                }
                targets
            }
        };
        let thresholds = Thresholds {
            failure: args.failure_threshold,
            success: args.success_threshold,
        };
        check_retention(args, &targets, thresholds)?;
        for (flag, url) in [
            ("--alertmanager-url", &args.alertmanager_url),
            ("--alert-webhook-url", &args.alert_webhook_url),
        ] {
            if let Some(u) = url {
                check_url(flag, u)?;
            }
        }
        Ok(Self {
            targets,
            history: args.history.clone().map(|path| HistoryConfig {
                path,
                max_age: args.history_max_age,
                max_bytes: args.history_max_bytes,
            }),
            alerts: AlertConfig {
                alertmanager_url: args.alertmanager_url.clone(),
                webhook_url: args.alert_webhook_url.clone(),
                thresholds,
            },
            pushgateway_url: None,
            max_concurrent_probes: usize::try_from(args.max_concurrent_probes)
                .unwrap_or(usize::MAX),
        })
    }

    /// Validates `healthcheck run` flags.
    pub fn from_run_args(args: &RunArgs) -> Result<Self, ConfigError> {
        let mut config = Self::from_args(&args.check)?;
        if let Some(u) = &args.pushgateway_url {
            check_url("--pushgateway-url", u)?;
        }
        config.pushgateway_url = args.pushgateway_url.clone();
        // Push targets get their results from `serve`; a run has nothing to probe for them.
        config.targets.retain(|t| t.push.is_none());
        Ok(config)
    }
}

// === impl ServeConfig ===

impl ServeConfig {
    /// Validates `healthcheck serve` flags.
    pub fn from_args(args: &ServeArgs) -> Result<Self, ServeConfigError> {
        let mut health = Config::from_args(&args.check)?;
        crate::pushed::apply_token_file(&mut health.targets, args.push_token_file.as_deref())?;
        Ok(Self {
            health,
            server: ServerConfig::new(&args.server, args.port)?,
            election: crate::leader::ElectionConfig::from_args(&args.lease)?,
        })
    }
}

/// Retention must keep what the alerts are replayed from: the last `failure + success`
/// results of every target (the CronJob keeps no other state, so a history wiped every run
/// would never reach the failure threshold), and the hour the page's shortest uptime covers.
fn check_retention(
    args: &CheckArgs,
    targets: &[Target],
    thresholds: Thresholds,
) -> Result<(), ConfigError> {
    let results = u64::from(thresholds.failure) + u64::from(thresholds.success);
    if let Some(age) = args.history_max_age {
        let longest = targets.iter().map(|t| t.interval).max().unwrap_or_default();
        let needed = longest.saturating_mul(u32::try_from(results).unwrap_or(u32::MAX));
        let min = needed.max(MIN_HISTORY_AGE);
        if age < min {
            return Err(ConfigError::flag(
                "--history-max-age",
                format!(
                    "{} is less than the minimum {} (1h, or (failure + success threshold) \
                     × the longest interval), below which alerts could never fire",
                    humantime::format_duration(age),
                    humantime::format_duration(min)
                ),
            ));
        }
    }
    if let Some(bytes) = args.history_max_bytes {
        let needed = (targets.len() as u64)
            .saturating_mul(results)
            .saturating_mul(BYTES_PER_RESULT);
        let min = needed.max(MIN_HISTORY_BYTES);
        if bytes < min {
            return Err(ConfigError::flag(
                "--history-max-bytes",
                format!(
                    "{bytes} is less than the minimum {min} (1 MiB, or targets × (failure + \
                     success threshold) × 4 KiB), below which alerts could never fire"
                ),
            ));
        }
    }
    Ok(())
}

fn check_url(flag: &str, url: &str) -> Result<(), ConfigError> {
    match url.parse::<http::Uri>() {
        Ok(u) if matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some() => Ok(()),
        _ => Err(ConfigError::flag(
            flag,
            format!("{url:?} is not an http(s) URL"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(args: &[&str]) -> Result<Config, ConfigError> {
        let cli = Cli::try_parse_from(std::iter::once("healthcheck").chain(args.iter().copied()))
            .unwrap();
        Config::from_run_args(&cli.run)
    }

    #[test]
    fn flags_build_the_default_targets() {
        let c = parse(&[
            "--backend-url",
            "http://b:1",
            "--external-logs-env",
            "staging",
            "--interval",
            "15s",
        ])
        .unwrap();
        let urls: Vec<String> = c.targets.iter().map(|t| t.url.to_string()).collect();
        assert_eq!(
            urls,
            [
                "http://b:1/",
                "http://localhost:8081/",
                "http://b:1/download_external_logs?env=staging"
            ]
        );
        assert!(
            c.targets
                .iter()
                .all(|t| t.interval == Duration::from_secs(15))
        );
        assert_eq!(
            c.alerts.thresholds,
            Thresholds {
                failure: 3,
                success: 2
            }
        );
        assert!(c.history.is_none());
    }

    #[test]
    fn bad_urls_in_flags_are_config_errors() {
        let e = parse(&["--alertmanager-url", "nope"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "flags: field \"--alertmanager-url\": \"nope\" is not an http(s) URL"
        );
        let e = parse(&["--data-url", "ftp://x"]).unwrap_err();
        assert_eq!(e.field(), Some("--data-url"));
    }

    #[test]
    fn zero_thresholds_are_rejected_by_the_parser() {
        assert!(Cli::try_parse_from(["healthcheck", "--failure-threshold", "0"]).is_err());
    }
}
