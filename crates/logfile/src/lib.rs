//! The rotating JSON-lines log file of every role: lines go to an open segment that is sealed
//! by size or age under a name the shipper recognises ([`segment`]), a pending bound stops file
//! writes while the shipper is behind, and disk errors are never reported as success.
//!
//! Lines are buffered (like `std::io::BufWriter`), so a `write()` that returned `Ok` has handed
//! its line to the buffer, not yet to the disk. When a later write(2) of that buffer fails, the
//! error is counted (`ferrostack_logfile_write_errors_total`), printed on stderr, the segment is
//! cut back to the bytes of the earlier successful write(2)s, whole lines for a line-at-a-time
//! caller such as tracing (so `ferrostack_logfile_bytes_total` counts exactly the bytes in the
//! files), sealed, and the lost lines are counted in `ferrostack_logfile_dropped_lines_total`.
//! If the failing write(2) ran inside a `write()` or `flush()` call, that call returns the
//! error; if it ran in the background (the 200 ms flush thread, or the sealer's fsync/rename),
//! the error is kept and returned by the next `write()`, `flush()` or [`RotatingWriter::seal`]
//! call, once, the way fsync(2) reports a failed writeback (a `write()` that returns such an
//! error has not taken its own line). Writing then goes on in a fresh segment.
//!
//! When the directory holds `max_pending_bytes` of unshipped data (the sealed segments plus
//! the open one), the writer seals the open segment so that the shipper can take it, stops
//! writing files (the stdout copy goes on), counts the lines it does not write, raises
//! `ferrostack_logfile_pending_full` and says so on stderr; it resumes once the shipper has
//! drained the directory below the bound. It never deletes a segment.

/// A named failpoint (tikv/fail-rs) with the `failpoints` feature (the fault suite kills the
/// process there); nothing at all without it.
macro_rules! failpoint {
    ($name:literal) => {
        #[cfg(feature = "failpoints")]
        fail::fail_point!($name);
    };
}

mod config;
mod deferred;
mod pending;
mod recover;
mod seal;
pub mod segment;
mod stats;
mod writer;

pub use config::{DEFAULT_MAX_PENDING_BYTES, WriterConfig};
pub use seal::sync_dir;
pub use stats::WriterStats;
pub use writer::RotatingWriter;
