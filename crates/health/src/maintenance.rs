//! Maintenance windows in Gatus' form: a recurring window (`start: "23:00"`, `duration: 1h`,
//! `timezone`, `every: [Monday, ...]`) or a one-off one (`until: <RFC3339>`, optional
//! `start: <RFC3339>`). Results taken inside a window are marked (`Record::maintenance`): they
//! send no alert notification, leave the alert state as it was (as Gatus, which skips alert
//! handling during a window) and are not charged to the SLO.
//!
//! Time zones come from the tz database compiled into the binary (images may have no
//! zoneinfo). A recurring start in a skipped hour (DST begins) starts when the clock would have
//! shown it, i.e. one hour later on the wall clock; in a repeated hour (DST ends) it starts at
//! the first occurrence. `duration` is elapsed time, whatever the clocks do meanwhile.

use std::time::Duration;

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::config::{ConfigError, Target};
use crate::record::Record;

/// The longest recurring window (as Gatus): a window a day long covers every day.
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// How far back `last_end` looks for a recurring window: a weekly one ended within 8 days.
const LOOK_BACK_DAYS: i64 = 8;

/// A target's maintenance windows (its own and the file's global one).
#[derive(Debug, Clone, Default)]
pub struct Maintenance {
    windows: Vec<Window>,
}

/// One validated window.
#[derive(Debug, Clone)]
enum Window {
    /// Every day (or every listed weekday) at `start` local time for `duration`.
    Recurring {
        start: Time,
        duration: SignedDuration,
        zone: TimeZone,
        /// Empty: every day.
        every: Vec<Weekday>,
    },
    /// Once, from `start` (or since ever) until `until`.
    Once {
        start: Option<Timestamp>,
        until: Timestamp,
    },
}

/// One window as written in YAML (`maintenance:` or an item of `maintenance-windows:`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWindow {
    /// Off when false (default true).
    enabled: Option<bool>,
    /// `hh:mm` (recurring) or RFC3339 (with `until`).
    start: Option<String>,
    /// Length of a recurring window, e.g. `1h` (more than 0, at most 24h).
    duration: Option<String>,
    /// IANA time zone of a recurring window (default UTC).
    timezone: Option<String>,
    /// Weekdays a recurring window starts on (default every day).
    every: Option<Vec<String>>,
    /// RFC3339 end of a one-off window.
    until: Option<String>,
}

/// A window's field at fault (relative to the window) and why.
pub(crate) type WindowError = (&'static str, String);

// === impl RawWindow ===

impl RawWindow {
    /// Validates the window; `None` when it is disabled.
    fn validate(self) -> Result<Option<Window>, WindowError> {
        if self.enabled == Some(false) {
            return Ok(None);
        }
        if let Some(until) = self.until {
            for (field, set) in [
                ("duration", self.duration.is_some()),
                ("timezone", self.timezone.is_some()),
                ("every", self.every.is_some()),
            ] {
                if set {
                    return Err((
                        field,
                        "only for a recurring window, not with `until`".into(),
                    ));
                }
            }
            let until = timestamp("until", &until)?;
            let start = self.start.map(|s| timestamp("start", &s)).transpose()?;
            if start.is_some_and(|s| s >= until) {
                return Err(("until", "must be after `start`".into()));
            }
            return Ok(Some(Window::Once { start, until }));
        }
        let start = self.start.ok_or((
            "start",
            "missing: write `start: \"23:00\"` with `duration`, or `until: <RFC3339>` for a one-off window".into(),
        ))?;
        let start = clock(&start)?;
        let duration = self
            .duration
            .ok_or(("duration", "missing: e.g. `duration: 1h`".into()))?;
        let duration = humantime::parse_duration(&duration)
            .map_err(|e| ("duration", format!("{duration:?} is not a duration ({e})")))?;
        if duration.is_zero() || duration > MAX_DURATION {
            return Err(("duration", "must be more than 0 and at most 24h".into()));
        }
        let zone = match self.timezone.as_deref() {
            None | Some("UTC") => TimeZone::UTC,
            Some(name) => jiff::tz::db().get(name).map_err(|_| {
                (
                    "timezone",
                    format!("{name:?} is not an IANA time zone (e.g. Europe/Amsterdam)"),
                )
            })?,
        };
        let every = self
            .every
            .unwrap_or_default()
            .iter()
            .map(|d| weekday(d))
            .collect::<Result<_, _>>()?;
        Ok(Some(Window::Recurring {
            start,
            duration: SignedDuration::try_from(duration)
                .map_err(|e| ("duration", e.to_string()))?,
            zone,
            every,
        }))
    }
}

fn timestamp(field: &'static str, raw: &str) -> Result<Timestamp, WindowError> {
    raw.parse().map_err(|_| {
        (
            field,
            format!("{raw:?} is not an RFC3339 time (e.g. 2026-12-24T22:00:00+01:00)"),
        )
    })
}

/// `hh:mm`, 00:00 to 23:59, as Gatus.
fn clock(raw: &str) -> Result<Time, WindowError> {
    let bad = || {
        (
            "start",
            format!("{raw:?} is not hh:mm between 00:00 and 23:59 (e.g. 23:00)"),
        )
    };
    let (h, m) = raw.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (i8, i8) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    Time::new(h, m, 0, 0).map_err(|_| bad())
}

/// Gatus' day names (`Monday`), in any case.
fn weekday(raw: &str) -> Result<Weekday, WindowError> {
    const DAYS: [(&str, Weekday); 7] = [
        ("monday", Weekday::Monday),
        ("tuesday", Weekday::Tuesday),
        ("wednesday", Weekday::Wednesday),
        ("thursday", Weekday::Thursday),
        ("friday", Weekday::Friday),
        ("saturday", Weekday::Saturday),
        ("sunday", Weekday::Sunday),
    ];
    DAYS.iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(raw))
        .map(|(_, d)| *d)
        .ok_or_else(|| {
            (
                "every",
                format!("{raw:?} is not a day name (Monday, Tuesday, ... Sunday)"),
            )
        })
}

/// Validates the file's global `maintenance` window and adds it to every target; errors
/// name the field, e.g. `maintenance.start`.
pub(crate) fn add_global(
    file: &str,
    raw: Option<RawWindow>,
    targets: &mut [Target],
) -> Result<(), ConfigError> {
    let Some(raw) = raw else { return Ok(()) };
    let window = raw
        .validate()
        .map_err(|(f, m)| ConfigError::new(file, None, Some(&format!("maintenance.{f}")), m))?;
    for t in targets {
        t.maintenance.windows.extend(window.clone());
    }
    Ok(())
}

/// Validates a target's `maintenance-windows`; errors name the field, e.g.
/// `maintenance-windows[1].start`.
pub(crate) fn for_target(own: Vec<RawWindow>) -> Result<Maintenance, (String, String)> {
    let mut windows = Vec::with_capacity(own.len());
    for (i, raw) in own.into_iter().enumerate() {
        let w = raw
            .validate()
            .map_err(|(f, m)| (format!("maintenance-windows[{i}].{f}"), m))?;
        windows.extend(w);
    }
    Ok(Maintenance { windows })
}

// === impl Maintenance ===

impl Maintenance {
    /// No window at all.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    /// The end of the window `at` is in (the latest end if several overlap); `None` outside.
    pub fn until(&self, at: OffsetDateTime) -> Option<OffsetDateTime> {
        let at = to_jiff(at);
        self.windows
            .iter()
            .flat_map(|w| w.occurrences(at, 2))
            .filter(|(start, end)| start.is_none_or(|s| s <= at) && at < *end)
            .map(|(_, end)| end)
            .max()
            .map(from_jiff)
    }

    /// The end of the latest window that ended at or before `at` (recurring ones: within the
    /// last 8 days).
    pub fn last_end(&self, at: OffsetDateTime) -> Option<OffsetDateTime> {
        let at = to_jiff(at);
        self.windows
            .iter()
            .flat_map(|w| w.occurrences(at, LOOK_BACK_DAYS))
            .map(|(_, end)| end)
            .filter(|end| *end <= at)
            .max()
            .map(from_jiff)
    }

    /// Marks a result taken inside a window.
    pub fn mark(&self, record: &mut Record) {
        record.maintenance = self.until(record.time).is_some();
    }
}

/// Whether `target` is in a maintenance window at `at`, and until when. The integration point
/// for alerting, the page and the status API.
pub fn in_maintenance(target: &Target, at: OffsetDateTime) -> Option<OffsetDateTime> {
    target.maintenance.until(at)
}

/// Whether a window of `target` ended after `since` and at or before `at`: with `since` the
/// time of the target's last success, this is "not yet succeeded since a window ended", which
/// shows the target as `degraded`.
pub fn window_ended(target: &Target, since: OffsetDateTime, at: OffsetDateTime) -> bool {
    target
        .maintenance
        .last_end(at)
        .is_some_and(|end| end > since)
}

// === impl Window ===

impl Window {
    /// `(start, end)` of the occurrences that began on the `days` local days before `at`'s,
    /// and on its own day.
    fn occurrences(&self, at: Timestamp, days: i64) -> Vec<(Option<Timestamp>, Timestamp)> {
        match self {
            Self::Once { start, until } => vec![(*start, *until)],
            Self::Recurring {
                start,
                duration,
                zone,
                every,
            } => {
                let today = at.to_zoned(zone.clone()).date();
                (0..=days)
                    .filter_map(|back| today.checked_sub(back.days()).ok())
                    .filter(|d| every.is_empty() || every.contains(&d.weekday()))
                    .filter_map(|d| occurrence(d, *start, *duration, zone))
                    .map(|(s, e)| (Some(s), e))
                    .collect()
            }
        }
    }
}

/// The window starting on local day `day`: `to_zoned` resolves a skipped start time forward
/// and a repeated one to its first occurrence (jiff's "compatible" rule, as RFC 5545).
fn occurrence(
    day: Date,
    start: Time,
    duration: SignedDuration,
    zone: &TimeZone,
) -> Option<(Timestamp, Timestamp)> {
    let begin = day
        .to_datetime(start)
        .to_zoned(zone.clone())
        .ok()?
        .timestamp();
    Some((begin, begin.checked_add(duration).ok()?))
}

fn to_jiff(t: OffsetDateTime) -> Timestamp {
    Timestamp::from_nanosecond(t.unix_timestamp_nanos()).unwrap_or(Timestamp::MIN)
}

fn from_jiff(t: Timestamp) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(t.as_nanosecond())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests;
