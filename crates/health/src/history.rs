//! The history file: one JSON line per probe result. Appends take an exclusive lock on a
//! sidecar `<file>.lock` (never renamed, so the lock outlives rewrites), write every line in
//! one `write`, and fsync. Retention rewrites safely: under the same lock, kept lines go to a
//! temporary file in the same directory, which is fsynced and renamed over the history.
//! Readers never see a torn line: a line without its newline is left for the next read; one
//! left by a writer that died mid-write is ended by the next append and then skipped.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use time::OffsetDateTime;

use crate::record::Record;

/// A history file and its lock file.
#[derive(Debug, Clone)]
pub struct History {
    path: PathBuf,
    lock_path: PathBuf,
}

/// What a retention pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Retained {
    /// Lines kept.
    pub kept: usize,
    /// Lines dropped (too old, over the size limit, or unreadable).
    pub dropped: usize,
}

/// Follows a history file: yields complete lines appended since the last read, and notices
/// when the file was replaced (retention) so the reader can start over.
#[derive(Debug, Default)]
pub struct Tail {
    inode: Option<(u64, u64)>,
    offset: u64,
}

/// Where a `Tail` stands: the file's identity and the offset read up to (the folded-up-to
/// mark saved with the rollups).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Position {
    /// Device of the file.
    pub dev: u64,
    /// Inode of the file (a rewrite makes a new one).
    pub ino: u64,
    /// Bytes read.
    pub offset: u64,
}

/// New records from a `Tail`; `reset` means the file was replaced and these are all of it.
#[derive(Debug, Default)]
pub struct TailRead {
    /// The file was replaced or truncated: drop what was read before.
    pub reset: bool,
    /// Records in file order.
    pub records: Vec<Record>,
    /// Lines that did not parse as a record (skipped).
    pub skipped: usize,
    /// The file offset just past each record (same order as `records`).
    pub ends: Vec<u64>,
}

#[derive(serde::Deserialize)]
struct TimeOnly {
    #[serde(with = "time::serde::rfc3339")]
    time: OffsetDateTime,
}

// === impl History ===

impl History {
    /// A history at `path`; the lock file is `path` + `.lock`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let mut lock = path.clone().into_os_string();
        lock.push(".lock");
        Self {
            path,
            lock_path: lock.into(),
        }
    }

    /// The history file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self, exclusive: bool) -> io::Result<File> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock_path)?;
        if exclusive {
            file.lock()?
        } else {
            file.lock_shared()?
        }
        Ok(file)
    }

    /// Appends records as JSON lines under the exclusive lock, then fsyncs.
    pub fn append(&self, records: &[Record]) -> io::Result<()> {
        let mut buf = Vec::with_capacity(records.len() * 256);
        for r in records {
            serde_json::to_writer(&mut buf, r)?;
            buf.push(b'\n');
        }
        let _lock = self.lock(true)?;
        let existed = self.path.exists();
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&self.path)?;
        // A writer that died mid-write (power loss, SIGKILL) left a line without its newline:
        // end it, so that it stays one unreadable line instead of swallowing our first record.
        let len = file.metadata()?.len();
        if len > 0 {
            let mut last = [0u8];
            file.read_exact_at(&mut last, len - 1)?;
            if last != *b"\n" {
                buf.insert(0, b'\n');
            }
        }
        file.write_all(&buf)?;
        file.sync_data()?;
        if !existed {
            sync_dir(&self.path)?;
        }
        Ok(())
    }

    /// Reads every record (shared lock); unreadable lines are skipped.
    pub fn read_all(&self) -> io::Result<Vec<Record>> {
        let mut tail = Tail::default();
        Ok(tail.read(self)?.records)
    }

    /// Streams every record to `f` in file order (shared lock); returns the lines skipped.
    pub fn for_each(&self, mut f: impl FnMut(Record)) -> io::Result<usize> {
        let _lock = self.lock(false)?;
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut skipped = 0;
        for line in split_lines(BufReader::new(file)) {
            match serde_json::from_slice(&line?) {
                Ok(r) => f(r),
                Err(_) => skipped += 1,
            }
        }
        Ok(skipped)
    }

    /// Drops records older than `max_age` and then the oldest until the file is at most
    /// `max_bytes`; rewrites only when something is dropped.
    pub fn retain(
        &self,
        now: OffsetDateTime,
        max_age: Option<Duration>,
        max_bytes: Option<u64>,
    ) -> io::Result<Retained> {
        if max_age.is_none() && max_bytes.is_none() {
            return Ok(Retained::default());
        }
        let _lock = self.lock(true)?;
        self.remove_stale_temps();
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Retained::default()),
            Err(e) => return Err(e),
        };
        let cutoff = max_age.map(|a| now - a);
        // Pass 1: which lines survive the age limit, and their sizes.
        let mut keep: Vec<Option<u64>> = Vec::new();
        for line in split_lines(BufReader::new(&file)) {
            let line = line?;
            let ok = line.ends_with(b"\n")
                && serde_json::from_slice::<TimeOnly>(&line)
                    .is_ok_and(|t| cutoff.is_none_or(|c| t.time >= c));
            keep.push(ok.then_some(line.len() as u64));
        }
        // The size limit drops the oldest survivors.
        if let Some(max) = max_bytes {
            let mut total: u64 = keep.iter().flatten().sum();
            for slot in keep.iter_mut() {
                if total <= max {
                    break;
                }
                if let Some(len) = slot.take() {
                    total -= len;
                }
            }
        }
        let kept = keep.iter().filter(|k| k.is_some()).count();
        let result = Retained {
            kept,
            dropped: keep.len() - kept,
        };
        if result.dropped == 0 {
            return Ok(result);
        }
        // Pass 2: copy survivors into a temp file beside the history, fsync, rename.
        let tmp = self.temp_path();
        let written = (|| {
            let mut out = io::BufWriter::new(File::create(&tmp)?);
            let mut src = &file;
            src.seek(SeekFrom::Start(0))?;
            for (line, keep) in split_lines(BufReader::new(src)).zip(&keep) {
                let line = line?;
                if keep.is_some() {
                    out.write_all(&line)?;
                }
            }
            let out = out.into_inner().map_err(io::IntoInnerError::into_error)?;
            out.sync_all()
        })();
        if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, &self.path)) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        sync_dir(&self.path)?;
        Ok(result)
    }

    fn temp_path(&self) -> PathBuf {
        self.path
            .with_file_name(format!("{}{}", self.temp_prefix(), std::process::id()))
    }

    fn temp_prefix(&self) -> String {
        let name = self
            .path
            .file_name()
            .map_or_else(|| "history".into(), |n| n.to_string_lossy().into_owned());
        format!(".{name}.tmp-")
    }

    /// Removes temp files of rewrites that died before their rename (a killed CronJob pod).
    /// Only called under the exclusive lock, which every rewrite holds, so none is in use.
    /// Best effort: a leftover costs disk space, never correctness.
    fn remove_stale_temps(&self) {
        let prefix = self.temp_prefix();
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

// === impl Tail ===

impl Tail {
    /// Where this tail stands (None before its first read of an existing file).
    pub fn position(&self) -> Option<Position> {
        self.inode.map(|(dev, ino)| Position {
            dev,
            ino,
            offset: self.offset,
        })
    }

    /// Reads the complete lines appended since the last call.
    pub fn read(&mut self, history: &History) -> io::Result<TailRead> {
        let mut out = TailRead::default();
        let _lock = history.lock(false)?;
        let mut file = match File::open(&history.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                out.reset = self.inode.take().is_some();
                self.offset = 0;
                return Ok(out);
            }
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        let inode = Some((meta.dev(), meta.ino()));
        if inode != self.inode || meta.len() < self.offset {
            out.reset = self.inode.is_some();
            self.inode = inode;
            self.offset = 0;
        }
        file.seek(SeekFrom::Start(self.offset))?;
        for line in split_lines(BufReader::new(file)) {
            let line = line?;
            if !line.ends_with(b"\n") {
                break; // being written: read it next time
            }
            self.offset += line.len() as u64;
            match serde_json::from_slice(&line) {
                Ok(r) => {
                    out.records.push(r);
                    out.ends.push(self.offset);
                }
                Err(_) if line.trim_ascii().is_empty() => {}
                Err(_) => out.skipped += 1,
            }
        }
        Ok(out)
    }
}

/// Lines with their trailing newline (the last may lack it).
fn split_lines<R: BufRead>(mut reader: R) -> impl Iterator<Item = io::Result<Vec<u8>>> {
    std::iter::from_fn(move || {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => None,
            Ok(_) => Some(Ok(line)),
            Err(e) => Some(Err(e)),
        }
    })
}

fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests;
