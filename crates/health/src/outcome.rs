//! Up, degraded or down: how one result counts. A result is `degraded` when it passed only
//! after a retry, or when its target has not yet succeeded since it was added (or since it was
//! a maintenance window ended): it is shown and counted on its own, never fires or resolves an
//! alert, and never spends error budget. Results taken in a maintenance window count the same
//! way, and leave the target new again.

use serde::{Deserialize, Serialize};

use crate::record::Record;

/// How one result counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Passed on the first attempt, on a target that has succeeded before.
    Up,
    /// Passed only after a retry, or any result before the target's first success.
    Degraded,
    /// Failed, on a target that has succeeded before.
    Down,
}

/// Whether a target has succeeded since it was added or last marked fresh.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Freshness {
    /// True once a result succeeded; `mark_fresh` clears it.
    pub succeeded: bool,
}

// === impl Freshness ===

impl Freshness {
    /// Classifies `record` and takes its success into account.
    pub fn classify(&mut self, record: &Record) -> Outcome {
        if record.maintenance {
            // Taken in a maintenance window: charged to no budget, and the target is new
            // again afterwards, until its next success.
            self.succeeded = false;
            return Outcome::Degraded;
        }
        let fresh = !self.succeeded;
        if record.success {
            self.succeeded = true;
        }
        match (record.success, fresh) {
            (true, _) if record.attempts > 1 => Outcome::Degraded,
            (true, _) => Outcome::Up,
            (false, true) => Outcome::Degraded,
            (false, false) => Outcome::Down,
        }
    }

    /// The target counts as new again: results up to its next success are degraded.
    pub fn mark_fresh(&mut self) {
        self.succeeded = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_targets_and_retried_passes_are_degraded() {
        let t = time::macros::datetime!(2026-01-01 0:00 UTC);
        let (ok, bad) = (Record::sample("a", t, true), Record::sample("a", t, false));
        let retried = Record {
            attempts: 2,
            ..ok.clone()
        };
        let mut f = Freshness::default();
        let seen: Vec<Outcome> = [&bad, &bad, &retried, &ok, &bad, &retried]
            .into_iter()
            .map(|r| f.classify(r))
            .collect();
        use Outcome::*;
        assert_eq!(seen, [Degraded, Degraded, Degraded, Up, Down, Degraded]);
        f.mark_fresh();
        assert_eq!(f.classify(&bad), Degraded);
        assert_eq!(f.classify(&ok), Up);
        // A window: its results, and the target's until its next success, are degraded.
        let in_window = Record {
            maintenance: true,
            ..bad.clone()
        };
        let seen: Vec<Outcome> = [&ok, &in_window, &bad, &ok, &bad]
            .into_iter()
            .map(|r| f.classify(r))
            .collect();
        assert_eq!(seen, [Up, Degraded, Degraded, Up, Down]);
    }
}
