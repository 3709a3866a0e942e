//! Sealing: fsync a segment, rename it to its sealed name, fsync the directory, on a thread of
//! its own so that a slow disk does not hold up the writing path.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use ulid::Ulid;

use crate::deferred::Deferred;
use crate::segment::sealed_name;
use crate::stats::WriterStats;

/// A segment being written.
#[derive(Debug)]
pub(crate) struct OpenSegment {
    pub(crate) file: File,
    pub(crate) id: Ulid,
    pub(crate) path: PathBuf,
    pub(crate) opened: Instant,
    /// Bytes taken for this segment (on disk or in the buffer).
    pub(crate) written: u64,
    /// Bytes that reached the file: the length it is cut back to after a failed write.
    pub(crate) on_disk: u64,
}

/// Work for the sealer thread.
#[derive(Debug)]
pub(crate) enum SealJob {
    Seal(OpenSegment),
    /// Replies once every earlier job is done (their errors are in [`Deferred`]).
    Barrier(mpsc::SyncSender<()>),
}

/// Starts the sealer thread of `dir`; it ends when the returned sender is dropped.
pub(crate) fn spawn_sealer(
    dir: &Path,
    stats: &WriterStats,
    deferred: &Deferred,
) -> io::Result<mpsc::Sender<SealJob>> {
    let (sealer, jobs) = mpsc::channel();
    let (dir, stats, deferred) = (dir.to_path_buf(), stats.clone(), deferred.clone());
    std::thread::Builder::new()
        .name("logfile-seal".into())
        .spawn(move || seal_jobs(&dir, &stats, &deferred, &jobs))?;
    Ok(sealer)
}

/// The sealer thread's loop. A failure is kept for the next caller; the segment keeps its
/// `.open-` name and is sealed by the next writer on the directory.
fn seal_jobs(dir: &Path, stats: &WriterStats, deferred: &Deferred, jobs: &mpsc::Receiver<SealJob>) {
    for job in jobs {
        match job {
            SealJob::Seal(open) => match seal_file(dir, open) {
                Ok(()) => {
                    stats.sealed.inc();
                }
                Err(e) => {
                    report_failure(stats, dir, "seal", &e);
                    deferred.set("seal", &e);
                }
            },
            SealJob::Barrier(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// Counts a failed disk operation and says so on stderr (the log itself may be what failed).
pub(crate) fn report_failure(stats: &WriterStats, dir: &Path, op: &str, error: &io::Error) {
    stats.write_errors.inc();
    eprintln!(
        "{}",
        serde_json::json!({"level": "ERROR", "message": "log file write failed",
            "op": op, "dir": dir, "error": error.to_string()})
    );
}

/// fsync the segment, rename it to its sealed name, fsync the directory; an empty segment is
/// removed instead.
pub(crate) fn seal_file(dir: &Path, open: OpenSegment) -> io::Result<()> {
    if open.written == 0 {
        fs::remove_file(&open.path)?;
        return sync_dir(dir);
    }
    failpoint!("logfile::segment_fsync");
    open.file.sync_all()?;
    failpoint!("logfile::segment_rename");
    fs::rename(&open.path, dir.join(sealed_name(open.id)))?;
    failpoint!("logfile::dir_fsync");
    sync_dir(dir)
}

/// fsync a directory (makes renames and unlinks in it durable).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
