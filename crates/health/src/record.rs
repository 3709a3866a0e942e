//! One probe result: what the history file stores (one JSON line each), the status API
//! shows, and the metrics and alerts are computed from.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

mod detail;

pub use detail::Detail;

/// A probe result as written to the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// When the probe started (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// Target name.
    pub target: String,
    /// URL probed (the first one, before redirects).
    pub url: String,
    /// Every condition held and no error occurred.
    pub success: bool,
    /// HTTP status of the final response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Duration of the last attempt, connect to end of body (`[RESPONSE_TIME]`).
    pub response_time_seconds: f64,
    /// Duration of the whole probe, retries and backoff included.
    pub duration_seconds: f64,
    /// Attempts made (1 + retries used).
    pub attempts: u32,
    /// Transport error of the last attempt (refused, timeout, TLS...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Failed conditions with their actual values, e.g. `[STATUS] (500) == 200`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<String>,
    /// Phase durations of the last attempt, where measured.
    #[serde(default, skip_serializing_if = "Phases::is_empty")]
    pub phases: Phases,
    /// Unix time at which the server's leaf certificate expires (https only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_not_after: Option<i64>,
    /// What a tcp, tls, dns, grpc or icmp probe measured besides the above.
    #[serde(default, skip_serializing_if = "Detail::is_empty")]
    pub detail: Detail,
    /// Taken inside a maintenance window: no alert, no SLO charge (see `maintenance`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub maintenance: bool,
}

/// Phase durations in seconds, as blackbox_exporter's `probe_http_duration_seconds{phase}`.
/// A phase is present only when it was measured (no `tls` for plain http, nothing after
/// a failed connect). Summed over redirects.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Phases {
    /// DNS resolution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve: Option<f64>,
    /// TCP connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<f64>,
    /// TLS handshake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<f64>,
    /// Request sent until response headers received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing: Option<f64>,
    /// Response body read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<f64>,
}

// === impl Record ===

impl Record {
    /// Why it failed, in one line: the error and the failed conditions.
    pub fn reason(&self) -> String {
        let mut parts: Vec<&str> = self.error.iter().map(String::as_str).collect();
        parts.extend(self.failed.iter().map(String::as_str));
        parts.join("; ")
    }

    /// Seconds since the Unix epoch.
    pub fn unix_seconds(&self) -> f64 {
        self.time.unix_timestamp_nanos() as f64 / 1e9
    }
}

// === impl Phases ===

impl Phases {
    /// No phase was measured.
    pub fn is_empty(&self) -> bool {
        self.iter().all(|(_, v)| v.is_none())
    }

    /// `(phase name, seconds)` in blackbox_exporter's order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, Option<f64>)> {
        [
            ("resolve", self.resolve),
            ("connect", self.connect),
            ("tls", self.tls),
            ("processing", self.processing),
            ("transfer", self.transfer),
        ]
        .into_iter()
    }

    pub(crate) fn add(slot: &mut Option<f64>, seconds: f64) {
        *slot = Some(slot.unwrap_or(0.0) + seconds);
    }
}

#[cfg(test)]
impl Record {
    /// The one result fixture of the crate's tests: `target` (at `http://<target>/`) answered
    /// 200, or 500 failing its `[STATUS] == 200` condition, at `time`, in no time.
    pub(crate) fn sample(target: &str, time: OffsetDateTime, success: bool) -> Self {
        Self {
            time,
            target: target.into(),
            url: format!("http://{target}/"),
            success,
            status: Some(if success { 200 } else { 500 }),
            response_time_seconds: 0.0,
            duration_seconds: 0.0,
            attempts: 1,
            error: None,
            failed: if success {
                Vec::new()
            } else {
                vec!["[STATUS] (500) == 200".into()]
            },
            phases: Phases::default(),
            certificate_not_after: None,
            detail: Detail::default(),
            maintenance: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_to_one_compact_line_and_back() {
        let r = Record {
            time: time::macros::datetime!(2026-11-21 16:00:00.250 UTC),
            target: "api".into(),
            url: "http://a/".into(),
            success: false,
            status: Some(500),
            response_time_seconds: 0.012,
            duration_seconds: 0.012,
            attempts: 1,
            error: None,
            failed: vec!["[STATUS] (500) == 200".into()],
            phases: Phases {
                connect: Some(0.001),
                ..Phases::default()
            },
            certificate_not_after: None,
            detail: Detail::default(),
            maintenance: false,
        };
        let line = serde_json::to_string(&r).unwrap();
        assert!(
            line.starts_with(r#"{"time":"2026-11-21T16:00:00.25Z","target":"api""#),
            "{line}"
        );
        assert!(line.contains(r#""phases":{"connect":0.001}"#), "{line}");
        assert!(!line.contains("error"), "{line}");
        assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), r);
        assert_eq!(r.reason(), "[STATUS] (500) == 200");
    }

    #[test]
    fn probe_type_details_are_optional_fields_and_old_lines_still_parse() {
        let old = r#"{"time":"2026-11-21T16:00:00Z","target":"api","url":"http://a/","success":true,"status":200,"response_time_seconds":0.01,"duration_seconds":0.01,"attempts":1}"#;
        let r: Record = serde_json::from_str(old).unwrap();
        assert!(r.detail.is_empty());
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            old,
            "nothing added to an HTTP line"
        );
        let dns = Record {
            url: "dns://127.0.0.1/ok.test?type=A".into(),
            detail: Detail {
                ip_protocol: Some(4),
                dns_rcode: Some("NXDOMAIN".into()),
                dns_rrs: Some([0, 1, 0]),
                ..Detail::default()
            },
            ..r
        };
        let line = serde_json::to_string(&dns).unwrap();
        assert!(
            line.ends_with(
                r#""detail":{"ip_protocol":4,"dns_rcode":"NXDOMAIN","dns_rrs":[0,1,0]}}"#
            ),
            "{line}"
        );
        assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), dns);
    }
}
