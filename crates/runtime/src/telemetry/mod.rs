//! JSON log lines on stdout (`timestamp`, `level`, `message`, `role`, `request_id`, …), an
//! optional second writer (the rotating log file), and a count of log events by level.
//!
//! `role` and `request_id` are span fields flattened onto every line: a role's tasks run in
//! a `role` span and each request in a `request` span, so `up` can tell roles apart.

mod json;

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tracing::{Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::writer::{BoxMakeWriter, MakeWriterExt};
use tracing_subscriber::layer::{Context as LayerContext, SubscriberExt};
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

/// The label set of `ferrostack_log_events_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LevelLabel {
    level: &'static str,
}

/// Counts of log events the process emitted, by level: the "error-log rate" signal.
#[derive(Clone, Debug, Default)]
pub struct LogEvents(Family<LevelLabel, Counter>, Option<Arc<dyn Collector>>);

// === impl LogEvents ===

impl LogEvents {
    /// Counts one event at `level`.
    pub fn record(&self, level: &Level) {
        let level = match *level {
            Level::ERROR => "error",
            Level::WARN => "warn",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        self.0.get_or_create(&LevelLabel { level }).inc();
    }

    /// The counter family, for registration in a role's registry.
    pub fn family(&self) -> Family<LevelLabel, Counter> {
        self.0.clone()
    }

    /// Attaches the metrics of the log file writer (`--log-file-dir`), so that every role's
    /// registry exports them.
    pub fn with_log_file_metrics(mut self, collector: Arc<dyn Collector>) -> Self {
        self.1 = Some(collector);
        self
    }

    /// The log file writer's metrics, when a log file is written.
    pub fn log_file_metrics(&self) -> Option<Arc<dyn Collector>> {
        self.1.clone()
    }
}

struct CountEvents(LogEvents);

impl<S: Subscriber> tracing_subscriber::Layer<S> for CountEvents {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: LayerContext<'_, S>) {
        self.0.record(event.metadata().level());
    }
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
        .with(CountEvents(events.clone()))
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
