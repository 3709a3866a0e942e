//! `ferrostack_logship_lost_lines_total{reason}`: every log line the pipeline dropped, in
//! one counter, so that zero means zero. Every reason is always exported (0 until it
//! happens):
//! - `pending_bound`: the process's own log writer dropped the line because the log
//!   directory held `--max-pending-bytes` (`logfile`'s pending bound);
//! - `write_error`: the own writer lost the line with a failed disk write (a full disk, EIO);
//! - `vanished`: the lines of a journaled batch whose files were all removed by someone else
//!   before its upload (they never reach the archive; `logship verify` shows their range
//!   as a gap).
//!
//! The writer's counts are read from its [`WriterStats`] at scrape time, so `logfile` knows
//! nothing of logship.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};

use logfile::WriterStats;

/// The reasons, in export order.
pub const REASONS: [&str; 3] = ["pending_bound", "write_error", "vanished"];

/// The lost-lines counter: the shipper's own reasons plus the process's log writer's.
#[derive(Clone, Debug, Default)]
pub struct LostLines {
    /// Lines of batches whose files vanished before upload.
    pub vanished: Counter,
    /// The process's own log writer, if it has one.
    pub writer: Option<WriterStats>,
}

impl LostLines {
    /// The count of one reason of [`REASONS`] (0 for another).
    pub fn get(&self, reason: &str) -> u64 {
        let writer = self.writer.as_ref();
        match reason {
            "pending_bound" => writer.map_or(0, |w| w.dropped_pending.get()),
            "write_error" => writer.map_or(0, |w| w.dropped_write_error.get()),
            "vanished" => self.vanished.get(),
            _ => 0,
        }
    }
}

impl Collector for LostLines {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "ferrostack_logship_lost_lines",
            "Log lines the pipeline dropped, by reason (pending_bound, write_error, vanished)",
            None,
            MetricType::Counter,
        )?;
        for reason in REASONS {
            let labels = [("reason", reason)];
            ConstCounter::new(self.get(reason)).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
