//! Test harness for the crash tests (not part of the image): `logship-testkit ship --source DIR
//! --to URL --state-dir DIR [--s3-endpoint URL] [--batch-max-age DUR] [--batch-max-files N]
//! [--multipart-threshold N] [--part-size N]`
//! runs the shipper until SIGTERM, then prints its metrics; `logship-testkit verify --to URL [--s3-endpoint URL]` runs
//! verify and exits 1 on a problem. Store credentials come from the environment.
//! `logship-testkit write DIR LINES` writes LINES numbered lines through a rotating writer on
//! DIR, one per background flush, and prints one JSON object with each call's outcome and the
//! writer's counters (the disk-failure test runs it under a file-size rlimit).

use std::process::ExitCode;
use std::time::Duration;

use logship::{Metrics, Options};
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        eprintln!("usage: logship-testkit ship|verify --flag value ... | write DIR LINES");
        return ExitCode::from(2);
    };
    if cmd == "write" {
        return write(rest);
    }
    let mut opts = Options::new(Vec::new(), "");
    opts.batch_max_age = Duration::from_millis(200);
    opts.scan_interval = Duration::from_millis(50);
    opts.retry_initial = Duration::from_millis(50);
    opts.retry_max = Duration::from_millis(500);
    opts.host = Some("testhost".into());
    for pair in rest.chunks(2) {
        let [flag, value] = pair else {
            eprintln!("flag without value: {pair:?}");
            return ExitCode::from(2);
        };
        let dur = || humantime::parse_duration(value).unwrap_or(Duration::from_secs(1));
        match flag.as_str() {
            "--source" => opts.sources.push(value.clone()),
            "--to" => opts.to = value.clone(),
            "--state-dir" => opts.state_dir = value.into(),
            "--s3-endpoint" => opts.s3_endpoint = Some(value.clone()),
            "--batch-max-age" => opts.batch_max_age = dur(),
            "--batch-max-files" => opts.batch_max_files = value.parse().unwrap_or(1000),
            "--batch-max-bytes" => opts.batch_max_bytes = value.parse().unwrap_or(1 << 26),
            "--compression" => opts.compression = value.clone(),
            "--multipart-threshold" => opts.multipart_threshold = value.parse().unwrap_or(1 << 25),
            "--part-size" => opts.part_size = value.parse().unwrap_or(1 << 23),
            other => {
                eprintln!("unknown flag {other}");
                return ExitCode::from(2);
            }
        }
    }
    let Ok(rt) = tokio::runtime::Runtime::new() else {
        return ExitCode::from(1);
    };
    rt.block_on(async move {
        match cmd.as_str() {
            "ship" => ship(opts).await,
            "verify" => verify(opts).await,
            _ => ExitCode::from(2),
        }
    })
}

async fn ship(mut opts: Options) -> ExitCode {
    if opts.sources.is_empty() {
        opts.sources.push(".".into());
    }
    let config = match opts.validate() {
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

async fn verify(opts: Options) -> ExitCode {
    let (url, sink) = match opts.destination() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match logship::verify(&url, sink).await {
        Ok(report) => {
            println!("{report}");
            if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

fn write(args: &[String]) -> ExitCode {
    use std::io::Write;
    let [dir, lines] = args else {
        eprintln!("usage: logship-testkit write DIR LINES");
        return ExitCode::from(2);
    };
    let Ok(lines) = lines.parse::<u64>() else {
        eprintln!("LINES: not a number: {lines}");
        return ExitCode::from(2);
    };
    let config = logship::WriterConfig {
        flush_interval: Duration::from_millis(5),
        ..logship::WriterConfig::new(dir)
    };
    let writer = match logship::RotatingWriter::open(config) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("open {dir}: {e}");
            return ExitCode::from(1);
        }
    };
    let mut errors = Vec::new();
    for seq in 0..lines {
        let line = format!(
            "{{\"producer\":\"rlimit\",\"seq\":{seq},\"pad\":\"{}\"}}\n",
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
        })
    );
    ExitCode::SUCCESS
}
