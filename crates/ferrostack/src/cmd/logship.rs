//! `ferrostack logship`: ship sealed log segments and log files to object storage (probes and
//! `/metrics` on the admin `--port`, 8084); `ferrostack logship verify --to URL [--json]`:
//! check the archive and its manifests, exit 0 clean, 1 problems, 2 unusable; `ferrostack logship fsck --state-dir DIR [--to URL]
//! [--repair] [--json]`: check (and repair) the state directory and the store, exit 0 clean, 1
//! problems found, 2 unusable. The flags and their validation live in the logship crate.

use logship::{FsckArgs, LogshipCommand, VerifyArgs};
use runtime::Context;
use runtime::telemetry::LogEvents;
use tokio_util::sync::CancellationToken;

use super::Failure;

pub(crate) use logship::LogshipArgs;

pub(crate) async fn run(
    args: LogshipArgs,
    shutdown: CancellationToken,
    events: LogEvents,
    log_file: Option<logfile::RotatingWriter>,
    max_pending_bytes: u64,
) -> Result<(), Failure> {
    match args.command {
        Some(LogshipCommand::Verify(v)) => verify(v).await,
        Some(LogshipCommand::Fsck(f)) => fsck(f).await,
        None => {
            let config = args.ship.config(max_pending_bytes)?;
            let with = args.ship.run_with(log_file)?;
            let ctx = Context::new("logship", shutdown, events);
            Ok(logship::run(config, with, ctx).await?)
        }
    }
}

async fn verify(args: VerifyArgs) -> Result<(), Failure> {
    let (url, sink) = args.destination()?;
    let report = logship::verify(&url, sink).await?;
    if args.json {
        println!("{}", report.json_lines());
    } else {
        println!("{report}");
    }
    if report.ok() {
        Ok(())
    } else {
        Err(Failure::Run(anyhow::anyhow!(
            "the archive at {url} has problems (see above)"
        )))
    }
}

async fn fsck(args: FsckArgs) -> Result<(), Failure> {
    let to = args.destination()?;
    let to = to.as_ref().map(|(url, sink)| (url, sink.clone()));
    let report = logship::fsck(&args.state_dir, to, args.repair).await?;
    if args.json {
        println!("{}", report.json_lines());
    } else {
        println!("{report}");
    }
    if report.clean() {
        Ok(())
    } else {
        Err(Failure::Run(anyhow::anyhow!(
            "fsck of {} found problems (see above)",
            args.state_dir.display()
        )))
    }
}
