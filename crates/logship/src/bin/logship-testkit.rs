//! Test harness for the crash tests (not part of the image): `logship-testkit ship` takes
//! `ferrostack logship`'s flags (the same [`ShipArgs`]; `--batch-max-age` defaults to 200 ms
//! here, `--quiet-period` to 100 ms) and runs the shipper until SIGTERM, then prints its metrics; `logship-testkit verify
//! --to URL [--s3-endpoint URL]` runs verify and exits 1 on a problem. Store credentials come
//! from the environment.
//! `logship-testkit write DIR LINES` writes LINES numbered lines through a rotating writer on
//! DIR, one per background flush, and prints one JSON object with each call's outcome and the
//! writer's counters (the disk-failure test runs it under a file-size rlimit).
//! Built with the `failpoints` feature, `LOGSHIP_KILL_AT=NAME@N` SIGKILLs the process at the Nth
//! pass through the failpoint NAME (the fault suite's kill -9 at a durability boundary), and
//! `FAILPOINTS` takes fail-rs's other actions.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use logship::{Metrics, Options, ShipArgs, VerifyArgs};
use tokio_util::sync::CancellationToken;

#[derive(Parser, Debug)]
#[command(name = "logship-testkit")]
enum Cli {
    /// Runs the shipper until SIGTERM (quick batching, scans and retries for the tests).
    Ship(Box<TestShipArgs>),
    /// Checks an archive; exit 1 on a problem.
    Verify(VerifyArgs),
    /// Writes LINES numbered lines through a rotating writer on DIR.
    Write {
        /// The segment directory.
        dir: PathBuf,
        /// How many lines.
        lines: u64,
        /// Seal segments at this size (the fault suite's many seals).
        #[arg(long)]
        max_bytes: Option<u64>,
        /// The `producer` id in each line.
        #[arg(long, default_value = "rlimit")]
        producer: String,
    },
}

#[derive(clap::Args, Debug)]
#[command(mut_arg("batch_max_age", |a| a.default_value("200ms")))]
#[command(mut_arg("quiet_period", |a| a.default_value("100ms")))]
struct TestShipArgs {
    #[command(flatten)]
    ship: ShipArgs,
}

fn main() -> ExitCode {
    #[cfg(feature = "failpoints")]
    let _failpoints = kill_at::arm();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(2);
        }
    };
    if let Cli::Write {
        dir,
        lines,
        max_bytes,
        producer,
    } = &cli
    {
        return write(dir, *lines, *max_bytes, producer);
    }
    let Ok(rt) = tokio::runtime::Runtime::new() else {
        return ExitCode::from(1);
    };
    rt.block_on(async move {
        match cli {
            Cli::Ship(args) => ship(args.ship).await,
            Cli::Verify(args) => verify(args).await,
            Cli::Write { .. } => ExitCode::from(2),
        }
    })
}

/// The raw settings of the flags plus the tests' quick scans and retries.
fn test_options(args: &ShipArgs) -> Options {
    let mut opts = Options {
        scan_interval: Duration::from_millis(50),
        retry_initial: Duration::from_millis(50),
        retry_max: Duration::from_millis(500),
        host: Some("testhost".into()),
        ..args.options(logfile::DEFAULT_MAX_PENDING_BYTES)
    };
    if opts.sources.is_empty() {
        opts.sources.push(".".into());
    }
    opts
}

async fn ship(args: ShipArgs) -> ExitCode {
    let config = match test_options(&args).validate() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    tokio::spawn(async move {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            term.recv().await;
        }
        token.cancel();
    });
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Metrics::register(&mut registry);
    let result = logship::run_until(config, metrics, shutdown).await;
    // The metrics at exit on stdout, in the text format, for the tests to read.
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &registry).is_ok() {
        println!("{text}");
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("logship: {e}");
            ExitCode::from(1)
        }
    }
}

async fn verify(args: VerifyArgs) -> ExitCode {
    let (url, sink) = match args.destination() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match logship::verify(&url, sink).await {
        Ok(report) => {
            if args.json {
                println!("{}", report.json_lines());
            } else {
                println!("{report}");
            }
            if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            // Unusable: the archive cannot be listed.
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}

fn write(dir: &std::path::Path, lines: u64, max_bytes: Option<u64>, producer: &str) -> ExitCode {
    use std::io::Write;
    let defaults = logfile::WriterConfig::new(dir);
    let config = logfile::WriterConfig {
        flush_interval: Duration::from_millis(5),
        max_bytes: max_bytes.unwrap_or(defaults.max_bytes),
        ..defaults
    };
    let writer = match logfile::RotatingWriter::open(config) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("open {}: {e}", dir.display());
            return ExitCode::from(1);
        }
    };
    let mut errors = Vec::new();
    for seq in 0..lines {
        let line = format!(
            "{{\"producer\":\"{producer}\",\"seq\":{seq},\"pad\":\"{}\"}}\n",
            "x".repeat(60)
        );
        if let Err(e) = (&writer).write_all(line.as_bytes()) {
            errors.push(serde_json::json!({"seq": seq, "error": e.to_string()}));
        }
        // Let the background flush write this line before the next one.
        std::thread::sleep(Duration::from_millis(20));
    }
    let sealed = writer.seal().err().map(|e| e.to_string());
    let stats = writer.stats();
    println!(
        "{}",
        serde_json::json!({
            "write_errors": errors,
            "seal_error": sealed,
            "bytes_total": stats.bytes.get(),
            "write_errors_total": stats.write_errors.get(),
            "dropped_lines_total": stats.dropped_lines.get(),
            "lost_write_error": stats.dropped_write_error.get(),
            "lost_pending_bound": stats.dropped_pending.get(),
        })
    );
    ExitCode::SUCCESS
}

#[cfg(feature = "failpoints")]
mod kill_at {
    //! `LOGSHIP_KILL_AT=NAME@N`: SIGKILL at the Nth pass through failpoint NAME.

    use std::sync::atomic::{AtomicU64, Ordering};

    /// Reads `FAILPOINTS` and `LOGSHIP_KILL_AT`; the scenario must live as long as `main`.
    pub(crate) fn arm() -> fail::FailScenario<'static> {
        let scenario = fail::FailScenario::setup();
        let Ok(spec) = std::env::var("LOGSHIP_KILL_AT") else {
            return scenario;
        };
        let (name, nth) = spec.split_once('@').unwrap_or((spec.as_str(), "1"));
        let Ok(nth) = nth.parse::<u64>() else {
            eprintln!("LOGSHIP_KILL_AT={spec}: N must be a number");
            std::process::exit(2);
        };
        let hits = AtomicU64::new(0);
        let armed = fail::cfg_callback(name, move || {
            if hits.fetch_add(1, Ordering::SeqCst) + 1 == nth {
                // The way kill -9 ends a process: no unwinding, no destructors, no flush.
                eprintln!("logship-testkit: SIGKILL at failpoint hit {nth}");
                let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
            }
        });
        if let Err(e) = armed {
            eprintln!("LOGSHIP_KILL_AT={spec}: {e}");
            std::process::exit(2);
        }
        scenario
    }
}
