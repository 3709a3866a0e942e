//! The shipper's Prometheus metrics (`ferrostack_logship_*`), registered into the role's
//! registry; the handles are cheap clones shared with the service loop.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::lost::LostLines;
use logfile::WriterStats;

/// Label set of `ferrostack_logship_upload_errors_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// Error kind: timeout, connect, server, auth, conflict, staging_io, ...
    pub kind: String,
}

/// Label set of `ferrostack_logship_source_errors_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceErrorLabels {
    /// The source's name.
    pub source: String,
    /// symlink, replaced, list or unreadable.
    pub kind: String,
}

/// Label set of `ferrostack_logship_changed_files_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    /// The source's name.
    pub source: String,
}

/// Shipper metrics.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Bytes of objects stored (compressed).
    pub shipped_bytes: Counter,
    /// Objects stored.
    pub shipped_objects: Counter,
    /// Local files shipped (and then deleted).
    pub shipped_files: Counter,
    /// Files waiting (in sources or in unfinished batches).
    pub pending_files: Gauge,
    /// Bytes waiting.
    pub pending_bytes: Gauge,
    /// Age of the oldest waiting file.
    pub oldest_pending_age: Gauge<f64, AtomicU64>,
    /// Upload errors by kind.
    pub upload_errors: Family<ErrorLabels, Counter>,
    /// Duration of successful uploads.
    pub upload_duration: Histogram,
    /// 1 while pending bytes reach `--max-pending-bytes`.
    pub pending_full: Gauge,
    /// Source problems: a source path that is a symlink (refused), a failed listing, a file
    /// that could not be read (skipped).
    pub source_errors: Family<SourceErrorLabels, Counter>,
    /// Shipped files kept because they changed after they were read (shipped again later).
    pub changed_files: Family<SourceLabels, Counter>,
    /// `ferrostack_logship_lost_lines_total{reason}` (see `crate::lost`).
    pub lost: LostLines,
    /// Files the last listing keeps in memory to pack (at most `--batch-max-files` a source,
    /// however large the backlog).
    pub listed_files: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            shipped_bytes: Counter::default(),
            shipped_objects: Counter::default(),
            shipped_files: Counter::default(),
            pending_files: Gauge::default(),
            pending_bytes: Gauge::default(),
            oldest_pending_age: Gauge::default(),
            upload_errors: Family::default(),
            upload_duration: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            pending_full: Gauge::default(),
            source_errors: Family::default(),
            changed_files: Family::default(),
            lost: LostLines::default(),
            listed_files: Gauge::default(),
        }
    }
}

impl Metrics {
    /// New metrics registered into `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        Self::register_with_writer(registry, None)
    }

    /// New metrics registered into `registry`; the lost-lines counter includes the lines the
    /// process's own log writer (`writer`) dropped.
    pub fn register_with_writer(registry: &mut Registry, writer: Option<WriterStats>) -> Self {
        let lost = LostLines {
            writer,
            ..LostLines::default()
        };
        registry.register_collector(Box::new(lost.clone()));
        Self {
            lost,
            ..Self::register_counters(registry)
        }
    }

    /// The metrics besides the lost-lines collector, registered.
    fn register_counters(registry: &mut Registry) -> Self {
        let m = Self::default();
        let r = registry;
        r.register(
            "ferrostack_logship_shipped_bytes",
            "Bytes of objects stored",
            m.shipped_bytes.clone(),
        );
        r.register(
            "ferrostack_logship_shipped_objects",
            "Objects stored",
            m.shipped_objects.clone(),
        );
        r.register(
            "ferrostack_logship_shipped_files",
            "Local files shipped and deleted",
            m.shipped_files.clone(),
        );
        r.register(
            "ferrostack_logship_pending_files",
            "Files waiting to be shipped",
            m.pending_files.clone(),
        );
        r.register(
            "ferrostack_logship_pending_bytes",
            "Bytes waiting to be shipped",
            m.pending_bytes.clone(),
        );
        r.register(
            "ferrostack_logship_oldest_pending_age_seconds",
            "Age of the oldest file waiting to be shipped",
            m.oldest_pending_age.clone(),
        );
        r.register(
            "ferrostack_logship_upload_errors",
            "Upload errors by kind",
            m.upload_errors.clone(),
        );
        r.register(
            "ferrostack_logship_upload_duration_seconds",
            "Duration of successful object uploads",
            m.upload_duration.clone(),
        );
        r.register(
            "ferrostack_logship_pending_full",
            "1 while pending bytes reach --max-pending-bytes",
            m.pending_full.clone(),
        );
        r.register(
            "ferrostack_logship_source_errors",
            "Source problems by source and kind (symlink, replaced, list, unreadable)",
            m.source_errors.clone(),
        );
        r.register(
            "ferrostack_logship_changed_files",
            "Shipped files kept because they changed after they were read",
            m.changed_files.clone(),
        );
        m.register_listing(r);
        m
    }

    fn register_listing(&self, r: &mut Registry) {
        r.register(
            "ferrostack_logship_listed_files",
            "Files the last listing keeps in memory to pack (at most --batch-max-files a source)",
            self.listed_files.clone(),
        );
    }

    /// Counts a source problem.
    pub fn source_error(&self, source: &str, kind: &str) {
        self.source_errors
            .get_or_create(&SourceErrorLabels {
                source: source.to_string(),
                kind: kind.to_string(),
            })
            .inc();
    }

    /// Counts a file kept because it changed after it was read.
    pub fn changed_file(&self, source: &str) {
        self.changed_files
            .get_or_create(&SourceLabels {
                source: source.to_string(),
            })
            .inc();
    }

    /// Counts the lines of a batch whose files vanished before upload (`reason="vanished"`).
    pub fn lost_vanished(&self, lines: u64) {
        self.lost.vanished.inc_by(lines);
    }

    /// Counts an upload error.
    pub fn upload_error(&self, kind: &str) {
        self.upload_errors
            .get_or_create(&ErrorLabels {
                kind: kind.to_string(),
            })
            .inc();
    }
}
