//! Rollups: per configured target, per hour (the last [`HOURS_KEPT`]) and per UTC day (the
//! last [`DAYS_KEPT`]), the count of results, failures, degraded results, the latency sum and
//! a latency sketch. They answer the uptime windows (see `window`) in space that grows with
//! targets × days, not with probes, and are kept beside the history (see `store`).
//!
//! `healthcheck serve` folds every result it reads from the history tail (its own and those
//! CronJob runs append); `healthcheck run` never folds. Which results are folded is tracked
//! by the tail's position, saved atomically with the rollups, so a restart folds exactly the
//! results after it.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::config::Target;
use crate::history::{Position, TailRead};
use crate::outcome::{Freshness, Outcome};
use crate::record::Record;
use crate::slo::Slo;

pub mod sketch;
pub mod store;
pub mod window;

use sketch::{Dense, Packed, Sketch};
pub use window::{Budget, Span, WINDOWS, WindowStats};

/// Hourly rollups kept: the `24h` window and the day before it.
pub const HOURS_KEPT: i64 = 48;
/// Daily rollups kept: the `365d` window and one more day.
pub const DAYS_KEPT: i64 = 366;

/// Counts of one hour or day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Results.
    pub count: u32,
    /// Failed results.
    pub failures: u32,
    /// Degraded results.
    pub degraded: u32,
    /// Sum of `response_time_seconds` of the results that did not fail.
    pub latency_sum: f64,
}

#[derive(Debug, Clone)]
struct Hour {
    hour: i64,
    counts: Counts,
    sketch: Sketch,
}

/// A day's sketch stays open while results arrive and is packed once a later day starts;
/// while `open` is set it is the sketch.
#[derive(Debug, Clone, Default)]
struct DaySketch {
    open: Option<Sketch>,
    packed: Packed,
}

#[derive(Debug, Clone)]
struct Day {
    day: i64,
    counts: Counts,
    sketch: DaySketch,
}

/// One target's rollups.
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// Whether the target has succeeded since it was added or marked fresh.
    pub freshness: Freshness,
    /// Unix nanoseconds of the newest result folded (what a rewritten history is folded
    /// from, see `Rollups::fold_new`).
    pub last_folded: i128,
    slo: Option<Slo>,
    hours: VecDeque<Hour>,
    days: VecDeque<Day>,
}

/// Every configured target's rollups.
#[derive(Debug, Default)]
pub struct Rollups {
    series: BTreeMap<String, Series>,
}

// === impl Rollups ===

impl Rollups {
    /// Empty rollups for `targets` (with their SLOs).
    pub fn new(targets: &[Target]) -> Self {
        let series = targets
            .iter()
            .map(|t| {
                let s = Series {
                    slo: t.slo,
                    last_folded: i128::MIN,
                    ..Series::default()
                };
                (t.name.clone(), s)
            })
            .collect();
        Self { series }
    }

    /// Folds one result; results of targets not configured are ignored.
    pub fn fold(&mut self, record: &Record) {
        if let Some(s) = self.series.get_mut(&record.target) {
            s.fold(record);
        }
    }

    /// Folds only the results newer than the newest folded one of their target: for a
    /// history another process rewrote, where the tail position no longer says what was read.
    pub fn fold_new(&mut self, records: &[Record]) {
        // The marks as they were before this read: results of this read that are older than
        // ones before them in the file (a CronJob's, appended late) are new all the same.
        let marks: BTreeMap<String, i128> = self
            .series
            .iter()
            .map(|(name, s)| (name.clone(), s.last_folded))
            .collect();
        for r in records {
            if let (Some(s), Some(mark)) = (self.series.get_mut(&r.target), marks.get(&r.target))
                && r.time.unix_timestamp_nanos() > *mark
            {
                s.fold(r);
            }
        }
    }

    /// Folds the results of a tail read that the rollups do not hold yet. `saved` is the
    /// position saved with the rollups, `now` the tail's after the read: in the same file,
    /// exactly the records past `saved` are new; in a file rewritten since (retention by
    /// another process), the records newer than each target's newest folded one.
    pub fn fold_read(&mut self, read: &TailRead, saved: Option<Position>, now: Option<Position>) {
        match (saved, now) {
            (Some(s), Some(n)) if (s.dev, s.ino) == (n.dev, n.ino) && s.offset <= n.offset => {
                for (r, end) in read.records.iter().zip(&read.ends) {
                    if *end > s.offset {
                        self.fold(r);
                    }
                }
            }
            _ => self.fold_new(&read.records),
        }
    }

    /// Adds an hour of results counted elsewhere (`at` is any time in the hour): how the
    /// benchmark's generator builds a year of rollups without a year of probes.
    pub fn fold_hour(&mut self, target: &str, at: OffsetDateTime, counts: Counts, sketch: &Sketch) {
        let Some(s) = self.series.get_mut(target) else {
            return;
        };
        let t = at.unix_timestamp();
        let (hour, day) = (t.div_euclid(3600), t.div_euclid(86_400));
        if let Some(h) = slot(&mut s.hours, hour, HOURS_KEPT, |h| h.hour, Hour::new) {
            h.counts.merge(&counts);
            h.sketch.merge(sketch);
        }
        let newest = s.days.back().map(|d| d.day);
        if let Some(d) = slot(&mut s.days, day, DAYS_KEPT, |d| d.day, Day::new) {
            d.counts.merge(&counts);
            d.sketch.open().merge(sketch);
        }
        if newest.is_some_and(|n| n < day) {
            s.pack_closed_days();
        }
        s.freshness.succeeded |= counts.count > counts.failures;
        s.last_folded = s.last_folded.max(at.unix_timestamp_nanos());
    }

    /// The target counts as new again (say, a maintenance window ended).
    pub fn mark_fresh(&mut self, target: &str) {
        if let Some(s) = self.series.get_mut(target) {
            s.freshness.mark_fresh();
        }
    }

    /// One target's rollups.
    pub fn get(&self, target: &str) -> Option<&Series> {
        self.series.get(target)
    }

    /// Packs the sketches of days that are over (they only change for late results).
    pub fn pack_closed_days(&mut self) {
        for s in self.series.values_mut() {
            s.pack_closed_days();
        }
    }

    pub(crate) fn series_mut(&mut self) -> &mut BTreeMap<String, Series> {
        &mut self.series
    }

    pub(crate) fn series(&self) -> &BTreeMap<String, Series> {
        &self.series
    }
}

// === impl Series ===

impl Series {
    fn fold(&mut self, record: &Record) {
        let outcome = self.freshness.classify(record);
        let t = record.time.unix_timestamp();
        let latency = record.response_time_seconds;
        let (hour, day) = (t.div_euclid(3600), t.div_euclid(86_400));
        if let Some(h) = slot(&mut self.hours, hour, HOURS_KEPT, |h| h.hour, Hour::new) {
            add(&mut h.counts, outcome, latency);
            if outcome != Outcome::Down {
                h.sketch.add(latency);
            }
        }
        let newest = self.days.back().map(|d| d.day);
        if let Some(d) = slot(&mut self.days, day, DAYS_KEPT, |d| d.day, Day::new) {
            add(&mut d.counts, outcome, latency);
            if outcome != Outcome::Down {
                d.sketch.open().add(latency);
            }
        }
        if newest.is_some_and(|n| n < day) {
            self.pack_closed_days();
        }
        self.last_folded = self.last_folded.max(record.time.unix_timestamp_nanos());
    }

    fn pack_closed_days(&mut self) {
        let newest = self.days.back().map_or(i64::MIN, |d| d.day);
        for d in self.days.iter_mut().filter(|d| d.day < newest) {
            d.sketch.pack();
        }
    }

    /// The target's SLO, if it has one.
    pub fn slo(&self) -> Option<Slo> {
        self.slo
    }

    /// Every window's stats at `now`, in `WINDOWS` order.
    pub fn windows(&self, now: OffsetDateTime) -> Vec<(&'static str, WindowStats)> {
        let t = now.unix_timestamp();
        let (hour, today) = (t.div_euclid(3600), t.div_euclid(86_400));
        let mut out = Vec::with_capacity(WINDOWS.len());
        let mut days = self.days.iter().rev().peekable();
        let (mut acc, mut dense, mut sum) = (WindowStats::default(), Dense::default(), 0.0);
        for (name, span) in WINDOWS {
            match span {
                Span::Hours(n) => {
                    let (mut w, mut d, mut s) = (WindowStats::default(), Dense::default(), 0.0);
                    for h in self
                        .hours
                        .iter()
                        .filter(|h| h.hour > hour - n && h.hour <= hour)
                    {
                        count(&mut w, &h.counts, &mut s);
                        d.add(&h.sketch);
                    }
                    out.push((name, finish(w, &d, s, self.slo)));
                }
                // Windows nest, so one pass from today backwards serves them all.
                Span::Days(n) => {
                    while let Some(d) = days.next_if(|d| d.day > today - n) {
                        if d.day > today {
                            continue;
                        }
                        count(&mut acc, &d.counts, &mut sum);
                        match &d.sketch.open {
                            Some(s) => dense.add(s),
                            None => dense.add_packed(&d.sketch.packed),
                        }
                    }
                    out.push((name, finish(acc.clone(), &dense, sum, self.slo)));
                }
            }
        }
        out
    }
}

fn count(w: &mut WindowStats, c: &Counts, latency_sum: &mut f64) {
    w.count += u64::from(c.count);
    w.failures += u64::from(c.failures);
    w.degraded += u64::from(c.degraded);
    *latency_sum += c.latency_sum;
}

fn finish(w: WindowStats, dense: &Dense, latency_sum: f64, slo: Option<Slo>) -> WindowStats {
    WindowStats {
        latency: dense.percentiles(),
        ..w
    }
    .finish(latency_sum, slo)
}

fn add(c: &mut Counts, outcome: Outcome, latency: f64) {
    c.count = c.count.saturating_add(1);
    match outcome {
        Outcome::Down => c.failures = c.failures.saturating_add(1),
        Outcome::Degraded => c.degraded = c.degraded.saturating_add(1),
        Outcome::Up => {}
    }
    if outcome != Outcome::Down {
        c.latency_sum += latency;
    }
}

/// The rollup for period `at`, created in order if missing; None when `at` is older than the
/// `keep` newest periods. Drops periods that fall out of `keep`.
fn slot<T>(
    list: &mut VecDeque<T>,
    at: i64,
    keep: i64,
    key: impl Fn(&T) -> i64,
    new: impl FnOnce(i64) -> T,
) -> Option<&mut T> {
    let newest = list.back().map_or(i64::MIN, &key);
    if newest != i64::MIN && at <= newest - keep {
        return None;
    }
    let i = list.partition_point(|x| key(x) < at);
    if list.get(i).is_none_or(|x| key(x) != at) {
        list.insert(i, new(at));
    }
    let dropped = list.iter().take_while(|x| key(x) <= at - keep).count();
    list.drain(..dropped);
    list.get_mut(i - dropped)
}

// === impl Counts ===

impl Counts {
    fn merge(&mut self, other: &Counts) {
        self.count = self.count.saturating_add(other.count);
        self.failures = self.failures.saturating_add(other.failures);
        self.degraded = self.degraded.saturating_add(other.degraded);
        self.latency_sum += other.latency_sum;
    }
}

// === impl Hour, Day ===

impl Hour {
    fn new(hour: i64) -> Self {
        Self {
            hour,
            counts: Counts::default(),
            sketch: Sketch::default(),
        }
    }
}

impl Day {
    fn new(day: i64) -> Self {
        Self {
            day,
            counts: Counts::default(),
            sketch: DaySketch::default(),
        }
    }
}

// === impl DaySketch ===

impl DaySketch {
    /// The open sketch (a late result reopens a packed day).
    fn open(&mut self) -> &mut Sketch {
        let packed = &self.packed;
        self.open.get_or_insert_with(|| packed.unpack())
    }

    fn pack(&mut self) {
        if let Some(s) = self.open.take() {
            self.packed = s.pack();
        }
    }
}

#[cfg(test)]
mod tests;
