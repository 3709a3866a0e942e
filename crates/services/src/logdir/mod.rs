//! Writes each generated log message as its own file, keeping three promises under any
//! concurrency: names are unique and sort by time (`<UTC time>-<ULID>.json`, the ULID from a
//! monotonic generator), a file appears whole or not at all (written to `.tmp-<name>`,
//! made durable, renamed), and no disk I/O runs on the async reactor.
//!
//! Writes are group-committed: requests hand their message to one committer thread, which
//! writes whatever has queued up as a batch and makes the whole batch durable together (see
//! [`commit`]). One fsync per file, from a thread per request, capped `GET /` at a fraction
//! of what the disk can do when thousands of requests finish at once (bench/http).

mod commit;

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use time::OffsetDateTime;
use time::macros::format_description;
use tokio::sync::{mpsc, oneshot};

/// Requests waiting for the committer beyond this wait for room (backpressure), so memory
/// stays bounded however far the disk falls behind.
const QUEUE: usize = 16 * 1024;

/// Committer threads: while one waits for the disk, another writes the next batch.
const COMMITTERS: usize = 4;

/// A directory of one-message log files.
#[derive(Clone, Debug)]
pub struct LogDir {
    dir: PathBuf,
    jobs: mpsc::Sender<commit::Job>,
}

// === impl LogDir ===

impl LogDir {
    /// A writer into `dir` (created on first write if missing); starts its committer thread,
    /// which ends when the last clone of this `LogDir` is dropped.
    pub fn new(dir: PathBuf) -> io::Result<Self> {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let committer = commit::Committer::new(dir.clone(), queue);
        for _ in 0..COMMITTERS {
            let committer = committer.clone();
            std::thread::Builder::new()
                .name("logdir-commit".to_owned())
                .spawn(move || committer.run())?;
        }
        Ok(Self { dir, jobs })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Writes `contents` to a new file and returns its name once the file is durable under
    /// that name.
    pub async fn write(&self, contents: Vec<u8>) -> io::Result<String> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(commit::Job { contents, reply })
            .await
            .map_err(|_| io::Error::other("the log directory committer has stopped"))?;
        answer
            .await
            .map_err(|_| io::Error::other("the log directory committer has stopped"))?
    }
}

/// Makes unique, time-sortable file names.
#[derive(Debug, Default)]
struct Names(ulid::Generator);

impl Names {
    fn next(&mut self) -> io::Result<String> {
        let id = match self.0.generate() {
            Ok(id) => id,
            // More than 2^80 ids in one millisecond: move into the next millisecond.
            Err(overflow) => overflow.commit_overflow_increment(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[tokio::test]
    async fn names_are_unique_and_sorted_by_creation() {
        let dir = tempfile::tempdir().unwrap();
        let logs = LogDir::new(dir.path().join("nested")).unwrap();
        let mut names = Vec::new();
        for i in 0..200 {
            names.push(logs.write(format!("{i}").into_bytes()).await.unwrap());
        }
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        sorted.dedup();
        assert_eq!(sorted.len(), 200);
        let on_disk = fs::read_dir(dir.path().join("nested")).unwrap().count();
        assert_eq!(on_disk, 200, "no temp files left behind");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writes_are_batched_and_each_file_is_whole() {
        let dir = tempfile::tempdir().unwrap();
        let logs = LogDir::new(dir.path().to_owned()).unwrap();
        let tasks: Vec<_> = (0..2000)
            .map(|i| {
                let logs = logs.clone();
                tokio::spawn(async move {
                    let body = format!("{{\"n\":{i}}}\n").into_bytes();
                    (logs.write(body).await.unwrap(), i)
                })
            })
            .collect();
        for task in tasks {
            let (name, i) = task.await.unwrap();
            let body = fs::read_to_string(dir.path().join(&name)).unwrap();
            assert_eq!(body, format!("{{\"n\":{i}}}\n"), "{name}");
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2000);
    }

    #[tokio::test]
    async fn a_failed_write_reports_the_error_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        fs::write(&blocker, b"x").unwrap();
        let logs = LogDir::new(blocker.join("sub")).unwrap();
        assert!(logs.write(b"{}".to_vec()).await.is_err());
        // The committer keeps serving after a failure.
        assert!(logs.write(b"{}".to_vec()).await.is_err());
    }
}
