//! The committer threads of [`super::LogDir`]: each takes every write queued so far as one
//! batch, writes each file under a temporary name, makes the whole batch durable together,
//! renames each file to its final name, syncs the directory once, then answers every request.
//!
//! Durable together: writeback of every file of the batch is started at once (Linux
//! `fadvise(DONTNEED)` begins writeback of dirty pages without waiting), then each file is
//! `fdatasync`ed, so the batch's writes reach the disk together instead of one after another;
//! each file is still synced on its own, so its durability never depends on a neighbour.
//! Several committers overlap one batch's wait for the disk with the next batch's writes.
//! Measured on this project's disk (bench/http): 512-file batches in 0.1–0.2 s, half or more of
//! it in `fdatasync`.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use nix::fcntl::{OFlag, openat, renameat};
use nix::sys::stat::Mode;
use nix::unistd::{UnlinkatFlags, unlinkat};
use tokio::sync::{mpsc, oneshot};

use super::Names;

/// Files per batch; bounds the files a committer holds open at once.
const MAX_BATCH: usize = 512;

/// One write: the file's contents and where to send its name (or why it failed).
#[derive(Debug)]
pub(super) struct Job {
    pub(super) contents: Vec<u8>,
    pub(super) reply: oneshot::Sender<io::Result<String>>,
}

/// A file written under its temporary name, not yet durable.
struct Staged {
    name: String,
    tmp: String,
    file: File,
}

/// One of the committer threads; they share the queue and the name generator.
#[derive(Clone)]
pub(super) struct Committer {
    dir: PathBuf,
    names: Arc<Mutex<Names>>,
    queue: Arc<Mutex<mpsc::Receiver<Job>>>,
}

impl Committer {
    pub(super) fn new(dir: PathBuf, queue: mpsc::Receiver<Job>) -> Self {
        Self {
            dir,
            names: Arc::default(),
            queue: Arc::new(Mutex::new(queue)),
        }
    }

    /// Commits batches until every sender is gone.
    pub(super) fn run(self) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while self.next_batch(&mut batch) {
            self.commit(&mut batch);
        }
    }

    /// Waits for a job, then takes every job queued behind it; false once the queue closed.
    fn next_batch(&self, batch: &mut Vec<Job>) -> bool {
        let Ok(mut queue) = self.queue.lock() else {
            return false;
        };
        let Some(first) = queue.blocking_recv() else {
            return false;
        };
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        true
    }

    fn next_name(&self) -> io::Result<String> {
        self.names
            .lock()
            .map_err(|_| io::Error::other("log file name generator poisoned"))?
            .next()
    }

    fn commit(&self, batch: &mut Vec<Job>) {
        let started = std::time::Instant::now();
        let files = batch.len();
        let dir = match std::fs::create_dir_all(&self.dir).and_then(|()| File::open(&self.dir)) {
            Ok(dir) => dir,
            Err(e) => {
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(copy(&e)));
                }
                return;
            }
        };
        let staged = self.stage_all(&dir, batch);
        let durable = make_durable(&dir, staged);
        let named = rename_all(&dir, durable);

        // One directory sync makes every rename durable; then answer.
        let synced = dir.sync_all();
        tracing::debug!(
            files,
            written = named.len(),
            millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "log directory batch committed"
        );
        match synced {
            Ok(()) => {
                for (job, name) in named {
                    let _ = job.reply.send(Ok(name));
                }
            }
            Err(e) => {
                // The files exist and are whole, but their names may not survive a crash:
                // not a success.
                for (job, _) in named {
                    let _ = job.reply.send(Err(copy(&e)));
                }
            }
        }
    }

    /// Every file under its temporary name; a job that cannot be staged is answered here.
    fn stage_all(&self, dir: &File, batch: &mut Vec<Job>) -> Vec<(Job, Staged)> {
        let mut staged = Vec::with_capacity(batch.len());
        for job in batch.drain(..) {
            match self
                .next_name()
                .and_then(|name| stage(dir, name, &job.contents))
            {
                Ok(file) => staged.push((job, file)),
                Err(e) => {
                    let _ = job.reply.send(Err(e));
                }
            }
        }
        staged
    }
}

/// Durable together (see the module docs); a file that cannot be synced is discarded and its
/// job answered here.
fn make_durable(dir: &File, staged: Vec<(Job, Staged)>) -> Vec<(Job, Staged)> {
    #[cfg(target_os = "linux")]
    for (_, s) in &staged {
        // Only a hint: fdatasync below is what guarantees durability.
        let _ = nix::fcntl::posix_fadvise(
            s.file.as_fd(),
            0,
            0,
            nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
        );
    }
    let mut durable = Vec::with_capacity(staged.len());
    for (job, s) in staged {
        match s.file.sync_data() {
            Ok(()) => durable.push((job, s)),
            Err(e) => {
                discard(dir, &s.tmp);
                let _ = job.reply.send(Err(e));
            }
        }
    }
    durable
}

/// Whole files appear under their final names; a failed rename is discarded and answered here.
fn rename_all(dir: &File, durable: Vec<(Job, Staged)>) -> Vec<(Job, String)> {
    let mut named = Vec::with_capacity(durable.len());
    for (job, s) in durable {
        match renameat(dir, s.tmp.as_str(), dir, s.name.as_str()) {
            Ok(()) => named.push((job, s.name)),
            Err(e) => {
                discard(dir, &s.tmp);
                let _ = job.reply.send(Err(e.into()));
            }
        }
    }
    named
}

/// Creates `.tmp-<name>` (never an existing file) and writes `contents` into it.
fn stage(dir: &File, name: String, contents: &[u8]) -> io::Result<Staged> {
    let tmp = format!(".tmp-{name}");
    let fd = openat(
        dir,
        tmp.as_str(),
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )?;
    let mut file = File::from(fd);
    if let Err(e) = file.write_all(contents) {
        discard(dir, &tmp);
        return Err(e);
    }
    Ok(Staged { name, tmp, file })
}

/// Best effort: a half-written temp file must not linger (shippers skip names starting
/// with '.', so one that does is never shipped).
fn discard(dir: &File, tmp: &str) {
    let _ = unlinkat(dir, tmp, UnlinkatFlags::NoRemoveDir);
}

/// `io::Error` is not `Clone`; one failure is reported to every job of the batch.
fn copy(e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), e.to_string())
}
