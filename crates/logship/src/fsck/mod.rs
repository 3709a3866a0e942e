//! `logship fsck`: checks a state directory (the journal, the staging area, the local files
//! unfinished batches reference) and, given the store, its staging objects and unfinished
//! uploads (S3 multipart uploads, `file://` temporary files); with `repair` it makes them consistent without losing an unshipped byte. Run it
//! while the shipper is stopped.
//!
//! Every finding is one [`Finding`]; [`Report::exit_code`] follows e2fsck's idea in the
//! issue's three codes: 0 nothing found, 1 problems found (also when `--repair` fixed them
//! all: a second run then exits 0), 2 unusable (the state directory or the store cannot be
//! read; an [`FsckError`]).
//!
//! What `repair` does, and why no unshipped byte is lost: a torn journal tail (an append that
//! never returned) is cut; damaged or stray journal lines are dropped by rewriting the journal
//! from what it replays to (the shipper's own compaction), so at worst a file is shipped
//! again, never skipped; staged objects of no unfinished batch and temporary files are
//! removed (an undelivered batch's data is still in its source files); a corrupt staged object
//! is removed only when every source file of its batch is unchanged, so the shipper re-encodes
//! the same bytes; a store staging object or unfinished upload is removed only when no
//! unfinished batch refers to it, i.e. the journal shows its data delivered or still on disk.

mod journal;
mod local;
mod store;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use url::Url;

use crate::sink::{BuildError, Sink, SinkOptions};

/// What happened to a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Found; `--repair` would fix it.
    Repairable,
    /// Fixed by this run.
    Repaired,
    /// Left as it is: no safe automatic fix (the message says what it means).
    Left,
}

/// One problem.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What kind (snake_case, stable): `journal_torn_tail`, `journal_damaged_entry`,
    /// `journal_gap`, `journal_unknown_seq`, `journal_duplicate_seq`,
    /// `journal_duplicate_file`, `staging_temp`, `staging_orphan`, `staging_corrupt`,
    /// `staging_unknown`, `file_missing`, `store_staging_orphan`, `store_upload_orphan`.
    pub code: &'static str,
    /// Where: a path, `<state-dir>/journal.jsonl:LINE`, or an object key.
    pub at: String,
    /// What it means.
    pub message: String,
    /// Fixed, fixable or left.
    pub state: State,
}

/// What fsck found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// The findings, in the order checked.
    pub findings: Vec<Finding>,
    /// Unfinished batches in the journal.
    pub open_batches: usize,
    /// The next sequence number.
    pub next_seq: u64,
    /// Whether the store was checked too.
    pub store_checked: bool,
}

impl Report {
    /// True if nothing was found.
    pub fn clean(&self) -> bool {
        self.findings.is_empty()
    }

    /// 0 clean, 1 problems found (repaired or not).
    pub fn exit_code(&self) -> u8 {
        u8::from(!self.clean())
    }

    /// Findings in one state.
    pub fn count(&self, state: State) -> usize {
        self.findings.iter().filter(|f| f.state == state).count()
    }

    /// One JSON object per finding, then a summary object: `{"summary": {...}}`.
    pub fn json_lines(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            out.push_str(&serde_json::to_string(f).unwrap_or_default());
            out.push('\n');
        }
        let summary = serde_json::json!({"summary": {
            "problems": self.findings.len(),
            "repaired": self.count(State::Repaired),
            "repairable": self.count(State::Repairable),
            "left": self.count(State::Left),
            "open_batches": self.open_batches,
            "next_seq": self.next_seq,
            "store_checked": self.store_checked,
        }});
        out.push_str(&summary.to_string());
        out
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Repairable => "REPAIRABLE",
            Self::Repaired => "REPAIRED",
            Self::Left => "LEFT",
        })
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for x in &self.findings {
            writeln!(f, "{} {} {}: {}", x.state, x.code, x.at, x.message)?;
        }
        let store = if self.store_checked {
            "journal, staging, files, store"
        } else {
            "journal, staging, files"
        };
        if self.clean() {
            return write!(
                f,
                "clean ({store} checked; {} unfinished batches, next seq {})",
                self.open_batches, self.next_seq
            );
        }
        write!(
            f,
            "{} problems ({} repaired, {} repairable with --repair, {} left; {store} checked)",
            self.findings.len(),
            self.count(State::Repaired),
            self.count(State::Repairable),
            self.count(State::Left)
        )
    }
}

/// Why fsck could not check (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum FsckError {
    /// The state directory (or a file in it) could not be read or repaired.
    #[error("{what} {path}: {cause}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// The journal could not be rewritten.
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    /// The store could not be set up.
    #[error("--to: {0}")]
    Sink(#[from] BuildError),
    /// The store's uploads could not be listed or one aborted.
    #[error("store: {0}")]
    Uploads(#[from] crate::sink::UploadsError),
    /// The store could not be listed or repaired.
    #[error("store: {0}")]
    Store(#[from] object_store::Error),
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> FsckError + 'a {
    move |cause| FsckError::Io {
        what,
        path: path.to_path_buf(),
        cause,
    }
}

/// A problem and the fix `--repair` applies, if there is a safe one.
#[derive(Debug)]
pub(crate) struct Problem {
    code: &'static str,
    at: String,
    message: String,
    fix: Option<Fix>,
}

/// The repairs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fix {
    /// Cut the journal to its whole entries.
    TruncateJournal(u64),
    /// Rewrite the journal from its replayed state.
    CompactJournal,
    /// Remove a local file.
    Remove(PathBuf),
    /// Delete a store object.
    DeleteObject(object_store::path::Path),
    /// Abort an unfinished multipart upload.
    AbortUpload(crate::sink::Upload),
}

/// Checks `state_dir` and, if given, the store at `to` (as `--to`, `--s3-endpoint`, ...);
/// with `repair`, fixes what is safe.
pub async fn fsck(
    state_dir: &Path,
    to: Option<(&Url, SinkOptions)>,
    repair: bool,
) -> Result<Report, FsckError> {
    let sink = to
        .map(|(url, options)| Sink::new(url, options).map(|s| (url, s)))
        .transpose()?;
    match std::fs::metadata(state_dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(io_err("read", state_dir)(std::io::Error::other(
                "not a directory",
            )));
        }
        Err(e) => return Err(io_err("read", state_dir)(e)),
    }
    let scanned = journal::scan(state_dir)?;
    let mut problems = scanned.problems;
    problems.extend(local::check(state_dir, &scanned.open)?);
    if let Some((url, sink)) = &sink {
        problems.extend(store::check(url, sink, &scanned.open).await?);
    }
    let sink = sink.as_ref().map(|(_, s)| s);
    let mut report = Report {
        open_batches: scanned.open.len(),
        next_seq: scanned.next_seq,
        store_checked: sink.is_some(),
        ..Report::default()
    };
    let mut applied: Vec<Fix> = Vec::new();
    for p in problems {
        let state = match (&p.fix, repair) {
            (None, _) => State::Left,
            (Some(_), false) => State::Repairable,
            (Some(fix), true) => {
                if !applied.contains(fix) {
                    apply(state_dir, sink, fix).await?;
                    applied.push(fix.clone());
                }
                State::Repaired
            }
        };
        report.findings.push(Finding {
            code: p.code,
            at: p.at,
            message: p.message,
            state,
        });
    }
    Ok(report)
}

async fn apply(state_dir: &Path, sink: Option<&Sink>, fix: &Fix) -> Result<(), FsckError> {
    match fix {
        Fix::TruncateJournal(len) => journal::truncate(state_dir, *len),
        Fix::CompactJournal => journal::compact(state_dir),
        Fix::Remove(path) => local::remove(path),
        Fix::DeleteObject(path) => match sink {
            Some(sink) => store::delete(sink, path).await,
            None => Ok(()),
        },
        Fix::AbortUpload(upload) => match sink {
            Some(sink) => Ok(sink.abort_upload(upload).await?),
            None => Ok(()),
        },
    }
}
