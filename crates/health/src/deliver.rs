//! Alert delivery for `healthcheck serve`, in order per target: each target's events go
//! through one bounded queue drained by one task, so a resolution never overtakes the firing
//! it resolves. Sent from a task per event, a slow first delivery let the resolve arrive
//! first, and Alertmanager then kept the late firing alert active until its `endsAt`.
//! Targets still deliver independently: one slow target does not hold up the others.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::alert::{AlertEvent, Notifier, Transition};
use crate::record::Record;

/// Events a target may have waiting while its receivers are slow (each delivery times out
/// after 10 s). Past that, new events are dropped with an error: a firing alert's `endsAt`
/// still expires it in Alertmanager.
const QUEUE: usize = 64;

/// One event to deliver, owned so that it can wait in a queue.
#[derive(Debug)]
pub(crate) struct Event {
    pub(crate) record: Record,
    pub(crate) since: OffsetDateTime,
    pub(crate) transition: Option<Transition>,
    pub(crate) consecutive_failures: u32,
    pub(crate) ttl: Duration,
}

/// The per-target queues; their tasks end when this is dropped.
#[derive(Debug)]
pub(crate) struct Deliveries {
    notifier: Notifier,
    queues: Mutex<HashMap<String, mpsc::Sender<Event>>>,
}

impl Deliveries {
    pub(crate) fn new(notifier: Notifier) -> Self {
        Self {
            notifier,
            queues: Mutex::default(),
        }
    }

    /// Queues `event` behind its target's earlier events. Must run inside a Tokio runtime.
    pub(crate) fn send(&self, event: Event) {
        let Ok(mut queues) = self.queues.lock() else {
            tracing::error!("alert queues poisoned; event dropped");
            return;
        };
        let queue = queues
            .entry(event.record.target.clone())
            .or_insert_with(|| spawn_worker(self.notifier.clone()));
        match queue.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(event)) => tracing::error!(
                target_name = %event.record.target,
                transition = ?event.transition,
                "alert queue full (receivers too slow); event dropped"
            ),
            Err(mpsc::error::TrySendError::Closed(event)) => tracing::error!(
                target_name = %event.record.target,
                transition = ?event.transition,
                "alert delivery task gone; event dropped"
            ),
        }
    }
}

fn spawn_worker(notifier: Notifier) -> mpsc::Sender<Event> {
    let (tx, mut rx) = mpsc::channel::<Event>(QUEUE);
    tokio::spawn(async move {
        while let Some(e) = rx.recv().await {
            let event = AlertEvent {
                record: &e.record,
                since: e.since,
                transition: e.transition,
                consecutive_failures: e.consecutive_failures,
                ttl: e.ttl,
            };
            for error in notifier.send(&event).await {
                tracing::error!(error = %error, "alert delivery failed");
            }
        }
    });
    tx
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::Json;
    use axum::extract::State;
    use axum::routing::post;

    use super::*;
    use crate::alert::AlertConfig;

    fn event(target: &str, transition: Transition) -> Event {
        Event {
            record: Record::sample(
                target,
                OffsetDateTime::now_utc(),
                transition == Transition::Resolved,
            ),
            since: OffsetDateTime::now_utc(),
            transition: Some(transition),
            consecutive_failures: 3,
            ttl: Duration::from_secs(60),
        }
    }

    /// A webhook receiver that takes 300 ms over a firing and answers a resolution at once,
    /// recording the order in which deliveries finish arriving.
    async fn slow_firing_receiver() -> (String, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let app = axum::Router::new()
            .route(
                "/hook",
                post(
                    |State(seen): State<Arc<Mutex<Vec<String>>>>,
                     Json(body): Json<serde_json::Value>| async move {
                        let status = body["status"].as_str().unwrap_or_default().to_owned();
                        if status == "firing" {
                            tokio::time::sleep(Duration::from_millis(300)).await;
                        }
                        let target = body["target"].as_str().unwrap_or_default();
                        seen.lock().unwrap().push(format!("{target} {status}"));
                    },
                ),
            )
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}/hook"), seen)
    }

    #[tokio::test]
    async fn a_resolution_never_overtakes_its_firing_and_targets_do_not_wait_for_each_other() {
        let (url, seen) = slow_firing_receiver().await;
        let notifier = Notifier::new(AlertConfig {
            webhook_url: Some(url),
            ..AlertConfig::default()
        })
        .unwrap();
        let deliveries = Deliveries::new(notifier);
        deliveries.send(event("api", Transition::Fired));
        deliveries.send(event("api", Transition::Resolved));
        // Another target's resolution is not held up behind the slow firing of `api`.
        deliveries.send(event("db", Transition::Resolved));

        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while seen.lock().unwrap().len() < 3 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{:?}",
                seen.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            *seen.lock().unwrap(),
            ["db resolved", "api firing", "api resolved"]
        );
    }
}
