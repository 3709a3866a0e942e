//! A source listed in bounded memory and in time independent of its backlog: the names of its
//! finished files are read (readdir only, no `stat` per file: sealed segments and service files
//! are named in time order), every one is counted, and only the `window` smallest names are kept
//! and then `lstat`ed for packing. The window is one batch (`--batch-max-files`), so the next
//! batch is the same as from a full sorted listing, while a backlog of 100,000 files costs a
//! batch's worth of memory and 100,000 directory entries instead of 100,000 `stat` calls. Bytes
//! and age of the whole backlog come from [`crate::census`], off the shipping path.

use std::collections::BinaryHeap;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::batch::{self, Candidate, ScanError, Source, Stamp};

/// What one listing of a source found.
#[derive(Debug, Default)]
pub struct Listing {
    /// The oldest-named packable files, sorted by name, at most `window` of them.
    pub window: Vec<Candidate>,
    /// Finished files listed (held ones excepted), packable or not.
    pub files: u64,
    /// Bytes of the window and of the skipped files (a lower bound of the source's bytes).
    pub bytes: u64,
    /// The oldest modification time among the window and the skipped files.
    pub oldest: Option<SystemTime>,
}

/// Which listed files the caller treats specially.
pub trait Filter {
    /// Already packed into an unfinished batch: neither counted nor packed.
    fn held(&self, path: &Path) -> bool;
    /// May be skipped: `lstat`ed while listing and handed to [`Filter::skipped`].
    fn suspect(&self, path: &Path) -> bool;
    /// Waits on disk (counted) but is not packed now (a file that could not be read).
    fn skipped(&mut self, candidate: &Candidate) -> bool;
}

/// Lists `source`, keeping at most `window` (≥ 1) packable candidates.
pub fn list(
    source: &Source,
    window: usize,
    filter: &mut impl Filter,
) -> Result<Listing, ScanError> {
    let window = window.max(1);
    let mut listing = Listing::default();
    // A max-heap on the name: its top is the name to drop when a smaller one arrives.
    let mut heap: BinaryHeap<OsString> = BinaryHeap::with_capacity(window.min(4096) + 1);
    visit_names(source, |name| {
        let path = source.dir.join(&name);
        if filter.held(&path) {
            return Ok(());
        }
        listing.files += 1;
        if filter.suspect(&path) {
            match candidate(path)? {
                Some(c) if filter.skipped(&c) => {
                    listing.add(&c);
                    return Ok(());
                }
                Some(_) => {}
                None => {
                    listing.files -= 1;
                    return Ok(());
                }
            }
        }
        if heap.len() < window {
            heap.push(name);
        } else if heap.peek().is_some_and(|top| name < *top) {
            heap.pop();
            heap.push(name);
        }
        Ok(())
    })?;
    let mut names = heap.into_vec();
    names.sort();
    for name in names {
        let list_err = |e| list_error(source, e);
        match candidate(source.dir.join(name)).map_err(list_err)? {
            // Gone since it was listed (shipped by an earlier run's cleanup, or removed).
            None => listing.files -= 1,
            Some(c) => {
                listing.add(&c);
                listing.window.push(c);
            }
        }
    }
    Ok(listing)
}

impl Listing {
    fn add(&mut self, c: &Candidate) {
        self.bytes += c.size;
        self.oldest = Some(self.oldest.map_or(c.modified, |o| o.min(c.modified)));
    }
}

/// `lstat`s `path`: `None` if it is gone or not a regular file.
fn candidate(path: PathBuf) -> io::Result<Option<Candidate>> {
    let meta = match fs::symlink_metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_file() {
        return Ok(None);
    }
    Ok(Some(Candidate {
        size: meta.len(),
        modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        stamp: Stamp::of(&meta),
        path,
    }))
}

fn list_error(source: &Source, e: io::Error) -> ScanError {
    ScanError::List {
        name: source.name.clone(),
        dir: source.dir.clone(),
        source: e,
    }
}

/// Hands the name of each finished regular file of `source` to `found` in directory order,
/// from the directory entries alone (the entry's type, no `stat` where the file system reports
/// it); [`batch::walk`] checks the source directory.
fn visit_names(
    source: &Source,
    mut found: impl FnMut(OsString) -> io::Result<()>,
) -> Result<(), ScanError> {
    batch::walk(source, |entry| {
        // A symlink's entry type is not a regular file: it is never followed.
        if entry.file_type()?.is_file() {
            found(entry.file_name())?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::fs;
    use std::path::PathBuf;

    use super::*;

    struct Sets {
        held: HashSet<PathBuf>,
        skipped: HashSet<PathBuf>,
    }

    impl Filter for Sets {
        fn held(&self, path: &Path) -> bool {
            self.held.contains(path)
        }
        fn suspect(&self, path: &Path) -> bool {
            self.skipped.contains(path)
        }
        fn skipped(&mut self, c: &Candidate) -> bool {
            self.skipped.contains(&c.path)
        }
    }

    #[test]
    fn the_window_holds_the_smallest_names_in_order_and_the_totals_count_every_file() {
        let dir = tempfile::tempdir().unwrap();
        for i in (0..50).rev() {
            fs::write(dir.path().join(format!("{i:03}.json")), "x".repeat(i + 1)).unwrap();
        }
        let source = Source {
            name: "s".into(),
            dir: dir.path().to_path_buf(),
        };
        let full = batch::scan(&source).unwrap();
        let mut sets = Sets {
            held: HashSet::from([dir.path().join("000.json")]),
            skipped: HashSet::from([dir.path().join("002.json")]),
        };
        let listing = list(&source, 5, &mut sets).unwrap();
        let names: Vec<_> = listing
            .window
            .iter()
            .map(|c| c.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["001.json", "003.json", "004.json", "005.json", "006.json"]
        );
        assert_eq!(listing.files, 49, "held files are not counted");
        assert_eq!(
            listing.bytes,
            3 + (2 + 4 + 5 + 6 + 7),
            "bytes of the skipped file and the window; the rest is the census's job"
        );
        assert_eq!(
            listing.window[0], full[1],
            "the same candidates as a full listing"
        );
    }
}
