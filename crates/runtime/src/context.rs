//! The explicit context handed to every role: who it is, when to stop, whether it is ready.

use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::telemetry::LogEvents;

/// What a role needs from the process around it. Cheap to clone; no global state.
#[derive(Clone, Debug)]
pub struct Context {
    role: &'static str,
    shutdown: CancellationToken,
    readiness: Readiness,
    log_events: LogEvents,
}

// === impl Context ===

impl Context {
    /// A context for `role`, stopped when `shutdown` is cancelled.
    pub fn new(role: &'static str, shutdown: CancellationToken, log_events: LogEvents) -> Self {
        Self {
            role,
            shutdown,
            readiness: Readiness::default(),
            log_events,
        }
    }

    /// The role's name, as in `ferrostack_build_info{role}` and the `role` log field.
    pub fn role(&self) -> &'static str {
        self.role
    }

    /// Cancelled when the process begins a graceful shutdown.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// The role's readiness, served on `/readyz`.
    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    /// Counts of log events by level (`ferrostack_log_events_total`).
    pub fn log_events(&self) -> &LogEvents {
        &self.log_events
    }

    /// The span a role's tasks run in: it puts `role` on every log line they emit, and counts
    /// them as the role's in `ferrostack_log_events_total` (so the role's counters exist first).
    pub fn span(&self) -> tracing::Span {
        self.log_events.family(self.role);
        tracing::info_span!("role", role = self.role)
    }

    /// The same process-wide handles for another role (used by `up`); readiness is its own.
    pub fn for_role(&self, role: &'static str) -> Self {
        Self::new(role, self.shutdown.clone(), self.log_events.clone())
    }
}

/// Whether a role should receive traffic: false until it listens, false again from the
/// moment shutdown begins. A watch channel, so that others (`up`) can await it, not poll.
#[derive(Clone, Debug)]
pub struct Readiness(Arc<watch::Sender<bool>>);

// === impl Readiness ===

impl Default for Readiness {
    fn default() -> Self {
        Self(Arc::new(watch::Sender::new(false)))
    }
}

impl Readiness {
    /// Marks the role ready or not.
    pub fn set_ready(&self, ready: bool) {
        self.0.send_replace(ready);
    }

    /// Whether the role is ready.
    pub fn is_ready(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the role is ready (at once if it is already).
    pub async fn ready(&self) {
        // `wait_for` fails only once the sender is gone, and `self` holds it.
        let _ = self.0.subscribe().wait_for(|ready| *ready).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Readiness;

    #[tokio::test]
    async fn ready_resolves_when_the_role_becomes_ready() {
        let readiness = Readiness::default();
        let waiting = tokio::spawn({
            let readiness = readiness.clone();
            async move { readiness.ready().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "not ready yet");
        readiness.set_ready(true);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("ready() resolves after set_ready(true)")
            .expect("no panic");
        readiness.ready().await;
    }
}
