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

pub mod cache;
pub mod sketch;
pub mod store;
pub mod window;

use sketch::{Dense, Packed, Sketch};
pub use window::{Budget, Span, WINDOWS, WindowStats};

/// Hourly rollups kept: the `24h` window and two more.
pub const HOURS_KEPT: i64 = 26;
/// Daily counts kept: the `365d` window and one more day.
pub const DAYS_KEPT: i64 = 366;
/// Days whose latency sketch is kept by day (the `7d` and `30d` windows and slack); older
/// days' sketches are merged into their week (days since the epoch / 7), so the `90d` and
/// `365d` percentiles cover those days and the whole weeks inside the window. Counts stay
/// per day for all [`DAYS_KEPT`].
pub const SKETCH_DAYS: i64 = 35;

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
    sketch: Slot,
}

/// A sketch that stays open while its period gets results and is packed once a later one
/// starts; while `open` is set it is the sketch.
#[derive(Debug, Clone, Default)]
struct Slot {
    open: Option<Box<Sketch>>,
    packed: Packed,
}

/// One day's counts, flattened beside an `i32` day and an `f32` latency sum so that it takes
/// 20 bytes, not 32: a year of them is the largest part of every target's rollups in memory.
#[derive(Debug, Clone)]
struct Day {
    /// Days since the epoch (any `OffsetDateTime` is within ±3.7 million).
    day: i32,
    /// count, failures, degraded.
    counts: [u32; 3],
    /// Only for the mean latency: each add rounds it to 24 bits, which after a day of results
    /// a second is still within 0.5 % (the sketch's percentiles are within 2 %).
    latency_sum: f32,
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
    /// Latency sketches of the last [`SKETCH_DAYS`] days, by day.
    day_sketches: VecDeque<(i64, Slot)>,
    /// Latency sketches of older days, by week.
    weeks: VecDeque<(i64, Slot)>,
    /// The window stats last computed, until the rollups change or the hour turns over.
    cache: cache::WindowCache,
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
        s.add(t, |c| c.merge(&counts), |k| k.merge(sketch));
        s.freshness.succeeded |= counts.count > counts.failures;
        s.last_folded = s.last_folded.max(at.unix_timestamp_nanos());
    }

    /// The target counts as new again (say, a maintenance window ended).
    pub fn mark_fresh(&mut self, target: &str) {
        if let Some(s) = self.series.get_mut(target) {
            s.freshness.mark_fresh();
        }
    }

    /// The target has succeeded before, as another source knows (a new leader's board,
    /// resumed from the old leader's note): its failures are outages, not degraded results.
    pub fn mark_succeeded(&mut self, target: &str) {
        if let Some(s) = self.series.get_mut(target) {
            s.freshness.succeeded = true;
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
        let latency = record.response_time_seconds;
        let answered = outcome != Outcome::Down;
        self.add(
            record.time.unix_timestamp(),
            |c| add(c, outcome, latency),
            |k| {
                if answered {
                    k.add(latency);
                }
            },
        );
        self.last_folded = self.last_folded.max(record.time.unix_timestamp_nanos());
    }

    /// Adds to the hour and day of unix time `t`: `counts` to their counts, `sketch` to the
    /// latency sketches (the hour's, and the day's or, for an old day, its week's).
    fn add(&mut self, t: i64, counts: impl Fn(&mut Counts), sketch: impl Fn(&mut Sketch)) {
        self.cache.invalidate();
        let (hour, day) = (t.div_euclid(3600), t.div_euclid(86_400));
        let newest_hour = self.hours.back().map(|h| h.hour);
        if let Some(h) = slot(&mut self.hours, hour, HOURS_KEPT, |h| h.hour, Hour::new) {
            counts(&mut h.counts);
            sketch(h.sketch.open());
        }
        if newest_hour.is_some_and(|n| n < hour) {
            let newest = self.hours.back().map_or(i64::MIN, |h| h.hour);
            self.hours
                .iter_mut()
                .filter(|h| h.hour < newest)
                .for_each(|h| h.sketch.pack());
        }
        let newest_day = self.days.back().map(Day::at);
        let Some(d) = slot(&mut self.days, day, DAYS_KEPT, Day::at, Day::new) else {
            return;
        };
        let mut c = d.counts();
        counts(&mut c);
        *d = Day::with(day, c);
        let newest = self.days.back().map_or(day, Day::at);
        if day > newest - SKETCH_DAYS {
            if let Some((_, k)) = slot(&mut self.day_sketches, day, NO_LIMIT, |d| d.0, with_slot) {
                sketch(k.open());
            }
        } else if let Some((_, k)) = slot(
            &mut self.weeks,
            day.div_euclid(7),
            NO_LIMIT,
            |w| w.0,
            with_slot,
        ) {
            sketch(k.open());
            k.pack();
        }
        if newest_day.is_some_and(|n| n < day) {
            self.age_sketches();
        }
    }

    /// Moves day sketches older than [`SKETCH_DAYS`] into their weeks, drops weeks older
    /// than [`DAYS_KEPT`], packs every sketch but the newest day's.
    fn age_sketches(&mut self) {
        self.cache.invalidate();
        let newest = self.days.back().map_or(i64::MIN, Day::at);
        while let Some((day, _)) = self.day_sketches.front()
            && *day <= newest - SKETCH_DAYS
        {
            let Some((day, mut old)) = self.day_sketches.pop_front() else {
                break;
            };
            let merged = old.open().clone();
            if let Some((_, w)) = slot(
                &mut self.weeks,
                day.div_euclid(7),
                NO_LIMIT,
                |w| w.0,
                with_slot,
            ) {
                w.open().merge(&merged);
                w.pack();
            }
        }
        let oldest_week = (newest - DAYS_KEPT).div_euclid(7);
        while self.weeks.front().is_some_and(|w| w.0 < oldest_week) {
            self.weeks.pop_front();
        }
        self.day_sketches
            .iter_mut()
            .filter(|(d, _)| *d < newest)
            .for_each(|(_, k)| k.pack());
    }

    fn pack_closed_days(&mut self) {
        self.age_sketches();
    }

    /// The target's SLO, if it has one.
    pub fn slo(&self) -> Option<Slo> {
        self.slo
    }

    /// Every window's stats at `now`, in `WINDOWS` order: computed once per hour, and again
    /// after the rollups change.
    pub fn windows(&self, now: OffsetDateTime) -> Vec<(&'static str, WindowStats)> {
        let t = now.unix_timestamp();
        let key = (t.div_euclid(3600), t.div_euclid(86_400));
        self.cache.get_or_compute(key, || self.compute_windows(now))
    }

    /// Every window's stats at `now`, walked from the rollups.
    fn compute_windows(&self, now: OffsetDateTime) -> Vec<(&'static str, WindowStats)> {
        let t = now.unix_timestamp();
        let (hour, today) = (t.div_euclid(3600), t.div_euclid(86_400));
        let mut out = Vec::with_capacity(WINDOWS.len());
        let mut days = self.days.iter().rev().peekable();
        let mut sketches = self.day_sketches.iter().rev().peekable();
        let mut weeks = self.weeks.iter().rev().peekable();
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
                        h.sketch.add_to(&mut d);
                    }
                    out.push((name, finish(w, &d, s, self.slo)));
                }
                // Windows nest, so one pass from today backwards serves them all.
                Span::Days(n) => {
                    let inside = |d: i64| d > today - n && d <= today;
                    while let Some(d) = days.next_if(|d| d.at() > today - n) {
                        if d.at() <= today {
                            count(&mut acc, &d.counts(), &mut sum);
                        }
                    }
                    while let Some((d, k)) = sketches.next_if(|(d, _)| *d > today - n) {
                        if inside(*d) {
                            k.add_to(&mut dense);
                        }
                    }
                    // Whole weeks only: a week's days are all inside once its first is.
                    while let Some((_, k)) = weeks.next_if(|(w, _)| w * 7 > today - n) {
                        k.add_to(&mut dense);
                    }
                    out.push((name, finish(acc.clone(), &dense, sum, self.slo)));
                }
            }
        }
        out
    }
}

/// No limit on how many periods `slot` keeps (the caller ages them).
const NO_LIMIT: i64 = 1 << 40;

fn with_slot(at: i64) -> (i64, Slot) {
    (at, Slot::default())
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
    // Drop what falls out before inserting: a full list then reuses its room for the new
    // period instead of doubling its allocation (1,000 targets × a year of days).
    let dropped = list.iter().take_while(|x| key(x) <= at - keep).count();
    list.drain(..dropped);
    let i = list.partition_point(|x| key(x) < at);
    if list.get(i).is_none_or(|x| key(x) != at) {
        list.insert(i, new(at));
    }
    list.get_mut(i)
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
            sketch: Slot::default(),
        }
    }
}

impl Day {
    fn new(day: i64) -> Self {
        Self::with(day, Counts::default())
    }

    fn with(day: i64, c: Counts) -> Self {
        Self {
            // Out of range only for a damaged file's day: clamped, it ages out like any.
            day: i32::try_from(day).unwrap_or(if day < 0 { i32::MIN } else { i32::MAX }),
            counts: [c.count, c.failures, c.degraded],
            #[expect(clippy::cast_possible_truncation, reason = "see the field")]
            latency_sum: c.latency_sum as f32,
        }
    }

    fn at(&self) -> i64 {
        i64::from(self.day)
    }

    fn counts(&self) -> Counts {
        let [count, failures, degraded] = self.counts;
        Counts {
            count,
            failures,
            degraded,
            latency_sum: f64::from(self.latency_sum),
        }
    }
}

// === impl Slot ===

impl Slot {
    /// The open sketch (a result for a packed period reopens it).
    fn open(&mut self) -> &mut Sketch {
        let packed = &self.packed;
        self.open.get_or_insert_with(|| Box::new(packed.unpack()))
    }

    fn pack(&mut self) {
        if let Some(s) = self.open.take() {
            self.packed = s.pack();
        }
    }

    fn add_to(&self, dense: &mut Dense) {
        match &self.open {
            Some(s) => dense.add(s),
            None => dense.add_packed(&self.packed),
        }
    }

    /// The packed form, without packing self.
    fn packed(&self) -> Packed {
        self.open
            .as_ref()
            .map_or_else(|| self.packed.clone(), |s| s.pack())
    }

    fn from_packed(packed: Packed) -> Self {
        Self { open: None, packed }
    }
}

#[cfg(test)]
mod tests;
