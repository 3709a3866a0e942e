//! The incident note the leader keeps in the Lease: per target whether its alert fires (since
//! when) and the time of the result that last fired or resolved it. JSON, one entry per
//! configured target that ever changed: bounded by the config, far below the 256 KiB the API
//! server allows for all annotations.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::alert::AlertState;
use crate::board::Board;

/// One target's alert as the leader last changed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    /// When the alert fired; `None`: resolved (or never fired).
    #[serde(with = "time::serde::rfc3339::option")]
    pub firing_since: Option<OffsetDateTime>,
    /// The time of the result that fired or resolved it.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// Every target's [`Incident`], by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Incidents(BTreeMap<String, Incident>);

impl Incidents {
    /// Reads a note; one that cannot be read (another version wrote it, someone edited it) is
    /// logged and counts as empty: the history still holds what it can.
    pub fn parse(note: &str) -> Self {
        serde_json::from_str(note).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "ignoring an unreadable incident note in the lease");
            Self::default()
        })
    }

    /// The note as written to the Lease.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Records a target's change.
    pub fn set(&mut self, target: &str, incident: Incident) {
        self.0.insert(target.to_owned(), incident);
    }

    /// A target's entry.
    pub fn get(&self, target: &str) -> Option<&Incident> {
        self.0.get(target)
    }

    /// Puts each entry newer than the board's latest result for that target into the board:
    /// the note then knows more than the history this replica can see. Returns how many.
    pub fn merge_into(&self, board: &mut Board) -> usize {
        let mut merged = 0;
        for (name, incident) in &self.0 {
            let Some(view) = board.get(name) else {
                continue;
            };
            if view.last().is_some_and(|r| r.time >= incident.at) {
                continue;
            }
            // Counts restart: a firing alert resolves after `success` fresh successes and a
            // resolved one fires after `failure` fresh failures, never on the old leader's.
            let state = AlertState {
                firing_since: incident.firing_since,
                ..AlertState::default()
            };
            board.restore_alert(name, state);
            // Noted only on a fire or resolve, so the target paged: it is not new, and its
            // failures are outages, not the degraded results of a target never yet up.
            board.set_freshness(name, crate::outcome::Freshness { succeeded: true });
            merged += 1;
        }
        merged
    }

    /// The note after a take-over: the handed one, with every target whose alert state on
    /// `board` (after the merge) differs from its entry noted at the board's latest result, so
    /// the resolutions the note knew are kept for the next leader as well.
    pub fn updated_from(&self, board: &Board) -> Self {
        let mut incidents = self.clone();
        for view in board.targets() {
            let Some(last) = view.last() else { continue };
            let firing_since = view.alert.firing_since;
            if self.get(&view.name).map(|i| i.firing_since) != Some(firing_since)
                && (firing_since.is_some() || self.get(&view.name).is_some())
            {
                incidents.set(
                    &view.name,
                    Incident {
                        firing_since,
                        at: last.time,
                    },
                );
            }
        }
        incidents
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::alert::Thresholds;
    use crate::record::Record;

    fn board() -> Board {
        let targets = crate::config::parse_targets(
            "t",
            "targets: [{name: a, url: 'http://a/'}, {name: b, url: 'http://b/'}]",
        )
        .unwrap();
        Board::new(&targets, Thresholds::default())
    }

    #[test]
    fn the_note_wins_where_it_saw_a_later_result_than_the_board() {
        let t0 = datetime!(2026-01-01 12:00 UTC);
        let mut board = board();
        // `a`: the board saw it resolve at t0+5m, after the note's firing at t0: board wins.
        board.ingest(Record::sample("a", t0 + time::Duration::minutes(5), true));
        let mut note = Incidents::default();
        let firing = Incident {
            firing_since: Some(t0),
            at: t0,
        };
        note.set("a", firing);
        // `b`: nothing on this board (its own emptyDir history): the note's firing stands.
        note.set("b", firing);
        // A target no longer configured is ignored.
        note.set("gone", firing);
        let note = Incidents::parse(&note.to_json());
        assert_eq!(note.merge_into(&mut board), 1);
        assert!(!board.get("a").unwrap().alert.firing());
        assert_eq!(board.get("b").unwrap().alert.firing_since, Some(t0));
        // The alert resolves after `success` fresh successes, with no second firing.
        let mut transitions = Vec::new();
        for i in 1..=2 {
            let at = t0 + time::Duration::minutes(i);
            transitions.push(board.ingest(Record::sample("b", at, false)));
        }
        for i in 3..=4 {
            let at = t0 + time::Duration::minutes(i);
            transitions.push(board.ingest(Record::sample("b", at, true)));
        }
        use crate::alert::Transition::Resolved;
        assert_eq!(transitions, [None, None, None, Some(Resolved)]);
    }

    #[test]
    fn an_unreadable_note_is_empty_and_the_next_note_keeps_known_resolutions() {
        assert_eq!(Incidents::parse("{not json"), Incidents::default());
        let t0 = datetime!(2026-01-01 12:00 UTC);
        let mut note = Incidents::default();
        note.set(
            "a",
            Incident {
                firing_since: None,
                at: t0,
            },
        );
        let mut board = board();
        board.ingest(Record::sample("b", t0, false));
        board.restore_alert(
            "b",
            AlertState {
                firing_since: Some(t0),
                ..AlertState::default()
            },
        );
        let next = note.updated_from(&board);
        assert_eq!(next.get("a"), note.get("a"));
        assert_eq!(next.get("b").and_then(|i| i.firing_since), Some(t0));
    }
}
