//! `ferrostack backend-api` and `ferrostack data-api`.

use runtime::Context;
use runtime::telemetry::LogEvents;
use services::{BackendApiArgs, Config, DataApiArgs};
use tokio_util::sync::CancellationToken;

use super::Failure;

pub(crate) async fn backend_api(
    args: BackendApiArgs,
    shutdown: CancellationToken,
    events: LogEvents,
) -> Result<(), Failure> {
    let config =
        Config::backend_api(&args, std::env::vars()).map_err(|e| Failure::Config(e.into()))?;
    run(config, Context::new("backend-api", shutdown, events)).await
}

pub(crate) async fn data_api(
    args: DataApiArgs,
    shutdown: CancellationToken,
    events: LogEvents,
) -> Result<(), Failure> {
    let config = Config::data_api(&args).map_err(|e| Failure::Config(e.into()))?;
    run(config, Context::new("data-api", shutdown, events)).await
}

async fn run(config: Config, ctx: Context) -> Result<(), Failure> {
    services::run(config, ctx)
        .await
        .map_err(|e| Failure::Run(e.into()))
}
