//! Source scanning and batch packing: lists the finished files of a source directory (names
//! starting with `.` are open or temporary and skipped), oldest name first, and packs a prefix
//! of them into one batch bounded by file count and bytes; a batch is ready when a bound is hit,
//! its oldest file reached the maximum age, or the shipper is flushing for shutdown.

use std::fs;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// A directory whose finished files are shipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// Name used as `{role}` in the key (the directory's base name unless given as NAME=DIR).
    pub name: String,
    /// The directory.
    pub dir: PathBuf,
}

/// A finished file waiting to be shipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Full path.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Modification time.
    pub modified: SystemTime,
}

/// Batch bounds (`--batch-max-files`, `--batch-max-bytes`, `--batch-max-age`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// At most this many files per batch.
    pub max_files: usize,
    /// At most this many input bytes per batch (a larger single file is a batch of its own).
    pub max_bytes: u64,
    /// Ship a non-full batch once its oldest file is this old.
    pub max_age: Duration,
}

/// Lists the finished files of `source` sorted by name (names are time-sortable).
/// A missing directory is empty (services create theirs on first write).
pub fn scan(source: &Source) -> io::Result<Vec<Candidate>> {
    let entries = match fs::read_dir(&source.dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        if name.as_encoded_bytes().first() == Some(&b'.') {
            continue;
        }
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if !meta.is_file() {
            continue;
        }
        out.push(Candidate {
            path: entry.path(),
            size: meta.len(),
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Takes the next batch from the front of `candidates` if it is ready.
pub fn pack(
    candidates: &[Candidate],
    limits: Limits,
    now: SystemTime,
    flush: bool,
) -> Option<&[Candidate]> {
    let first = candidates.first()?;
    let mut bytes = first.size;
    let mut n = 1;
    let mut bound_hit = false;
    for c in &candidates[1..] {
        if n >= limits.max_files || bytes + c.size > limits.max_bytes {
            bound_hit = true;
            break;
        }
        bytes += c.size;
        n += 1;
    }
    bound_hit |= n >= limits.max_files || bytes >= limits.max_bytes;
    let batch = &candidates[..n];
    let oldest = batch.iter().map(|c| c.modified).min()?;
    let old = now.duration_since(oldest).unwrap_or_default() >= limits.max_age;
    (bound_hit || old || flush).then_some(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(name: &str, size: u64, age_s: u64, now: SystemTime) -> Candidate {
        Candidate {
            path: PathBuf::from(name),
            size,
            modified: now - Duration::from_secs(age_s),
        }
    }

    const LIMITS: Limits = Limits {
        max_files: 3,
        max_bytes: 100,
        max_age: Duration::from_secs(60),
    };

    #[test]
    fn young_partial_batch_waits_until_age_or_flush() {
        let now = SystemTime::now();
        let c = vec![cand("a", 10, 5, now), cand("b", 10, 1, now)];
        assert!(pack(&c, LIMITS, now, false).is_none());
        assert_eq!(pack(&c, LIMITS, now, true).map(<[_]>::len), Some(2));
        let c = vec![cand("a", 10, 61, now), cand("b", 10, 1, now)];
        assert_eq!(pack(&c, LIMITS, now, false).map(<[_]>::len), Some(2));
    }

    #[test]
    fn file_count_and_byte_bounds_cut_the_batch() {
        let now = SystemTime::now();
        let c: Vec<_> = (0..5).map(|i| cand(&i.to_string(), 1, 0, now)).collect();
        assert_eq!(pack(&c, LIMITS, now, false).map(<[_]>::len), Some(3));
        let c = vec![cand("a", 60, 0, now), cand("b", 60, 0, now)];
        assert_eq!(pack(&c, LIMITS, now, false).map(<[_]>::len), Some(1));
        let c = vec![cand("huge", 500, 0, now), cand("b", 1, 0, now)];
        assert_eq!(pack(&c, LIMITS, now, false).map(<[_]>::len), Some(1));
        assert!(pack(&[], LIMITS, now, true).is_none());
    }

    #[test]
    fn scan_skips_dot_files_and_directories_and_sorts_by_name() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("b.json"), "{}").unwrap();
        fs::write(dir.path().join("a.json"), "{}").unwrap();
        fs::write(dir.path().join(".tmp-x"), "{}").unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        let source = Source {
            name: "s".into(),
            dir: dir.path().to_path_buf(),
        };
        let names: Vec<_> = scan(&source)
            .unwrap()
            .into_iter()
            .map(|c| c.path.file_name().unwrap().to_owned())
            .collect();
        assert_eq!(names, vec!["a.json", "b.json"]);
        let missing = Source {
            name: "m".into(),
            dir: dir.path().join("missing"),
        };
        assert!(scan(&missing).unwrap().is_empty());
    }
}
