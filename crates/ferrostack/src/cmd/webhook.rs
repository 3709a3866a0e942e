//! `ferrostack webhook serve` (the HTTPS admission webhook) and `ferrostack webhook check`
//! (the same policies over manifest files, exit 1 on an enforce violation) and `webhook audit`
//! (over the objects that exist).

use admission::{Config, WebhookArgs, WebhookCommand};
use runtime::Context;
use runtime::telemetry::LogEvents;
use tokio_util::sync::CancellationToken;

use super::Failure;

pub(crate) async fn run(
    args: WebhookArgs,
    shutdown: CancellationToken,
    events: LogEvents,
) -> Result<(), Failure> {
    match args.command {
        WebhookCommand::Serve(args) => {
            let config = Config::from_args(&args)?;
            let ctx = Context::new("webhook", shutdown, events);
            Ok(admission::run(config, ctx).await?)
        }
        WebhookCommand::Check(args) => {
            let report = admission::check::run(&args, std::io::stdin().lock())?;
            print!("{}", admission::format::render(&report, args.format));
            verdict("check", report.exit_code())
        }
        WebhookCommand::Audit(args) => {
            let mut out = std::io::stdout().lock();
            let summary = admission::audit::run(&args, std::io::stdin().lock(), &mut out).await?;
            verdict("audit", summary.exit_code())
        }
    }
}

/// check's and audit's exit: 1 on an enforce violation, 2 on an unreadable input.
fn verdict(command: &str, code: i32) -> Result<(), Failure> {
    match code {
        0 => Ok(()),
        1 => Err(Failure::Run(anyhow::anyhow!(
            "webhook {command}: enforce violations found"
        ))),
        _ => Err(Failure::Config(anyhow::anyhow!(
            "webhook {command}: unreadable input"
        ))),
    }
}
