//! Sealing: fsync a segment, rename it to its sealed name, fsync the directory, on a thread of
//! its own so that a slow disk does not hold up the writing path.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

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
    /// Lines in those bytes: what is counted as dropped if a failed fsync lost them.
    pub(crate) lines: u64,
}

/// Work for the sealer thread.
#[derive(Debug)]
pub(crate) enum SealJob {
    Seal(OpenSegment),
    /// A segment whose seal failed (already reported): sealed again on the timer, quietly.
    Retry(OpenSegment),
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

/// How often a segment whose seal failed (a failing disk) is tried again.
const RESEAL_EVERY: Duration = Duration::from_secs(1);

/// The sealer thread's loop. A failure is kept for the next caller and the segment is sealed
/// again every [`RESEAL_EVERY`] until it works (the disk healed); should the process end
/// first, it keeps its `.open-` name and the next writer on the directory seals it.
fn seal_jobs(dir: &Path, stats: &WriterStats, deferred: &Deferred, jobs: &mpsc::Receiver<SealJob>) {
    let mut unsealed: Vec<OpenSegment> = Vec::new();
    let mut next_try = Instant::now() + RESEAL_EVERY;
    loop {
        let job = if unsealed.is_empty() {
            jobs.recv()
                .map_err(|_| mpsc::RecvTimeoutError::Disconnected)
        } else {
            jobs.recv_timeout(next_try.saturating_duration_since(Instant::now()))
        };
        match job {
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Ok(SealJob::Seal(open)) => seal_or_keep(dir, stats, deferred, open, &mut unsealed),
            Ok(SealJob::Retry(open)) => unsealed.push(open),
            Ok(SealJob::Barrier(done)) => {
                let _ = done.send(());
            }
        }
        // Segments that failed are tried again on a timer, also while new seals keep coming.
        if !unsealed.is_empty() && Instant::now() >= next_try {
            // Failing again is not reported again: the first failure was.
            for open in std::mem::take(&mut unsealed) {
                if try_seal(dir, &open).is_ok() {
                    stats.sealed.inc();
                    count_lost(&open, stats);
                } else {
                    unsealed.push(open);
                }
            }
            next_try = Instant::now() + RESEAL_EVERY;
        }
    }
}

/// Lines of `open` that are not in its file after a failed fsync (the kernel may drop the
/// pages of a failed writeback: the bytes write(2) accepted are then gone), counted as dropped.
fn count_lost(open: &OpenSegment, stats: &WriterStats) {
    let Ok(len) = open.file.metadata().map(|m| m.len()) else {
        return;
    };
    if len >= open.on_disk {
        return;
    }
    let kept = fs::read(dir_entry(open)).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count());
    let lost = open.lines.saturating_sub(kept as u64);
    stats.dropped_lines.inc_by(lost);
    eprintln!(
        "{}",
        serde_json::json!({"level": "ERROR", "message": "log file lines lost by a failed fsync",
            "segment": open.path, "lines": lost})
    );
}

/// Where the segment is now: its sealed name once renamed.
fn dir_entry(open: &OpenSegment) -> PathBuf {
    let sealed = open.path.with_file_name(sealed_name(open.id));
    if sealed.exists() {
        sealed
    } else {
        open.path.clone()
    }
}

/// Seals `open`, or reports the failure and keeps the segment in `unsealed`.
fn seal_or_keep(
    dir: &Path,
    stats: &WriterStats,
    deferred: &Deferred,
    open: OpenSegment,
    unsealed: &mut Vec<OpenSegment>,
) {
    match try_seal(dir, &open) {
        Ok(()) => {
            stats.sealed.inc();
        }
        Err(e) => {
            report_failure(stats, dir, "seal", &e);
            deferred.set("seal", &e);
            unsealed.push(open);
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
    try_seal(dir, &open)
}

/// [`seal_file`] that leaves the segment to the caller (to try again). A tail beyond the
/// bytes written successfully (a failed write(2) may land part of its buffer) is cut first.
pub(crate) fn try_seal(dir: &Path, open: &OpenSegment) -> io::Result<()> {
    if open.file.metadata()?.len() > open.on_disk {
        open.file.set_len(open.on_disk)?;
    }
    if open.on_disk == 0 {
        match fs::remove_file(&open.path) {
            // Removed by an earlier try whose directory fsync failed.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            other => other?,
        }
        return sync_dir(dir);
    }
    failpoint!("logfile::segment_fsync");
    open.file.sync_all()?;
    failpoint!("logfile::segment_rename");
    let sealed = dir.join(sealed_name(open.id));
    match fs::rename(&open.path, &sealed) {
        // Renamed by an earlier try whose directory fsync failed.
        Err(e) if e.kind() == io::ErrorKind::NotFound && sealed.exists() => {}
        other => other?,
    }
    failpoint!("logfile::dir_fsync");
    sync_dir(dir)
}

/// fsync a directory (makes renames and unlinks in it durable).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_a_failed_fsync_lost_are_counted_as_dropped_once_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let id = Ulid::generate();
        let path = dir.path().join(crate::segment::open_name(id));
        // Five lines were written (on_disk, lines); after the failed writeback two survive.
        fs::write(&path, "{\"a\":1}\n{\"a\":2}\n").unwrap();
        let open = OpenSegment {
            file: File::options().append(true).open(&path).unwrap(),
            id,
            path,
            opened: Instant::now(),
            written: 40,
            on_disk: 40,
            lines: 5,
        };
        try_seal(dir.path(), &open).unwrap();
        let stats = WriterStats::default();
        count_lost(&open, &stats);
        assert_eq!(stats.dropped_lines.get(), 3);
        let sealed = dir.path().join(sealed_name(id));
        assert_eq!(
            fs::read_to_string(sealed).unwrap(),
            "{\"a\":1}\n{\"a\":2}\n"
        );
    }
}
