//! `ferrostack webhook serve` (the HTTPS admission webhook) and `ferrostack webhook check`
//! (the same policies over manifest files, exit 1 on an enforce violation).

use admission::{CheckArgs, Config, ServeArgs};
use runtime::Context;
use runtime::telemetry::LogEvents;
use tokio_util::sync::CancellationToken;

use super::Failure;

/// `ferrostack webhook` subcommands.
#[derive(clap::Args, Debug)]
pub(crate) struct WebhookArgs {
    #[command(subcommand)]
    command: WebhookCommand,
}

// Parsed once at start-up: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(clap::Subcommand, Debug)]
enum WebhookCommand {
    /// Serve POST /validate and POST /mutate over HTTPS; probes and metrics on --metrics-port.
    Serve(ServeArgs),
    /// Check manifests against the policies offline, printed like a linter; exit 1 on an
    /// enforce violation, 2 on an unreadable file or policy file.
    Check(CheckArgs),
}

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
            print!("{}", report.render());
            match report.exit_code() {
                0 => Ok(()),
                1 => Err(Failure::Run(anyhow::anyhow!(
                    "webhook check: enforce violations found"
                ))),
                _ => Err(Failure::Config(anyhow::anyhow!(
                    "webhook check: unreadable input"
                ))),
            }
        }
    }
}
