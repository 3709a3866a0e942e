//! Source scanning and batch packing: lists the finished regular files of a source directory
//! (names starting with `.` are open or temporary and skipped, the writer's contract in
//! `logfile::segment`; a source path that is a symbolic link is refused, never followed out of
//! the source), oldest name first, and packs a prefix of them into one batch bounded by file
//! count and bytes; a batch is ready when a bound is hit, its oldest file reached the maximum
//! age, or the shipper is flushing for shutdown.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
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
    /// Which file this is and its state when listed: the encoder reads only this inode, and
    /// a file that could not be read is retried only once this changes.
    pub stamp: Stamp,
}

/// A file's identity (device, inode) and change times, from lstat(2)/fstat(2).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Stamp {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// Status change time (chmod, chown, writes), nanoseconds since the epoch.
    pub ctime_ns: i64,
}

impl Stamp {
    /// The stamp of a file's metadata.
    pub fn of(meta: &fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            mtime_ns: meta.mtime().saturating_mul(1_000_000_000) + meta.mtime_nsec(),
            ctime_ns: meta.ctime().saturating_mul(1_000_000_000) + meta.ctime_nsec(),
        }
    }

    /// Same device and inode.
    pub fn same_file(&self, other: &Self) -> bool {
        self.dev == other.dev && self.ino == other.ino
    }
}

/// Why a source could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The source path is a symbolic link: following it could ship and delete files outside it.
    #[error(
        "source {name}: {dir} is a symbolic link; refusing to follow it (nothing is shipped or deleted through it)"
    )]
    Symlink {
        /// Source name.
        name: String,
        /// The path.
        dir: PathBuf,
    },
    /// The directory was replaced while it was listed.
    #[error("source {name}: {dir} was replaced while it was listed")]
    Replaced {
        /// Source name.
        name: String,
        /// The path.
        dir: PathBuf,
    },
    /// Listing failed.
    #[error("source {name}: listing {dir}: {source}")]
    List {
        /// Source name.
        name: String,
        /// The path.
        dir: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

impl ScanError {
    /// The `kind` label of `ferrostack_logship_source_errors_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Symlink { .. } => "symlink",
            Self::Replaced { .. } => "replaced",
            Self::List { .. } => "list",
        }
    }
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

/// Lists the finished regular files of `source` sorted by name (names are time-sortable).
/// A missing directory is empty (services create theirs on first write). The directory is
/// checked to be a real directory, the same one, before and after the listing, and entries are
/// lstat'ed, so a symbolic link (the source itself or an entry) is never followed.
pub fn scan(source: &Source) -> Result<Vec<Candidate>, ScanError> {
    let mut out = Vec::new();
    visit(source, |c| out.push(c))?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Hands each finished regular file of `source` to `found`, in directory order, holding none
/// of them (a backlog of any size is listed in constant memory); the same checks as [`scan`].
pub fn visit(source: &Source, mut found: impl FnMut(Candidate)) -> Result<(), ScanError> {
    walk(source, |entry| {
        // DirEntry::metadata is lstat: a symlink entry is not a regular file and is skipped.
        let meta = entry.metadata()?;
        if meta.file_type().is_file() {
            found(Candidate {
                path: entry.path(),
                size: meta.len(),
                modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                stamp: Stamp::of(&meta),
            });
        }
        Ok(())
    })
}

/// The one directory walk of a source: hands `found` each entry with a finished file's name,
/// in directory order. The directory must be a real directory (never a symlink), the same one
/// before and after the walk; a missing one is empty, and an entry that vanished meanwhile
/// (`found` returning `NotFound`) is skipped.
pub fn walk(
    source: &Source,
    mut found: impl FnMut(&fs::DirEntry) -> io::Result<()>,
) -> Result<(), ScanError> {
    let list_err = |e: io::Error| ScanError::List {
        name: source.name.clone(),
        dir: source.dir.clone(),
        source: e,
    };
    let Some(before) = dir_identity(source)? else {
        return Ok(());
    };
    let entries = match fs::read_dir(&source.dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(list_err(e)),
    };
    for entry in entries {
        let entry = entry.map_err(list_err)?;
        if !logfile::segment::is_finished(&entry.file_name()) {
            continue;
        }
        match found(&entry) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(list_err(e)),
        }
    }
    if dir_identity(source)? != Some(before) {
        return Err(ScanError::Replaced {
            name: source.name.clone(),
            dir: source.dir.clone(),
        });
    }
    Ok(())
}

/// (device, inode) of the source directory itself, without following a symlink; `None` if
/// it does not exist.
pub fn dir_identity(source: &Source) -> Result<Option<(u64, u64)>, ScanError> {
    match fs::symlink_metadata(&source.dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ScanError::List {
            name: source.name.clone(),
            dir: source.dir.clone(),
            source: e,
        }),
        Ok(m) if m.file_type().is_symlink() => Err(ScanError::Symlink {
            name: source.name.clone(),
            dir: source.dir.clone(),
        }),
        Ok(m) if !m.is_dir() => Err(ScanError::List {
            name: source.name.clone(),
            dir: source.dir.clone(),
            source: io::Error::other("not a directory"),
        }),
        Ok(m) => Ok(Some((m.dev(), m.ino()))),
    }
}

/// Whether a listed file may be read now. The plain-file contract: a file is read only once it
/// has not been modified for `quiet` (the producer is done with it; a producer must not write
/// to a file quiet that long), and deleted after delivery only if still unchanged since it was
/// read. Files our own writers name `<time>-<ULID>.jsonl` (sealed segments) or
/// `<time>-<ULID>.json` (the services' temp+rename files) are whole when they appear under
/// that name, so they are ready at once.
pub fn settled(c: &Candidate, quiet: Duration, now: SystemTime) -> bool {
    let whole = c
        .path
        .file_name()
        .is_some_and(|n| whole_by_contract(n.to_str().unwrap_or_default()));
    whole || now.duration_since(c.modified).unwrap_or_default() >= quiet
}

/// True for `<time>-<ULID>.jsonl` and `<time>-<ULID>.json`, with the time the ULID's own.
fn whole_by_contract(name: &str) -> bool {
    let Some(stem) = name
        .strip_suffix(".jsonl")
        .or_else(|| name.strip_suffix(".json"))
    else {
        return false;
    };
    let Some(id) = stem
        .rsplit_once('-')
        .and_then(|(_, id)| ulid::Ulid::from_string(id).ok())
    else {
        return false;
    };
    logfile::segment::sealed_name(id)
        .strip_suffix(".jsonl")
        .is_some_and(|sealed| sealed == stem)
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
            stamp: Stamp::default(),
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
    fn only_our_writers_names_skip_the_quiet_period() {
        let now = SystemTime::now();
        let quiet = Duration::from_secs(2);
        let id = ulid::Ulid::generate();
        let sealed = logfile::segment::sealed_name(id);
        let service = sealed.replace(".jsonl", ".json");
        for name in [sealed.as_str(), service.as_str()] {
            assert!(settled(&cand(name, 1, 0, now), quiet, now), "{name}");
        }
        let forged = format!("20000101T000000.000Z-{id}.jsonl");
        for name in ["app.log", "x.jsonl", forged.as_str()] {
            assert!(!settled(&cand(name, 1, 1, now), quiet, now), "{name}");
            assert!(settled(&cand(name, 1, 2, now), quiet, now), "{name}");
        }
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

    /// A directory swapped for another while it was read (log rotation by rename, a volume
    /// remounted) fails the walk rather than passing a mix of two directories' files.
    #[test]
    fn a_directory_replaced_during_the_walk_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("logs");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("a.json"), "{}").unwrap();
        let source = Source {
            name: "s".into(),
            dir: dir.clone(),
        };
        walk(&source, |_| Ok(())).unwrap();
        let err = walk(&source, |_| {
            fs::rename(&dir, root.path().join("old"))?;
            fs::create_dir(&dir)
        })
        .unwrap_err();
        assert!(matches!(err, ScanError::Replaced { .. }), "{err:?}");
    }
}
