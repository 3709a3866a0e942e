//! Alerts: a per-target state machine (fire after N consecutive failures, resolve after M
//! consecutive successes) and the notifier that posts to Alertmanager's v2 API
//! (`POST /api/v2/alerts`) and/or a generic JSON webhook. Firing alerts are re-posted to
//! Alertmanager on every probe with a fresh `endsAt`, as Prometheus does, so Alertmanager
//! keeps them active; the webhook gets one message per transition.

use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::record::Record;

/// The `alertname` label of our alerts.
pub const ALERT_NAME: &str = "HealthCheckFailing";

/// Consecutive results needed to fire and to resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Consecutive failures that fire the alert (default 3).
    pub failure: u32,
    /// Consecutive successes that resolve it (default 2).
    pub success: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            failure: 3,
            success: 2,
        }
    }
}

/// The alert state of one target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertState {
    /// Failures in a row, up to the latest result.
    pub consecutive_failures: u32,
    /// Successes in a row, up to the latest result.
    pub consecutive_successes: u32,
    /// When the current alert fired (the time of the failure that reached the threshold).
    pub firing_since: Option<OffsetDateTime>,
}

/// A change of alert state caused by one result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The failure threshold was reached.
    Fired,
    /// The success threshold was reached while firing.
    Resolved,
}

/// Where alerts go.
#[derive(Debug, Clone, Default)]
pub struct AlertConfig {
    /// Alertmanager base URL (we post to `<url>/api/v2/alerts`).
    pub alertmanager_url: Option<String>,
    /// Generic webhook URL (a JSON POST per transition).
    pub webhook_url: Option<String>,
    /// Fire and resolve thresholds.
    pub thresholds: Thresholds,
}

/// Posts alerts; cheap to clone.
#[derive(Debug, Clone)]
pub struct Notifier {
    client: reqwest::Client,
    config: AlertConfig,
}

/// What to tell the receivers about one target.
#[derive(Debug, Clone)]
pub struct AlertEvent<'a> {
    /// The result that caused the transition (or the refresh).
    pub record: &'a Record,
    /// When the alert started firing.
    pub since: OffsetDateTime,
    /// `Some` on a transition; `None` for a refresh of a firing alert.
    pub transition: Option<Transition>,
    /// Failures in a row at this result.
    pub consecutive_failures: u32,
    /// How long Alertmanager should keep a firing alert active without a refresh.
    pub ttl: Duration,
}

// === impl AlertState ===

impl AlertState {
    /// Folds one result into the state; returns the transition it causes, if any. A result
    /// taken in a maintenance window leaves the state as it was (as Gatus): an alert firing
    /// when the window starts stays firing, silently, and resolves or refreshes afterwards.
    pub fn observe(&mut self, record: &Record, thresholds: Thresholds) -> Option<Transition> {
        if record.maintenance {
            return None;
        }
        if record.success {
            self.consecutive_failures = 0;
            self.consecutive_successes = self.consecutive_successes.saturating_add(1);
            if self.firing_since.is_some()
                && self.consecutive_successes >= thresholds.success.max(1)
            {
                self.firing_since = None;
                return Some(Transition::Resolved);
            }
        } else {
            self.consecutive_successes = 0;
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
            if self.firing_since.is_none() && self.consecutive_failures >= thresholds.failure.max(1)
            {
                self.firing_since = Some(record.time);
                return Some(Transition::Fired);
            }
        }
        None
    }

    /// Whether the alert is firing.
    pub fn firing(&self) -> bool {
        self.firing_since.is_some()
    }
}

// === impl Notifier ===

impl Notifier {
    /// A notifier for `config`; requests time out after 10 s.
    pub fn new(config: AlertConfig) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .user_agent(concat!(
                "ferrostack-healthcheck/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()?;
        Ok(Self { client, config })
    }

    /// The configured thresholds.
    pub fn thresholds(&self) -> Thresholds {
        self.config.thresholds
    }

    /// Whether any receiver is configured.
    pub fn enabled(&self) -> bool {
        self.config.alertmanager_url.is_some() || self.config.webhook_url.is_some()
    }

    /// Sends an event to every receiver it concerns; returns the delivery errors.
    pub async fn send(&self, event: &AlertEvent<'_>) -> Vec<String> {
        let mut errors = Vec::new();
        if let Some(am) = &self.config.alertmanager_url {
            let url = format!("{}/api/v2/alerts", am.trim_end_matches('/'));
            let body = json!([alertmanager_alert(event, OffsetDateTime::now_utc())]);
            if let Err(e) = self.post(&url, &body).await {
                errors.push(format!("alertmanager {url}: {e}"));
            }
        }
        if let (Some(url), Some(transition)) = (&self.config.webhook_url, event.transition)
            && let Err(e) = self.post(url, &webhook_body(event, transition)).await
        {
            errors.push(format!("webhook {url}: {e}"));
        }
        errors
    }

    async fn post(&self, url: &str, body: &serde_json::Value) -> Result<(), String> {
        let response = self
            .client
            .post(url)
            .json(body)
            .send()
            .await
            .map_err(|e| runtime::error::chain(&e))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            let text = response.text().await.unwrap_or_default();
            Err(format!("{status}: {}", text.trim()))
        }
    }
}

/// The Alertmanager v2 `postableAlert` for an event.
pub fn alertmanager_alert(event: &AlertEvent<'_>, now: OffsetDateTime) -> serde_json::Value {
    let r = event.record;
    let ends = match event.transition {
        Some(Transition::Resolved) => now,
        _ => now + event.ttl,
    };
    json!({
        "labels": {
            "alertname": ALERT_NAME,
            "job": "healthcheck",
            "target": r.target,
            "severity": "critical",
        },
        "annotations": {
            "summary": format!("{} is failing its health check", r.target),
            "description": if r.success { "recovered".to_owned() } else { r.reason() },
            "url": r.url,
        },
        "startsAt": rfc3339(event.since),
        "endsAt": rfc3339(ends),
    })
}

fn webhook_body(event: &AlertEvent<'_>, transition: Transition) -> serde_json::Value {
    let r = event.record;
    json!({
        "status": match transition { Transition::Fired => "firing", Transition::Resolved => "resolved" },
        "alertname": ALERT_NAME,
        "target": r.target,
        "url": r.url,
        "since": rfc3339(event.since),
        "time": rfc3339(r.time),
        "consecutive_failures": event.consecutive_failures,
        "reason": r.reason(),
    })
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(success: bool, i: i64) -> Record {
        let time = time::macros::datetime!(2026-01-01 0:00 UTC) + time::Duration::minutes(i);
        Record::sample("api", time, success)
    }

    fn replay(outcomes: &str, th: Thresholds) -> Vec<(usize, Transition)> {
        let mut state = AlertState::default();
        outcomes
            .chars()
            .enumerate()
            .filter_map(|(i, c)| {
                state
                    .observe(&result(c == '+', i as i64), th)
                    .map(|t| (i, t))
            })
            .collect()
    }

    #[test]
    fn fires_after_n_failures_and_resolves_after_m_successes() {
        use Transition::*;
        let th = Thresholds::default();
        assert_eq!(replay("--+--", th), []);
        assert_eq!(replay("---", th), [(2, Fired)]);
        assert_eq!(replay("-----", th), [(2, Fired)]);
        assert_eq!(replay("---+-+", th), [(2, Fired)]);
        assert_eq!(replay("---++", th), [(2, Fired), (4, Resolved)]);
        assert_eq!(
            replay("---++---+++", th),
            [(2, Fired), (4, Resolved), (7, Fired), (9, Resolved)]
        );
        let one = Thresholds {
            failure: 1,
            success: 1,
        };
        assert_eq!(replay("-+", one), [(0, Fired), (1, Resolved)]);
        let zero = Thresholds {
            failure: 0,
            success: 0,
        };
        assert_eq!(replay("-+", zero), [(0, Fired), (1, Resolved)]);
    }

    #[test]
    fn firing_since_is_the_failure_that_reached_the_threshold() {
        let mut s = AlertState::default();
        for i in 0..4 {
            s.observe(&result(false, i), Thresholds::default());
        }
        assert_eq!(s.firing_since, Some(result(false, 2).time));
        assert_eq!(s.consecutive_failures, 4);
    }

    #[test]
    fn alertmanager_payload_has_labels_reason_and_times() {
        let r = result(false, 0);
        let now = time::macros::datetime!(2026-01-01 1:00 UTC);
        let event = AlertEvent {
            record: &r,
            since: r.time,
            transition: Some(Transition::Fired),
            consecutive_failures: 3,
            ttl: Duration::from_secs(300),
        };
        let v = alertmanager_alert(&event, now);
        assert_eq!(v["labels"]["alertname"], ALERT_NAME);
        assert_eq!(v["labels"]["target"], "api");
        assert_eq!(v["annotations"]["description"], "[STATUS] (500) == 200");
        assert_eq!(v["startsAt"], "2026-01-01T00:00:00Z");
        assert_eq!(v["endsAt"], "2026-01-01T01:05:00Z");
        let resolved = AlertEvent {
            transition: Some(Transition::Resolved),
            ..event
        };
        assert_eq!(
            alertmanager_alert(&resolved, now)["endsAt"],
            "2026-01-01T01:00:00Z"
        );
        let w = webhook_body(&resolved, Transition::Resolved);
        assert_eq!(
            (w["status"].as_str(), w["target"].as_str()),
            (Some("resolved"), Some("api"))
        );
    }
}
