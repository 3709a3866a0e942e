//! `GET /api/status`: every target's state, uptime over 1 h and the rollup windows (24 h,
//! 7 d, 30 d, 90 d, 365 d) with latency percentiles and the error budget left against its
//! SLO, alert state, latest result and the last 50 results, as JSON.

use serde::{Serialize, Serializer};
use time::OffsetDateTime;

use crate::board::{Board, State, TargetView, WINDOWS};
use crate::outcome::Outcome;
use crate::record::Record;
use crate::rollup::{self, Rollups, WindowStats};

/// The whole status document.
#[derive(Debug, Serialize)]
pub struct Status<'a> {
    /// When this document was built.
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    /// Configured targets in config order.
    pub targets: Targets<'a>,
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
    /// `up`, `degraded`, `down` or `unknown`.
    pub state: State,
    /// Probed by this process: always true, as only configured targets are listed (kept so
    /// that readers of the field go on working).
    pub configured: bool,
    /// Share of results that did not fail per window, shortest first (`1h`, `24h`, `7d`,
    /// `30d`, `90d`, `365d`); null without results.
    pub uptime: ByWindow<Option<f64>>,
    /// Per rollup window, in order: counts, uptime, latency percentiles, error budget.
    pub windows: ByWindow<WindowStats>,
    /// The target's SLO in percent (`slo:` in the targets file); absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slo: Option<f64>,
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
    /// How each of `recent` counts: `up`, `degraded` or `down`.
    pub recent_outcomes: Vec<Outcome>,
}

/// Values per window, serialised as a JSON object in window order, shortest first (a sorted
/// map would put `365d` before `7d`).
#[derive(Debug, Default)]
pub struct ByWindow<T>(pub Vec<(&'static str, T)>);

impl<T: Serialize> Serialize for ByWindow<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// Every configured target's status, built one target at a time as it is serialised: for
/// 1,000 targets the whole list would be a megabyte per request beside the JSON itself.
pub struct Targets<'a> {
    board: &'a Board,
    rollups: &'a Rollups,
    now: OffsetDateTime,
}

impl Serialize for Targets<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            self.board
                .targets()
                .map(|t| target_status(t, self.rollups, self.now)),
        )
    }
}

impl std::fmt::Debug for Targets<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(
                self.board
                    .targets()
                    .map(|t| target_status(t, self.rollups, self.now)),
            )
            .finish()
    }
}

/// Builds the status document from the board and the rollups.
pub fn status<'a>(board: &'a Board, rollups: &'a Rollups, now: OffsetDateTime) -> Status<'a> {
    Status {
        generated_at: now,
        targets: Targets {
            board,
            rollups,
            now,
        },
        other_results: board.other_results(),
    }
}

fn target_status<'a>(
    t: &'a TargetView,
    rollups: &Rollups,
    now: OffsetDateTime,
) -> TargetStatus<'a> {
    let series = rollups.get(&t.name);
    let windows = ByWindow(series.map(|s| s.windows(now)).unwrap_or_default());
    // The board's short windows the rollups do not cover (1 h), then the rollups'.
    let mut uptime: Vec<(&'static str, Option<f64>)> = WINDOWS
        .iter()
        .filter(|(name, _)| !rollup::WINDOWS.iter().any(|(r, _)| r == name))
        .map(|(name, secs)| (*name, t.uptime(*secs, now)))
        .collect();
    uptime.extend(windows.0.iter().map(|(name, w)| (*name, w.uptime)));
    TargetStatus {
        name: &t.name,
        url: &t.url,
        state: t.state(),
        configured: t.configured,
        uptime: ByWindow(uptime),
        windows,
        slo: series
            .and_then(rollup::Series::slo)
            .map(crate::slo::Slo::percent),
        consecutive_failures: t.alert.consecutive_failures,
        alerting: t.alert.firing(),
        maintenance_until: t.maintenance.until(now),
        last: t.last(),
        recent: t.recent.iter().collect(),
        recent_outcomes: t.outcomes.iter().copied().collect(),
    }
}
