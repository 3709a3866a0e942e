//! JSON log lines on stdout (`timestamp`, `level`, `message`, `role`, `request_id`, …), an
//! optional second writer (the rotating log file), and a count of log events by level and role.
//!
//! `role` and `request_id` are span fields flattened onto every line: a role's tasks run in
//! a `role` span and each request in a `request` span, so `up` can tell roles apart.

mod events;
mod json;

pub use events::{LevelLabel, LogEvents};

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::writer::{BoxMakeWriter, MakeWriterExt};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The `--log-level` filter does not parse.
    #[error("--log-level {filter:?}: {reason}")]
    Filter {
        /// The filter as given.
        filter: String,
        /// The parser's complaint.
        reason: String,
    },
    /// A global subscriber is already installed.
    #[error("logging already initialised: {0}")]
    AlreadyInitialised(String),
}

/// Builds the JSON layer writing to `writer` (see [`json`] for the line format).
pub fn json_layer<S, W>(writer: W) -> impl tracing_subscriber::Layer<S>
where
    S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .event_format(json::JsonLines)
        .fmt_fields(json::JsonFields)
        .with_writer(writer)
}

/// Keeps the stdout writer thread alive; dropping it flushes what is buffered.
#[must_use = "dropping the guard stops and flushes the log writer"]
pub struct Guard(#[allow(dead_code)] tracing_appender::non_blocking::WorkerGuard);

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Guard")
    }
}

/// Stdout as a buffered file: lines are handed to a writer thread that writes whatever has
/// queued up in one system call, instead of one per line (stdout is line-buffered). Never
/// lossy: when the queue is full, the logging thread waits.
fn buffered_stdout() -> (tracing_appender::non_blocking::NonBlocking, Guard) {
    use std::os::fd::AsFd;
    let builder = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        // 8,192 queued lines (a few hundred KiB) absorb bursts; beyond that loggers wait.
        .buffered_lines_limit(8192)
        .thread_name("ferrostack-log");
    let (writer, guard) = match std::io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => builder.finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::fs::File::from(fd),
        )),
        Err(_) => builder.finish(std::io::stdout()),
    };
    (writer, Guard(guard))
}

/// Installs the process-wide subscriber: JSON lines to stdout, and to `extra` when given
/// (the rotating log file of `--log-file-dir`). Call once, from the binary, and hold the
/// returned guard until the process ends.
pub fn init(
    filter: &str,
    extra: Option<BoxMakeWriter>,
) -> Result<(LogEvents, Guard), TelemetryError> {
    let env_filter = EnvFilter::try_new(filter).map_err(|e| TelemetryError::Filter {
        filter: filter.to_owned(),
        reason: e.to_string(),
    })?;
    let (stdout, guard) = buffered_stdout();
    let writer = match extra {
        Some(extra) => BoxMakeWriter::new(stdout.and(extra)),
        None => BoxMakeWriter::new(stdout),
    };
    let events = LogEvents::default();
    tracing_subscriber::registry()
        .with(env_filter)
        .with(events::CountEvents(events.clone()))
        .with(json_layer(writer))
        .try_init()
        .map_err(|e| TelemetryError::AlreadyInitialised(e.to_string()))?;
    Ok((events, guard))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_line_carries_role_and_request_id_at_top_level() {
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::registry().with(json_layer(move || writer.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let role = tracing::info_span!("role", role = "data-api");
            let _r = role.enter();
            let req = tracing::info_span!("request", request_id = "abc");
            let _q = req.enter();
            tracing::warn!(params = "{}", n = 3, ok = true, quote = %"a\"b", "hello\n");
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(line["message"], "hello\n");
        assert_eq!(line["params"], "{}");
        assert_eq!(line["n"], 3);
        assert_eq!(line["ok"], true);
        assert_eq!(line["quote"], "a\"b");
        let keys: Vec<&str> = line
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "timestamp",
                "level",
                "role",
                "request_id",
                "message",
                "params",
                "n",
                "ok",
                "quote"
            ]
        );
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["role"], "data-api");
        assert_eq!(line["request_id"], "abc");
        assert!(line["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn a_bad_filter_names_the_flag() {
        let err = init("info,[", None).unwrap_err().to_string();
        assert!(err.starts_with("--log-level"), "{err}");
    }
}
