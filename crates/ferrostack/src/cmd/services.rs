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
    let config = Config::backend_api(&args, std::env::vars())?;
    let ctx = Context::new("backend-api", shutdown, events);
    Ok(services::run(config, ctx).await?)
}

pub(crate) async fn data_api(
    args: DataApiArgs,
    shutdown: CancellationToken,
    events: LogEvents,
) -> Result<(), Failure> {
    let config = Config::data_api(&args)?;
    let ctx = Context::new("data-api", shutdown, events);
    Ok(services::run(config, ctx).await?)
}
