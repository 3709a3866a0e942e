//! The pending totals (files, bytes, oldest modification time of every finished file in the
//! sources, including those packed into unfinished batches, which stay on disk until shipped),
//! counted with one `lstat` per file on a thread of their own so that shipping never waits for
//! them: a 100,000-file backlog takes about a second to count, its first batch does not.
//! The first count starts with the first listing; later ones start once the last one is older
//! than four times its duration (at most a fifth of a core however large the backlog), and a
//! count that took under [`QUICK`] is waited for, so small sources are counted at nearly every
//! scan and the result is current.

use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crate::batch::{self, Source};

/// A count this quick is waited for instead of read at the next scan.
pub const QUICK: Duration = Duration::from_millis(20);

/// Every finished file of the sources, as last counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Files.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// The oldest modification time among them.
    pub oldest: Option<SystemTime>,
    /// How long the count took.
    pub took: Duration,
}

/// The background count and its last result.
#[derive(Debug, Default)]
pub struct Census {
    running: Option<JoinHandle<Totals>>,
    last: Option<(Totals, Instant)>,
}

impl Census {
    /// The latest totals (`None` until the first count has finished), collecting a finished
    /// count and starting the next one when it is due.
    pub fn refresh(&mut self, sources: &[Source]) -> Option<Totals> {
        if self.running.as_ref().is_some_and(JoinHandle::is_finished) {
            self.collect();
        }
        let due = self
            .last
            .is_none_or(|(t, at)| at.elapsed() >= t.took.saturating_mul(4));
        if self.running.is_none() && due {
            let sources = sources.to_vec();
            // A thread that cannot be started is retried at the next scan.
            self.running = std::thread::Builder::new()
                .name("logship-census".into())
                .spawn(move || count(&sources))
                .ok();
            if self.last.is_some_and(|(t, _)| t.took < QUICK) {
                self.collect();
            }
        }
        self.last.map(|(t, _)| t)
    }

    fn collect(&mut self) {
        if let Some(handle) = self.running.take()
            && let Ok(totals) = handle.join()
        {
            self.last = Some((totals, Instant::now()));
        }
    }
}

/// Counts every finished file of `sources`; a source that cannot be listed counts as empty
/// (the listing reports it), one that fails part way counts what was listed before.
pub fn count(sources: &[Source]) -> Totals {
    let start = Instant::now();
    let mut totals = Totals::default();
    for source in sources {
        let _ = batch::visit(source, |c| {
            totals.files += 1;
            totals.bytes += c.size;
            totals.oldest = Some(totals.oldest.map_or(c.modified, |o| o.min(c.modified)));
        });
    }
    totals.took = start.elapsed();
    totals
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn the_first_count_is_not_waited_for_and_counts_every_finished_file() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..30 {
            fs::write(dir.path().join(format!("{i:03}.json")), "x".repeat(i + 1)).unwrap();
        }
        fs::write(dir.path().join(".open.json"), "not finished").unwrap();
        let sources = [Source {
            name: "s".into(),
            dir: dir.path().to_path_buf(),
        }];
        let mut census = Census::default();
        assert_eq!(census.refresh(&sources), None, "the first count runs aside");
        let mut totals = None;
        for _ in 0..1000 {
            totals = census.refresh(&sources);
            if totals.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let totals = totals.expect("the count finished");
        assert_eq!(totals.files, 30);
        assert_eq!(totals.bytes, (1..=30).sum::<u64>());
        assert!(totals.oldest.is_some());
        fs::write(dir.path().join("100.json"), "y").unwrap();
        if totals.took < QUICK {
            // Once due, a quick count is waited for: the new file is in the very next result.
            std::thread::sleep(totals.took * 4 + Duration::from_millis(1));
            assert_eq!(census.refresh(&sources).unwrap().files, 31);
        }
    }
}
