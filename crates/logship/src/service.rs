//! The shipper loop: scan the sources, finish unfinished batches from the journal first, pack a
//! ready batch, encode it into the staging directory, journal it, upload it create-only,
//! journal the delivery, then delete its files that are unchanged since they were read
//! (fsyncing their directories) and the staged object. Upload errors back off exponentially
//! with jitter while data waits on disk; nothing unshipped is ever deleted. On shutdown it seals the process's own segment and ships what it
//! can within the shutdown timeout; what is left resumes from the journal on the next start.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use rand::Rng;
use tokio_util::sync::CancellationToken;

use crate::batch::{self, Candidate, Source, Stamp};
use crate::census::{self, Census};
use crate::config::{Config, KeyVars};
use crate::encoder::{self, EncodeError, Encoded, Input};
use crate::journal::{BatchRecord, FileRef, Journal, JournalError};
use crate::listing;
use crate::manifest::Manifest;
use crate::metrics::Metrics;
use crate::sink::{BuildError, MultipartProgress, Outcome, Sink, SinkError, Staged};
use logfile::{RotatingWriter, sync_dir};

/// Shipper errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The journal could not be read or written.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The destination could not be set up.
    #[error("--to: {0}")]
    Sink(#[from] BuildError),
    /// A local file operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// An upload failed (retried with backoff).
    #[error(transparent)]
    Upload(#[from] SinkError),
    /// Encoding a batch failed.
    #[error("encode: {0}")]
    Encode(#[from] EncodeError),
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

enum Step {
    Worked,
    Idle,
}

/// The shipper: owns the journal, the sink and the metrics.
#[derive(Debug)]
pub struct Shipper {
    config: Config,
    sink: Sink,
    journal: Journal,
    metrics: Metrics,
    staging: PathBuf,
    pending_full: bool,
    next_source: usize,
    uploads_ok: bool,
    /// Files that could not be read, by path, with the size and stamp they had: skipped until
    /// either changes (a chmod changes ctime), so one bad file does not block its source.
    unreadable: HashMap<PathBuf, (u64, Stamp)>,
    /// The last listing error logged per source (logged again only when it changes).
    scan_errors: HashMap<String, String>,
    /// The process's own log writer, sealed when shutdown starts.
    seal_on_shutdown: Option<RotatingWriter>,
    /// The pending totals, counted off the shipping path.
    census: Census,
    /// Batches packed before the first count finished (`None` once it is logged).
    packed_before_count: Option<u64>,
}

// === impl Shipper ===

impl Shipper {
    /// Opens the journal, builds the sink and removes staged objects no batch refers to.
    pub fn new(config: Config, metrics: Metrics) -> Result<Self, Error> {
        let sink = Sink::new(&config.to, config.sink.clone())?;
        let journal = Journal::open(&config.state_dir)?;
        let staging = config.state_dir.join("staging");
        fs::create_dir_all(&staging).map_err(io_err("create", &staging))?;
        let keep: BTreeSet<PathBuf> = journal
            .open_batches()
            .map(|b| staged_path(&staging, b.record.seq, &config))
            .collect();
        for entry in fs::read_dir(&staging).map_err(io_err("list", &staging))? {
            let path = entry.map_err(io_err("list", &staging))?.path();
            if !keep.contains(&path) {
                encoder::remove_staged(&path).map_err(io_err("remove", &path))?;
            }
        }
        Ok(Self {
            config,
            sink,
            journal,
            metrics,
            staging,
            pending_full: false,
            next_source: 0,
            uploads_ok: true,
            unreadable: HashMap::new(),
            scan_errors: HashMap::new(),
            seal_on_shutdown: None,
            census: Census::default(),
            packed_before_count: Some(0),
        })
    }

    /// Seals `writer` (the process's own log file) when shutdown starts, so that its last
    /// segment is shipped with the rest.
    pub fn seal_on_shutdown(mut self, writer: Option<RotatingWriter>) -> Self {
        self.seal_on_shutdown = writer;
        self
    }

    /// Runs until `shutdown`, then ships what it can within the shutdown timeout.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), Error> {
        tracing::info!(to = %self.config.to, sources = self.config.sources.len(), "logship started");
        let mut failures = 0u32;
        loop {
            let result = tokio::select! {
                r = self.step(false) => r,
                () = shutdown.cancelled() => break,
            };
            let pause = match result {
                Ok(Step::Worked) => {
                    failures = 0;
                    continue;
                }
                Ok(Step::Idle) => self.config.scan_interval,
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let pause = self.backoff(failures);
                    tracing::warn!(error = %e, retry_in = ?pause, "logship: shipping failed, data stays on disk");
                    pause
                }
            };
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = shutdown.cancelled() => break,
            }
        }
        if let Some(writer) = &self.seal_on_shutdown
            && let Err(e) = writer.seal()
        {
            tracing::warn!(error = %e, "logship: sealing the own log segment failed");
        }
        let deadline = tokio::time::Instant::now() + self.config.shutdown_timeout;
        let drained = tokio::time::timeout_at(deadline, async {
            let mut failures = 0;
            loop {
                match self.step(true).await {
                    Ok(Step::Worked) => failures = 0,
                    Ok(Step::Idle) => return,
                    Err(e) => {
                        failures += 1;
                        tracing::warn!(error = %e, "logship: shipping during shutdown failed");
                        tokio::time::sleep(self.backoff(failures)).await;
                    }
                }
            }
        })
        .await
        .is_ok();
        self.scan();
        tracing::info!(
            drained,
            pending_files = self.metrics.pending_files.get(),
            pending_bytes = self.metrics.pending_bytes.get(),
            "logship stopped"
        );
        Ok(())
    }

    /// Exponential backoff with equal jitter: between half and all of min(max, initial·2^n).
    fn backoff(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(20);
        let cap = self
            .config
            .retry_initial
            .saturating_mul(1 << exp)
            .min(self.config.retry_max);
        let half = cap / 2;
        half + rand::rng().random_range(Duration::ZERO..=half)
    }

    /// One unit of work. Unfinished batches go first; while one uploads, the next ready batch
    /// is encoded on a blocking thread (compression and storage I/O overlap), then journaled.
    async fn step(&mut self, flush: bool) -> Result<Step, Error> {
        let candidates = self.scan();
        let next = self.ready_batch(&candidates, flush);
        let unfinished = self.journal.open_batches().next().map(|b| b.record.seq);
        let Some(seq) = unfinished else {
            let Some((source, files)) = next else {
                return Ok(Step::Idle);
            };
            let encoding = self.start_encode(files);
            self.commit(&source, encoding).await?;
            return Ok(Step::Worked);
        };
        // While uploads fail, do not encode ahead: the work would be thrown away.
        let encoding = next
            .filter(|_| self.uploads_ok)
            .map(|(source, files)| (source, self.start_encode(files)));
        let finished = self.finish(seq).await;
        self.uploads_ok = finished.is_ok();
        if let Some((source, encoding)) = encoding {
            if finished.is_ok() {
                self.commit(&source, encoding).await?;
            } else {
                // Not journaled: the files are packed again later.
                let _ = encoding.handle.await;
                let _ = encoder::remove_staged(&encoding.tmp);
            }
        }
        finished.map(|()| Step::Worked)
    }

    /// The next ready batch, taking sources in turn.
    fn ready_batch(
        &mut self,
        candidates: &[(Source, Vec<Candidate>)],
        flush: bool,
    ) -> Option<(Source, Vec<Candidate>)> {
        let now = SystemTime::now();
        let n = candidates.len();
        for i in 0..n {
            let idx = (self.next_source + i) % n;
            let (source, files) = &candidates[idx];
            if let Some(batch) = batch::pack(files, self.config.limits, now, flush) {
                self.next_source = idx + 1;
                if let Some(n) = &mut self.packed_before_count {
                    *n += 1;
                }
                return Some((source.clone(), batch.to_vec()));
            }
        }
        None
    }

    /// Lists the sources (without files held by open batches) and updates pending metrics;
    /// each source's listing keeps one batch's worth of candidates ([`listing`]). Pending files
    /// are exact; pending bytes and age come from the last [`census`] (until the first count
    /// ends, the bytes and age of the next batches and of the open ones only).
    fn scan(&mut self) -> Vec<(Source, Vec<Candidate>)> {
        let mut out = Vec::new();
        let (mut files, mut bytes) = (0i64, 0i64);
        let mut oldest: Option<SystemTime> = None;
        let mut filter = ScanFilter {
            held: HashSet::new(),
            unreadable: &self.unreadable,
            still_unreadable: HashSet::new(),
        };
        for b in self.journal.open_batches() {
            files += b.record.files.len() as i64;
            bytes += b.record.raw_bytes as i64;
            filter
                .held
                .extend(b.record.files.iter().map(|f| f.path.clone()));
        }
        let mut listings = Vec::new();
        for source in &self.config.sources {
            listings.push(listing::list(
                source,
                self.config.limits.max_files,
                &mut filter,
            ));
        }
        let still = filter.still_unreadable;
        let mut listed = 0i64;
        for (source, result) in self.config.sources.clone().into_iter().zip(listings) {
            let l = self.listed(&source, result);
            files += l.files as i64;
            bytes += l.bytes as i64;
            oldest = match (oldest, l.oldest) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            listed += l.window.len() as i64;
            // Plain files still being written wait (counted above; see `batch::settled`).
            let (quiet, now) = (self.config.quiet_period, SystemTime::now());
            let mut window = l.window;
            window.retain(|c| batch::settled(c, quiet, now));
            out.push((source, window));
        }
        // Unreadable files that are gone or changed are forgotten (retried when changed).
        self.unreadable.retain(|path, _| still.contains(path));
        self.metrics.listed_files.set(listed);
        let totals = self.census.refresh(&self.config.sources);
        if let Some(t) = totals {
            self.log_first_count(t);
            bytes = bytes.max(t.bytes as i64);
            oldest = oldest.into_iter().chain(t.oldest).min();
        }
        self.set_pending(files, bytes, oldest, totals.is_some());
        out
    }

    /// Logs the first count once, with how many batches were packed before it was known.
    fn log_first_count(&mut self, t: census::Totals) {
        if let Some(packed) = self.packed_before_count.take() {
            tracing::info!(files = t.files, bytes = t.bytes, took = ?t.took,
                packed_before = packed, "logship: pending files counted");
        }
    }

    /// One source's listing; an error is counted and logged (again only when it changes) and
    /// the source is skipped this time: one bad source must not stall the others.
    fn listed(
        &mut self,
        source: &Source,
        result: Result<listing::Listing, batch::ScanError>,
    ) -> listing::Listing {
        match result {
            Ok(l) => {
                self.scan_errors.remove(&source.name);
                l
            }
            Err(e) => {
                self.metrics.source_error(&source.name, e.kind());
                let why = e.to_string();
                if self.scan_errors.get(&source.name) != Some(&why) {
                    tracing::error!(source = %source.name, dir = %source.dir.display(),
                        error = %why, "logship: cannot list source; it is skipped");
                    self.scan_errors.insert(source.name.clone(), why);
                }
                listing::Listing::default()
            }
        }
    }

    /// Updates the pending metrics and the pending bound; until the bytes are `counted`, a
    /// lower bound of them can only reach the bound, not clear it.
    fn set_pending(&mut self, files: i64, bytes: i64, oldest: Option<SystemTime>, counted: bool) {
        self.metrics.pending_files.set(files);
        self.metrics.pending_bytes.set(bytes);
        let age = oldest
            .and_then(|o| SystemTime::now().duration_since(o).ok())
            .unwrap_or_default();
        self.metrics.oldest_pending_age.set(age.as_secs_f64());
        let bound = self.config.max_pending_bytes;
        let full = bound > 0 && bytes as u64 >= bound;
        if full != self.pending_full && (counted || full) {
            self.pending_full = full;
            self.metrics.pending_full.set(i64::from(full));
            if full {
                tracing::warn!(
                    pending_bytes = bytes,
                    max_pending_bytes = bound,
                    "logship: pending bound reached; log files wait on disk, writers stop writing files"
                );
            } else {
                tracing::info!(
                    pending_bytes = bytes,
                    "logship: pending bytes below the bound again"
                );
            }
        }
    }

    /// Starts encoding `files` into a temporary staging file on a blocking thread.
    fn start_encode(&self, files: Vec<Candidate>) -> Encoding {
        let tmp = self
            .staging
            .join(format!(".{}.tmp", ulid::Ulid::generate()));
        let inputs: Vec<Input> = files
            .iter()
            .map(|c| Input {
                path: c.path.clone(),
                expect: Some(c.stamp),
            })
            .collect();
        let (out, compression) = (tmp.clone(), self.config.compression);
        let handle =
            tokio::task::spawn_blocking(move || encoder::encode(&inputs, &out, compression));
        Encoding { tmp, handle, files }
    }

    /// Skips a file that could not be read until it changes, naming it in an error and a
    /// metric; the rest of its source ships.
    fn skip_unreadable(&mut self, source: &str, files: &[Candidate], path: &Path, why: &str) {
        if let Some(c) = files.iter().find(|c| c.path == path) {
            self.unreadable.insert(c.path.clone(), (c.size, c.stamp));
        }
        self.metrics.source_error(source, "unreadable");
        tracing::error!(source, file = %path.display(), error = why,
            "logship: cannot read a file; it stays on disk unshipped and the rest of its source ships");
    }

    /// Waits for an encode, names it with the next sequence number and journals the batch
    /// (staged file fsynced, renamed and its directory fsynced before the journal entry).
    async fn commit(&mut self, source: &Source, encoding: Encoding) -> Result<(), Error> {
        let Encoding { tmp, handle, files } = encoding;
        let encoded = match handle.await {
            Ok(Ok(encoded)) => encoded,
            Ok(Err(EncodeError::Source { path, source: e })) => {
                // Not journaled: the batch is packed again without that file.
                self.skip_unreadable(&source.name, &files, &path, &e.to_string());
                return Ok(());
            }
            Ok(Err(e)) => return Err(e.into()),
            Err(e) => {
                let _ = encoder::remove_staged(&tmp);
                return Err(io_err("encode", &tmp)(io::Error::other(e)));
            }
        };
        for (path, why) in &encoded.unreadable {
            self.skip_unreadable(&source.name, &files, path, why);
        }
        if encoded.files.is_empty() {
            encoder::remove_staged(&tmp).map_err(io_err("remove", &tmp))?;
            return Ok(());
        }
        let seq = self.journal.next_seq();
        let staged = staged_path(&self.staging, seq, &self.config);
        failpoint!("logship::staging");
        if let Err(e) = fs::rename(&tmp, &staged) {
            let _ = encoder::remove_staged(&tmp);
            return Err(io_err("rename", &staged)(e));
        }
        sync_dir(&self.staging).map_err(io_err("sync", &self.staging))?;
        let key = self.config.key_template.render(&KeyVars {
            time: time::OffsetDateTime::now_utc(),
            host: &self.config.host,
            role: &source.name,
            seq,
            ext: self.config.compression.ext(),
        });
        self.journal.record_batch(BatchRecord {
            seq,
            source: source.name.clone(),
            key,
            files: encoded.files,
            size: encoded.size,
            sha256: encoded.sha256,
            raw_bytes: encoded.raw_bytes,
            first_line: self.journal.next_line(&source.name),
            lines: encoded.lines,
        })?;
        Ok(())
    }

    /// Uploads (or confirms) a journaled batch, then deletes its files.
    async fn finish(&mut self, seq: u64) -> Result<(), Error> {
        let Some(batch) = self.journal.get(seq).cloned() else {
            return Ok(());
        };
        let staged = staged_path(&self.staging, seq, &self.config);
        if !batch.delivered {
            let record = self.ensure_staged(&batch.record, &staged).await?;
            if record.files.is_empty() {
                self.metrics.lost_vanished(record.lines);
                self.journal.record_done(seq)?;
                return Ok(());
            }
            failpoint!("logship::upload");
            let started = Instant::now();
            let manifest = Manifest::of(&record, &self.config.host, self.journal.stream());
            let mut progress = JournalProgress {
                journal: &mut self.journal,
                seq,
            };
            let result = self
                .sink
                .deliver_with(
                    Staged {
                        key: &record.key,
                        path: &staged,
                        size: record.size,
                        sha256: &record.sha256,
                        upload_id: batch.upload_id.as_deref(),
                        parts: &batch.parts,
                    },
                    &manifest.metadata(),
                    &mut progress,
                )
                .await;
            let outcome = match result {
                Ok(outcome) => outcome,
                Err(SinkError::Conflict { key, size, sha256 }) => {
                    self.metrics.upload_error("conflict");
                    return self.rekey(record, &staged, &key, size, &sha256);
                }
                Err(e) => {
                    self.metrics.upload_error(e.kind());
                    return Err(e.into());
                }
            };
            self.delivered(&record, &manifest, started, outcome).await?;
        }
        self.delete_files(&batch.record)?;
        failpoint!("logship::deleted");
        encoder::remove_staged(&staged).map_err(io_err("remove", &staged))?;
        self.journal.record_done(seq)?;
        self.metrics
            .shipped_files
            .inc_by(batch.record.files.len() as u64);
        Ok(())
    }

    /// After the object is stored: its manifest, the journal's `delivered` entry, metrics.
    async fn delivered(
        &mut self,
        record: &BatchRecord,
        manifest: &Manifest,
        started: Instant,
        outcome: Outcome,
    ) -> Result<(), Error> {
        self.write_manifest(manifest).await?;
        self.journal.record_delivered(record.seq)?;
        self.metrics
            .upload_duration
            .observe(started.elapsed().as_secs_f64());
        self.metrics.shipped_objects.inc();
        self.metrics.shipped_bytes.inc_by(record.size);
        tracing::info!(key = %record.key, files = record.files.len(), bytes = record.size,
            existing = outcome == Outcome::AlreadyThere, "logship: object delivered");
        Ok(())
    }

    /// Writes the manifest of a stored object (retried with the upload on an error). A
    /// different manifest already under its key is left as it is and the batch counts as
    /// delivered (its data is stored): `logship verify` reports the mismatch.
    async fn write_manifest(&self, manifest: &Manifest) -> Result<(), Error> {
        match self.sink.write_manifest(manifest).await {
            Ok(()) => Ok(()),
            Err(SinkError::Conflict { key, .. }) => {
                self.metrics.upload_error("manifest_conflict");
                tracing::error!(manifest = %key,
                    "logship: a different manifest already exists for this object; left as it is");
                Ok(())
            }
            Err(e) => {
                self.metrics.upload_error(e.kind());
                Err(e.into())
            }
        }
    }

    /// Deletes a delivered batch's files, each only if it is the very file that was read and
    /// unchanged since (device, inode, size, mtime): a changed file stays and is shipped again
    /// (counted in `ferrostack_logship_changed_files_total`), never deleted unread. A source
    /// directory that became a symlink is not followed: its files are left alone.
    fn delete_files(&self, record: &BatchRecord) -> Result<(), Error> {
        let mut dirs: BTreeMap<PathBuf, bool> = BTreeMap::new();
        for f in &record.files {
            let dir = f.path.parent().unwrap_or(Path::new("."));
            let dir_ok = match dirs.get(dir) {
                Some(ok) => *ok,
                None => {
                    let ok = self.real_dir(&record.source, dir)?;
                    dirs.insert(dir.to_path_buf(), ok);
                    ok
                }
            };
            if !dir_ok {
                continue;
            }
            match unchanged(f) {
                Ok(true) => {}
                Ok(false) => {
                    self.metrics.changed_file(&record.source);
                    tracing::warn!(source = %record.source, file = %f.path.display(),
                        "logship: file changed after it was read; kept, it is shipped again");
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("check", &f.path)(e)),
            }
            failpoint!("logship::delete");
            match fs::remove_file(&f.path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("delete", &f.path)(e)),
            }
        }
        for (dir, _) in dirs.iter().filter(|(_, ok)| **ok) {
            sync_dir(dir).map_err(io_err("sync", dir))?;
        }
        Ok(())
    }

    /// True if `dir` is a real directory (lstat); a symlink is refused with an error and a
    /// metric naming the source; a missing one is false.
    fn real_dir(&self, source: &str, dir: &Path) -> Result<bool, Error> {
        match fs::symlink_metadata(dir) {
            Ok(m) if m.is_dir() => Ok(true),
            Ok(_) => {
                self.metrics.source_error(source, "symlink");
                tracing::error!(source, dir = %dir.display(),
                    "logship: source directory is no longer a directory (a symlink?); its shipped files are not deleted through it");
                Ok(false)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err("check", dir)(e)),
        }
    }

    /// Makes sure the staged object exists with the journaled sha256; re-encodes it from the
    /// source files otherwise (and re-journals the batch if those changed).
    async fn ensure_staged(
        &mut self,
        record: &BatchRecord,
        staged: &Path,
    ) -> Result<BatchRecord, Error> {
        if fs::metadata(staged).is_ok_and(|m| m.len() == record.size) {
            return Ok(record.clone());
        }
        let tmp = self
            .staging
            .join(format!(".{}-{}.tmp", record.seq, ulid::Ulid::generate()));
        let inputs = record
            .files
            .iter()
            .map(|f| Input {
                path: f.path.clone(),
                expect: f.stamp,
            })
            .collect();
        let encoded = encode_blocking(inputs, tmp.clone(), self.config.compression).await?;
        if encoded.files.is_empty() {
            // Every file of the batch was removed by someone else: nothing left to ship.
            encoder::remove_staged(&tmp).map_err(io_err("remove", &tmp))?;
            tracing::error!(seq = record.seq, key = %record.key,
                "logship: all files of an unshipped batch vanished before upload");
            return Ok(BatchRecord {
                files: Vec::new(),
                ..record.clone()
            });
        }
        if let Err(e) = fs::rename(&tmp, staged) {
            let _ = encoder::remove_staged(&tmp);
            return Err(io_err("rename", staged)(e));
        }
        sync_dir(&self.staging).map_err(io_err("sync", &self.staging))?;
        if encoded.sha256 == record.sha256 {
            return Ok(record.clone());
        }
        tracing::warn!(
            seq = record.seq,
            "logship: batch files changed since packing; re-journaled"
        );
        let updated = BatchRecord {
            files: encoded.files,
            size: encoded.size,
            sha256: encoded.sha256,
            raw_bytes: encoded.raw_bytes,
            lines: encoded.lines,
            ..record.clone()
        };
        self.journal.record_batch(updated.clone())?;
        Ok(updated)
    }

    /// Another object holds the key: move the batch to a fresh sequence number (and key).
    fn rekey(
        &mut self,
        record: BatchRecord,
        staged: &Path,
        key: &str,
        size: u64,
        sha256: &str,
    ) -> Result<(), Error> {
        let seq = self.journal.next_seq();
        tracing::error!(
            key,
            size,
            sha256,
            new_seq = seq,
            "logship: a different object already has this key; shipping under a new sequence number"
        );
        let new_key = self.config.key_template.render(&KeyVars {
            time: time::OffsetDateTime::now_utc(),
            host: &self.config.host,
            role: &record.source,
            seq,
            ext: self.config.compression.ext(),
        });
        let old = record.seq;
        self.journal.record_batch(BatchRecord {
            seq,
            key: new_key,
            ..record
        })?;
        let target = staged_path(&self.staging, seq, &self.config);
        fs::rename(staged, &target).map_err(io_err("rename", staged))?;
        self.journal.record_done(old)?;
        Ok(())
    }
}

/// Files the listing leaves out: those held by open batches (not counted) and unreadable ones
/// unchanged since they failed (counted, not packed; noted so they stay remembered).
struct ScanFilter<'a> {
    held: HashSet<PathBuf>,
    unreadable: &'a HashMap<PathBuf, (u64, Stamp)>,
    still_unreadable: HashSet<PathBuf>,
}

impl listing::Filter for ScanFilter<'_> {
    fn held(&self, path: &Path) -> bool {
        self.held.contains(path)
    }

    fn suspect(&self, path: &Path) -> bool {
        self.unreadable.contains_key(path)
    }

    fn skipped(&mut self, c: &Candidate) -> bool {
        let skip = self.unreadable.get(&c.path) == Some(&(c.size, c.stamp));
        if skip {
            self.still_unreadable.insert(c.path.clone());
        }
        skip
    }
}

/// An encode running on a blocking thread.
struct Encoding {
    tmp: PathBuf,
    handle: tokio::task::JoinHandle<Result<Encoded, EncodeError>>,
    files: Vec<Candidate>,
}

/// True if the file at `f.path` is the one read (same device and inode), with the size read
/// and the same mtime. Without a stamp (older journals) only the size is compared.
fn unchanged(f: &FileRef) -> io::Result<bool> {
    let meta = fs::symlink_metadata(&f.path)?;
    let now = Stamp::of(&meta);
    Ok(meta.file_type().is_file()
        && meta.len() == f.size
        && f.stamp
            .is_none_or(|s| s.same_file(&now) && s.mtime_ns == now.mtime_ns))
}

struct JournalProgress<'a> {
    journal: &'a mut Journal,
    seq: u64,
}

impl MultipartProgress for JournalProgress<'_> {
    fn started(&mut self, upload_id: &str) -> Result<(), SinkError> {
        Ok(self.journal.record_multipart(self.seq, upload_id)?)
    }

    fn part(&mut self, idx: usize, etag: &str) -> Result<(), SinkError> {
        Ok(self.journal.record_part(self.seq, idx, etag)?)
    }
}

fn staged_path(staging: &Path, seq: u64, config: &Config) -> PathBuf {
    staging.join(format!("{seq:020}.{}", config.compression.ext()))
}

async fn encode_blocking(
    inputs: Vec<Input>,
    out: PathBuf,
    compression: encoder::Compression,
) -> Result<Encoded, Error> {
    let target = out.clone();
    match tokio::task::spawn_blocking(move || encoder::encode(&inputs, &target, compression)).await
    {
        Ok(result) => Ok(result?),
        Err(e) => {
            let _ = encoder::remove_staged(&out);
            Err(io_err("encode", &out)(io::Error::other(e)))
        }
    }
}
