//! A source listed in bounded memory: every finished file is counted (pending files, bytes and
//! the oldest one, which drive the metrics and the pending bound), but only the `window` files
//! with the smallest names are kept, sorted, for packing. The window is one batch
//! (`--batch-max-files`), so the next batch is the same as from a full sorted listing, while a
//! backlog of 100,000 files costs a batch's worth of memory instead of one entry per file.

use std::collections::BinaryHeap;
use std::path::Path;
use std::time::SystemTime;

use crate::batch::{self, Candidate, ScanError, Source};

/// What one listing of a source found.
#[derive(Debug, Default)]
pub struct Listing {
    /// The oldest-named packable files, sorted by name, at most `window` of them.
    pub window: Vec<Candidate>,
    /// Finished files listed (held ones excepted), packable or not.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// The oldest modification time among them.
    pub oldest: Option<SystemTime>,
}

/// Which listed files the caller treats specially.
pub trait Filter {
    /// Already packed into an unfinished batch: neither counted nor packed.
    fn held(&self, path: &Path) -> bool;
    /// Waits on disk (counted) but is not packed now (a file that could not be read).
    fn skipped(&mut self, candidate: &Candidate) -> bool;
}

/// Orders candidates by path for the heap (the largest path is dropped first).
#[derive(Debug)]
struct ByPath(Candidate);

impl PartialEq for ByPath {
    fn eq(&self, other: &Self) -> bool {
        self.0.path == other.0.path
    }
}
impl Eq for ByPath {}
impl PartialOrd for ByPath {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ByPath {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.path.cmp(&other.0.path)
    }
}

/// Lists `source`, keeping at most `window` (≥ 1) packable candidates.
pub fn list(
    source: &Source,
    window: usize,
    filter: &mut impl Filter,
) -> Result<Listing, ScanError> {
    let window = window.max(1);
    let mut listing = Listing::default();
    // A max-heap on the path: its top is the file to drop when a smaller name arrives.
    let mut heap: BinaryHeap<ByPath> = BinaryHeap::with_capacity(window.min(4096) + 1);
    batch::visit(source, |c| {
        if filter.held(&c.path) {
            return;
        }
        listing.files += 1;
        listing.bytes += c.size;
        listing.oldest = Some(listing.oldest.map_or(c.modified, |o| o.min(c.modified)));
        if filter.skipped(&c) {
            return;
        }
        if heap.len() < window {
            heap.push(ByPath(c));
        } else if heap.peek().is_some_and(|top| c.path < top.0.path) {
            heap.pop();
            heap.push(ByPath(c));
        }
    })?;
    let mut window: Vec<Candidate> = heap.into_iter().map(|b| b.0).collect();
    window.sort_by(|a, b| a.path.cmp(&b.path));
    listing.window = window;
    Ok(listing)
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
        assert_eq!(listing.bytes, (2..=50).sum::<u64>());
        assert_eq!(
            listing.window[0], full[1],
            "the same candidates as a full listing"
        );
    }
}
