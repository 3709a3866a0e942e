//! `ferrostack_log_events_total{level}`: the log events a role emitted, the "error-log rate"
//! signal. Counted per role, so that in `up`, where every role shares one process, one role's
//! errors do not raise every role's alert.
//!
//! An event is the role's when it happens inside a span that names the role: the role's own
//! span (see [`crate::Context::span`]) or a request's span. An event outside any role's span (process start-up and
//! shutdown, `up`'s own lines) is the whole process's and counts for every role.

use std::sync::{Arc, RwLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Level, Subscriber};
use tracing_subscriber::layer::Context as LayerContext;
use tracing_subscriber::registry::LookupSpan;

/// The label set of `ferrostack_log_events_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LevelLabel {
    level: &'static str,
}

type Events = Family<LevelLabel, Counter>;

/// Counts of log events by role and level; cheap to clone, shared by the whole process.
#[derive(Clone, Debug, Default)]
pub struct LogEvents {
    /// One family per role that asked for one; a handful at most, so a list.
    roles: Arc<RwLock<Vec<(&'static str, Events)>>>,
    log_file: Option<Arc<dyn Collector>>,
}

// === impl LogEvents ===

impl LogEvents {
    /// Counts one event at `level` for `role`, or for every role when the event belongs to
    /// none of them.
    pub fn record(&self, level: &Level, role: Option<&str>) {
        // Lower case, as the alert rules match it (`level="error"`).
        let level = LevelLabel {
            level: match *level {
                Level::ERROR => "error",
                Level::WARN => "warn",
                Level::INFO => "info",
                Level::DEBUG => "debug",
                Level::TRACE => "trace",
            },
        };
        let Ok(roles) = self.roles.read() else {
            return;
        };
        match role.and_then(|role| roles.iter().find(|(name, _)| *name == role)) {
            Some((_, events)) => {
                events.get_or_create(&level).inc();
            }
            None => {
                for (_, events) in roles.iter() {
                    events.get_or_create(&level).inc();
                }
            }
        }
    }

    /// The registered name equal to `role`, if its family exists.
    fn registered(&self, role: &str) -> Option<&'static str> {
        let roles = self.roles.read().ok()?;
        roles
            .iter()
            .find(|(name, _)| *name == role)
            .map(|(name, _)| *name)
    }

    /// The counter family of `role`, for registration in that role's registry.
    pub fn family(&self, role: &'static str) -> Events {
        let mut roles = match self.roles.write() {
            Ok(roles) => roles,
            // A panic while counting cannot leave the list half-changed: keep using it.
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some((_, events)) = roles.iter().find(|(name, _)| *name == role) {
            return events.clone();
        }
        let events = Events::default();
        roles.push((role, events.clone()));
        events
    }

    /// Attaches the metrics of the log file writer (`--log-file-dir`), so that every role's
    /// registry exports them.
    pub fn with_log_file_metrics(mut self, collector: Arc<dyn Collector>) -> Self {
        self.log_file = Some(collector);
        self
    }

    /// The log file writer's metrics, when a log file is written.
    pub fn log_file_metrics(&self) -> Option<Arc<dyn Collector>> {
        self.log_file.clone()
    }
}

/// The role a span names, kept in the span's extensions: the name a registered family
/// carries, so counting an event neither allocates nor copies a string.
struct RoleOf(&'static str);

/// Reads a span's `role` field as the registered name it equals: no copy of the value is
/// made, since every request's span carries the field.
struct RoleField<'a> {
    events: &'a LogEvents,
    role: Option<&'static str>,
}

impl Visit for RoleField<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "role" {
            self.role = self.events.registered(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "role" {
            self.role = self.events.registered(&format!("{value:?}"));
        }
    }
}

/// The layer that feeds [`LogEvents`].
pub(super) struct CountEvents(pub(super) LogEvents);

impl<S> tracing_subscriber::Layer<S> for CountEvents
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        // The role's own span and each request's span carry the field.
        if attrs.metadata().fields().field("role").is_none() {
            return;
        }
        let mut field = RoleField {
            events: &self.0,
            role: None,
        };
        attrs.record(&mut field);
        // A role without a family yet is like no role: its events count for every role.
        if let (Some(role), Some(span)) = (field.role, ctx.span(id)) {
            span.extensions_mut().insert(RoleOf(role));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: LayerContext<'_, S>) {
        let scope = ctx.event_scope(event);
        let role = scope.and_then(|scope| {
            scope
                .from_root()
                .find_map(|span| span.extensions().get::<RoleOf>().map(|RoleOf(role)| *role))
        });
        self.0.record(event.metadata().level(), role);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    fn count(events: &Events, level: &'static str) -> u64 {
        events.get_or_create(&LevelLabel { level }).get()
    }

    #[test]
    fn an_event_counts_for_its_role_and_a_process_event_for_every_role() {
        let events = LogEvents::default();
        let backend = events.family("backend-api");
        let data = events.family("data-api");
        let subscriber = tracing_subscriber::registry().with(CountEvents(events.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let role = tracing::info_span!("role", role = "data-api");
            role.in_scope(|| {
                let request = tracing::info_span!("request", request_id = "r1");
                request.in_scope(|| tracing::error!("data-api failed"));
                tracing::warn!("data-api warned");
            });
            // A request span outside the role's span names its role itself.
            let request = tracing::info_span!("request", role = "backend-api", request_id = "r2");
            request.in_scope(|| tracing::info!("backend-api served"));
            tracing::error!("the process failed");
        });
        assert_eq!(count(&data, "error"), 2);
        assert_eq!(count(&data, "warn"), 1);
        assert_eq!(count(&backend, "error"), 1, "only the process-wide error");
        assert_eq!(count(&backend, "warn"), 0);
        assert_eq!(count(&backend, "info"), 1);
        assert_eq!(count(&data, "info"), 0);
        // Asking again gives the same counters.
        assert_eq!(count(&events.family("data-api"), "error"), 2);
    }
}
