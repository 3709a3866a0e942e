//! The writer's counters and their `ferrostack_logfile_*` metrics.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Counters of the writer, shared with the metrics registry.
#[derive(Clone, Debug, Default)]
pub struct WriterStats {
    /// `ferrostack_logfile_bytes_total`: bytes written to segment files.
    pub bytes: Counter,
    /// `ferrostack_logfile_write_errors_total`: failed disk writes.
    pub write_errors: Counter,
    /// `ferrostack_logfile_dropped_lines_total`: lines not written to a file (pending bound
    /// reached, or lost with a failed disk write).
    pub dropped_lines: Counter,
    /// Of `dropped_lines`, those dropped because the pending bound was reached (the shipper's
    /// `ferrostack_logship_lost_lines_total{reason="pending_bound"}`).
    pub dropped_pending: Counter,
    /// Of `dropped_lines`, those lost with a failed disk write (`reason="write_error"`).
    pub dropped_write_error: Counter,
    /// `ferrostack_logship_pending_full` (0/1) as seen by the writer.
    pub pending_full: Gauge,
    /// `ferrostack_logfile_segments_sealed_total`.
    pub sealed: Counter,
}

impl WriterStats {
    /// Registers the writer's metrics (`ferrostack_logfile_*`) as a collector.
    pub fn register(&self, registry: &mut Registry) {
        registry.register_collector(Box::new(self.clone()));
    }
}

/// Scraped through a role's registry (`Registry::register_collector`), so the same stats can
/// appear in every role of a process.
impl prometheus_client::collector::Collector for WriterStats {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        let counters = [
            (
                "ferrostack_logfile_bytes",
                "Bytes written to rotating log files",
                &self.bytes,
            ),
            (
                "ferrostack_logfile_write_errors",
                "Failed writes to rotating log files",
                &self.write_errors,
            ),
            (
                "ferrostack_logfile_dropped_lines",
                "Log lines not written to a file: the pending bound was reached or a disk write failed",
                &self.dropped_lines,
            ),
            (
                "ferrostack_logfile_segments_sealed",
                "Log file segments sealed",
                &self.sealed,
            ),
        ];
        for (name, help, counter) in counters {
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        let metric = encoder.encode_descriptor(
            "ferrostack_logfile_pending_full",
            "1 while the log file directory holds the pending bound and files are not written",
            None,
            self.pending_full.metric_type(),
        )?;
        self.pending_full.encode(metric)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_stats_are_scraped_under_their_metric_names() {
        let stats = WriterStats::default();
        let mut registry = Registry::default();
        stats.register(&mut registry);
        stats.bytes.inc_by(42);
        stats.dropped_lines.inc_by(3);
        stats.pending_full.set(1);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "ferrostack_logfile_bytes_total 42",
            "ferrostack_logfile_write_errors_total 0",
            "ferrostack_logfile_dropped_lines_total 3",
            "ferrostack_logfile_segments_sealed_total 0",
            "ferrostack_logfile_pending_full 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
    }
}
