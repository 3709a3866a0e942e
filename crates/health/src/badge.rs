//! Badges for READMEs and wikis: `GET /badge/{target}/health.svg` (up, down, maintenance, no
//! data) and `GET /badge/{target}/uptime/{window}.svg` for each uptime window of the board
//! (`board::WINDOWS`: a window added there is a badge too). Shields-style flat SVG, complete in
//! itself: no fonts, images or links are fetched.

use std::fmt::Write;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use runtime::error::ApiError;
use time::OffsetDateTime;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::board::{State as TargetState, TargetView, WINDOWS};
use crate::page::escape;
use crate::serve::Service;

/// Badges change with each probe; caches (GitHub's camo among them) may keep one a minute.
const CACHE_CONTROL: &str = "public, max-age=60";
const GREEN: &str = "#4c1";
const YELLOW_GREEN: &str = "#97ca00";
const YELLOW: &str = "#dfb317";
const RED: &str = "#e05d44";
const BLUE: &str = "#007ec6";
const GREY: &str = "#9f9f9f";

/// The badge routes.
pub(crate) fn routes(service: Service) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(health_badge))
        .routes(routes!(uptime_badge))
        .with_state(service)
}

/// The target's state as a badge.
#[utoipa::path(get, path = "/badge/{target}/health.svg", tag = "healthcheck",
    params(("target" = String, Path, description = "target name")),
    responses(
        (status = 200, description = "badge: up, degraded, down, maintenance or no data", content_type = "image/svg+xml"),
        (status = 404, description = "no such target", body = runtime::error::ErrorBody),
))]
async fn health_badge(
    State(service): State<Service>,
    Path(target): Path<String>,
) -> Result<Response, ApiError> {
    let board = service.board();
    let view = find(board.get(&target), &target)?;
    let now = OffsetDateTime::now_utc();
    let (value, colour) = if view.maintenance.until(now).is_some() {
        ("maintenance", BLUE)
    } else {
        match view.state() {
            TargetState::Up => ("up", GREEN),
            TargetState::Degraded => ("degraded", YELLOW),
            TargetState::Down => ("down", RED),
            TargetState::Unknown => ("no data", GREY),
        }
    };
    Ok(svg(
        &view.name,
        value,
        colour,
        &format!("{}: {value}", view.name),
    ))
}

/// The target's uptime over a window as a badge.
#[utoipa::path(get, path = "/badge/{target}/uptime/{window}", tag = "healthcheck",
    params(("target" = String, Path, description = "target name"),
           ("window" = String, Path, description = "an uptime window and `.svg`, e.g. `24h.svg` (1h, 24h, 7d, 30d, 90d, 365d)")),
    responses(
        (status = 200, description = "badge: the share of successful results, or no data", content_type = "image/svg+xml"),
        (status = 404, description = "no such target or window", body = runtime::error::ErrorBody),
))]
async fn uptime_badge(
    State(service): State<Service>,
    Path((target, window)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let board = service.board();
    let view = find(board.get(&target), &target)?;
    let name = window
        .strip_suffix(".svg")
        .and_then(|w| windows().find(|name| *name == w))
        .ok_or_else(|| {
            let known: Vec<String> = windows().map(|n| format!("{n}.svg")).collect();
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_window",
                format!("no uptime window {window:?}; one of {}", known.join(", ")),
            )
        })?;
    let now = OffsetDateTime::now_utc();
    // The board's short windows (1h) from its buckets; the rest, as on the page, from the
    // rollups, which count degraded results as answered.
    let short = WINDOWS
        .iter()
        .find(|(n, _)| *n == name && !is_rollup_window(n))
        .map(|(_, seconds)| view.uptime(*seconds, now));
    let target = view.name.clone();
    drop(board); // one lock at a time
    let uptime = short.unwrap_or_else(|| service.window_uptime(&target, name, now));
    let (value, colour) = match uptime {
        None => ("no data".to_owned(), GREY),
        Some(u) => (format!("{:.2}%", u * 100.0), uptime_colour(u)),
    };
    let label = format!("uptime {name}");
    let title = format!("{target}: {label} {value}");
    Ok(svg(&label, &value, colour, &title))
}

/// Every uptime window a badge is drawn for: the board's short ones, then the rollups'.
fn windows() -> impl Iterator<Item = &'static str> {
    WINDOWS
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !is_rollup_window(n))
        .chain(crate::rollup::WINDOWS.iter().map(|(n, _)| *n))
}

fn is_rollup_window(name: &str) -> bool {
    crate::rollup::WINDOWS.iter().any(|(n, _)| *n == name)
}

fn find<'a>(view: Option<&'a TargetView>, name: &str) -> Result<&'a TargetView, ApiError> {
    view.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_target",
            format!("no target named {name:?}"),
        )
    })
}

fn uptime_colour(u: f64) -> &'static str {
    match u {
        u if u >= 0.999 => GREEN,
        u if u >= 0.99 => YELLOW_GREEN,
        u if u >= 0.95 => YELLOW,
        _ => RED,
    }
}

fn svg(label: &str, value: &str, colour: &str, title: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, CACHE_CONTROL),
        ],
        render(label, value, colour, title),
    )
        .into_response()
}

/// Width of `text` in 11px Verdana, roughly: wide and narrow letters average out.
fn text_width(text: &str) -> usize {
    text.chars()
        .map(|c| match c {
            'i' | 'l' | 'j' | '.' | ',' | ':' | '\'' | '|' | ' ' => 4,
            'm' | 'w' | 'M' | 'W' | '%' => 10,
            _ => 7,
        })
        .sum()
}

/// A two-part flat badge: `label` on grey, `value` on `colour`.
pub(crate) fn render(label: &str, value: &str, colour: &str, title: &str) -> String {
    let (lw, vw) = (text_width(label) + 10, text_width(value) + 10);
    let w = lw + vw;
    let title = escape(title);
    let mut s = String::with_capacity(1024);
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"20\" role=\"img\" \
         aria-label=\"{title}\"><title>{title}</title>\
         <linearGradient id=\"s\" x2=\"0\" y2=\"100%\"><stop offset=\"0\" stop-color=\"#bbb\" \
         stop-opacity=\".1\"/><stop offset=\"1\" stop-opacity=\".1\"/></linearGradient>\
         <clipPath id=\"r\"><rect width=\"{w}\" height=\"20\" rx=\"3\" fill=\"#fff\"/></clipPath>\
         <g clip-path=\"url(#r)\"><rect width=\"{lw}\" height=\"20\" fill=\"#555\"/>\
         <rect x=\"{lw}\" width=\"{vw}\" height=\"20\" fill=\"{colour}\"/>\
         <rect width=\"{w}\" height=\"20\" fill=\"url(#s)\"/></g>\
         <g fill=\"#fff\" text-anchor=\"middle\" font-family=\"Verdana,Geneva,DejaVu Sans,sans-serif\" \
         font-size=\"11\"><text x=\"{}\" y=\"14\">{}</text><text x=\"{}\" y=\"14\">{}</text></g></svg>",
        lw / 2,
        escape(label),
        lw + vw / 2,
        escape(value),
    );
    s
}
