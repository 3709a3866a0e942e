//! Rotating segment writer: JSON lines go to `.open-<ULID>.jsonl`, which is sealed by size or
//! age (fsync, rename to `<UTC time>-<ULID>.jsonl`, fsync the directory) and replaced by a new
//! file. Never copytruncate, never a line split across segments.
//!
//! Disk errors are never reported as success. Lines are buffered (like `std::io::BufWriter`),
//! so a `write()` that returned `Ok` has handed its line to the buffer, not yet to the disk.
//! When a later write(2) of that buffer fails, the error is counted
//! (`ferrostack_logfile_write_errors_total`), printed on stderr, the segment is cut back to the
//! bytes of the earlier successful write(2)s, whole lines for a line-at-a-time caller such as
//! tracing (so `ferrostack_logfile_bytes_total` counts exactly the bytes in the files), sealed,
//! and the lost lines are counted in `ferrostack_logfile_dropped_lines_total`. If the failing
//! write(2) ran inside a `write()` or `flush()` call, that call returns the error; if it ran in
//! the background (the 200 ms flush thread, or the sealer's fsync/rename), the error is kept
//! and returned by the next `write()`, `flush()` or [`RotatingWriter::seal`] call, once, the
//! way fsync(2) reports a failed writeback (a `write()` that returns such an error has not
//! taken its own line). Writing then goes on in a fresh segment.
//!
//! When the directory holds `max_pending_bytes` of unshipped data (the sealed segments plus
//! the open one), the writer seals the open segment so that the shipper can take it, stops
//! writing files (the stdout copy goes on), counts the lines it does not write, raises
//! `ferrostack_logfile_pending_full` and says so on stderr; it resumes once the shipper has
//! drained the directory below the bound. It never deletes a segment.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak, mpsc};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use ulid::Ulid;

/// Prefix of the segment being written; shippers ignore names starting with `.`.
pub const OPEN_PREFIX: &str = ".open-";
/// Extension of every segment.
pub const SEGMENT_EXT: &str = "jsonl";

/// Default pending bound of the writer and the shipper (`--max-pending-bytes`): 1 GiB.
pub const DEFAULT_MAX_PENDING_BYTES: u64 = 1024 * 1024 * 1024;

/// Settings of a [`RotatingWriter`].
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

/// Counters of the writer, shared with the metrics registry.
#[derive(Clone, Debug, Default)]
pub struct WriterStats {
    /// `ferrostack_logfile_bytes_total`: bytes written to segment files.
    pub bytes: Counter,
    /// `ferrostack_logfile_write_errors_total`: failed disk writes.
    pub write_errors: Counter,
    /// `ferrostack_logfile_dropped_lines_total`: lines not written to a file (pending bound
    /// reached, or lost with a failed disk write).
    pub dropped_lines: Counter,
    /// `ferrostack_logship_pending_full` (0/1) as seen by the writer.
    pub pending_full: Gauge,
    /// `ferrostack_logfile_segments_sealed_total`.
    pub sealed: Counter,
}

impl WriterStats {
    /// Registers the writer's metrics (`ferrostack_logfile_*`) as a collector.
    pub fn register(&self, registry: &mut Registry) {
        registry.register_collector(Box::new(self.clone()));
    }
}

/// Scraped through a role's registry (`Registry::register_collector`), so the same stats can
/// appear in every role of a process.
impl prometheus_client::collector::Collector for WriterStats {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        let counters = [
            (
                "ferrostack_logfile_bytes",
                "Bytes written to rotating log files",
                &self.bytes,
            ),
            (
                "ferrostack_logfile_write_errors",
                "Failed writes to rotating log files",
                &self.write_errors,
            ),
            (
                "ferrostack_logfile_dropped_lines",
                "Log lines not written to a file: the pending bound was reached or a disk write failed",
                &self.dropped_lines,
            ),
            (
                "ferrostack_logfile_segments_sealed",
                "Log file segments sealed",
                &self.sealed,
            ),
        ];
        for (name, help, counter) in counters {
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        let metric = encoder.encode_descriptor(
            "ferrostack_logfile_pending_full",
            "1 while the log file directory holds the pending bound and files are not written",
            None,
            self.pending_full.metric_type(),
        )?;
        self.pending_full.encode(metric)
    }
}

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

/// The first background failure not yet returned to a caller (shared with the sealer thread).
#[derive(Clone, Debug, Default)]
struct Deferred(Arc<Mutex<Option<io::Error>>>);

impl Deferred {
    fn set(&self, op: &str, error: &io::Error) {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(io::Error::new(
                error.kind(),
                format!("log file {op} failed in the background: {error}"),
            ));
        }
    }

    fn take(&self) -> Option<io::Error> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

#[derive(Debug)]
struct State {
    open: Option<OpenSegment>,
    buf: Vec<u8>,
    at_line_start: bool,
    full: bool,
    last_full_check: Option<Instant>,
    /// Bytes in the directory at the last measurement (plus the buffer then).
    measured: u64,
    /// Bytes taken since the last measurement.
    unmeasured: u64,
    /// Monotonic ids: segment names sort in write order even within one millisecond.
    ids: ulid::Generator,
    /// The sealer thread: fsync, rename and directory fsync happen off the writing path.
    sealer: mpsc::Sender<SealJob>,
}

#[derive(Debug)]
enum SealJob {
    Seal(OpenSegment),
    /// Replies once every earlier job is done (their errors are in [`Deferred`]).
    Barrier(mpsc::SyncSender<()>),
}

#[derive(Debug)]
struct OpenSegment {
    file: File,
    id: Ulid,
    path: PathBuf,
    opened: Instant,
    /// Bytes taken for this segment (on disk or in the buffer).
    written: u64,
    /// Bytes that reached the file: the length it is cut back to after a failed write.
    on_disk: u64,
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
        // Unshipped data already there counts against the bound from the first line on.
        let measured = dir_bytes(&config.dir).unwrap_or(0);
        let (sealer, jobs) = mpsc::channel();
        let deferred = Deferred::default();
        let (dir, sealer_stats, sealer_deferred) =
            (config.dir.clone(), stats.clone(), deferred.clone());
        std::thread::Builder::new()
            .name("logfile-seal".into())
            .spawn(move || seal_jobs(&dir, &sealer_stats, &sealer_deferred, &jobs))?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                open: None,
                buf: Vec::with_capacity(config.buffer_bytes),
                at_line_start: true,
                full: false,
                last_full_check: None,
                measured,
                unmeasured: 0,
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
            return Err(e);
        }
        let len = buf.len() as u64;
        let bound = self.config.max_pending_bytes;
        let over = bound > 0 && state.measured + state.unmeasured + len > bound;
        if (state.full || over) && self.check_pending(&mut state) {
            self.stats.dropped_lines.inc_by(count_lines(buf));
            return Ok(buf.len());
        }
        let rotate = match &state.open {
            Some(open) => {
                // Age is checked by the flush thread; here only size, without a clock read.
                state.at_line_start
                    && open.written > 0
                    && open.written + len > self.config.max_bytes
            }
            None => false,
        };
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
        state.unmeasured += len;
        if let Some(open) = state.open.as_mut() {
            open.written += len;
        }
        if state.buf.len() >= self.config.buffer_bytes {
            self.flush_locked(&mut state)?;
        }
        Ok(buf.len())
    }

    /// Returns true while the pending bound is reached: the directory (sealed and open
    /// segments, plus the buffer) holds at least `max_pending_bytes`. Measured when the bytes
    /// taken since the last measurement could reach the bound, and while full at most once a
    /// second. On reaching the bound the open segment is sealed, so the shipper can drain it.
    fn check_pending(&self, state: &mut State) -> bool {
        let bound = self.config.max_pending_bytes;
        if bound == 0 {
            return false;
        }
        let due = state
            .last_full_check
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1) || !state.full);
        if !due {
            return state.full;
        }
        state.last_full_check = Some(Instant::now());
        let Ok(on_disk) = dir_bytes(&self.config.dir) else {
            return state.full; // cannot measure now: keep the current state
        };
        let used = on_disk + state.buf.len() as u64;
        state.measured = used;
        state.unmeasured = 0;
        let full = used >= bound;
        if full != state.full {
            state.full = full;
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
                    "pending_bytes": used, "max_pending_bytes": bound})
            );
        }
        full
    }

    fn create_segment(&self, id: Ulid) -> io::Result<OpenSegment> {
        let path = self
            .config
            .dir
            .join(format!("{OPEN_PREFIX}{id}.{SEGMENT_EXT}"));
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)?;
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
        let result = open.file.write_all(&state.buf);
        let n = state.buf.len() as u64;
        match result {
            Ok(()) => {
                open.on_disk += n;
                state.buf.clear();
                self.stats.bytes.inc_by(n);
                Ok(())
            }
            Err(e) => {
                self.report("write", &e);
                // The buffered lines are lost: counted, cut off the file (a partial write may
                // have landed), and the segment is sealed with the lines that did reach it.
                // The next line starts a fresh segment.
                self.stats.dropped_lines.inc_by(count_lines(&state.buf));
                state.buf.clear();
                state.at_line_start = true;
                if let Some(open) = state.open.take() {
                    let cut = open.file.set_len(open.on_disk);
                    let sealed = cut.and_then(|()| seal_file(&self.config.dir, open));
                    if let Err(e) = sealed {
                        self.report("seal", &e);
                    }
                }
                Err(e)
            }
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
        self.stats.write_errors.inc();
        eprintln!(
            "{}",
            serde_json::json!({"level": "ERROR", "message": "log file write failed",
                "op": op, "dir": self.config.dir, "error": error.to_string()})
        );
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
        if state.full {
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

/// The sealer thread's loop; ends when the writer is gone. A failure is kept for the next
/// caller; the segment keeps its `.open-` name and is sealed by the next writer on the
/// directory.
fn seal_jobs(dir: &Path, stats: &WriterStats, deferred: &Deferred, jobs: &mpsc::Receiver<SealJob>) {
    for job in jobs {
        match job {
            SealJob::Seal(open) => match seal_file(dir, open) {
                Ok(()) => {
                    stats.sealed.inc();
                }
                Err(e) => {
                    stats.write_errors.inc();
                    eprintln!(
                        "{}",
                        serde_json::json!({"level": "ERROR", "message": "log file write failed",
                            "op": "seal", "dir": dir, "error": e.to_string()})
                    );
                    deferred.set("seal", &e);
                }
            },
            SealJob::Barrier(done) => {
                let _ = done.send(());
            }
        }
    }
}

fn ticker(shared: Weak<Shared>, interval: Duration) {
    loop {
        std::thread::sleep(interval);
        match shared.upgrade() {
            Some(shared) => shared.tick(),
            None => return,
        }
    }
}

/// Final name of a segment: `<UTC time of its ULID>-<ULID>.jsonl` (sortable by time).
pub fn sealed_name(id: Ulid) -> String {
    let ms = id.timestamp_ms();
    let ts = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!(
        "[year][month][day]T[hour][minute][second].[subsecond digits:3]Z"
    );
    let stamp = ts.format(&fmt).unwrap_or_default();
    format!("{stamp}-{id}.{SEGMENT_EXT}")
}

/// fsync the segment, rename it to its sealed name, fsync the directory.
fn seal_file(dir: &Path, open: OpenSegment) -> io::Result<()> {
    if open.written == 0 {
        fs::remove_file(&open.path)?;
        return sync_dir(dir);
    }
    open.file.sync_all()?;
    fs::rename(&open.path, dir.join(sealed_name(open.id)))?;
    sync_dir(dir)
}

/// fsync a directory (makes renames and unlinks in it durable).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Seals `.open-*` segments whose writer is gone (their lock is free), so they get shipped.
fn recover_open_segments(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(id) = name
            .strip_prefix(OPEN_PREFIX)
            .and_then(|rest| rest.strip_suffix(&format!(".{SEGMENT_EXT}")))
            .and_then(|id| Ulid::from_string(id).ok())
        else {
            continue;
        };
        let mut file = OpenOptions::new().append(true).open(entry.path())?;
        if file.try_lock().is_err() {
            continue; // a live writer owns it
        }
        let written = file.metadata()?.len();
        if written > 0 {
            // A torn last line (power loss) is kept whole-or-terminated, never merged with
            // the first line of another segment.
            let mut last = [0u8; 1];
            use std::io::{Read, Seek, SeekFrom};
            let mut reader = File::open(entry.path())?;
            reader.seek(SeekFrom::End(-1))?;
            reader.read_exact(&mut last)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
            }
        }
        seal_file(
            dir,
            OpenSegment {
                file,
                id,
                path: entry.path(),
                opened: Instant::now(),
                written,
                on_disk: written,
            },
        )?;
    }
    Ok(())
}

/// Lines in a write (a line without its newline counts as one).
fn count_lines(buf: &[u8]) -> u64 {
    (buf.iter().filter(|b| **b == b'\n').count() as u64).max(1)
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
mod tests;
