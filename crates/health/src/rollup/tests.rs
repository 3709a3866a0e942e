use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::*;

fn targets(yaml: &str) -> Vec<Target> {
    crate::config::parse_targets("t", yaml).unwrap()
}

fn rec(time: OffsetDateTime, success: bool, latency: f64) -> Record {
    Record {
        response_time_seconds: latency,
        ..Record::sample("a", time, success)
    }
}

fn window<'a>(w: &'a [(&'static str, WindowStats)], name: &str) -> &'a WindowStats {
    &w.iter().find(|(n, _)| *n == name).unwrap().1
}

/// A year of one result an hour: a failure every 100th, a retried pass every 50th; every
/// window counts exactly its days, and the budget follows from the counts.
#[test]
fn windows_count_their_days_and_spend_the_budget() {
    let mut r = Rollups::new(&targets(
        "targets: [{name: a, url: 'http://a/', slo: 99.5%}]",
    ));
    let now = datetime!(2026-12-31 12:30 UTC);
    let start = now - Duration::days(400);
    let mut t = start;
    let mut i = 0u64;
    while t <= now {
        let mut x = rec(t, i % 100 != 1, 0.010 + (i % 10) as f64 * 0.001);
        if i % 50 == 7 {
            x.attempts = 2;
        }
        r.fold(&x);
        t += Duration::hours(1);
        i += 1;
    }
    let w = r.get("a").unwrap().windows(now);
    let names: Vec<&str> = w.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["24h", "7d", "30d", "90d", "365d"]);
    // 24 h: the current hour and the 23 before it.
    assert_eq!(window(&w, "24h").count, 24);
    // Days: today (13 results, 00:00..12:00 at :30 past each start hour) and whole days.
    for (name, days) in [("7d", 6), ("30d", 29), ("90d", 89), ("365d", 364)] {
        let s = window(&w, name);
        assert_eq!(s.count, 24 * days + 13, "{name}");
        let failures = s.failures as f64;
        assert!(
            (failures - s.count as f64 / 100.0).abs() <= 1.0,
            "{name}: {s:?}"
        );
        assert!(
            (s.degraded as f64 - s.count as f64 / 50.0).abs() <= 1.0,
            "{name}: {s:?}"
        );
        assert_eq!(
            s.uptime,
            Some((s.count - s.failures) as f64 / s.count as f64)
        );
        let b = s.budget.unwrap();
        assert!((b.allowed_failures - 0.005 * s.count as f64).abs() < 1e-9);
        assert!((b.remaining - (1.0 - failures / b.allowed_failures)).abs() < 1e-12);
        let p = s.latency.unwrap();
        // Latencies 10..19 ms evenly: the median is 14 or 15 ms.
        assert!(
            p.p50 >= 0.014 * 0.98 && p.p50 <= 0.015 * 1.02,
            "{name}: {p:?}"
        );
        assert!((p.p99 - 0.019).abs() <= 0.019 * 0.021, "{name}: {p:?}");
    }
    // Only 366 days and 48 hours are kept however long it runs.
    let s = r.get("a").unwrap();
    assert_eq!(s.days.len(), DAYS_KEPT as usize);
    assert_eq!(s.hours.len(), HOURS_KEPT as usize);
    // Sketches: the last 35 days by day (only today's open), older ones by week.
    assert_eq!(s.day_sketches.len(), SKETCH_DAYS as usize);
    assert_eq!(
        s.day_sketches
            .iter()
            .filter(|(_, k)| k.open.is_some())
            .count(),
        1
    );
    // The other 331 of the 366 days: 48 or 49 weeks, partial ones at both ends.
    assert!((48..=49).contains(&s.weeks.len()), "{}", s.weeks.len());
    assert!(s.weeks.iter().all(|(_, k)| k.open.is_none()));
}

#[test]
fn degraded_results_count_apart_and_spend_no_budget() {
    let mut r = Rollups::new(&targets("targets: [{name: a, url: 'http://a/', slo: 99%}]"));
    let t = datetime!(2026-06-01 10:00 UTC);
    // Two failures before the first success: degraded, not failures.
    r.fold(&rec(t, false, 0.5));
    r.fold(&rec(t, false, 0.5));
    r.fold(&rec(t, true, 0.010));
    r.fold(&rec(t, false, 0.0));
    let w = r.get("a").unwrap().windows(t);
    let d = window(&w, "7d");
    assert_eq!((d.count, d.failures, d.degraded), (4, 1, 2));
    assert_eq!(d.uptime, Some(0.75));
    // Failed results add no latency; degraded ones do.
    assert!((d.latency_mean.unwrap() - (0.5 + 0.5 + 0.010) / 3.0).abs() < 1e-6);
    r.mark_fresh("a");
    r.fold(&rec(t, false, 0.0));
    let w = r.get("a").unwrap().windows(t);
    assert_eq!(window(&w, "24h").degraded, 3);
    // No SLO: no budget.
    let mut plain = Rollups::new(&targets("targets: [{name: a, url: 'http://a/'}]"));
    plain.fold(&rec(t, true, 0.1));
    assert_eq!(
        window(&plain.get("a").unwrap().windows(t), "30d").budget,
        None
    );
}

#[test]
fn late_results_land_in_their_period_and_very_old_ones_are_dropped() {
    let mut r = Rollups::new(&targets("targets: [{name: a, url: 'http://a/'}]"));
    let now = datetime!(2026-06-10 10:00 UTC);
    r.fold(&rec(now, true, 0.1));
    r.fold(&rec(now - Duration::days(3), true, 0.1));
    r.fold(&rec(now - Duration::days(3), false, 0.1));
    r.fold(&rec(now - Duration::days(400), true, 0.1));
    let w = r.get("a").unwrap().windows(now);
    assert_eq!(window(&w, "7d").count, 3);
    assert_eq!(window(&w, "365d").count, 3);
    assert_eq!(window(&w, "24h").count, 1);
    // Results of targets not configured are not kept.
    r.fold(&Record::sample("other", now, true));
    assert!(r.get("other").is_none());
}

#[test]
fn saved_rollups_load_back_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let store = store::Store::beside(&dir.path().join("history.jsonl"));
    let ts =
        targets("targets: [{name: a, url: 'http://a/', slo: 99.9%}, {name: b, url: 'http://b/'}]");
    let mut r = Rollups::new(&ts);
    let now = datetime!(2026-06-10 10:00 UTC);
    for d in 0..40 {
        r.fold(&rec(now - Duration::days(d), d % 7 != 0, 0.02));
    }
    let pos = Position {
        dev: 1,
        ino: 2,
        offset: 3,
    };
    store.save(&r, Some(pos)).unwrap();
    let mut back = Rollups::new(&ts);
    // Stats asked for before the load are not served after it.
    assert_eq!(window(&back.get("a").unwrap().windows(now), "30d").count, 0);
    assert_eq!(store.load(&mut back).unwrap(), Some(pos));
    let (a, b) = (r.get("a").unwrap(), back.get("a").unwrap());
    assert_eq!(a.windows(now), b.windows(now));
    assert_eq!((a.freshness, a.last_folded), (b.freshness, b.last_folded));
    // A damaged file is an error, never silently empty rollups.
    std::fs::write(store.path(), b"ferrostack-rollups 1\n\xff\xff\xff\x7f").unwrap();
    assert!(store.load(&mut Rollups::new(&ts)).is_err());
    std::fs::write(store.path(), b"something else").unwrap();
    assert!(store.load(&mut Rollups::new(&ts)).is_err());
}

/// The cached window stats follow every fold within the hour, a day's sketch aging, and the
/// turn of the hour and the day without any result.
#[test]
fn cached_windows_follow_folds_and_the_clock() {
    let mut r = Rollups::new(&targets("targets: [{name: a, url: 'http://a/'}]"));
    let t = datetime!(2026-06-01 23:10 UTC);
    r.fold(&rec(t, true, 0.010));
    let first = r.get("a").unwrap().windows(t);
    assert_eq!(window(&first, "24h").count, 1);
    assert!(r.get("a").unwrap().cache.is_filled());
    // A result in the same hour: the cached stats are dropped, the new ones count it.
    r.fold(&rec(t + Duration::minutes(1), false, 0.0));
    assert!(!r.get("a").unwrap().cache.is_filled());
    let w = r.get("a").unwrap().windows(t + Duration::minutes(2));
    assert_eq!((window(&w, "24h").count, window(&w, "7d").failures), (2, 1));
    // Packing closed days changes no stats, but drops the cache all the same.
    r.pack_closed_days();
    assert!(!r.get("a").unwrap().cache.is_filled());
    assert_eq!(r.get("a").unwrap().windows(t + Duration::minutes(2)), w);
    // The next day, with no result: today's windows start, the 24 h one still holds both.
    let next = datetime!(2026-06-02 00:05 UTC);
    let w = r.get("a").unwrap().windows(next);
    assert_eq!((window(&w, "24h").count, window(&w, "7d").count), (2, 2));
    // A day later the 24 h window is empty; recomputed for the new hour, not served stale.
    let w = r.get("a").unwrap().windows(next + Duration::days(1));
    assert_eq!((window(&w, "24h").count, window(&w, "7d").count), (0, 2));
}

/// Loaded rollups take the next day and hour in the room they have: a full year of days does
/// not double its allocation when a day is added and the oldest dropped.
#[test]
fn a_new_day_after_a_load_reuses_the_room() {
    let dir = tempfile::tempdir().unwrap();
    let store = store::Store::beside(&dir.path().join("history.jsonl"));
    let ts = targets("targets: [{name: a, url: 'http://a/'}]");
    let mut r = Rollups::new(&ts);
    let now = datetime!(2026-06-10 10:00 UTC);
    for h in 0..(DAYS_KEPT * 24) {
        r.fold(&rec(now - Duration::hours(h), true, 0.02));
    }
    store.save(&r, None).unwrap();
    let mut back = Rollups::new(&ts);
    store.load(&mut back).unwrap();
    let room = |r: &Rollups| {
        let s = r.get("a").unwrap();
        (
            s.days.capacity(),
            s.hours.capacity(),
            s.day_sketches.capacity(),
        )
    };
    let before = room(&back);
    assert_eq!(back.get("a").unwrap().days.len(), DAYS_KEPT as usize);
    for h in 1..=48 {
        back.fold(&rec(now + Duration::hours(h), true, 0.02));
    }
    assert_eq!(back.get("a").unwrap().days.len(), DAYS_KEPT as usize);
    assert_eq!(room(&back), before);
}

/// A day of counts takes 20 bytes (a year for 1,000 targets: 7.3 MB, not 11.7), keeps its
/// counts and day exactly and its latency sum to f32's precision.
#[test]
fn a_day_is_20_bytes_and_exact_but_for_the_latency_sum() {
    assert_eq!(std::mem::size_of::<Day>(), 20);
    let c = Counts {
        count: u32::MAX,
        failures: 7,
        degraded: 3,
        latency_sum: 0.1 + 0.2,
    };
    let d = Day::with(20_610, c);
    assert_eq!(d.at(), 20_610);
    let back = d.counts();
    assert_eq!((back.count, back.failures, back.degraded), (u32::MAX, 7, 3));
    assert!((back.latency_sum - 0.3).abs() < 1e-7);
    assert_eq!(Day::with(i64::MIN, c).at(), i64::from(i32::MIN));
}

/// The day's sum is rounded to f32 on every add: after a day of one result a second the mean
/// is still within 0.5 % (what the `latency_sum` field promises).
#[test]
fn a_day_of_results_a_second_keeps_the_mean_within_half_a_percent() {
    let mut r = Rollups::new(&targets("targets: [{name: a, url: 'http://a/'}]"));
    let start = datetime!(2026-06-01 00:00 UTC);
    let mut exact = 0.0;
    for i in 0..86_400_i64 {
        let latency = 0.001 + (i % 997) as f64 * 0.0005;
        exact += latency;
        r.fold(&rec(start + Duration::seconds(i), true, latency));
    }
    let w = r.get("a").unwrap().windows(start + Duration::hours(23));
    let mean = window(&w, "7d").latency_mean.unwrap();
    let exact = exact / 86_400.0;
    assert!((mean / exact - 1.0).abs() < 0.005, "{mean} vs {exact}");
}
