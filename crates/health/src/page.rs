//! The status page, `GET /`: server-rendered HTML with inline CSS and SVG, no scripts and no
//! external assets, readable on a phone. Per target: state (up, degraded, down), uptime over
//! 1 h, 24 h, 7 d, 30 d, 90 d and 365 d, a table of latency percentiles and error budget per
//! window (see `rollup`), a response-time sparkline and the last 50 results as coloured bars whose tooltip gives the
//! time, status and failure reason; recent failures are also listed in a `<details>` for
//! touch screens. Reloads itself every 30 s.

use std::fmt::Write;

use time::OffsetDateTime;
use time::macros::format_description;

use crate::board::{Board, RECENT, State, TargetView, WINDOWS};
use crate::condition::format_duration;
use crate::outcome::Outcome;
use crate::record::Record;
use crate::rollup::{Rollups, WindowStats};

const STYLE: &str = r#"
:root{color-scheme:light dark;--bg:#f6f7f9;--card:#fff;--fg:#1b1f24;--muted:#5b6570;--ok:#1f9d55;--bad:#d64545;--unk:#8a94a0;--deg:#c98a00;--line:#e2e6ea}
@media (prefers-color-scheme:dark){:root{--bg:#111418;--card:#1a1f25;--fg:#e8ecf0;--muted:#9aa5b1;--line:#2a3038}}
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--fg)}
header,main{max-width:880px;margin:0 auto;padding:12px 14px}header h1{margin:8px 0 2px;font-size:1.4rem}
.summary{margin:0;color:var(--muted)}.target{background:var(--card);border:1px solid var(--line);border-left:6px solid var(--unk);border-radius:10px;padding:12px 14px;margin:0 0 12px}
.target.up{border-left-color:var(--ok)}.target.down{border-left-color:var(--bad)}.target.degraded{border-left-color:var(--deg)}
.head{display:flex;align-items:center;justify-content:space-between;gap:8px}.head h2{margin:0;font-size:1.1rem;overflow-wrap:anywhere}
.badge{font-weight:700;font-size:.8rem;padding:2px 9px;border-radius:99px;color:#fff;background:var(--unk);white-space:nowrap}
.badge.up{background:var(--ok)}.badge.down{background:var(--bad)}.badge.degraded{background:var(--deg)}
.url{margin:2px 0 6px;color:var(--muted);font-size:.85rem;overflow-wrap:anywhere}.reason{margin:4px 0;color:var(--bad);font-size:.9rem;overflow-wrap:anywhere}
.meta{margin:4px 0;color:var(--muted);font-size:.85rem}.maintenance{margin:4px 0;color:#1c6fb8;font-weight:600;font-size:.9rem}
.uptime{display:flex;flex-wrap:wrap;gap:8px;margin:8px 0;padding:0}.uptime div{flex:1 0 28%;background:var(--bg);border-radius:8px;padding:4px 8px;text-align:center}
.uptime dt{font-size:.75rem;color:var(--muted)}.uptime dd{margin:0;font-weight:700}
.spark{display:block;width:100%;height:36px;margin:6px 0}.spark polyline{fill:none;stroke:currentColor;stroke-width:1.5;vector-effect:non-scaling-stroke}
.sparkline{color:var(--muted);font-size:.75rem;margin:0}
.bars{display:flex;gap:2px;height:28px;margin:6px 0}.bar{flex:1;min-width:2px;border-radius:2px;background:var(--unk)}
.bar.ok{background:var(--ok)}.bar.deg{background:var(--deg)}.bar.bad{background:var(--bad)}.bar.empty{background:var(--line)}
.windows{width:100%;border-collapse:collapse;font-size:.8rem;margin:6px 0;font-variant-numeric:tabular-nums}.windows th,.windows td{padding:2px 4px;text-align:right;border-bottom:1px solid var(--line)}.windows th:first-child,.windows td:first-child{text-align:left}.windows thead th{color:var(--muted);font-weight:600}.spent{color:var(--bad)}
details{font-size:.85rem;margin-top:4px}details li{overflow-wrap:anywhere}footer{color:var(--muted);font-size:.8rem;text-align:center;padding:8px}
"#;

/// Renders the page for the board's and the rollups' current state.
pub fn render(board: &Board, rollups: &Rollups, now: OffsetDateTime) -> String {
    let views: Vec<&TargetView> = board.targets().collect();
    let count = |s: State| views.iter().filter(|v| v.state() == s).count();
    let mut html = String::with_capacity(4096 + views.len() * 6144);
    html.push_str(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"30\"><title>ferrostack health</title><style>",
    );
    html.push_str(STYLE);
    let _ = write!(
        html,
        "</style></head><body><header><h1>ferrostack health</h1><p class=\"summary\" id=\"summary\">\
         {} targets · {} up · {} degraded · {} down · {} unknown · updated {}</p></header><main>",
        views.len(),
        count(State::Up),
        count(State::Degraded),
        count(State::Down),
        count(State::Unknown),
        clock(now)
    );
    for v in &views {
        let windows = rollups
            .get(&v.name)
            .map(|s| (s.windows(now), s.slo()))
            .unwrap_or_default();
        target_card(&mut html, v, &windows, now);
    }
    html.push_str("</main><footer>ferrostack healthcheck · <a href=\"api/status\">JSON</a> · <a href=\"metrics\">metrics</a></footer></body></html>");
    html
}

/// A target's rollup windows and SLO.
type Windows = (Vec<(&'static str, WindowStats)>, Option<crate::slo::Slo>);

fn target_card(html: &mut String, v: &TargetView, windows: &Windows, now: OffsetDateTime) {
    let state = v.state();
    let (class, label) = match state {
        State::Up => ("up", "UP"),
        State::Down => ("down", "DOWN"),
        State::Degraded => ("degraded", "DEGRADED"),
        State::Unknown => ("unknown", "NO DATA"),
    };
    let name = escape(&v.name);
    let _ = write!(
        html,
        "<section class=\"target {class}\" data-target=\"{name}\" data-state=\"{class}\">\
         <div class=\"head\"><h2>{name}</h2><span class=\"badge {class}\">{label}</span></div>\
         <p class=\"url\">{}</p>",
        escape(&v.url)
    );
    if let Some(until) = v.maintenance.until(now) {
        let _ = write!(
            html,
            "<p class=\"maintenance\">in maintenance until {}</p>",
            clock(until)
        );
    }
    last_result(html, v, now);
    uptimes(html, v, &windows.0, now);
    window_table(html, windows);
    sparkline(html, v);
    bars(html, v);
    recent_failures(html, v);
    html.push_str("</section>");
}

/// The latest result: why it failed, when, and how it answered.
fn last_result(html: &mut String, v: &TargetView, now: OffsetDateTime) {
    let Some(last) = v.last() else {
        return;
    };
    if !last.success {
        let _ = write!(html, "<p class=\"reason\">{}</p>", escape(&last.reason()));
    }
    let _ = write!(
        html,
        "<p class=\"meta\">last checked {} ago · {}{}{}</p>",
        ago(now - last.time),
        last.answer().unwrap_or_else(|| "no response".to_owned()),
        format_args!(" · {}", format_duration(secs(last.response_time_seconds))),
        if v.alert.firing() {
            " · alert firing"
        } else {
            ""
        }
    );
}

/// Uptime over the board's 1 h window, then over every rollup window.
fn uptimes(
    html: &mut String,
    v: &TargetView,
    windows: &[(&'static str, WindowStats)],
    now: OffsetDateTime,
) {
    html.push_str("<dl class=\"uptime\">");
    let short = WINDOWS
        .iter()
        .filter(|(n, _)| !crate::rollup::WINDOWS.iter().any(|(r, _)| r == n))
        .map(|(n, secs)| (*n, v.uptime(*secs, now)));
    let long = windows.iter().map(|(n, w)| (*n, w.uptime));
    for (window, uptime) in short.chain(long) {
        let value = percent(uptime);
        let _ = write!(html, "<div><dt>uptime {window}</dt><dd>{value}</dd></div>");
    }
    html.push_str("</dl>");
}

/// Per rollup window: degraded results, latency percentiles, error budget left.
fn window_table(html: &mut String, (windows, slo): &Windows) {
    if windows.iter().all(|(_, w)| w.count == 0) {
        return;
    }
    let slo_head = slo.map_or_else(String::new, |s| {
        format!("<th>budget left ({}%)</th>", s.percent())
    });
    let _ = write!(
        html,
        "<table class=\"windows\"><thead><tr><th>window</th><th>degraded</th><th>p50</th>\
         <th>p95</th><th>p99</th>{slo_head}</tr></thead><tbody>"
    );
    for (name, w) in windows {
        let lat = |f: fn(&crate::rollup::sketch::Percentiles) -> f64| {
            w.latency
                .as_ref()
                .map_or_else(|| "–".to_owned(), |p| format_duration(secs(f(p))))
        };
        let _ = write!(
            html,
            "<tr data-window=\"{name}\"><td>{name}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            w.degraded,
            lat(|p| p.p50),
            lat(|p| p.p95),
            lat(|p| p.p99)
        );
        if slo.is_some() {
            let (class, text) = w.budget.map_or(("", "–".to_owned()), |b| {
                let class = if b.remaining < 0.0 {
                    " class=\"spent\""
                } else {
                    ""
                };
                (class, format!("{:.1}%", b.remaining * 100.0))
            });
            let _ = write!(html, "<td{class}>{text}</td>");
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table>");
}

fn percent(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |u| format!("{:.2}%", u * 100.0))
}

/// The last failures, newest first, as a list: bar tooltips need a pointer, phones have none.
fn recent_failures(html: &mut String, v: &TargetView) {
    let failures: Vec<&Record> = v
        .recent
        .iter()
        .rev()
        .filter(|r| !r.success)
        .take(10)
        .collect();
    if failures.is_empty() {
        return;
    }
    let _ = write!(
        html,
        "<details><summary>recent failures ({})</summary><ul>",
        failures.len()
    );
    for r in failures {
        let _ = write!(html, "<li>{} — {}</li>", clock(r.time), escape(&r.reason()));
    }
    html.push_str("</ul></details>");
}

/// Response times of the recent results as an SVG polyline (oldest left).
fn sparkline(html: &mut String, v: &TargetView) {
    let times: Vec<f64> = v.recent.iter().map(|r| r.response_time_seconds).collect();
    if times.len() < 2 {
        return;
    }
    let max = times.iter().copied().fold(f64::MIN_POSITIVE, f64::max);
    let min = times.iter().copied().fold(f64::MAX, f64::min);
    let step = 100.0 / (times.len() - 1) as f64;
    let points: Vec<String> = times
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{:.1},{:.1}", i as f64 * step, 23.0 - 22.0 * (t / max)))
        .collect();
    let _ = write!(
        html,
        "<svg class=\"spark\" viewBox=\"0 0 100 24\" preserveAspectRatio=\"none\" role=\"img\" \
         aria-label=\"response time\"><polyline points=\"{}\"/></svg>\
         <p class=\"sparkline\">response time, last {}: {} – {}</p>",
        points.join(" "),
        times.len(),
        format_duration(secs(min)),
        format_duration(secs(max))
    );
}

/// The last 50 results as bars, padded on the left when fewer.
fn bars(html: &mut String, v: &TargetView) {
    html.push_str("<div class=\"bars\" role=\"list\" aria-label=\"last results\">");
    for _ in v.recent.len()..RECENT {
        html.push_str("<span class=\"bar empty\"></span>");
    }
    for (r, outcome) in v.recent.iter().zip(&v.outcomes) {
        let (class, word) = match outcome {
            Outcome::Up => ("ok", "ok"),
            Outcome::Degraded if r.success => ("deg", "degraded (passed after a retry)"),
            Outcome::Degraded => ("deg", "degraded (not yet up since added)"),
            Outcome::Down => ("bad", "failed"),
        };
        let mut title = format!(
            "{} · {} · {} · {word}",
            clock(r.time),
            // The bare status code for HTTP, as before; what other types answered.
            r.status
                .map(|s| s.to_string())
                .or_else(|| r.answer())
                .unwrap_or_else(|| "no response".to_owned()),
            format_duration(secs(r.response_time_seconds))
        );
        if !r.success {
            let _ = write!(title, ": {}", r.reason());
        }
        let _ = write!(
            html,
            "<span class=\"bar {class}\" role=\"listitem\" title=\"{}\"></span>",
            escape(&title)
        );
    }
    html.push_str("</div>");
}

fn secs(s: f64) -> std::time::Duration {
    std::time::Duration::try_from_secs_f64(s).unwrap_or_default()
}

fn clock(t: OffsetDateTime) -> String {
    t.format(format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
    ))
    .unwrap_or_default()
}

fn ago(d: time::Duration) -> String {
    let s = d.whole_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// Escapes text for HTML content and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Thresholds;
    use time::macros::datetime;

    fn rec(target: &str, i: i64, success: bool) -> Record {
        let time = datetime!(2026-01-01 12:00 UTC) + time::Duration::seconds(i * 10);
        Record {
            response_time_seconds: 0.01 * (i + 1) as f64,
            ..Record::sample(target, time, success)
        }
    }

    #[test]
    fn renders_every_target_with_state_bars_and_reasons() {
        let targets = crate::config::parse_targets(
            "t",
            "targets: [{name: api, url: 'http://api/'}, {name: '<b>x</b>', url: 'http://x/'}, {name: new, url: 'http://n/'}]",
        )
        .unwrap();
        let mut board = Board::new(&targets, Thresholds::default());
        let mut rollups = Rollups::new(&targets);
        for i in 0..5 {
            for r in [rec("api", i, true), rec("<b>x</b>", i, i != 4)] {
                rollups.fold(&r);
                board.ingest(r);
            }
        }
        let html = render(&board, &rollups, datetime!(2026-01-01 12:01 UTC));
        assert!(
            html.contains("data-target=\"api\" data-state=\"up\""),
            "{html}"
        );
        assert!(html.contains("data-target=\"&lt;b&gt;x&lt;/b&gt;\" data-state=\"down\""));
        assert!(html.contains("data-target=\"new\" data-state=\"unknown\""));
        assert!(!html.contains("<b>x</b>"), "names are escaped");
        assert!(html.contains("3 targets · 1 up · 0 degraded · 1 down · 1 unknown"));
        assert_eq!(html.matches("class=\"bar ok\"").count(), 9);
        assert_eq!(html.matches("class=\"bar bad\"").count(), 1);
        assert_eq!(html.matches("class=\"bar empty\"").count(), 45 + 45 + 50);
        assert!(html.contains(
            "title=\"2026-01-01 12:00:40 UTC · 500 · 50ms · failed: [STATUS] (500) == 200\""
        ));
        assert!(html.contains("<p class=\"reason\">[STATUS] (500) == 200</p>"));
        assert!(html.contains("<dt>uptime 1h</dt><dd>100.00%</dd>"));
        assert!(html.contains("<dt>uptime 24h</dt><dd>80.00%</dd>"));
        assert!(html.contains("<dt>uptime 365d</dt><dd>80.00%</dd>"));
        assert!(
            html.contains("<tr data-window=\"7d\"><td>7d</td><td>0</td><td>29ms</td>"),
            "{html}"
        );
        assert!(html.contains("<polyline points=\"0.0,"));
        // Nothing is fetched: no scripts, images, stylesheets, fonts or imports; the only
        // links are relative ones to the JSON and the metrics.
        for fetches in [
            "<script", "src=", "<link", "url(", "@import", "<img", "<iframe",
        ] {
            assert!(!html.contains(fetches), "{fetches} in the page");
        }
        let hrefs: Vec<&str> = html
            .split("href=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect();
        assert_eq!(hrefs, ["api/status", "metrics"]);
        assert!(html.contains("name=\"viewport\" content=\"width=device-width"));
    }
}
