//! Writes each generated log message as its own file, keeping three promises under any
//! concurrency: names are unique and sort by time (`<UTC time>-<ULID>.json`, the ULID from a
//! monotonic generator), a file appears whole or not at all (written to `.tmp-<name>`,
//! fsynced, renamed), and the work runs on the blocking pool, off the async reactor.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use time::OffsetDateTime;
use time::macros::format_description;

/// A directory of one-message log files.
#[derive(Clone, Debug)]
pub struct LogDir {
    dir: PathBuf,
    ids: Arc<Mutex<ulid::Generator>>,
}

// === impl LogDir ===

impl LogDir {
    /// A writer into `dir` (created on first write if missing).
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            ids: Arc::new(Mutex::new(ulid::Generator::new())),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Writes `contents` to a new file and returns its name. Blocking: call it from the
    /// blocking pool.
    pub fn write(&self, contents: &[u8]) -> io::Result<String> {
        let name = self.next_name()?;
        fs::create_dir_all(&self.dir)?;
        let tmp = self.dir.join(format!(".tmp-{name}"));
        let result =
            write_synced(&tmp, contents).and_then(|()| fs::rename(&tmp, self.dir.join(&name)));
        if result.is_err() {
            // Best effort: a half-written temp file must not linger, and is never shipped
            // (shippers skip names starting with '.').
            let _ = fs::remove_file(&tmp);
        }
        result.map(|()| name)
    }

    fn next_name(&self) -> io::Result<String> {
        let id = {
            let mut ids = self
                .ids
                .lock()
                .map_err(|_| io::Error::other("log file id generator poisoned"))?;
            match ids.generate() {
                Ok(id) => id,
                // More than 2^80 ids in one millisecond: move into the next millisecond.
                Err(overflow) => overflow.commit_overflow_increment(),
            }
        };
        // The time prefix is the ULID's own millisecond, so name order equals ULID order.
        let at = UNIX_EPOCH + Duration::from_millis(id.timestamp_ms());
        let stamp = OffsetDateTime::from(at)
            .format(format_description!(
                "[year][month][day]T[hour][minute][second].[subsecond digits:3]Z"
            ))
            .map_err(io::Error::other)?;
        Ok(format!("{stamp}-{id}.json"))
    }
}

fn write_synced(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_sorted_by_creation() {
        let dir = tempfile::tempdir().unwrap();
        let logs = LogDir::new(dir.path().join("nested"));
        let names: Vec<String> = (0..200)
            .map(|i| logs.write(format!("{i}").as_bytes()).unwrap())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        sorted.dedup();
        assert_eq!(sorted.len(), 200);
        let on_disk = fs::read_dir(dir.path().join("nested")).unwrap().count();
        assert_eq!(on_disk, 200, "no temp files left behind");
    }

    #[test]
    fn a_failed_write_reports_the_error_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        fs::write(&blocker, b"x").unwrap();
        let logs = LogDir::new(blocker.join("sub"));
        assert!(logs.write(b"{}").is_err());
    }
}
