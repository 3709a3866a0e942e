//! The durable delivery journal: an append-only JSON-lines file in the state directory that
//! records, each entry fsynced before the action it enables, which files went into which object
//! (sequence number, key, size, sha256), multipart upload ids and parts, and which objects are
//! confirmed delivered. A source file is deleted only after its batch's `delivered` entry is on
//! disk. Replaying the journal after a crash retries the same key with the same bytes.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::batch::Stamp;
use logfile::sync_dir;

/// The journal's file name in the state directory.
pub(crate) const JOURNAL: &str = "journal.jsonl";
/// The file of the state directory's line-numbering id.
const STREAM: &str = "stream";
/// Rewrite the journal once it holds this many finished batches...
const COMPACT_AFTER: usize = 512;
/// ...or once it is this large and at least twice its size after the last rewrite (a batch of
/// 1000 files is a record of ~100 KB).
const COMPACT_BYTES: u64 = 1024 * 1024;

/// A source file packed into a batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    /// Absolute or source-relative path of the file.
    pub path: PathBuf,
    /// Its size when packed (the bytes read).
    pub size: u64,
    /// Its identity and modification time when read; the file is deleted only if it still
    /// matches (absent in journals of older versions: then only the size is compared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stamp: Option<Stamp>,
}

/// One batch: the files packed into one object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRecord {
    /// Sequence number (also in the key).
    pub seq: u64,
    /// Source name (the `{role}` of the key).
    pub source: String,
    /// Object key relative to the store root.
    pub key: String,
    /// Files packed, in order.
    pub files: Vec<FileRef>,
    /// Encoded object size.
    pub size: u64,
    /// sha256 of the encoded object, lowercase hex.
    pub sha256: String,
    /// Uncompressed bytes.
    pub raw_bytes: u64,
    /// The source's line number of the object's first line: a source's lines are numbered
    /// from 0 across all its batches, restarts and compactions (the manifests' range).
    #[serde(default)]
    pub first_line: u64,
    /// Lines in the object (newline-terminated records).
    #[serde(default)]
    pub lines: u64,
}

/// One journal line (`fsck` reads them too).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Entry {
    Next {
        seq: u64,
        /// The next line number per source (kept through compaction).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        lines: BTreeMap<String, u64>,
    },
    Batch(BatchRecord),
    Multipart {
        seq: u64,
        upload_id: String,
    },
    Part {
        seq: u64,
        idx: usize,
        etag: String,
    },
    Delivered {
        seq: u64,
    },
    Done {
        seq: u64,
    },
}

/// A batch not yet finished (delivered and its files deleted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenBatch {
    /// What was packed.
    pub record: BatchRecord,
    /// Multipart upload in progress, if any.
    pub upload_id: Option<String>,
    /// Part ids (etags) uploaded so far, by index.
    pub parts: Vec<String>,
    /// The object is confirmed in the store.
    pub delivered: bool,
}

/// Journal errors.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Disk I/O on the journal failed.
    #[error("journal {path}: {source}")]
    Io {
        /// The journal path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// An entry could not be encoded.
    #[error("journal entry: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The journal file plus its replayed state.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    file: File,
    next_seq: u64,
    open: BTreeMap<u64, OpenBatch>,
    /// The next line number per source.
    next_line: BTreeMap<String, u64>,
    /// The line numbering's identity.
    stream: String,
    /// Finished batches in the file (counted from the file at open, so compaction happens
    /// across restarts too).
    finished_since_compaction: usize,
    /// Length of the file: every entry before it is whole (a failed append is cut back to it).
    len: u64,
    /// Length right after the last compaction.
    compacted_len: u64,
}

// === impl Journal ===

impl Journal {
    /// Opens (or creates) the journal in `dir` and replays it. A torn last entry (a crash
    /// during its append, before its fsync returned) is cut off; a damaged entry inside the
    /// file is skipped and logged.
    pub fn open(dir: &Path) -> Result<Self, JournalError> {
        let io_err = |source| JournalError::Io {
            path: dir.join(JOURNAL),
            source,
        };
        fs::create_dir_all(dir).map_err(io_err)?;
        let path = dir.join(JOURNAL);
        let Replayed {
            next_seq,
            open,
            next_line,
            valid_len,
            finished,
        } = replay(&path).map_err(io_err)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err)?;
        if file.metadata().map_err(io_err)?.len() != valid_len {
            file.set_len(valid_len).map_err(io_err)?;
            file.sync_all().map_err(io_err)?;
        }
        sync_dir(dir).map_err(io_err)?;
        let mut journal = Self {
            dir: dir.to_path_buf(),
            file,
            next_seq,
            open,
            next_line,
            stream: stream_id(dir).map_err(io_err)?,
            finished_since_compaction: finished,
            len: valid_len,
            compacted_len: 0,
        };
        if journal.wants_compaction()
            && let Err(e) = journal.compact()
        {
            // Appends still work; compaction is tried again after the next finished batch.
            tracing::warn!(error = %e, "logship journal: compaction at start failed");
        }
        Ok(journal)
    }

    fn wants_compaction(&self) -> bool {
        self.finished_since_compaction >= COMPACT_AFTER
            || (self.finished_since_compaction > 0
                && self.len >= COMPACT_BYTES.max(2 * self.compacted_len))
    }

    /// The sequence number the next batch gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The identity of this state directory's line numbering (a ULID in `<state-dir>/stream`,
    /// made when the journal is first opened): a lost state directory numbers its sources from
    /// 0 again under a new stream, so `logship verify` checks line ranges per host, source and
    /// stream.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The line number the next batch of `source` starts at.
    pub fn next_line(&self, source: &str) -> u64 {
        self.next_line.get(source).copied().unwrap_or(0)
    }

    /// Batches not finished yet, by sequence number.
    pub fn open_batches(&self) -> impl Iterator<Item = &OpenBatch> {
        self.open.values()
    }

    /// One open batch.
    pub fn get(&self, seq: u64) -> Option<&OpenBatch> {
        self.open.get(&seq)
    }

    /// True if `path` is packed in an unfinished batch.
    pub fn holds(&self, path: &Path) -> bool {
        self.open
            .values()
            .any(|b| b.record.files.iter().any(|f| f.path == path))
    }

    /// Records a new batch (durably) before it is uploaded.
    pub fn record_batch(&mut self, record: BatchRecord) -> Result<(), JournalError> {
        self.append(Entry::Batch(record))
    }

    /// Records a multipart upload id.
    pub fn record_multipart(&mut self, seq: u64, upload_id: &str) -> Result<(), JournalError> {
        self.append(Entry::Multipart {
            seq,
            upload_id: upload_id.to_string(),
        })
    }

    /// Records an uploaded part.
    pub fn record_part(&mut self, seq: u64, idx: usize, etag: &str) -> Result<(), JournalError> {
        self.append(Entry::Part {
            seq,
            idx,
            etag: etag.to_string(),
        })
    }

    /// Records that the object is confirmed in the store.
    pub fn record_delivered(&mut self, seq: u64) -> Result<(), JournalError> {
        // The object is in the store, the journal does not know it yet.
        failpoint!("logship::uploaded");
        self.append(Entry::Delivered { seq })
    }

    /// Records that the batch's local files are gone; compacts the journal now and then.
    pub fn record_done(&mut self, seq: u64) -> Result<(), JournalError> {
        self.append(Entry::Done { seq })?;
        self.finished_since_compaction += 1;
        if self.wants_compaction() {
            self.compact()?;
        }
        Ok(())
    }

    fn append(&mut self, entry: Entry) -> Result<(), JournalError> {
        let mut line = serde_json::to_vec(&entry)?;
        line.push(b'\n');
        let path = self.dir.join(JOURNAL);
        let io_err = |source| JournalError::Io {
            path: path.clone(),
            source,
        };
        failpoint!("logship::journal_append");
        let written = self.file.write_all(&line).and_then(|()| {
            failpoint!("logship::journal_fsync");
            self.file.sync_data()
        });
        if let Err(e) = written {
            // Cut a partial entry off (a full disk), or the next entry would be appended to
            // it and both lost at replay.
            let _ = self.file.set_len(self.len);
            return Err(io_err(e));
        }
        self.len += line.len() as u64;
        count_lines(&mut self.next_line, &self.open, &entry);
        apply(&mut self.open, &mut self.next_seq, entry);
        Ok(())
    }

    /// Rewrites the journal with only the open batches (tmp, fsync, rename, fsync dir).
    pub fn compact(&mut self) -> Result<(), JournalError> {
        let path = self.dir.join(JOURNAL);
        let tmp = self.dir.join(format!(".{JOURNAL}.tmp"));
        let io_err = |source| JournalError::Io {
            path: path.clone(),
            source,
        };
        let mut out = Vec::new();
        let mut push = |entry: &Entry| -> Result<(), JournalError> {
            serde_json::to_writer(&mut out, entry)?;
            out.push(b'\n');
            Ok(())
        };
        push(&Entry::Next {
            seq: self.next_seq,
            lines: self.next_line.clone(),
        })?;
        for batch in self.open.values() {
            push(&Entry::Batch(batch.record.clone()))?;
            let seq = batch.record.seq;
            if let Some(upload_id) = &batch.upload_id {
                push(&Entry::Multipart {
                    seq,
                    upload_id: upload_id.clone(),
                })?;
                for (idx, etag) in batch.parts.iter().enumerate() {
                    push(&Entry::Part {
                        seq,
                        idx,
                        etag: etag.clone(),
                    })?;
                }
            }
            if batch.delivered {
                push(&Entry::Delivered { seq })?;
            }
        }
        let written = File::create(&tmp)
            .and_then(|mut file| file.write_all(&out).and_then(|()| file.sync_all()))
            .and_then(|()| fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io_err(e));
        }
        sync_dir(&self.dir).map_err(io_err)?;
        self.file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_err)?;
        self.finished_since_compaction = 0;
        self.len = out.len() as u64;
        self.compacted_len = self.len;
        Ok(())
    }
}

/// The state directory's stream id (`stream`), made (tmp, fsync, rename, fsync dir) if absent.
fn stream_id(dir: &Path) -> io::Result<String> {
    let path = dir.join(STREAM);
    match fs::read_to_string(&path) {
        Ok(id) if ulid::Ulid::from_string(id.trim()).is_ok() => return Ok(id.trim().to_string()),
        Ok(_) => {
            tracing::warn!(path = %path.display(), "logship: unreadable stream id; a new line numbering starts")
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let id = ulid::Ulid::generate().to_string();
    let tmp = dir.join(format!(".{STREAM}.tmp"));
    let mut file = File::create(&tmp)?;
    file.write_all(id.as_bytes())?;
    file.sync_all()?;
    fs::rename(&tmp, &path)?;
    sync_dir(dir)?;
    Ok(id)
}

/// What a journal file replays to.
#[derive(Default)]
struct Replayed {
    next_seq: u64,
    open: BTreeMap<u64, OpenBatch>,
    next_line: BTreeMap<String, u64>,
    /// Length of the whole entries (a torn last one is cut to it).
    valid_len: u64,
    /// `done` entries.
    finished: usize,
}

/// Replays the journal at `path` (missing: empty).
fn replay(path: &Path) -> io::Result<Replayed> {
    let mut r = Replayed::default();
    let Ok(file) = File::open(path) else {
        return Ok(r);
    };
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 || line.last() != Some(&b'\n') {
            return Ok(r); // a torn last entry: cut by the caller
        }
        r.valid_len += n as u64;
        match serde_json::from_slice::<Entry>(&line) {
            Ok(entry) => {
                r.finished += usize::from(matches!(entry, Entry::Done { .. }));
                count_lines(&mut r.next_line, &r.open, &entry);
                apply(&mut r.open, &mut r.next_seq, entry);
            }
            // A damaged entry inside the file: skip it, keep everything after it.
            Err(e) => tracing::error!(error = %e, path = %path.display(),
                "logship journal: skipping an unreadable entry"),
        }
    }
}

/// Advances the per-source line counters past `entry` (before [`apply`] sees it). A batch
/// journaled again with fewer lines (a file changed before upload and was left out; it ships
/// later) moves its source's counter back when it is the source's latest batch, so the next
/// batch continues without a gap.
fn count_lines(
    next_line: &mut BTreeMap<String, u64>,
    open: &BTreeMap<u64, OpenBatch>,
    entry: &Entry,
) {
    match entry {
        Entry::Next { lines, .. } => {
            for (source, n) in lines {
                let at = next_line.entry(source.clone()).or_default();
                *at = (*at).max(*n);
            }
        }
        Entry::Batch(r) => {
            let end = r.first_line + r.lines;
            let at = next_line.entry(r.source.clone()).or_default();
            let latest = open.get(&r.seq).is_some_and(|old| {
                old.record.source == r.source
                    && old.record.first_line == r.first_line
                    && old.record.first_line + old.record.lines == *at
            });
            *at = if latest { end } else { (*at).max(end) };
        }
        _ => {}
    }
}

/// Replays one entry onto the open batches and the next sequence number.
pub(crate) fn apply(open: &mut BTreeMap<u64, OpenBatch>, next_seq: &mut u64, entry: Entry) {
    match entry {
        Entry::Next { seq, .. } => *next_seq = (*next_seq).max(seq),
        Entry::Batch(record) => {
            *next_seq = (*next_seq).max(record.seq + 1);
            open.insert(
                record.seq,
                OpenBatch {
                    record,
                    upload_id: None,
                    parts: Vec::new(),
                    delivered: false,
                },
            );
        }
        Entry::Multipart { seq, upload_id } => {
            if let Some(b) = open.get_mut(&seq) {
                b.upload_id = Some(upload_id);
                b.parts.clear();
            }
        }
        Entry::Part { seq, idx, etag } => {
            if let Some(b) = open.get_mut(&seq) {
                b.parts.truncate(idx);
                if b.parts.len() == idx {
                    b.parts.push(etag);
                }
            }
        }
        Entry::Delivered { seq } => {
            if let Some(b) = open.get_mut(&seq) {
                b.delivered = true;
            }
        }
        Entry::Done { seq } => {
            open.remove(&seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64) -> BatchRecord {
        BatchRecord {
            seq,
            source: "api".into(),
            key: format!("k/{seq}"),
            files: vec![FileRef {
                path: PathBuf::from(format!("/logs/{seq}.json")),
                size: 10,
                stamp: None,
            }],
            size: 5,
            sha256: "ab".into(),
            raw_bytes: 10,
            first_line: 0,
            lines: 0,
        }
    }

    #[test]
    fn replay_restores_open_batches_and_next_seq() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        j.record_batch(record(0)).unwrap();
        j.record_batch(record(1)).unwrap();
        j.record_multipart(1, "up-1").unwrap();
        j.record_part(1, 0, "e0").unwrap();
        j.record_delivered(0).unwrap();
        j.record_done(0).unwrap();
        drop(j);
        let j = Journal::open(dir.path()).unwrap();
        assert_eq!(j.next_seq(), 2);
        let open: Vec<_> = j.open_batches().collect();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].record.seq, 1);
        assert_eq!(open[0].upload_id.as_deref(), Some("up-1"));
        assert_eq!(open[0].parts, vec!["e0".to_string()]);
        assert!(j.holds(Path::new("/logs/1.json")));
        assert!(!j.holds(Path::new("/logs/0.json")));
    }

    #[test]
    fn line_counters_survive_restarts_and_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        for seq in 0..3 {
            let first_line = j.next_line("api");
            let r = BatchRecord {
                first_line,
                lines: 5,
                ..record(seq)
            };
            j.record_batch(r).unwrap();
            j.record_delivered(seq).unwrap();
            j.record_done(seq).unwrap();
        }
        assert_eq!((j.next_line("api"), j.next_line("other")), (15, 0));
        j.compact().unwrap();
        drop(j);
        let text = fs::read_to_string(dir.path().join(JOURNAL)).unwrap();
        assert!(!text.contains(r#""op":"batch""#), "compacted: {text}");
        let mut j = Journal::open(dir.path()).unwrap();
        assert_eq!(j.next_line("api"), 15);
        // Journaled again with fewer lines (a file left out): the counter moves back.
        for lines in [4, 2] {
            let r = BatchRecord {
                first_line: 15,
                lines,
                ..record(3)
            };
            j.record_batch(r).unwrap();
        }
        assert_eq!(j.next_line("api"), 17);
    }

    /// A journal holding batch 0, then `raw` appended as a crash or a bad disk would leave it.
    fn journal_then(dir: &Path, raw: &[u8]) {
        let mut j = Journal::open(dir).unwrap();
        j.record_batch(record(0)).unwrap();
        drop(j);
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.join(JOURNAL))
            .unwrap();
        f.write_all(raw).unwrap();
    }

    #[test]
    fn torn_last_entry_is_cut_and_appends_continue() {
        let dir = tempfile::tempdir().unwrap();
        journal_then(dir.path(), br#"{"op":"delivered","se"#);
        let mut j = Journal::open(dir.path()).unwrap();
        assert!(!j.get(0).unwrap().delivered, "torn entry must not count");
        j.record_delivered(0).unwrap();
        drop(j);
        let j = Journal::open(dir.path()).unwrap();
        assert!(j.get(0).unwrap().delivered);
    }

    #[test]
    fn damaged_entry_inside_the_file_is_skipped_and_later_entries_kept() {
        let dir = tempfile::tempdir().unwrap();
        journal_then(dir.path(), b"\x00\x00garbage\n");
        let mut j = Journal::open(dir.path()).unwrap();
        j.record_batch(record(1)).unwrap();
        j.record_delivered(0).unwrap();
        drop(j);
        let j = Journal::open(dir.path()).unwrap();
        assert!(j.get(0).unwrap().delivered);
        assert!(j.get(1).is_some());
        assert_eq!(j.next_seq(), 2);
    }

    #[test]
    fn compaction_keeps_open_state_and_sequence() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        for seq in 0..(COMPACT_AFTER as u64 + 3) {
            j.record_batch(record(seq)).unwrap();
            j.record_delivered(seq).unwrap();
            if seq != 1 {
                j.record_done(seq).unwrap();
            }
        }
        let len = fs::metadata(dir.path().join(JOURNAL)).unwrap().len();
        assert!(len < 4096, "journal compacted, {len} bytes");
        drop(j);
        let j = Journal::open(dir.path()).unwrap();
        assert_eq!(j.next_seq(), COMPACT_AFTER as u64 + 3);
        let open: Vec<_> = j.open_batches().map(|b| b.record.seq).collect();
        assert_eq!(open, vec![1]);
        assert!(j.get(1).unwrap().delivered);
    }

    /// One run of the shipper: `n` batches of `files` files each, finished.
    fn run(dir: &Path, first: u64, n: u64, files: usize) {
        let mut j = Journal::open(dir).unwrap();
        for seq in first..first + n {
            let mut r = record(seq);
            r.files = (0..files)
                .map(|i| FileRef {
                    path: PathBuf::from(format!(
                        "/logs/api/2026-11-21T00:00:00Z-{seq}-{i:05}.jsonl"
                    )),
                    size: 100,
                    stamp: Some(Stamp::default()),
                })
                .collect();
            j.record_batch(r).unwrap();
            j.record_delivered(seq).unwrap();
            j.record_done(seq).unwrap();
        }
    }

    #[test]
    fn compaction_counts_what_the_file_holds_across_restarts() {
        // Big batches: 8 starts of 5 batches of 1000 files (~150 KB a record).
        let dir = tempfile::tempdir().unwrap();
        for start in 0..8 {
            run(dir.path(), start * 5, 5, 1000);
        }
        let len = fs::metadata(dir.path().join(JOURNAL)).unwrap().len();
        assert!(
            len < 2 * COMPACT_BYTES,
            "journal of 40 finished batches: {len} bytes"
        );
        assert_eq!(Journal::open(dir.path()).unwrap().next_seq(), 40);

        // Many small batches: 8 starts of 100 (COMPACT_AFTER is 512).
        let dir = tempfile::tempdir().unwrap();
        for start in 0..8 {
            run(dir.path(), start * 100, 100, 1);
        }
        let text = fs::read_to_string(dir.path().join(JOURNAL)).unwrap();
        let entries = text.lines().count();
        assert!(
            entries < 3 * 512,
            "journal of 800 finished batches: {entries} entries"
        );
        let j = Journal::open(dir.path()).unwrap();
        assert_eq!(j.next_seq(), 800);
        assert_eq!(j.open_batches().count(), 0);
    }
}
