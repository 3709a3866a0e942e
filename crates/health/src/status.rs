//! `GET /api/status`: every target's state, uptime over 1 h / 24 h / 7 d, alert state,
//! latest result and the last 50 results, as JSON.

use std::collections::BTreeMap;

use serde::Serialize;
use time::OffsetDateTime;

use crate::board::{Board, State, TargetView, WINDOWS};
use crate::record::Record;

/// The whole status document.
#[derive(Debug, Serialize)]
pub struct Status<'a> {
    /// When this document was built.
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    /// Configured targets in config order.
    pub targets: Vec<TargetStatus<'a>>,
    /// Results in the history of targets not in this config (counted, not shown).
    pub other_results: u64,
}

/// One target's status.
#[derive(Debug, Serialize)]
pub struct TargetStatus<'a> {
    /// Target name.
    pub name: &'a str,
    /// URL probed.
    pub url: &'a str,
    /// `up`, `down` or `unknown`.
    pub state: State,
    /// Probed by this process: always true, as only configured targets are listed (kept so
    /// that readers of the field go on working).
    pub configured: bool,
    /// Share of successes per window (`1h`, `24h`, `7d`); null without results.
    pub uptime: BTreeMap<&'static str, Option<f64>>,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// Whether the alert is firing.
    pub alerting: bool,
    /// End of the maintenance window the target is in now; null outside one.
    #[serde(with = "time::serde::rfc3339::option")]
    pub maintenance_until: Option<OffsetDateTime>,
    /// Latest result.
    pub last: Option<&'a Record>,
    /// Last results, oldest first (at most 50).
    pub recent: Vec<&'a Record>,
}

/// Builds the status document from the board.
pub fn status(board: &Board, now: OffsetDateTime) -> Status<'_> {
    Status {
        generated_at: now,
        targets: board.targets().map(|t| target_status(t, now)).collect(),
        other_results: board.other_results(),
    }
}

fn target_status(t: &TargetView, now: OffsetDateTime) -> TargetStatus<'_> {
    TargetStatus {
        name: &t.name,
        url: &t.url,
        state: t.state(),
        configured: t.configured,
        uptime: WINDOWS
            .iter()
            .map(|(name, secs)| (*name, t.uptime(*secs, now)))
            .collect(),
        consecutive_failures: t.alert.consecutive_failures,
        alerting: t.alert.firing(),
        maintenance_until: t.maintenance.until(now),
        last: t.last(),
        recent: t.recent.iter().collect(),
    }
}
