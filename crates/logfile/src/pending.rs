//! The pending bound: how many unshipped bytes the directory holds (sealed and open segments
//! plus the buffer), measured on disk only when the bytes taken since the last measurement
//! could reach the bound, and while full at most once a second (the shipper drains it).

use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

/// While full, the directory is measured again at most this often.
const RECHECK: Duration = Duration::from_secs(1);

/// The writer's view of the pending bound.
#[derive(Debug)]
pub(crate) struct Pending {
    /// `max_pending_bytes`; 0 = no bound.
    bound: u64,
    full: bool,
    last_check: Option<Instant>,
    /// Bytes in the directory at the last measurement (plus the buffer then).
    measured: u64,
    /// Bytes taken since the last measurement.
    unmeasured: u64,
}

impl Pending {
    /// The bound, with the unshipped data already in `dir` counted from the first line on.
    pub(crate) fn new(bound: u64, dir: &Path) -> Self {
        Self {
            bound,
            full: false,
            last_check: None,
            measured: dir_bytes(dir).unwrap_or(0),
            unmeasured: 0,
        }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.full
    }

    /// Whether a write of `len` bytes must [`Pending::check`] first: the bound is reached, or
    /// could be with these bytes.
    pub(crate) fn must_check(&self, len: u64) -> bool {
        self.bound > 0 && (self.full || self.measured + self.unmeasured + len > self.bound)
    }

    /// `len` bytes were taken for the files.
    pub(crate) fn took(&mut self, len: u64) {
        self.unmeasured += len;
    }

    /// Measures `dir` (plus `buffered` bytes not yet written) if due at `now`; returns the
    /// bytes measured when that changed whether the bound is reached, else `None`. While it
    /// cannot measure, the state stays as it is.
    pub(crate) fn check(&mut self, dir: &Path, buffered: u64, now: Instant) -> Option<u64> {
        if self.bound == 0 {
            return None;
        }
        let due = !self.full
            || self
                .last_check
                .is_none_or(|t| now.saturating_duration_since(t) >= RECHECK);
        if !due {
            return None;
        }
        self.last_check = Some(now);
        let used = dir_bytes(dir).ok()? + buffered;
        self.measured = used;
        self.unmeasured = 0;
        let full = used >= self.bound;
        if full == self.full {
            return None;
        }
        self.full = full;
        Some(used)
    }
}

/// Bytes of the files in `dir` (sealed and open segments).
fn dir_bytes(dir: &Path) -> io::Result<u64> {
    let mut total = 0;
    for entry in fs::read_dir(dir)? {
        // The shipper deletes and the sealer renames files while this runs.
        let meta = match entry.and_then(|e| e.metadata()) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if meta.is_file() {
            total += meta.len();
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_already_there_counts_and_only_a_possible_overflow_is_measured() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.jsonl"), vec![b'x'; 600]).unwrap();
        let mut p = Pending::new(1000, dir.path());
        assert!(!p.must_check(400), "600 + 400 is at the bound, not over it");
        assert!(p.must_check(401));
        p.took(300);
        assert!(p.must_check(101));
        assert!(
            !Pending::new(0, dir.path()).must_check(u64::MAX / 2),
            "0 = no bound"
        );
    }

    #[test]
    fn reaching_the_bound_is_reported_once_and_rechecked_once_a_second() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.jsonl");
        fs::write(&file, vec![b'x'; 900]).unwrap();
        let mut p = Pending::new(1000, dir.path());
        let t0 = Instant::now();
        assert_eq!(
            p.check(dir.path(), 50, t0),
            None,
            "950 bytes: below the bound"
        );
        assert!(!p.is_full());
        assert_eq!(
            p.check(dir.path(), 100, t0),
            Some(1000),
            "the buffer counts"
        );
        assert!(p.is_full() && p.must_check(0));
        fs::remove_file(&file).unwrap(); // the shipper drains the directory
        assert_eq!(
            p.check(dir.path(), 0, t0 + Duration::from_millis(999)),
            None
        );
        assert!(p.is_full(), "not measured again within a second");
        assert_eq!(p.check(dir.path(), 0, t0 + RECHECK), Some(0));
        assert!(!p.is_full() && !p.must_check(1000));
    }

    #[test]
    fn an_unreadable_directory_keeps_the_state() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = Pending::new(10, dir.path());
        fs::write(dir.path().join("a"), "0123456789").unwrap();
        assert_eq!(p.check(dir.path(), 0, Instant::now()), Some(10));
        let gone = dir.path().join("gone");
        assert_eq!(p.check(&gone, 0, Instant::now() + RECHECK), None);
        assert!(p.is_full());
    }
}
