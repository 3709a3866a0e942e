//! `healthcheck run`, the CronJob: probe every target once, concurrently; append the results
//! to the history; replay the history to decide alert transitions (the CronJob keeps no other
//! state); apply retention; push to a Pushgateway. The report's exit code is 0 when every
//! target passed and 1 otherwise.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::Semaphore;

use crate::Config;
use crate::alert::{AlertEvent, AlertState, Notifier, Thresholds, Transition};
use crate::history::History;
use crate::probe::probe;
use crate::record::Record;

/// What a run did.
#[derive(Debug)]
pub struct RunReport {
    /// One result per target, in config order.
    pub records: Vec<Record>,
    /// Problems after probing (history, alerts, push); each also logged.
    pub errors: Vec<String>,
    /// Alert transitions sent, as `(target, transition)`.
    pub transitions: Vec<(String, Transition)>,
}

// === impl RunReport ===

impl RunReport {
    /// 0 when every target passed and nothing went wrong, else 1.
    pub fn exit_code(&self) -> i32 {
        i32::from(!(self.errors.is_empty() && self.records.iter().all(|r| r.success)))
    }

    /// The run as `healthcheck run` reports it: `Ok` exactly when [`Self::exit_code`] is 0.
    pub fn outcome(&self) -> Result<(), RunFailed> {
        let failed = self.records.iter().filter(|r| !r.success).count();
        match (self.exit_code(), self.errors.first()) {
            (0, _) => Ok(()),
            (_, Some(e)) if failed == 0 => Err(RunFailed::After(e.clone())),
            _ => Err(RunFailed::Targets {
                failed,
                total: self.records.len(),
            }),
        }
    }
}

/// Why a run failed (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum RunFailed {
    /// Every target passed, but recording, alerting or pushing did not: the first problem.
    #[error("{0}")]
    After(String),
    /// Targets failed.
    #[error("{failed} of {total} targets failed")]
    Targets {
        /// How many failed.
        failed: usize,
        /// How many were probed.
        total: usize,
    },
}

/// Probes every target once and records, alerts and pushes the results.
pub async fn run_once(config: &Config) -> RunReport {
    let started = OffsetDateTime::now_utc();
    let records = probe_all(config).await;
    for r in &records {
        log_result(r);
    }
    let mut report = RunReport {
        records,
        errors: Vec::new(),
        transitions: Vec::new(),
    };
    let history = config.history.as_ref().map(|h| History::new(&h.path));
    if let Some(h) = &history {
        let (h, batch) = (h.clone(), report.records.clone());
        if let Err(e) = blocking(move || h.append(&batch)).await {
            report
                .errors
                .push(format!("history {}: {e}", config.history_path()));
        }
    }
    let failures = alert(config, history.as_ref(), &mut report).await;
    if let (Some(h), Some(hc)) = (&history, &config.history) {
        let (h, age, bytes) = (h.clone(), hc.max_age, hc.max_bytes);
        match blocking(move || h.retain(OffsetDateTime::now_utc(), age, bytes)).await {
            Ok(r) if r.dropped > 0 => {
                tracing::info!(kept = r.kept, dropped = r.dropped, "history retention")
            }
            Ok(_) => {}
            Err(e) => report
                .errors
                .push(format!("history retention {}: {e}", config.history_path())),
        }
    }
    if let Some(url) = &config.pushgateway_url {
        let pairs: Vec<(Record, u32)> = report
            .records
            .iter()
            .map(|r| {
                (
                    r.clone(),
                    failures
                        .get(&r.target)
                        .copied()
                        .unwrap_or(u32::from(!r.success)),
                )
            })
            .collect();
        let completed = report
            .errors
            .is_empty()
            .then(|| started.unix_timestamp_nanos() as f64 / 1e9);
        if let Err(e) = crate::push::push(url, crate::push::body(&pairs, completed)).await {
            report.errors.push(e);
        }
    }
    for e in &report.errors {
        tracing::error!(error = %e, "healthcheck run");
    }
    report
}

async fn probe_all(config: &Config) -> Vec<Record> {
    let slots = Arc::new(Semaphore::new(
        config
            .max_concurrent_probes
            .clamp(1, Semaphore::MAX_PERMITS),
    ));
    let mut set = tokio::task::JoinSet::new();
    for (i, target) in config.targets.iter().enumerate() {
        let (target, slots) = (Arc::new(target.clone()), slots.clone());
        set.spawn(async move {
            // The semaphore is never closed, so acquiring only waits.
            let _slot = slots.acquire_owned().await;
            (i, probe(&target).await)
        });
    }
    let mut out: Vec<Option<Record>> = vec![None; config.targets.len()];
    while let Some(joined) = set.join_next().await {
        if let Ok((i, r)) = joined {
            out[i] = Some(r);
        }
    }
    // A probe task cannot panic in practice; if one did, report the target as failed.
    out.into_iter()
        .zip(&config.targets)
        .map(|(r, t)| {
            let mut r = r.unwrap_or_else(|| Record {
                time: OffsetDateTime::now_utc(),
                target: t.name.clone(),
                url: t.url.to_string(),
                success: false,
                status: None,
                response_time_seconds: 0.0,
                duration_seconds: 0.0,
                attempts: 0,
                error: Some("probe task failed".into()),
                failed: Vec::new(),
                phases: Default::default(),
                certificate_not_after: None,
                detail: crate::record::Detail::default(),
                maintenance: false,
            });
            t.maintenance.mark(&mut r);
            r
        })
        .collect()
}

/// A result of this run with the alert state it led to.
struct Event {
    record: Record,
    transition: Option<Transition>,
    consecutive_failures: u32,
    /// When the alert it belongs to fired (kept for the resolution too).
    since: Option<OffsetDateTime>,
}

/// Folds the history (then any of `ours` missing from it) through the alert state machine.
/// Returns every target's state and the events of `ours`.
fn replay(
    history: Option<&History>,
    ours: &[Record],
    thresholds: Thresholds,
) -> (
    HashMap<String, AlertState>,
    Vec<Event>,
    Option<std::io::Error>,
) {
    let key = |r: &Record| (r.target.clone(), r.time.unix_timestamp_nanos());
    let mut pending: HashMap<(String, i128), usize> =
        ours.iter().enumerate().map(|(i, r)| (key(r), i)).collect();
    let mut states: HashMap<String, AlertState> = HashMap::new();
    let mut events = Vec::new();
    let mut fold = |r: Record, events: &mut Vec<Event>, mine: bool| {
        let state = states.entry(r.target.clone()).or_default();
        let before = state.firing_since;
        let transition = state.observe(&r, thresholds);
        if mine {
            events.push(Event {
                transition,
                consecutive_failures: state.consecutive_failures,
                since: state.firing_since.or(before),
                record: r,
            });
        }
    };
    let error = history
        .map(|h| {
            h.for_each(|r| {
                let mine = pending.remove(&key(&r)).is_some();
                fold(r, &mut events, mine);
            })
        })
        .and_then(Result::err);
    // Results the history does not hold (no history, or the append failed).
    let mut missing: Vec<usize> = pending.into_values().collect();
    missing.sort_unstable();
    for i in missing {
        fold(ours[i].clone(), &mut events, true);
    }
    (states, events, error)
}

/// Sends the transitions caused by this run's results, and refreshes firing alerts in
/// Alertmanager. Returns consecutive failures per target.
async fn alert(
    config: &Config,
    history: Option<&History>,
    report: &mut RunReport,
) -> HashMap<String, u32> {
    let thresholds = config.alerts.thresholds;
    let (h, ours) = (history.cloned(), report.records.clone());
    let replayed = tokio::task::spawn_blocking(move || replay(h.as_ref(), &ours, thresholds)).await;
    let (states, events, error) = match replayed {
        Ok(r) => r,
        Err(e) => {
            report.errors.push(format!("alert replay: {e}"));
            return HashMap::new();
        }
    };
    if let Some(e) = error {
        report
            .errors
            .push(format!("history {}: {e}", config.history_path()));
    }
    let failures = states
        .iter()
        .map(|(k, s)| (k.clone(), s.consecutive_failures))
        .collect();
    if config.alerts.alertmanager_url.is_none() && config.alerts.webhook_url.is_none() {
        return failures;
    }
    let notifier = match Notifier::new(config.alerts.clone()) {
        Ok(n) => n,
        Err(e) => {
            report.errors.push(format!("alert client: {e}"));
            return failures;
        }
    };
    let intervals: HashMap<&str, Duration> = config
        .targets
        .iter()
        .map(|t| (t.name.as_str(), t.interval))
        .collect();
    for event in &events {
        let Some(since) = event.since else { continue };
        if event.record.maintenance {
            continue; // nothing is sent during a maintenance window
        }
        let interval = intervals
            .get(event.record.target.as_str())
            .copied()
            .unwrap_or_default();
        let alert = AlertEvent {
            record: &event.record,
            since,
            transition: event.transition,
            consecutive_failures: event.consecutive_failures,
            ttl: alert_ttl(interval),
        };
        report.errors.extend(notifier.send(&alert).await);
        if let Some(t) = event.transition {
            tracing::warn!(target_name = %event.record.target, transition = ?t, "alert");
            report.transitions.push((event.record.target.clone(), t));
        }
    }
    failures
}

/// How long Alertmanager keeps a firing alert without a refresh: four probe intervals, at
/// least five minutes (set `interval` to the CronJob's schedule).
pub(crate) fn alert_ttl(interval: Duration) -> Duration {
    (interval * 4).max(Duration::from_secs(300))
}

fn log_result(r: &Record) {
    let status = r.status.map_or_else(|| "-".to_owned(), |s| s.to_string());
    if r.success {
        tracing::info!(
            target_name = %r.target, url = %r.url, status = %status,
            response_time_seconds = r.response_time_seconds, attempts = r.attempts,
            "probe passed"
        );
    } else {
        tracing::warn!(
            target_name = %r.target, url = %r.url, status = %status,
            response_time_seconds = r.response_time_seconds, attempts = r.attempts,
            reason = %r.reason(),
            "probe failed"
        );
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
}
