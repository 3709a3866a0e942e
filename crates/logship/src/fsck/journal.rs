//! The journal check: reads `journal.jsonl` line by line without changing it and replays it
//! the way the shipper does, noting a torn last entry, damaged lines, sequence numbers that
//! skip (a lost batch record), entries for batches that were never recorded, a finished
//! sequence number recorded again, and a file held by two unfinished batches.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use super::{Fix, FsckError, Problem, io_err};
use crate::journal::{self, Entry, JOURNAL, OpenBatch};

/// The replayed journal and what was wrong with it.
pub(super) struct Scanned {
    pub(super) open: BTreeMap<u64, OpenBatch>,
    pub(super) next_seq: u64,
    pub(super) problems: Vec<Problem>,
}

/// Replay state plus what the checks need to remember.
#[derive(Default)]
struct Replay {
    open: BTreeMap<u64, OpenBatch>,
    next_seq: u64,
    finished: BTreeSet<u64>,
    problems: Vec<Problem>,
}

/// Reads and checks the journal of `dir` (a missing journal is an empty one).
pub(super) fn scan(dir: &Path) -> Result<Scanned, FsckError> {
    let path = dir.join(JOURNAL);
    let data = match fs::read(&path) {
        Ok(data) => data,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_err("read", &path)(e)),
    };
    let mut replay = Replay::default();
    let mut offset = 0usize;
    let mut torn = None;
    for (i, line) in data.split_inclusive(|b| *b == b'\n').enumerate() {
        let at = format!("{}:{}", path.display(), i + 1);
        if line.last() != Some(&b'\n') {
            torn = Some(Problem {
                code: "journal_torn_tail",
                at,
                message: format!(
                    "the last entry ({} bytes) is incomplete: an append that never returned; cut to the {offset} bytes of whole entries",
                    line.len()
                ),
                fix: Some(Fix::TruncateJournal(offset as u64)),
            });
            break;
        }
        offset += line.len();
        match serde_json::from_slice::<Entry>(line) {
            Ok(entry) => replay.entry(entry, at),
            Err(e) => replay.problems.push(Problem {
                code: "journal_damaged_entry",
                at,
                message: format!(
                    "not a journal entry ({e}); the shipper skips it, the rewrite drops it"
                ),
                fix: Some(Fix::CompactJournal),
            }),
        }
    }
    replay.duplicate_files();
    // The cut goes first: the rewrite reads the journal as cut.
    let mut problems: Vec<Problem> = torn.into_iter().collect();
    problems.append(&mut replay.problems);
    Ok(Scanned {
        open: replay.open,
        next_seq: replay.next_seq,
        problems,
    })
}

impl Replay {
    fn entry(&mut self, entry: Entry, at: String) {
        match &entry {
            Entry::Batch(r) if self.finished.contains(&r.seq) => self.problems.push(Problem {
                code: "journal_duplicate_seq",
                at,
                message: format!(
                    "batch {} is recorded again after it finished (key {}); the store keeps the first object and the shipper moves this one to a new sequence number on conflict",
                    r.seq, r.key
                ),
                fix: None,
            }),
            Entry::Batch(r) if r.seq > self.next_seq && !self.open.contains_key(&r.seq) => {
                self.problems.push(Problem {
                    code: "journal_gap",
                    at,
                    message: format!(
                        "batch {} follows {}: the records of {}..={} are missing (lost entries); files of theirs still on disk are shipped again",
                        r.seq,
                        self.next_seq.saturating_sub(1),
                        self.next_seq,
                        r.seq - 1
                    ),
                    fix: Some(Fix::CompactJournal),
                });
            }
            Entry::Multipart { seq, .. }
            | Entry::Part { seq, .. }
            | Entry::Delivered { seq }
            | Entry::Done { seq }
                if !self.open.contains_key(seq) =>
            {
                self.problems.push(Problem {
                    code: "journal_unknown_seq",
                    at,
                    message: format!(
                        "an entry for batch {seq}, which is not recorded (or already finished); ignored, the rewrite drops it"
                    ),
                    fix: Some(Fix::CompactJournal),
                });
                return;
            }
            Entry::Done { seq } => {
                self.finished.insert(*seq);
            }
            _ => {}
        }
        journal::apply(&mut self.open, &mut self.next_seq, entry);
    }

    /// A file in two unfinished batches would be shipped twice.
    fn duplicate_files(&mut self) {
        let mut holder: HashMap<&PathBuf, u64> = HashMap::new();
        for batch in self.open.values() {
            for f in &batch.record.files {
                if let Some(first) = holder.insert(&f.path, batch.record.seq) {
                    self.problems.push(Problem {
                        code: "journal_duplicate_file",
                        at: f.path.display().to_string(),
                        message: format!(
                            "in unfinished batches {first} and {}: its lines will be in the archive twice",
                            batch.record.seq
                        ),
                        fix: None,
                    });
                }
            }
        }
    }
}

/// Cuts the journal to `len` bytes (only ever shorter) and syncs it.
pub(super) fn truncate(dir: &Path, len: u64) -> Result<(), FsckError> {
    let path = dir.join(JOURNAL);
    let file = OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(io_err("open", &path))?;
    let now = file.metadata().map_err(io_err("stat", &path))?.len();
    if now > len {
        file.set_len(len).map_err(io_err("truncate", &path))?;
        file.sync_all().map_err(io_err("sync", &path))?;
    }
    Ok(())
}

/// Rewrites the journal from its replayed state (the shipper's compaction).
pub(super) fn compact(dir: &Path) -> Result<(), FsckError> {
    Ok(journal::Journal::open(dir)?.compact()?)
}
