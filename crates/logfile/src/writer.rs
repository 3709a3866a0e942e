//! [`RotatingWriter`]: takes JSON lines into a buffer and an open segment, rotates by size on
//! the writing path and by age on a background flush thread, and hands segments to the sealer.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, Weak, mpsc};
use std::time::{Duration, Instant};

use ulid::Ulid;

use crate::config::WriterConfig;
use crate::deferred::Deferred;
use crate::pending::Pending;
use crate::recover::recover_open_segments;
use crate::seal::{OpenSegment, SealJob, report_failure, seal_file, spawn_sealer, try_seal};
use crate::segment::open_name;
use crate::stats::WriterStats;

/// A rotating JSON-lines file writer; cheap to clone, usable as `io::Write` and as a tracing
/// `MakeWriter`.
#[derive(Clone, Debug)]
pub struct RotatingWriter {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    config: WriterConfig,
    stats: WriterStats,
    state: Mutex<State>,
    /// A failure of a background write, fsync or rename, kept for the next caller.
    deferred: Deferred,
}

#[derive(Debug)]
struct State {
    open: Option<OpenSegment>,
    buf: Vec<u8>,
    at_line_start: bool,
    pending: Pending,
    /// Monotonic ids: segment names sort in write order even within one millisecond.
    ids: ulid::Generator,
    /// The sealer thread: fsync, rename and directory fsync happen off the writing path.
    sealer: mpsc::Sender<SealJob>,
}

// === impl RotatingWriter ===

impl RotatingWriter {
    /// Opens the directory, seals segments left open by a dead writer, and starts the
    /// background flush thread.
    pub fn open(config: WriterConfig) -> io::Result<Self> {
        Self::open_with_stats(config, WriterStats::default())
    }

    /// As [`RotatingWriter::open`], counting into `stats`.
    pub fn open_with_stats(config: WriterConfig, stats: WriterStats) -> io::Result<Self> {
        fs::create_dir_all(&config.dir)?;
        recover_open_segments(&config.dir)?;
        let deferred = Deferred::default();
        let sealer = spawn_sealer(&config.dir, &stats, &deferred)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                open: None,
                buf: Vec::with_capacity(config.buffer_bytes),
                at_line_start: true,
                pending: Pending::new(config.max_pending_bytes, &config.dir),
                ids: ulid::Generator::new(),
                sealer,
            }),
            config,
            stats,
            deferred,
        });
        let weak = Arc::downgrade(&shared);
        let interval = shared.config.flush_interval;
        std::thread::Builder::new()
            .name("logfile-flush".into())
            .spawn(move || ticker(weak, interval))?;
        Ok(Self { shared })
    }

    /// The writer's counters.
    pub fn stats(&self) -> &WriterStats {
        &self.shared.stats
    }

    /// The segment directory.
    pub fn dir(&self) -> &Path {
        &self.shared.config.dir
    }

    /// Writes the buffer to the open segment (no fsync); returns a background failure that
    /// no caller has seen yet.
    pub fn flush_buffer(&self) -> io::Result<()> {
        let mut state = self.shared.lock();
        let flushed = self.shared.flush_locked(&mut state);
        match self.shared.deferred.take() {
            Some(e) => Err(e),
            None => flushed,
        }
    }

    /// Flushes and seals the open segment now and waits until every segment handed to the
    /// sealer is durable under its final name (used on shutdown and by tests). Returns the
    /// first failure since the last call that returned one, background failures included.
    pub fn seal(&self) -> io::Result<()> {
        let mut state = self.shared.lock();
        let sealed = self.shared.seal_locked(&mut state);
        let (done, wait) = mpsc::sync_channel(1);
        let sent = state.sealer.send(SealJob::Barrier(done)).is_ok();
        drop(state);
        if !sent || wait.recv().is_err() {
            return Err(io::Error::other("log file sealer thread is gone"));
        }
        match self.shared.deferred.take() {
            Some(e) => Err(e),
            None => sealed,
        }
    }
}

impl Write for &RotatingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.shared.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_buffer()
    }
}

impl Write for RotatingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.shared.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_buffer()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RotatingWriter {
    type Writer = RotatingWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

// === impl Shared ===

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves a consistent State (plain data); keep going.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut state = self.lock();
        if let Some(e) = self.deferred.take() {
            // A background write failed since the last call: this call reports it (and, as
            // io::Write requires of an Err, has not taken its own line).
            self.stats.dropped_lines.inc_by(count_lines(buf));
            self.stats.dropped_write_error.inc_by(count_lines(buf));
            return Err(e);
        }
        let len = buf.len() as u64;
        if state.pending.must_check(len) && self.check_pending(&mut state) {
            self.stats.dropped_lines.inc_by(count_lines(buf));
            self.stats.dropped_pending.inc_by(count_lines(buf));
            return Ok(buf.len());
        }
        // Age is checked by the flush thread; here only size, without a clock read.
        let rotate = state.open.as_ref().is_some_and(|open| {
            state.at_line_start && open.written > 0 && open.written + len > self.config.max_bytes
        });
        if rotate {
            self.seal_locked(&mut state)?;
        }
        if state.open.is_none() {
            let id = state.ids.generate().unwrap_or_else(|_| Ulid::generate());
            let open = self
                .create_segment(id)
                .inspect_err(|e| self.report("create", e))?;
            state.open = Some(open);
        }
        state.buf.extend_from_slice(buf);
        state.at_line_start = buf.last() == Some(&b'\n');
        state.pending.took(len);
        if let Some(open) = state.open.as_mut() {
            open.written += len;
        }
        if state.buf.len() >= self.config.buffer_bytes {
            self.flush_locked(&mut state)?;
        }
        Ok(buf.len())
    }

    /// Returns true while the pending bound is reached. On reaching it the open segment is
    /// sealed, so the shipper can drain it; either change is said on stderr.
    fn check_pending(&self, state: &mut State) -> bool {
        let buffered = state.buf.len() as u64;
        let Some(used) = state
            .pending
            .check(&self.config.dir, buffered, Instant::now())
        else {
            return state.pending.is_full();
        };
        let full = state.pending.is_full();
        self.stats.pending_full.set(i64::from(full));
        if full
            && state.at_line_start
            && let Err(e) = self.seal_locked(state)
        {
            self.deferred.set("seal", &e);
        }
        let msg = if full {
            "pending bound reached: not writing log files until the shipper drains them"
        } else {
            "pending bytes below the bound: writing log files again"
        };
        eprintln!(
            "{}",
            serde_json::json!({"level": "WARN", "message": msg, "dir": self.config.dir,
                "pending_bytes": used, "max_pending_bytes": self.config.max_pending_bytes})
        );
        full
    }

    fn create_segment(&self, id: Ulid) -> io::Result<OpenSegment> {
        let path = self.config.dir.join(open_name(id));
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)?;
        // The lock tells recovery in another writer's process that this segment is alive.
        file.try_lock().map_err(|e| match e {
            fs::TryLockError::Error(e) => e,
            fs::TryLockError::WouldBlock => io::Error::other("segment locked by another writer"),
        })?;
        Ok(OpenSegment {
            file,
            id,
            path,
            opened: Instant::now(),
            written: 0,
            on_disk: 0,
            lines: 0,
        })
    }

    fn flush_locked(&self, state: &mut State) -> io::Result<()> {
        if state.buf.is_empty() {
            return Ok(());
        }
        let Some(open) = state.open.as_mut() else {
            state.buf.clear();
            return Ok(());
        };
        failpoint!("logfile::segment_write");
        let result = open.file.write_all(&state.buf);
        let n = state.buf.len() as u64;
        match result {
            Ok(()) => {
                open.on_disk += n;
                // memchr's SIMD count: this runs on every flush of the writing path.
                open.lines += memchr::memchr_iter(b'\n', &state.buf).count() as u64;
                state.buf.clear();
                self.stats.bytes.inc_by(n);
                Ok(())
            }
            Err(e) => {
                self.report("write", &e);
                self.drop_buffer_and_seal(state);
                Err(e)
            }
        }
    }

    /// After a failed write(2): the buffered lines are lost, so they are counted, cut off the
    /// file (a partial write may have landed), and the segment is sealed with the lines that
    /// did reach it. The next line starts a fresh segment.
    fn drop_buffer_and_seal(&self, state: &mut State) {
        self.stats.dropped_lines.inc_by(count_lines(&state.buf));
        self.stats
            .dropped_write_error
            .inc_by(count_lines(&state.buf));
        state.buf.clear();
        state.at_line_start = true;
        if let Some(open) = state.open.take()
            && let Err(e) = try_seal(&self.config.dir, &open)
        {
            // try_seal cut the failed write off first; the sealer tries again on its timer.
            self.report("seal", &e);
            let _ = state.sealer.send(SealJob::Retry(open));
        }
    }

    /// Hands the open segment to the sealer thread (sealing inline if that thread is gone).
    fn seal_locked(&self, state: &mut State) -> io::Result<()> {
        self.flush_locked(state)?;
        let Some(open) = state.open.take() else {
            return Ok(());
        };
        state.at_line_start = true;
        if let Err(mpsc::SendError(SealJob::Seal(open))) = state.sealer.send(SealJob::Seal(open)) {
            seal_file(&self.config.dir, open).inspect_err(|e| self.report("seal", e))?;
            self.stats.sealed.inc();
        }
        Ok(())
    }

    fn report(&self, op: &str, error: &io::Error) {
        report_failure(&self.stats, &self.config.dir, op, error);
    }

    /// The background flush: a failure is kept for the next caller.
    fn tick(&self) {
        let mut state = self.lock();
        if let Err(e) = self.flush_locked(&mut state) {
            self.deferred.set("write", &e);
        }
        let expired = state
            .open
            .as_ref()
            .is_some_and(|o| o.written > 0 && o.opened.elapsed() >= self.config.max_age);
        if expired
            && state.at_line_start
            && let Err(e) = self.seal_locked(&mut state)
        {
            self.deferred.set("seal", &e);
        }
        if state.pending.is_full() {
            self.check_pending(&mut state);
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let mut state = self.lock();
        let _ = self.seal_locked(&mut state);
        let (done, wait) = mpsc::sync_channel(1);
        if state.sealer.send(SealJob::Barrier(done)).is_ok() {
            let _ = wait.recv();
        }
    }
}

/// The flush thread's loop; ends when the writer is gone.
fn ticker(shared: Weak<Shared>, interval: Duration) {
    loop {
        std::thread::sleep(interval);
        match shared.upgrade() {
            Some(shared) => shared.tick(),
            None => return,
        }
    }
}

/// Lines in a write (a line without its newline counts as one).
fn count_lines(buf: &[u8]) -> u64 {
    (buf.iter().filter(|b| **b == b'\n').count() as u64).max(1)
}

#[cfg(test)]
mod tests;
