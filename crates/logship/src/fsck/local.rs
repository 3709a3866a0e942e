//! The local checks: the staging area (temporary files, staged objects of no unfinished
//! batch, staged objects whose bytes are not the journaled ones) and the source files of
//! unfinished, undelivered batches (a missing one whose staged copy is gone too is lost).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{Fix, FsckError, Problem, io_err};
use crate::batch::Stamp;
use crate::encoder;
use crate::journal::{FileRef, OpenBatch};

/// Checks `<state_dir>/staging` and the files the unfinished batches reference.
pub(super) fn check(
    state_dir: &Path,
    open: &BTreeMap<u64, OpenBatch>,
) -> Result<Vec<Problem>, FsckError> {
    let staging = state_dir.join("staging");
    let mut problems = Vec::new();
    let mut staged: BTreeMap<u64, PathBuf> = BTreeMap::new();
    let entries = match fs::read_dir(&staging) {
        Ok(entries) => entries.collect::<Result<Vec<_>, _>>(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
    .map_err(io_err("list", &staging))?;
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        match staged_seq(&name) {
            _ if name.starts_with('.') => problems.push(Problem {
                code: "staging_temp",
                at: path.display().to_string(),
                message: "a temporary file of an encode that did not finish".into(),
                fix: Some(Fix::Remove(path)),
            }),
            Some(seq) if open.contains_key(&seq) => {
                staged.insert(seq, path);
            }
            Some(seq) => problems.push(Problem {
                code: "staging_orphan",
                at: path.display().to_string(),
                message: format!(
                    "staged object of batch {seq}, which is not unfinished in the journal (delivered, or its files are still in the source)"
                ),
                fix: Some(Fix::Remove(path)),
            }),
            None => problems.push(Problem {
                code: "staging_unknown",
                at: path.display().to_string(),
                message: "not a file logship writes; left alone".into(),
                fix: None,
            }),
        }
    }
    for batch in open.values().filter(|b| !b.delivered) {
        let path = staged.get(&batch.record.seq);
        problems.extend(check_batch(batch, path).map_err(|(p, e)| io_err("read", &p)(e))?);
    }
    Ok(problems)
}

/// `NNNNNNNNNNNNNNNNNNNN.<ext>` → the sequence number.
fn staged_seq(name: &str) -> Option<u64> {
    let (digits, ext) = name.split_once('.')?;
    (digits.len() == 20 && !ext.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// One undelivered batch: its staged object and its source files.
fn check_batch(
    batch: &OpenBatch,
    staged: Option<&PathBuf>,
) -> Result<Vec<Problem>, (PathBuf, io::Error)> {
    let r = &batch.record;
    let intact = match staged {
        Some(path) => {
            let sha = encoder::sha256_file(path).map_err(|e| (path.clone(), e))?;
            let size = fs::metadata(path).map_err(|e| (path.clone(), e))?.len();
            size == r.size && sha == r.sha256
        }
        None => false,
    };
    let mut problems = Vec::new();
    let mut all_unchanged = true;
    for f in &r.files {
        match same(f).map_err(|e| (f.path.clone(), e))? {
            Some(true) => {}
            Some(false) => all_unchanged = false,
            None => {
                all_unchanged = false;
                if !intact {
                    problems.push(Problem {
                        code: "file_missing",
                        at: f.path.display().to_string(),
                        message: format!(
                            "file of undelivered batch {} is gone and no intact staged copy holds it: its {} bytes are lost",
                            r.seq, f.size
                        ),
                        fix: None,
                    });
                }
            }
        }
    }
    if let Some(path) = staged.filter(|_| !intact) {
        problems.push(Problem {
            code: "staging_corrupt",
            at: path.display().to_string(),
            message: if all_unchanged {
                format!("staged object of batch {} does not have the journaled size and sha256; removed, the shipper encodes it again from its unchanged files", r.seq)
            } else {
                format!("staged object of batch {} does not have the journaled size and sha256, and its files changed: kept for inspection, the shipper would upload it as is", r.seq)
            },
            fix: all_unchanged.then(|| Fix::Remove(path.clone())),
        });
    }
    Ok(problems)
}

/// `Some(true)`: the file read for the batch, unchanged; `Some(false)`: changed; `None`: gone.
fn same(f: &FileRef) -> io::Result<Option<bool>> {
    let meta = match fs::symlink_metadata(&f.path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let now = Stamp::of(&meta);
    let unchanged = meta.file_type().is_file()
        && meta.len() == f.size
        && f.stamp
            .is_none_or(|s| s.same_file(&now) && s.mtime_ns == now.mtime_ns);
    Ok(Some(unchanged))
}

/// Removes a local file (gone already is fine) and syncs its directory.
pub(super) fn remove(path: &Path) -> Result<(), FsckError> {
    encoder::remove_staged(path).map_err(io_err("remove", path))?;
    if let Some(dir) = path.parent() {
        logfile::sync_dir(dir).map_err(io_err("sync", dir))?;
    }
    Ok(())
}
