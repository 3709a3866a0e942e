//! `ferrostack healthcheck run` (the CronJob: probe once, exit 0 all passed / 1 a failure /
//! 2 bad configuration) and `ferrostack healthcheck serve` (probe on intervals; status page,
//! `/api/status`, `/metrics`).

use health::{Command, Config, ServeConfig};
use runtime::Context;
use runtime::telemetry::LogEvents;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::Failure;

pub(crate) async fn run(
    cmd: Command,
    shutdown: CancellationToken,
    events: LogEvents,
) -> Result<(), Failure> {
    let ctx = Context::new("healthcheck", shutdown, events);
    match cmd {
        Command::Run(args) => {
            let config = Config::from_run_args(&args)?;
            let report = health::run_once(&config).instrument(ctx.span()).await;
            Ok(report.outcome()?)
        }
        Command::Serve(args) => {
            let config = ServeConfig::from_args(&args)?;
            Ok(health::run(config, ctx).await?)
        }
    }
}
