//! `ferrostack up`: every role in one process on localhost, state under `--data-dir`.
//! Ports from `--base-port` N: backend-api N, data-api N+1, healthcheck N+2, webhook N+3,
//! logship N+4, webhook metrics N+5, the sample external-logs API N+6. Roles join as they
//! are built; each gets the defaults of its own flags (environment ignored) plus up's wiring.

use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, FromArgMatches};
use runtime::Context;
use runtime::http::ServerArgs;
use runtime::telemetry::LogEvents;
use secrecy::SecretString;
use services::{BackendApiArgs, Config, DataApiArgs};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::Failure;

/// `ferrostack up` flags.
#[derive(Args, Debug)]
pub(crate) struct UpArgs {
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
    #[arg(long, env = "FERROSTACK_WORK_DELAY", default_value = "3s", value_parser = runtime::parse_duration)]
    work_delay: Duration,
    /// After Ctrl-C or SIGTERM, how long /readyz answers 503 before listeners close.
    #[arg(long, env = "FERROSTACK_DRAIN_DELAY", default_value = "1s", value_parser = runtime::parse_duration)]
    drain_delay: Duration,
    /// How long in-flight requests may take to finish once listeners are closed.
    #[arg(long, env = "FERROSTACK_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = runtime::parse_duration)]
    shutdown_timeout: Duration,
    /// Serve the fault-injection switch on every service (/fault_injection/enable…).
    #[arg(long, env = "FERROSTACK_FAULT_INJECTION")]
    fault_injection: bool,
}

impl UpArgs {
    /// Where `up` writes its own rotating log file unless `--log-file-dir` says otherwise.
    pub(crate) fn log_file_dir(&self) -> PathBuf {
        self.data_dir.join("logs/up")
    }
}

const ENVIRONMENTS: [&str; 3] = ["development", "staging", "production"];

/// A role's flags at their defaults, ignoring the environment: in `up`, FERROSTACK_PORT and
/// the like must not leak into every role at once.
fn defaults<T: Args + FromArgMatches>() -> anyhow::Result<T> {
    let command = T::augment_args(clap::Command::new("defaults")).mut_args(|a| a.env(None::<&str>));
    let matches = command.try_get_matches_from(["defaults"])?;
    Ok(T::from_arg_matches(&matches)?)
}

pub(crate) async fn run(
    args: UpArgs,
    shutdown: CancellationToken,
    events: LogEvents,
    log_file: Option<logship::RotatingWriter>,
    max_pending_bytes: u64,
) -> Result<(), Failure> {
    let base = args.base_port;
    let port = |offset: u16| {
        base.checked_add(offset).ok_or_else(|| {
            Failure::Config(anyhow::anyhow!(
                "--base-port {base}: N+{offset} exceeds 65535"
            ))
        })
    };
    let host = args.host;
    let root = args.data_dir.clone();
    let keys_dir = root.join("integration-keys");
    let keys = ensure_keys(&keys_dir).map_err(Failure::Run)?;

    let server = |port: u16| -> Result<ServerArgs, Failure> {
        let mut server: ServerArgs = defaults().map_err(Failure::Config)?;
        server.host = host;
        server.drain_delay = args.drain_delay;
        server.shutdown_timeout = args.shutdown_timeout;
        server.faults.fault_injection = args.fault_injection;
        let _ = port;
        Ok(server)
    };
    let config_err = |e: services::ConfigError| Failure::Config(e.into());

    let mut backend: BackendApiArgs = defaults().map_err(Failure::Config)?;
    backend.port = port(0)?;
    backend.service.log_dir = Some(root.join("logs/backend-api"));
    backend.service.work_delay = args.work_delay;
    backend.external_logs_url = Some(format!("http://{}/logs", socket(host, port(6)?)));
    backend.integration_keys_dir = keys_dir.clone();
    backend.environments = ENVIRONMENTS.iter().map(|s| (*s).to_owned()).collect();
    backend.server = server(backend.port)?;
    let backend = Config::backend_api(&backend, Vec::new()).map_err(config_err)?;

    let mut data: DataApiArgs = defaults().map_err(Failure::Config)?;
    data.port = port(1)?;
    data.service.log_dir = Some(root.join("logs/data-api"));
    data.service.work_delay = args.work_delay;
    data.server = server(data.port)?;
    let data = Config::data_api(&data).map_err(config_err)?;

    let mut check: health::ServeArgs = defaults().map_err(Failure::Config)?;
    check.port = port(2)?;
    check.check.backend_url = format!("http://{}", socket(host, port(0)?));
    check.check.data_url = format!("http://{}", socket(host, port(1)?));
    check.check.external_logs_env = "development".to_owned();
    check.check.interval = Duration::from_secs(30);
    check.check.history = Some(root.join("healthcheck/history.jsonl"));
    check.check.history_max_age = Some(Duration::from_secs(7 * 24 * 3600));
    check.server = server(check.port)?;
    let check = health::ServeConfig::from_args(&check).map_err(|e| Failure::Config(e.into()))?;

    let sample_port = port(6)?;
    let mut sample_server = server(sample_port)?;
    sample_server.faults.fault_injection = false;
    let sample_server = runtime::http::ServerConfig::new(&sample_server, sample_port)
        .map_err(|e| Failure::Config(e.into()))?;

    let mut webhook: admission::ServeArgs = defaults().map_err(Failure::Config)?;
    webhook.port = port(3)?;
    webhook.metrics_port = port(5)?;
    webhook.self_signed = true;
    webhook.ca_file = Some(root.join("webhook-ca.pem"));
    webhook.server = server(webhook.port)?;
    let webhook = admission::Config::from_args(&webhook).map_err(|e| Failure::Config(e.into()))?;

    let root_ctx = Context::new("up", shutdown.clone(), events);
    let mut contexts = Vec::new();
    let mut roles: JoinSet<(&'static str, anyhow::Result<()>)> = JoinSet::new();

    let ctx = root_ctx.for_role("backend-api");
    contexts.push((ctx.clone(), format!("http://{}/", socket(host, port(0)?))));
    roles.spawn(async move {
        (
            "backend-api",
            services::run(backend, ctx).await.map_err(Into::into),
        )
    });

    let ctx = root_ctx.for_role("data-api");
    contexts.push((ctx.clone(), format!("http://{}/", socket(host, port(1)?))));
    roles.spawn(async move {
        (
            "data-api",
            services::run(data, ctx).await.map_err(Into::into),
        )
    });

    let ctx = root_ctx.for_role("webhook");
    contexts.push((ctx.clone(), format!("https://{}/", socket(host, port(3)?))));
    roles.spawn(async move {
        (
            "webhook",
            admission::run(webhook, ctx).await.map_err(Into::into),
        )
    });

    // The health checker's first probes should find the services listening, not race them.
    let probed: Vec<_> = contexts
        .iter()
        .map(|(c, _)| c.readiness().clone())
        .collect();
    let ctx = root_ctx.for_role("healthcheck");
    contexts.push((ctx.clone(), format!("http://{}/", socket(host, port(2)?))));
    roles.spawn(async move {
        while !probed.iter().all(runtime::Readiness::is_ready) && !ctx.shutdown().is_cancelled() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (
            "healthcheck",
            health::run(check, ctx).await.map_err(Into::into),
        )
    });

    // logship: the services' log dirs and up's own log segments to <data-dir>/archive.
    let mut sources = vec![
        format!("backend-api={}", root.join("logs/backend-api").display()),
        format!("data-api={}", root.join("logs/data-api").display()),
    ];
    if let Some(w) = &log_file {
        sources.push(format!("up={}", w.dir().display()));
    }
    let archive =
        logship::config::file_url(&root.join("archive")).map_err(|e| Failure::Run(e.into()))?;
    let mut ship: super::logship::ShipArgs = defaults().map_err(Failure::Config)?;
    ship.port = port(4)?;
    ship.sources = sources;
    ship.to = Some(archive);
    ship.state_dir = root.join("logship-state");
    ship.batch_max_age = Duration::from_secs(5);
    ship.server = server(ship.port)?;
    let (ship, with) = super::logship::validate(&ship, max_pending_bytes, log_file)?;
    let ctx = root_ctx.for_role("logship");
    contexts.push((
        ctx.clone(),
        format!("http://{}/metrics", socket(host, port(4)?)),
    ));
    roles.spawn(async move {
        (
            "logship",
            logship::run(ship, with, ctx).await.map_err(Into::into),
        )
    });

    let ctx = root_ctx.for_role("sample-external-logs");
    contexts.push((
        ctx.clone(),
        format!("http://{}/logs", socket(host, sample_port)),
    ));
    roles.spawn(async move {
        let span = ctx.span();
        let served = async {
            let registry = runtime::metrics::registry(&ctx);
            let app = runtime::http::app(
                services::sample_upstream::app(keys),
                registry,
                &sample_server,
                &ctx,
            );
            runtime::http::serve(&sample_server, &ctx, app).await
        };
        (
            "sample-external-logs",
            tracing::Instrument::instrument(served, span)
                .await
                .map_err(Into::into),
        )
    });

    let table = url_table(host, base, &root);
    let ready = async {
        while !contexts.iter().all(|(ctx, _)| ctx.readiness().is_ready()) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    // Print the table once every role is ready; a signal before then goes straight to the
    // orderly shutdown below, and a role failing to start stops the others.
    tokio::select! {
        () = ready => eprintln!("{table}"),
        () = shutdown.cancelled() => {}
        Some(Ok((role, Err(e)))) = roles.join_next() => {
            shutdown.cancel();
            return Err(Failure::Run(e.context(format!("{role} failed to start"))));
        }
    }

    let mut failed = None;
    while let Some(joined) = roles.join_next().await {
        match joined {
            Ok((_, Ok(()))) => {}
            Ok((role, Err(e))) => {
                tracing::error!(role, error = %e, "role failed; stopping the others");
                shutdown.cancel();
                failed.get_or_insert(e.context(format!("{role} failed")));
            }
            Err(e) => {
                shutdown.cancel();
                failed.get_or_insert(anyhow::anyhow!("a role panicked: {e}"));
            }
        }
    }
    failed.map_or(Ok(()), |e| Err(Failure::Run(e)))
}

fn socket(host: IpAddr, port: u16) -> std::net::SocketAddr {
    std::net::SocketAddr::new(host, port)
}

fn url_table(host: IpAddr, base: u16, root: &Path) -> String {
    let url = |offset: u16| format!("http://{}", socket(host, base.saturating_add(offset)));
    let mut t = String::from("\nferrostack up — all roles on localhost (Ctrl-C to stop)\n\n");
    let rows = [
        (
            "backend-api",
            format!("{}/", url(0)),
            "GET /  /download_external_logs?env=development  /api",
        ),
        ("data-api", format!("{}/", url(1)), "GET /  /api"),
        (
            "healthcheck",
            format!("{}/", url(2)),
            "status page  /api/status  (probes the two APIs every 30s)",
        ),
        (
            "webhook (TLS)",
            format!("https://{}/", socket(host, base.saturating_add(3))),
            "POST /validate  /mutate (CA: webhook-ca.pem in the data dir)",
        ),
        (
            "webhook metrics",
            format!("{}/metrics", url(5)),
            "the webhook's /healthz /readyz /metrics over plain HTTP",
        ),
        (
            "logship",
            format!("{}/metrics", url(4)),
            "ships logs/ to the archive/ in the data dir",
        ),
        (
            "sample external logs",
            format!("{}/logs", url(6)),
            "the API backend-api calls; keys generated in the data dir",
        ),
    ];
    for (role, url, what) in rows {
        t.push_str(&format!("  {role:<22} {url:<32} {what}\n"));
    }
    t.push_str(&format!(
        "\n  every role also serves /healthz /readyz /version /metrics /openapi.json\n  state: {}\n",
        root.display()
    ));
    t
}

/// An integration key per environment under `dir`, generated on first start and kept across
/// restarts; the sample external-logs API accepts exactly these. Every key file ends up mode
/// 0600: a new key goes into a fresh 0600 file renamed into place (never into a file others
/// can read, even one left empty), and an existing file others can read is set to 0600 with a
/// warning naming it.
fn ensure_keys(dir: &Path) -> anyhow::Result<Vec<SecretString>> {
    use std::os::unix::fs::DirBuilderExt;
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            return Err(e).with_context(|| format!("cannot create {}", dir.display()));
        }
        _ => {}
    }
    let mut keys = Vec::new();
    for env in ENVIRONMENTS {
        let path = dir.join(env);
        let key = match existing_key(&path)? {
            Some(key) => key,
            None => new_key(dir, env)?,
        };
        keys.push(SecretString::from(key));
    }
    Ok(keys)
}

/// The key in `path`, trimmed; `None` when the file is absent or blank. A file others can
/// read or write is set to mode 0600 first.
fn existing_key(path: &Path) -> anyhow::Result<Option<String>> {
    use std::os::unix::fs::PermissionsExt;
    // Not followed through a symlink: the mode fixed below must be the key file's own.
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        Ok(meta) if !meta.is_file() => {
            anyhow::bail!(
                "{} is not a regular file (up keeps its generated keys there)",
                path.display()
            );
        }
        Ok(_) => {}
    }
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mode = file
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| {
                format!(
                    "{} is mode {:04o} (others can read the key) and cannot be set to 0600",
                    path.display(),
                    mode & 0o7777
                )
            })?;
        tracing::warn!(
            file = %path.display(),
            was = format!("{:04o}", mode & 0o7777).as_str(),
            "integration key file was readable by others; set to 0600"
        );
    }
    let text = runtime::files::read_capped_from(&file, path, runtime::files::MAX_CONFIG_BYTES)?;
    let text = String::from_utf8(text)
        .map_err(|_| anyhow::anyhow!("{} is not valid UTF-8", path.display()))?;
    let key = text.trim();
    Ok((!key.is_empty()).then(|| key.to_owned()))
}

/// A new random key for `env`, written to a new 0600 file that then replaces `dir/env`.
fn new_key(dir: &Path, env: &str) -> anyhow::Result<String> {
    let key = hex::encode(rand::random::<[u8; 32]>());
    let path = dir.join(env);
    let temp = dir.join(format!(
        ".{env}.{}.tmp",
        hex::encode(rand::random::<[u8; 8]>())
    ));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        std::io::Write::write_all(&mut file, key.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, &path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(key)
}
