//! The in-memory view the status page and `GET /api/status` render: per target the last 50
//! results, the alert state, and success counts in minute buckets (1 h) and hour buckets
//! (24 h, 7 d) for uptime. Bounded: 50 results and 228 buckets per configured target; results
//! of other targets (a CronJob with another config shares the history) are only counted, so a
//! history naming any number of targets cannot grow the board.

use std::collections::{BTreeMap, VecDeque};

use time::OffsetDateTime;

use crate::alert::{AlertState, Thresholds, Transition};
use crate::config::Target;
use crate::maintenance::Maintenance;
use crate::outcome::{Freshness, Outcome};
use crate::record::Record;

/// Results kept per target for the bars and the sparkline.
pub const RECENT: usize = 50;
const MINUTES: i64 = 60;
const HOURS: i64 = 7 * 24;

/// Every configured target's view, in config order.
#[derive(Debug, Default)]
pub struct Board {
    targets: BTreeMap<String, TargetView>,
    order: Vec<String>,
    thresholds: Thresholds,
    /// Results seen for targets not in the config (not shown).
    other_results: u64,
}

/// One target's view.
#[derive(Debug, Clone)]
pub struct TargetView {
    /// Target name.
    pub name: String,
    /// URL from the config.
    pub url: String,
    /// Whether this process probes it (always: only configured targets are on the board).
    pub configured: bool,
    /// Latest results, oldest first.
    pub recent: VecDeque<Record>,
    /// Fire/resolve state.
    pub alert: AlertState,
    /// The target's maintenance windows (for the page and the status API).
    pub maintenance: Maintenance,
    /// Whether the target has succeeded since it was added or marked fresh.
    pub freshness: Freshness,
    /// How each of `recent` counts (same order).
    pub outcomes: VecDeque<Outcome>,
    minutes: VecDeque<Bucket>,
    hours: VecDeque<Bucket>,
}

/// Up, down, or no result yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// The latest result succeeded.
    Up,
    /// The latest result failed.
    Down,
    /// The latest result passed only after a retry, or the target has not succeeded yet.
    Degraded,
    /// No result yet.
    Unknown,
}

/// Uptime windows shown on the page and in the API.
pub const WINDOWS: [(&str, i64); 3] = [("1h", 3600), ("24h", 86_400), ("7d", 604_800)];

#[derive(Debug, Clone, Copy)]
struct Bucket {
    start: i64,
    ok: u32,
    total: u32,
}

// === impl Board ===

impl Board {
    /// A board listing `targets` (in this order) before any result arrives.
    pub fn new(targets: &[Target], thresholds: Thresholds) -> Self {
        let mut board = Self {
            thresholds,
            ..Self::default()
        };
        for t in targets {
            board.order.push(t.name.clone());
            let mut view = TargetView::new(&t.name, &t.url.to_string(), true);
            view.maintenance = t.maintenance.clone();
            board.targets.insert(t.name.clone(), view);
        }
        board
    }

    /// Forgets every result (the history was rewritten); keeps the configured targets and
    /// whether each has succeeded.
    pub fn clear(&mut self) {
        for v in self.targets.values_mut() {
            let maintenance = std::mem::take(&mut v.maintenance);
            let freshness = v.freshness;
            *v = TargetView::new(&v.name, &v.url, true);
            v.maintenance = maintenance;
            v.freshness = freshness;
        }
        self.other_results = 0;
    }

    /// Adds one result; returns the alert transition it causes. A result of a target not in
    /// the config is only counted.
    pub fn ingest(&mut self, record: Record) -> Option<Transition> {
        let Some(view) = self.targets.get_mut(&record.target) else {
            self.other_results += 1;
            return None;
        };
        view.add(record, self.thresholds)
    }

    /// Sets whether a target has succeeded (from the rollups, which outlive the history).
    pub fn set_freshness(&mut self, name: &str, freshness: Freshness) {
        if let Some(v) = self.targets.get_mut(name) {
            v.freshness = freshness;
        }
    }

    /// Results seen for targets not in the config since the board was built or cleared.
    pub fn other_results(&self) -> u64 {
        self.other_results
    }

    /// Every target's alert state, to carry across a rebuild from a rewritten history.
    pub fn alert_states(&self) -> Vec<(String, AlertState)> {
        self.targets
            .values()
            .map(|v| (v.name.clone(), v.alert.clone()))
            .collect()
    }

    /// Puts back a target's alert state (see `alert_states`).
    pub fn restore_alert(&mut self, name: &str, state: AlertState) {
        if let Some(v) = self.targets.get_mut(name) {
            v.alert = state;
        }
    }

    /// Targets in display order.
    pub fn targets(&self) -> impl Iterator<Item = &TargetView> {
        self.order.iter().filter_map(|n| self.targets.get(n))
    }

    /// One target.
    pub fn get(&self, name: &str) -> Option<&TargetView> {
        self.targets.get(name)
    }
}

// === impl TargetView ===

impl TargetView {
    fn new(name: &str, url: &str, configured: bool) -> Self {
        Self {
            name: name.to_owned(),
            url: url.to_owned(),
            configured,
            // Grown as results come rather than reserved: a result is hundreds of bytes, and
            // 1,000 targets with room for RECENT each held 17 MiB before their first probe.
            recent: VecDeque::new(),
            alert: AlertState::default(),
            maintenance: Maintenance::default(),
            freshness: Freshness::default(),
            outcomes: VecDeque::new(),
            minutes: VecDeque::new(),
            hours: VecDeque::new(),
        }
    }

    fn add(&mut self, record: Record, thresholds: Thresholds) -> Option<Transition> {
        let t = record.time.unix_timestamp();
        add_to(&mut self.minutes, t.div_euclid(60), MINUTES, record.success);
        add_to(&mut self.hours, t.div_euclid(3600), HOURS, record.success);
        let outcome = self.freshness.classify(&record);
        let transition = if outcome == Outcome::Degraded {
            // It answered, so the failure run ends; it is no clean pass, so it resolves nothing.
            self.alert.consecutive_failures = 0;
            self.alert.consecutive_successes = 0;
            None
        } else {
            self.alert.observe(&record, thresholds)
        };
        if self.recent.len() == RECENT {
            self.recent.pop_front();
            self.outcomes.pop_front();
        }
        self.recent.push_back(record);
        self.outcomes.push_back(outcome);
        transition
    }

    /// The latest result.
    pub fn last(&self) -> Option<&Record> {
        self.recent.back()
    }

    /// Up, degraded, down or unknown, from the latest result.
    pub fn state(&self) -> State {
        match self.outcomes.back() {
            None => State::Unknown,
            Some(Outcome::Up) => State::Up,
            Some(Outcome::Degraded) => State::Degraded,
            Some(Outcome::Down) => State::Down,
        }
    }

    /// Share of successful results in the last `seconds` before `now` (None: no results).
    pub fn uptime(&self, seconds: i64, now: OffsetDateTime) -> Option<f64> {
        let now = now.unix_timestamp();
        let (buckets, width) = if seconds <= MINUTES * 60 {
            (&self.minutes, 60)
        } else {
            (&self.hours, 3600)
        };
        let from = (now - seconds).div_euclid(width) + 1;
        let (ok, total) = buckets
            .iter()
            .filter(|b| b.start >= from)
            .fold((0u64, 0u64), |(o, t), b| {
                (o + u64::from(b.ok), t + u64::from(b.total))
            });
        (total > 0).then(|| ok as f64 / total as f64)
    }
}

/// Counts a result in its bucket; buckets stay sorted and at most `keep` wide.
fn add_to(buckets: &mut VecDeque<Bucket>, start: i64, keep: i64, ok: bool) {
    let newest = buckets.back().map_or(i64::MIN, |b| b.start);
    if start > newest {
        buckets.push_back(Bucket {
            start,
            ok: 0,
            total: 0,
        });
        while buckets.front().is_some_and(|b| b.start <= start - keep) {
            buckets.pop_front();
        }
    } else if start <= newest - keep {
        return; // older than the window
    } else if !buckets.iter().any(|b| b.start == start) {
        let at = buckets.partition_point(|b| b.start < start);
        buckets.insert(
            at,
            Bucket {
                start,
                ok: 0,
                total: 0,
            },
        );
    }
    if let Some(b) = buckets.iter_mut().rev().find(|b| b.start == start) {
        b.total += 1;
        b.ok += u32::from(ok);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn rec(target: &str, time: OffsetDateTime, success: bool) -> Record {
        Record::sample(target, time, success)
    }

    /// A board with the one configured target `a`.
    fn board_a(thresholds: Thresholds) -> Board {
        let targets =
            crate::config::parse_targets("t", "targets: [{name: a, url: 'http://a/'}]").unwrap();
        Board::new(&targets, thresholds)
    }

    #[test]
    fn lists_configured_targets_in_order_and_only_counts_others() {
        let targets = crate::config::parse_targets(
            "t",
            "targets: [{name: b, url: 'http://b/'}, {name: a, url: 'http://a/'}]",
        )
        .unwrap();
        let mut board = Board::new(&targets, Thresholds::default());
        let now = datetime!(2026-01-01 12:00 UTC);
        for i in 0..1000 {
            board.ingest(rec(&format!("cron-only-{i}"), now, true));
        }
        board.ingest(rec("a", now, true));
        let names: Vec<_> = board
            .targets()
            .map(|t| (t.name.as_str(), t.state()))
            .collect();
        assert_eq!(names, [("b", State::Unknown), ("a", State::Up)]);
        assert_eq!(board.other_results(), 1000);
        board.clear();
        assert_eq!(board.targets().count(), 2);
        assert_eq!(board.other_results(), 0);
        assert_eq!(board.get("a").unwrap().state(), State::Unknown);
    }

    #[test]
    fn keeps_the_last_fifty_results() {
        let mut board = board_a(Thresholds::default());
        let t0 = datetime!(2026-01-01 12:00 UTC);
        for i in 0..60 {
            board.ingest(rec("a", t0 + time::Duration::seconds(i), i != 59));
        }
        let v = board.get("a").unwrap();
        assert_eq!(v.recent.len(), RECENT);
        assert_eq!(
            v.recent.front().unwrap().time,
            t0 + time::Duration::seconds(10)
        );
        assert_eq!(v.state(), State::Down);
    }

    #[test]
    fn uptime_counts_results_inside_each_window() {
        let mut board = board_a(Thresholds::default());
        let now = datetime!(2026-01-08 12:00 UTC);
        // 2 days ago: 3 failures; 2 hours ago: 1 failure; last 30 minutes: 4 successes.
        for i in 0..3 {
            board.ingest(rec(
                "a",
                now - time::Duration::days(2) + time::Duration::minutes(i),
                false,
            ));
        }
        board.ingest(rec("a", now - time::Duration::hours(2), false));
        for i in 0..4 {
            board.ingest(rec("a", now - time::Duration::minutes(30 - i), true));
        }
        // Out of order (a concurrent run): still counted.
        board.ingest(rec("a", now - time::Duration::minutes(45), true));
        let v = board.get("a").unwrap();
        assert_eq!(v.uptime(3600, now), Some(1.0));
        assert_eq!(v.uptime(86_400, now), Some(5.0 / 6.0));
        assert_eq!(v.uptime(604_800, now), Some(5.0 / 9.0));
        assert_eq!(v.uptime(3600, now + time::Duration::days(30)), None);
    }

    #[test]
    fn ingest_reports_alert_transitions() {
        let mut board = board_a(Thresholds {
            failure: 2,
            success: 1,
        });
        let t = datetime!(2026-01-01 12:00 UTC);
        // Before its first success a target's failures are degraded and never fire.
        assert_eq!(board.ingest(rec("a", t, false)), None);
        assert_eq!(board.ingest(rec("a", t, false)), None);
        assert_eq!(board.get("a").unwrap().state(), State::Degraded);
        assert_eq!(board.ingest(rec("a", t, true)), None);
        assert_eq!(board.ingest(rec("a", t, false)), None);
        assert_eq!(board.ingest(rec("a", t, false)), Some(Transition::Fired));
        assert_eq!(board.ingest(rec("a", t, true)), Some(Transition::Resolved));
    }
}
