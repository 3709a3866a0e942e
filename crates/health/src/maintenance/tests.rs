use time::macros::datetime;

use super::*;

/// The windows of target `a` in a targets file with `global` (a `maintenance:` mapping, or
/// empty) and `own` (its `maintenance-windows:` list, or empty).
fn windows(global: &str, own: &str) -> Maintenance {
    let mut yaml = String::new();
    if !global.is_empty() {
        yaml.push_str(&format!("maintenance: {global}\n"));
    }
    yaml.push_str("targets:\n  - name: a\n    url: http://a/\n");
    if !own.is_empty() {
        yaml.push_str(&format!("    maintenance-windows: {own}\n"));
    }
    let targets = crate::config::parse_targets("t.yaml", &yaml).unwrap_or_else(|e| panic!("{e}"));
    targets[0].maintenance.clone()
}

fn error(global: &str, own: &str) -> String {
    let mut yaml = String::new();
    if !global.is_empty() {
        yaml.push_str(&format!("maintenance: {global}\n"));
    }
    yaml.push_str(&format!(
        "targets:\n  - name: a\n    url: http://a/\n    maintenance-windows: {own}\n"
    ));
    crate::config::parse_targets("t.yaml", &yaml)
        .unwrap_err()
        .to_string()
}

#[test]
fn a_daily_utc_window_covers_start_to_start_plus_duration() {
    let m = windows("{start: '23:00', duration: 2h}", "");
    assert_eq!(m.until(datetime!(2026-01-05 22:59:59 UTC)), None);
    assert_eq!(
        m.until(datetime!(2026-01-05 23:00 UTC)),
        Some(datetime!(2026-01-06 01:00 UTC))
    );
    // Past midnight it is still the window that began the day before.
    assert_eq!(
        m.until(datetime!(2026-01-06 00:59 UTC)),
        Some(datetime!(2026-01-06 01:00 UTC))
    );
    assert_eq!(m.until(datetime!(2026-01-06 01:00 UTC)), None);
}

#[test]
fn weekdays_name_the_day_a_window_starts_on() {
    // 2026-01-05 is a Monday.
    let m = windows(
        "",
        "[{start: '23:00', duration: 2h, every: [Monday, friday]}]",
    );
    assert!(m.until(datetime!(2026-01-05 23:30 UTC)).is_some(), "Monday");
    assert!(
        m.until(datetime!(2026-01-06 00:30 UTC)).is_some(),
        "Monday's, after midnight"
    );
    assert!(
        m.until(datetime!(2026-01-06 23:30 UTC)).is_none(),
        "Tuesday"
    );
    assert!(
        m.until(datetime!(2026-01-09 23:30 UTC)).is_some(),
        "Friday (any case)"
    );
    assert!(
        m.until(datetime!(2026-01-10 23:30 UTC)).is_none(),
        "Saturday"
    );
}

#[test]
fn a_time_zone_moves_the_window_with_its_offset() {
    let m = windows(
        "",
        "[{start: '23:00', duration: 1h, timezone: Europe/Amsterdam}]",
    );
    // Winter: CET, UTC+1.
    assert_eq!(
        m.until(datetime!(2026-01-15 22:30 UTC)),
        Some(datetime!(2026-01-15 23:00 UTC))
    );
    assert_eq!(m.until(datetime!(2026-01-15 23:30 UTC)), None);
    // Summer: CEST, UTC+2.
    assert_eq!(
        m.until(datetime!(2026-07-15 21:30 UTC)),
        Some(datetime!(2026-07-15 22:00 UTC))
    );
    assert_eq!(m.until(datetime!(2026-07-15 22:30 UTC)), None);
}

#[test]
fn a_start_in_the_skipped_hour_begins_when_the_clock_would_have_shown_it() {
    // 2026-03-29 02:00 CET the clocks jump to 03:00 CEST: 02:30 does not exist that day and
    // the window starts at 03:30 CEST (01:30 UTC), still lasting one hour.
    let m = windows(
        "",
        "[{start: '02:30', duration: 1h, timezone: Europe/Amsterdam}]",
    );
    assert_eq!(m.until(datetime!(2026-03-29 01:29 UTC)), None);
    assert_eq!(
        m.until(datetime!(2026-03-29 01:30 UTC)),
        Some(datetime!(2026-03-29 02:30 UTC))
    );
    // The days around it: 02:30 CET (01:30 UTC) before, 02:30 CEST (00:30 UTC) after.
    assert!(m.until(datetime!(2026-03-28 01:45 UTC)).is_some());
    assert!(m.until(datetime!(2026-03-30 00:45 UTC)).is_some());
    assert!(m.until(datetime!(2026-03-30 01:45 UTC)).is_none());
}

#[test]
fn a_start_in_the_repeated_hour_begins_at_its_first_occurrence() {
    // 2026-10-25 03:00 CEST the clocks go back to 02:00 CET: 02:30 happens at 00:30 UTC and
    // again at 01:30 UTC. The window starts at the first and lasts one hour of real time.
    let m = windows(
        "",
        "[{start: '02:30', duration: 1h, timezone: Europe/Amsterdam}]",
    );
    assert_eq!(m.until(datetime!(2026-10-25 00:29 UTC)), None);
    assert_eq!(
        m.until(datetime!(2026-10-25 00:30 UTC)),
        Some(datetime!(2026-10-25 01:30 UTC))
    );
    assert_eq!(m.until(datetime!(2026-10-25 01:30 UTC)), None, "not again");
}

#[test]
fn a_one_off_window_runs_from_start_until_until() {
    let m = windows(
        "",
        "[{start: '2026-12-24T22:00:00+01:00', until: '2026-12-25T02:00:00+01:00'}]",
    );
    assert_eq!(m.until(datetime!(2026-12-24 20:59 UTC)), None);
    assert_eq!(
        m.until(datetime!(2026-12-24 21:00 UTC)),
        Some(datetime!(2026-12-25 01:00 UTC))
    );
    assert_eq!(m.until(datetime!(2026-12-25 01:00 UTC)), None);
    // Without a start it has already begun.
    let m = windows("", "[{until: '2026-12-25T01:00:00Z'}]");
    assert!(m.until(datetime!(2020-01-01 0:00 UTC)).is_some());
    assert!(m.until(datetime!(2026-12-25 01:00 UTC)).is_none());
}

#[test]
fn the_global_window_applies_to_every_target_and_disabled_ones_to_none() {
    let m = windows(
        "{start: '23:00', duration: 1h}",
        "[{until: '2026-01-01T00:00:00Z'}]",
    );
    assert!(m.until(datetime!(2026-06-01 23:30 UTC)).is_some());
    assert!(m.until(datetime!(2025-06-01 12:00 UTC)).is_some());
    let m = windows("{enabled: false, start: '23:00', duration: 1h}", "");
    assert!(m.is_empty());
}

#[test]
fn last_end_and_window_ended_tell_whether_a_window_closed_since_a_time() {
    let m = windows("", "[{start: '23:00', duration: 1h, every: [Monday]}]");
    // Monday 2026-01-05 23:00 – 2026-01-06 00:00.
    let end = datetime!(2026-01-06 00:00 UTC);
    // The week before's.
    assert_eq!(
        m.last_end(datetime!(2026-01-05 23:30 UTC)),
        Some(datetime!(2025-12-30 00:00 UTC))
    );
    assert_eq!(m.last_end(datetime!(2026-01-06 00:00 UTC)), Some(end));
    assert_eq!(m.last_end(datetime!(2026-01-12 12:00 UTC)), Some(end));
    let target = {
        let mut t = crate::config::parse_targets("t", "targets: [{name: a, url: 'http://a/'}]")
            .unwrap()
            .remove(0);
        t.maintenance = m;
        t
    };
    let at = datetime!(2026-01-06 00:05 UTC);
    assert!(window_ended(&target, datetime!(2026-01-05 22:00 UTC), at));
    assert!(!window_ended(&target, datetime!(2026-01-06 00:01 UTC), at));
    assert!(in_maintenance(&target, datetime!(2026-01-05 23:01 UTC)).is_some());
}

#[test]
fn marks_results_taken_inside_a_window() {
    let m = windows("", "[{start: '12:00', duration: 10m}]");
    let mut inside = Record::sample("a", datetime!(2026-01-01 12:05 UTC), false);
    let mut outside = Record::sample("a", datetime!(2026-01-01 12:10 UTC), false);
    m.mark(&mut inside);
    m.mark(&mut outside);
    assert!(inside.maintenance);
    assert!(!outside.maintenance);
}

#[test]
fn errors_name_the_file_target_and_field() {
    let cases = [
        (
            "",
            "[{start: '24:00', duration: 1h}]",
            r#"t.yaml: target "a": field "maintenance-windows[0].start": "24:00" is not hh:mm between 00:00 and 23:59 (e.g. 23:00)"#,
        ),
        (
            "",
            "[{until: '2027-01-01T00:00:00Z'}, {start: '23:00', duration: 25h}]",
            r#"t.yaml: target "a": field "maintenance-windows[1].duration": must be more than 0 and at most 24h"#,
        ),
        (
            "",
            "[{start: '23:00', duration: 1h, timezone: Mars/Olympus}]",
            r#"t.yaml: target "a": field "maintenance-windows[0].timezone": "Mars/Olympus" is not an IANA time zone (e.g. Europe/Amsterdam)"#,
        ),
        (
            "",
            "[{start: '23:00', duration: 1h, every: [Funday]}]",
            r#"t.yaml: target "a": field "maintenance-windows[0].every": "Funday" is not a day name (Monday, Tuesday, ... Sunday)"#,
        ),
        (
            "",
            "[{until: 'tomorrow'}]",
            r#"t.yaml: target "a": field "maintenance-windows[0].until": "tomorrow" is not an RFC3339 time (e.g. 2026-12-24T22:00:00+01:00)"#,
        ),
        (
            "",
            "[{until: '2027-01-01T00:00:00Z', every: [Monday]}]",
            r#"t.yaml: target "a": field "maintenance-windows[0].every": only for a recurring window, not with `until`"#,
        ),
        (
            "",
            "[{start: '2027-01-02T00:00:00Z', until: '2027-01-01T00:00:00Z'}]",
            r#"t.yaml: target "a": field "maintenance-windows[0].until": must be after `start`"#,
        ),
        (
            "{start: '23:00'}",
            "[]",
            r#"t.yaml: field "maintenance.duration": missing: e.g. `duration: 1h`"#,
        ),
    ];
    for (global, own, want) in cases {
        assert_eq!(error(global, own), want, "{global} {own}");
    }
    let unknown = error("", "[{start: '23:00', duration: 1h, end: '01:00'}]");
    assert!(
        unknown.starts_with(
            r#"t.yaml: target "a": field "maintenance-windows[0].end": unknown field `end`"#
        ),
        "{unknown}"
    );
}
