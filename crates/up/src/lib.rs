//! `ferrostack up`: every role in one process on localhost, state under `--data-dir`, each on
//! its row of [`ports::PORTS`] (`--base-port` N plus the row's offset). Roles join as they are
//! built; each gets the defaults of its own flags (environment ignored) plus up's wiring. The
//! one crate that depends on every role: it composes them, as the binary's subcommands do.

pub mod ports;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use runtime::Context;
use runtime::args::defaults;
use runtime::http::ServerArgs;
use runtime::roles::{Roles, all_ready};
use runtime::telemetry::LogEvents;
use services::{BackendApiArgs, Config, DataApiArgs};
use tokio_util::sync::CancellationToken;

use self::ports::Ports;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why `up` could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum UpError {
    /// A flag or a role's configuration is unusable (exit 2).
    #[error(transparent)]
    Config(BoxError),
    /// Starting or running failed (exit 1).
    #[error(transparent)]
    Run(BoxError),
}

macro_rules! up_error_from {
    ($variant:ident: $($error:ty),+) => {$(
        impl From<$error> for UpError {
            fn from(e: $error) -> Self {
                Self::$variant(Box::new(e))
            }
        }
    )+};
}

up_error_from!(Config:
    clap::Error,
    ports::PortError,
    runtime::http::ConfigError,
    services::ConfigError,
    health::ServeConfigError,
    admission::ConfigError,
    logship::ConfigError
);
up_error_from!(Run:
    services::sample_upstream::keys::KeyError,
    runtime::roles::RolesError
);

/// `ferrostack up` flags. --work-delay and --shutdown-timeout share the roles' defaults;
/// --host and --drain-delay have their own (localhost, and no load balancer to drain).
#[derive(Args, Debug)]
pub struct UpArgs {
    /// First port; the roles take N to N+6.
    #[arg(long, env = "FERROSTACK_BASE_PORT", default_value_t = 8080)]
    base_port: u16,
    /// Where all state lives: log dirs, integration keys, history, archive.
    #[arg(long, env = "FERROSTACK_DATA_DIR", default_value = "./.ferrostack")]
    data_dir: PathBuf,
    /// Address every role listens on.
    #[arg(long, env = "FERROSTACK_HOST", default_value = "127.0.0.1")]
    host: IpAddr,
    /// Simulated processing time of the services' GET /.
    #[arg(long, env = "FERROSTACK_WORK_DELAY", default_value = services::DEFAULT_WORK_DELAY, value_parser = runtime::parse_duration)]
    work_delay: Duration,
    /// After Ctrl-C or SIGTERM, how long /readyz answers 503 before listeners close.
    #[arg(long, env = "FERROSTACK_DRAIN_DELAY", default_value = "1s", value_parser = runtime::parse_duration)]
    drain_delay: Duration,
    /// How long in-flight requests may take to finish once listeners are closed.
    #[arg(long, env = "FERROSTACK_SHUTDOWN_TIMEOUT", default_value = runtime::http::DEFAULT_SHUTDOWN_TIMEOUT, value_parser = runtime::parse_duration)]
    shutdown_timeout: Duration,
    /// Serve the fault-injection switch on every service (/fault_injection/enable…).
    #[arg(long, env = "FERROSTACK_FAULT_INJECTION")]
    fault_injection: bool,
}

impl UpArgs {
    /// Where `up` writes its own rotating log file unless `--log-file-dir` says otherwise.
    pub fn log_file_dir(&self) -> PathBuf {
        self.data_dir.join("logs/up")
    }
}

const ENVIRONMENTS: [&str; 3] = ["development", "staging", "production"];

/// Runs every role until `shutdown`; `log_file` is the process's own rotating log (shipped
/// with the services' logs), `max_pending_bytes` the global pending bound.
pub async fn run(
    args: UpArgs,
    shutdown: CancellationToken,
    events: LogEvents,
    log_file: Option<logship::RotatingWriter>,
    max_pending_bytes: u64,
) -> Result<(), UpError> {
    let root = args.data_dir.clone();
    let keys_dir = root.join("integration-keys");
    let keys = services::sample_upstream::keys::ensure(&keys_dir, &ENVIRONMENTS)?;
    let ports = Ports::new(args.host, args.base_port)?;
    let up = Wiring { args: &args, ports };
    let backend = up.backend_api(&keys_dir)?;
    let data = up.data_api()?;
    let check = up.healthcheck()?;
    let sample = up.sample()?;
    let webhook = up.webhook()?;
    let (ship, with) = up.logship(log_file, max_pending_bytes)?;

    let mut roles = Roles::new(Context::new("up", shutdown, events));
    roles.start("backend-api", |ctx| services::run(backend, ctx));
    roles.start("data-api", |ctx| services::run(data, ctx));
    roles.start("webhook", |ctx| admission::run(webhook, ctx));
    // The health checker's first probes should find the services listening, not race them.
    let probed = roles.readiness();
    roles.start("healthcheck", |ctx| async move {
        tokio::select! {
            () = all_ready(&probed) => {}
            () = ctx.shutdown().cancelled() => {}
        }
        health::run(check, ctx).await
    });
    roles.start("logship", |ctx| logship::run(ship, with, ctx));
    roles.start("sample-external-logs", |ctx| {
        services::sample_upstream::run(sample, keys, ctx)
    });
    let banner = ports.banner(ports::PROBE_INTERVAL, &root);
    Ok(roles.supervise(|| eprintln!("{banner}")).await?)
}

/// up's flags and ports, from which each role's configuration is built.
struct Wiring<'a> {
    args: &'a UpArgs,
    ports: Ports,
}

impl Wiring<'_> {
    /// A role's server flags: its defaults with up's host, drain, shutdown and fault switch.
    fn server(&self) -> Result<ServerArgs, UpError> {
        let mut server: ServerArgs = defaults()?;
        server.host = self.args.host;
        server.drain_delay = self.args.drain_delay;
        server.shutdown_timeout = self.args.shutdown_timeout;
        server.faults.fault_injection = self.args.fault_injection;
        Ok(server)
    }

    fn backend_api(&self, keys_dir: &Path) -> Result<Config, UpError> {
        let mut backend: BackendApiArgs = defaults()?;
        backend.port = self.ports.port(&ports::BACKEND_API);
        backend.service.log_dir = Some(self.args.data_dir.join("logs/backend-api"));
        backend.service.work_delay = self.args.work_delay;
        backend.external_logs_url = Some(self.ports.url(&ports::SAMPLE));
        backend.integration_keys_dir = keys_dir.to_owned();
        backend.environments = ENVIRONMENTS.map(str::to_owned).to_vec();
        backend.server = self.server()?;
        Ok(Config::backend_api(&backend, Vec::new())?)
    }

    fn data_api(&self) -> Result<Config, UpError> {
        let mut data: DataApiArgs = defaults()?;
        data.port = self.ports.port(&ports::DATA_API);
        data.service.log_dir = Some(self.args.data_dir.join("logs/data-api"));
        data.service.work_delay = self.args.work_delay;
        data.server = self.server()?;
        Ok(Config::data_api(&data)?)
    }

    fn healthcheck(&self) -> Result<health::ServeConfig, UpError> {
        let mut check: health::ServeArgs = defaults()?;
        check.port = self.ports.port(&ports::HEALTHCHECK);
        check.check.backend_url = self.ports.origin(&ports::BACKEND_API);
        check.check.data_url = self.ports.origin(&ports::DATA_API);
        check.check.external_logs_env = "development".to_owned();
        check.check.interval = ports::PROBE_INTERVAL;
        check.check.history = Some(self.args.data_dir.join("healthcheck/history.jsonl"));
        check.check.history_max_age = Some(Duration::from_secs(7 * 24 * 3600));
        check.server = self.server()?;
        // One process: no replicas to elect among, even in a pod.
        Ok(health::ServeConfig::from_args(&check)?.alone())
    }

    fn sample(&self) -> Result<runtime::http::ServerConfig, UpError> {
        let mut server = self.server()?;
        // It stands in for a third party's API: --fault-injection is for ferrostack's own.
        server.faults.fault_injection = false;
        let port = self.ports.port(&ports::SAMPLE);
        Ok(runtime::http::ServerConfig::new(&server, port)?)
    }

    fn webhook(&self) -> Result<admission::Config, UpError> {
        let mut webhook: admission::ServeArgs = defaults()?;
        webhook.port = self.ports.port(&ports::WEBHOOK);
        webhook.metrics_port = self.ports.port(&ports::WEBHOOK_METRICS);
        webhook.self_signed = true;
        webhook.ca_file = Some(self.args.data_dir.join("webhook-ca.pem"));
        webhook.server = self.server()?;
        Ok(admission::Config::from_args(&webhook)?)
    }

    /// logship: the services' log dirs and up's own log segments to <data-dir>/archive.
    fn logship(
        &self,
        log_file: Option<logship::RotatingWriter>,
        max_pending_bytes: u64,
    ) -> Result<(logship::Config, logship::RunWith), UpError> {
        let root = &self.args.data_dir;
        let mut sources = vec![
            format!("backend-api={}", root.join("logs/backend-api").display()),
            format!("data-api={}", root.join("logs/data-api").display()),
        ];
        if let Some(w) = &log_file {
            sources.push(format!("up={}", w.dir().display()));
        }
        let archive = logship::config::file_url(&root.join("archive"))
            .map_err(|e| UpError::Run(Box::new(e)))?;
        let mut ship: logship::ShipArgs = defaults()?;
        ship.port = self.ports.port(&ports::LOGSHIP);
        ship.sources = sources;
        ship.to = Some(archive);
        ship.state_dir = root.join("logship-state");
        ship.batch_max_age = Duration::from_secs(5);
        ship.server = self.server()?;
        let config = ship.config(max_pending_bytes)?;
        Ok((config, ship.run_with(log_file)?))
    }
}
