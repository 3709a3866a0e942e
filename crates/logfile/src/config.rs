//! The writer's settings and their defaults.

use std::path::PathBuf;
use std::time::Duration;

/// Default pending bound of the writer and the shipper (`--max-pending-bytes`): 1 GiB.
pub const DEFAULT_MAX_PENDING_BYTES: u64 = 1024 * 1024 * 1024;

/// Settings of a [`crate::RotatingWriter`].
#[derive(Clone, Debug)]
pub struct WriterConfig {
    /// Directory of the segments (created if missing).
    pub dir: PathBuf,
    /// Seal a segment once it would grow beyond this many bytes (default 64 MiB).
    pub max_bytes: u64,
    /// Seal a segment once it is this old (default 1 h).
    pub max_age: Duration,
    /// Stop writing files while the directory holds this many bytes (default
    /// [`DEFAULT_MAX_PENDING_BYTES`]; 0 = no bound).
    pub max_pending_bytes: u64,
    /// In-memory buffer before a write(2) (default 64 KiB).
    pub buffer_bytes: usize,
    /// The background thread flushes the buffer and checks the age this often (default 200 ms).
    pub flush_interval: Duration,
}

impl WriterConfig {
    /// Defaults for `dir`: 64 MiB, 1 h, 1 GiB pending bound, 64 KiB buffer, 200 ms flush.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            max_bytes: 64 * 1024 * 1024,
            max_age: Duration::from_secs(3600),
            max_pending_bytes: DEFAULT_MAX_PENDING_BYTES,
            buffer_bytes: 64 * 1024,
            flush_interval: Duration::from_millis(200),
        }
    }
}
