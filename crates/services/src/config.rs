//! The services' flags (parsed raw by clap) and their validated [`Config`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use runtime::http::{ServerArgs, ServerConfig};
use secrecy::SecretString;

/// Which service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `backend-api`: `/`, `/download_external_logs`, `/api`.
    BackendApi,
    /// `data-api`: `/`, `/api`.
    DataApi,
}

impl Role {
    /// The role's name.
    pub fn name(self) -> &'static str {
        match self {
            Role::BackendApi => "backend-api",
            Role::DataApi => "data-api",
        }
    }
}

/// `--work-delay`'s default, which `up` shares.
pub const DEFAULT_WORK_DELAY: &str = "3s";

/// Flags both services share.
#[derive(clap::Args, Clone, Debug)]
pub struct ServiceArgs {
    /// Directory GET / writes its log files to, created if missing [default: logs/<role>].
    #[arg(long, env = "FERROSTACK_LOG_DIR")]
    pub log_dir: Option<PathBuf>,
    /// Simulated processing time of GET / (a timer: other requests are not blocked).
    #[arg(long, env = "FERROSTACK_WORK_DELAY", default_value = DEFAULT_WORK_DELAY, value_parser = runtime::parse_duration)]
    pub work_delay: Duration,
}

/// `ferrostack data-api` flags.
#[derive(clap::Args, Clone, Debug)]
pub struct DataApiArgs {
    /// Port to listen on.
    #[arg(long, env = "FERROSTACK_PORT", default_value_t = 8081)]
    pub port: u16,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub service: ServiceArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub server: ServerArgs,
}

/// `ferrostack backend-api` flags.
#[derive(clap::Args, Clone, Debug)]
pub struct BackendApiArgs {
    /// Port to listen on.
    #[arg(long, env = "FERROSTACK_PORT", default_value_t = 8080)]
    pub port: u16,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub service: ServiceArgs,
    /// URL of the external logs API that /download_external_logs calls.
    #[arg(long, env = "FERROSTACK_EXTERNAL_LOGS_URL")]
    pub external_logs_url: Option<String>,
    /// Time limit of one call to the external logs API.
    #[arg(long, env = "FERROSTACK_EXTERNAL_LOGS_TIMEOUT", default_value = "10s", value_parser = runtime::parse_duration)]
    pub external_logs_timeout: Duration,
    /// Directory holding one file per environment with its integration key (a mounted
    /// Secret); INTEGRATION_KEY_<ENV> env vars are the fallback.
    #[arg(
        long,
        env = "FERROSTACK_INTEGRATION_KEYS_DIR",
        default_value = "/etc/ferrostack/integration-keys"
    )]
    pub integration_keys_dir: PathBuf,
    /// Environments /download_external_logs accepts.
    #[arg(
        long,
        env = "FERROSTACK_ENVIRONMENTS",
        value_delimiter = ',',
        default_value = "development,staging,production"
    )]
    pub environments: Vec<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub server: ServerArgs,
}

/// Why the flags are invalid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A server flag is invalid.
    #[error(transparent)]
    Server(#[from] runtime::http::ConfigError),
    /// The URL does not parse or is not http(s).
    #[error("--external-logs-url {url:?}: {reason}")]
    Url {
        /// As given.
        url: String,
        /// Why not.
        reason: String,
    },
    /// An environment name that cannot be a file name or env var suffix.
    #[error("--environments: {0:?} is not a valid environment name (letters, digits, '-' and '_')")]
    Environment(String),
}

/// Validated configuration of one service.
#[derive(Clone, Debug)]
pub struct Config {
    /// Which service.
    pub role: Role,
    /// Server settings.
    pub server: ServerConfig,
    /// Where GET / writes.
    pub log_dir: PathBuf,
    /// Simulated work of GET /.
    pub work_delay: Duration,
    /// backend-api only: the external logs API.
    pub external: Option<ExternalConfig>,
}

/// Settings of `/download_external_logs`.
#[derive(Clone, Debug)]
pub struct ExternalConfig {
    /// The API's URL; `None` answers 503 until configured.
    pub url: Option<reqwest::Url>,
    /// Time limit of one call.
    pub timeout: Duration,
    /// Mounted Secret directory, one file per environment.
    pub keys_dir: PathBuf,
    /// Accepted environments, in the order given.
    pub environments: Vec<String>,
    /// Keys from INTEGRATION_KEY_<ENV>, read once at start.
    pub env_keys: BTreeMap<String, SecretString>,
}

// === impl Config ===

impl Config {
    /// Validates data-api flags.
    pub fn data_api(args: &DataApiArgs) -> Result<Self, ConfigError> {
        Ok(Self {
            role: Role::DataApi,
            server: ServerConfig::new(&args.server, args.port)?,
            log_dir: args
                .service
                .log_dir
                .clone()
                .unwrap_or_else(|| default_log_dir(Role::DataApi)),
            work_delay: args.service.work_delay,
            external: None,
        })
    }

    /// Validates backend-api flags; `env` is the process environment (a map, so tests never
    /// touch the real one), read for INTEGRATION_KEY_<ENV>.
    pub fn backend_api<I>(args: &BackendApiArgs, env: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let url = match &args.external_logs_url {
            None => None,
            Some(raw) => Some(parse_url(raw)?),
        };
        let mut environments = Vec::new();
        for name in &args.environments {
            let name = name.trim();
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid {
                return Err(ConfigError::Environment(name.to_owned()));
            }
            environments.push(name.to_owned());
        }
        let env: BTreeMap<String, String> = env.into_iter().collect();
        let env_keys = environments
            .iter()
            .filter_map(|name| {
                let var = env_var_for(name);
                env.get(&var)
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| (name.clone(), SecretString::from(v.trim().to_owned())))
            })
            .collect();
        Ok(Self {
            role: Role::BackendApi,
            server: ServerConfig::new(&args.server, args.port)?,
            log_dir: args
                .service
                .log_dir
                .clone()
                .unwrap_or_else(|| default_log_dir(Role::BackendApi)),
            work_delay: args.service.work_delay,
            external: Some(ExternalConfig {
                url,
                timeout: args.external_logs_timeout,
                keys_dir: args.integration_keys_dir.clone(),
                environments,
                env_keys,
            }),
        })
    }
}

fn default_log_dir(role: Role) -> PathBuf {
    PathBuf::from("logs").join(role.name())
}

fn parse_url(raw: &str) -> Result<reqwest::Url, ConfigError> {
    let url = reqwest::Url::parse(raw).map_err(|e| ConfigError::Url {
        url: raw.to_owned(),
        reason: e.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::Url {
            url: raw.to_owned(),
            reason: "the scheme must be http or https".to_owned(),
        });
    }
    Ok(url)
}

/// `INTEGRATION_KEY_<ENV>`: upper case, `-` as `_`.
pub(crate) fn env_var_for(environment: &str) -> String {
    format!(
        "INTEGRATION_KEY_{}",
        environment.to_ascii_uppercase().replace('-', "_")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use secrecy::ExposeSecret;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: BackendApiArgs,
    }

    fn parse(argv: &[&str]) -> BackendApiArgs {
        Cli::try_parse_from(std::iter::once("x").chain(argv.iter().copied()))
            .unwrap()
            .args
    }

    #[test]
    fn keys_come_from_the_environment_map_by_upper_case_name() {
        let args = parse(&[]);
        let env = vec![("INTEGRATION_KEY_STAGING".to_owned(), "s3cret\n".to_owned())];
        let config = Config::backend_api(&args, env).unwrap();
        let external = config.external.unwrap();
        assert_eq!(external.env_keys["staging"].expose_secret(), "s3cret");
        assert!(!external.env_keys.contains_key("production"));
    }

    #[test]
    fn a_non_http_url_is_refused_naming_the_flag() {
        let args = parse(&["--external-logs-url", "ftp://x"]);
        let err = Config::backend_api(&args, Vec::new())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("--external-logs-url"), "{err}");
    }

    #[test]
    fn an_environment_name_with_a_slash_is_refused() {
        let args = parse(&["--environments", "dev,../etc"]);
        let err = Config::backend_api(&args, Vec::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("../etc"), "{err}");
    }

    #[test]
    fn the_log_dir_defaults_per_role() {
        let config = Config::backend_api(&parse(&[]), Vec::new()).unwrap();
        assert_eq!(config.log_dir, PathBuf::from("logs/backend-api"));
    }
}
