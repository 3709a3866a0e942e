//! Each target's window stats, computed once and served again until its rollups change or
//! the hour or UTC day turns over: `/api/status` and the page ask for every target's five
//! windows on every request, and walking a year of days and sketches for 1,000 targets each
//! time is what made the request slow.

use std::sync::{Mutex, PoisonError};

use super::WindowStats;

/// The window stats of one target, in `WINDOWS` order.
pub type Stats = Vec<(&'static str, WindowStats)>;

/// What the stats were computed for: the hour and the UTC day of `now` (the windows end
/// there, so a new hour or day needs new stats even without new results).
type Key = (i64, i64);

/// The last stats computed; emptied by every change to the target's rollups.
#[derive(Debug, Default)]
pub struct WindowCache {
    // A Mutex, not a RefCell: requests read the rollups under a shared lock, concurrently.
    last: Mutex<Option<(Key, Stats)>>,
}

// === impl WindowCache ===

impl WindowCache {
    /// The stats for `key`, from the cache or from `compute` (then kept).
    pub fn get_or_compute(&self, key: Key, compute: impl FnOnce() -> Stats) -> Stats {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        match &*last {
            Some((k, stats)) if *k == key => stats.clone(),
            _ => {
                let stats = compute();
                *last = Some((key, stats.clone()));
                stats
            }
        }
    }

    /// Forgets the stats: the rollups changed (a result folded, a day's sketch aged, a load).
    pub fn invalidate(&mut self) {
        *self.last.get_mut().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Whether stats are kept (for tests).
    #[cfg(test)]
    pub fn is_filled(&self) -> bool {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }
}

impl Clone for WindowCache {
    /// A copy starts empty: it computes its own stats when asked.
    fn clone(&self) -> Self {
        Self::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(count: u64) -> Stats {
        vec![(
            "24h",
            WindowStats {
                count,
                ..WindowStats::default()
            },
        )]
    }

    #[test]
    fn computes_once_per_key_until_invalidated() {
        let mut c = WindowCache::default();
        let calls = std::cell::Cell::new(0);
        let get = |c: &WindowCache, key, n| {
            c.get_or_compute(key, || {
                calls.set(calls.get() + 1);
                stats(n)
            })
        };
        assert_eq!(get(&c, (1, 0), 1), stats(1));
        // Same hour and day: served from the cache, not recomputed.
        assert_eq!(get(&c, (1, 0), 2), stats(1));
        // A new hour: recomputed.
        assert_eq!(get(&c, (2, 0), 3), stats(3));
        c.invalidate();
        assert!(!c.is_filled());
        assert_eq!(get(&c, (2, 0), 4), stats(4));
        assert!(c.clone().last.lock().unwrap().is_none());
        assert_eq!(calls.get(), 3);
    }
}
