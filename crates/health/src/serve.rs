//! `healthcheck serve`: probes every target on its interval and keeps the board, metrics and
//! alerts current. Endpoints (the runtime adds `/healthz`, `/readyz`, `/metrics`, ...):
//! - `GET /` — the status page (see `page`);
//! - `GET /api/status` — the same as JSON (see `status`);
//! - `POST /api/push/{target}` — a pushed result (see `pushed`);
//! - `GET /badge/{target}/health.svg`, `GET /badge/{target}/uptime/{window}.svg` (see `badge`).
//!
//! One writer task owns the history: probe results are appended, then read back through a
//! tail together with anything other processes (CronJob runs) appended, so the board shows
//! both and no result is counted twice. Without a history file results go straight to the
//! board.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use bytes::Bytes;
use prometheus_client::registry::Registry;
use runtime::Context;
use time::OffsetDateTime;
use tracing::Instrument;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::Config;
use crate::alert::{Notifier, Transition};
use crate::args::ServeConfig;
use crate::board::Board;
use crate::deliver::{Deliveries, Event};
use crate::history::{History, Tail};
use crate::metrics::Metrics;
use crate::pushed::Inbox;
use crate::record::Record;
use crate::rollup::Rollups;
use crate::rollup::store::Store;
use crate::run::alert_ttl;

mod snapshot;
mod terms;

/// How often the writer looks for results appended by other processes.
const SYNC_EVERY: Duration = Duration::from_secs(5);
/// How often retention runs.
const RETAIN_EVERY: Duration = Duration::from_secs(600);
/// How often the rollups are saved (also before retention and at shutdown). Exactness does
/// not depend on it: a restart folds the history from the position saved with them.
const SAVE_EVERY: Duration = Duration::from_secs(300);

/// Why serve could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The HTTP client for alerts could not be built.
    #[error("alert client: {0}")]
    Client(#[from] reqwest::Error),
    /// The HTTP server failed.
    #[error(transparent)]
    Serve(runtime::http::ServeError),
    /// The Kubernetes API client for leader election could not be built.
    #[error("leader election: {0}")]
    Election(kubeapi::ClientError),
    /// The history could not be read at start.
    #[error("history {path}: {source}")]
    History {
        /// The history file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The rollups beside the history could not be read or saved at start.
    #[error("rollups {path}: {source}")]
    Rollups {
        /// The rollups file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The serve-mode health checker; cheap to clone.
#[derive(Clone)]
pub struct Service {
    shared: Arc<Shared>,
}

struct Shared {
    config: Config,
    board: RwLock<Board>,
    metrics: Metrics,
    notifier: Notifier,
    deliveries: Deliveries,
    history: Option<History>,
    tail: Mutex<Tail>,
    inbox: Arc<Inbox>,
    lead: Arc<crate::leader::Leadership>,
    rollups: RwLock<Rollups>,
    store: Option<Store>,
    snapshot: snapshot::Snapshot,
}

// === impl Service ===

impl Service {
    /// Registers the probe metrics in `registry` and builds the (empty) board.
    pub fn new(config: Config, registry: &mut Registry) -> Result<Self, ServeError> {
        let metrics = Metrics::register(registry);
        let lead = Arc::new(crate::leader::Leadership::register(registry));
        let notifier = Notifier::new(config.alerts.clone())?;
        let board = Board::new(&config.targets, config.alerts.thresholds);
        let history = config.history.as_ref().map(|h| History::new(&h.path));
        let inbox = Arc::new(Inbox::new(&config.targets));
        let rollups = RwLock::new(Rollups::new(&config.targets));
        let store = config.history.as_ref().map(|h| Store::beside(&h.path));
        Ok(Self {
            shared: Arc::new(Shared {
                config,
                board: RwLock::new(board),
                metrics,
                deliveries: Deliveries::new(notifier.clone()),
                notifier,
                history,
                tail: Mutex::new(Tail::default()),
                inbox,
                lead,
                rollups,
                store,
                snapshot: snapshot::Snapshot::default(),
            }),
        })
    }

    /// Reads the rollups and the history into the board (alert states replayed, nothing
    /// sent), folds the results the rollups miss, saves them, then applies retention. Call
    /// before reporting ready.
    pub async fn load(&self) -> Result<(), ServeError> {
        let Some(history) = self.shared.history.clone() else {
            return Ok(());
        };
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.load_blocking(&history))
            .await
            .unwrap_or_else(|e| {
                Err(ServeError::History {
                    path: self.history_path(),
                    source: std::io::Error::other(e),
                })
            })
    }

    fn load_blocking(&self, history: &History) -> Result<(), ServeError> {
        let history_error = |source| ServeError::History {
            path: self.history_path(),
            source,
        };
        let saved = self.load_rollups()?;
        let read = lock(&self.shared.tail)
            .read(history)
            .map_err(history_error)?;
        let position = lock(&self.shared.tail).position();
        let mut rollups = write(&self.shared.rollups);
        rollups.fold_read(&read, saved, position);
        let mut board = write(&self.shared.board);
        for r in read.records {
            board.ingest(r);
        }
        for t in &self.shared.config.targets {
            if let Some(s) = rollups.get(&t.name) {
                board.set_freshness(&t.name, s.freshness);
            }
        }
        drop(board);
        self.save_rollups_locked(&rollups, position)
            .map_err(|source| self.rollups_error(source))?;
        drop(rollups);
        // Retention only after the rollups hold every result it may drop.
        let (age, bytes) = self
            .shared
            .config
            .history
            .as_ref()
            .map_or((None, None), |h| (h.max_age, h.max_bytes));
        let retained = history
            .retain(OffsetDateTime::now_utc(), age, bytes)
            .map_err(history_error)?;
        if retained.dropped > 0 {
            let read = lock(&self.shared.tail)
                .read(history)
                .map_err(history_error)?;
            self.rebuild(read.records);
        }
        Ok(())
    }

    /// Reads the rollups file into the (empty) rollups; returns the position saved with it.
    fn load_rollups(&self) -> Result<Option<crate::history::Position>, ServeError> {
        let Some(store) = &self.shared.store else {
            return Ok(None);
        };
        store
            .load(&mut write(&self.shared.rollups))
            .map_err(|source| self.rollups_error(source))
    }

    fn save_rollups_locked(
        &self,
        rollups: &Rollups,
        position: Option<crate::history::Position>,
    ) -> std::io::Result<()> {
        match &self.shared.store {
            Some(store) => store.save(rollups, position),
            None => Ok(()),
        }
    }

    /// Saves the rollups with the tail's position (both current: the write loop, which alone
    /// reads the tail and folds, calls this between batches).
    async fn save_rollups(&self) {
        let this = self.clone();
        let saved = tokio::task::spawn_blocking(move || {
            let position = lock(&this.shared.tail).position();
            let mut rollups = write(&this.shared.rollups);
            rollups.pack_closed_days();
            this.save_rollups_locked(&rollups, position)
        })
        .await;
        if let Ok(Err(e)) = saved {
            let path = self.rollups_path();
            tracing::error!(error = %e, rollups = %path, "cannot save the rollups");
        }
    }

    fn rollups_error(&self, source: std::io::Error) -> ServeError {
        ServeError::Rollups {
            path: self.rollups_path(),
            source,
        }
    }

    fn rollups_path(&self) -> String {
        self.shared
            .store
            .as_ref()
            .map_or_else(String::new, |s| s.path().display().to_string())
    }

    /// Appends our results (if any) and takes in everything new in the history.
    async fn record(&self, batch: Vec<Record>) {
        let Some(history) = self.shared.history.clone() else {
            self.take_in(batch);
            return;
        };
        let this = self.clone();
        let read = tokio::task::spawn_blocking(move || {
            let appended = if batch.is_empty() {
                Ok(())
            } else {
                history.append(&batch)
            };
            let read = lock(&this.shared.tail).read(&history);
            (appended.map_err(|e| (e, batch)), read)
        })
        .await;
        let Ok((appended, read)) = read else { return };
        if let Err((e, batch)) = appended {
            tracing::error!(error = %e, history = %self.history_path(), "cannot append to the history");
            self.take_in(batch);
        }
        match read {
            Ok(read) if read.reset => self.rebuild(read.records),
            Ok(read) => self.take_in(read.records),
            Err(e) => {
                tracing::error!(error = %e, history = %self.history_path(), "cannot read the history")
            }
        }
    }

    /// New results: board, metrics, alerts.
    fn take_in(&self, records: Vec<Record>) {
        self.shared.snapshot.changed_by(&records);
        // Only the leader alerts, and notes its fires and resolves in the Lease.
        let leading = self.shared.lead.leading();
        let mut events = Vec::new();
        let mut noted = Vec::new();
        {
            let mut rollups = write(&self.shared.rollups);
            for r in &records {
                rollups.fold(r);
            }
            drop(rollups);
            let mut board = write(&self.shared.board);
            for r in records {
                // A resolution clears `firing_since`; it still names the alert that fired.
                let before = board.get(&r.target).and_then(|v| v.alert.firing_since);
                let transition = board.ingest(r.clone());
                let Some(view) = board.get(&r.target).filter(|v| v.configured) else {
                    continue;
                };
                self.shared
                    .metrics
                    .observe(&r, view.alert.consecutive_failures);
                if leading && transition.is_some() {
                    noted.push((r.target.clone(), view.alert.firing_since, r.time));
                }
                if r.maintenance {
                    continue; // nothing is sent during a maintenance window
                }
                let since = match (transition, view.alert.firing_since) {
                    (_, Some(since)) => since,
                    (Some(Transition::Resolved), None) => before.unwrap_or(r.time),
                    (_, None) => continue,
                };
                events.push((r, transition, since, view.alert.consecutive_failures));
            }
        }
        for (target, firing_since, at) in noted {
            self.shared.lead.transition(&target, firing_since, at);
        }
        if !leading || !self.shared.notifier.enabled() {
            return;
        }
        for (record, transition, since, consecutive_failures) in events {
            let interval = self
                .shared
                .config
                .targets
                .iter()
                .find(|t| t.name == record.target)
                .map_or(Duration::ZERO, |t| t.interval);
            if let Some(t) = transition {
                tracing::warn!(target_name = %record.target, transition = ?t, "alert");
            }
            self.shared.deliveries.send(Event {
                record,
                since,
                transition,
                consecutive_failures,
                ttl: alert_ttl(interval),
            });
        }
    }

    /// The history was rewritten: rebuild the board from it, keeping the live alert states.
    fn rebuild(&self, records: Vec<Record>) {
        self.shared.snapshot.changed();
        write(&self.shared.rollups).fold_new(&records);
        let mut board = write(&self.shared.board);
        let alerts = board.alert_states();
        board.clear();
        for r in records {
            board.ingest(r);
        }
        for (name, state) in alerts {
            board.restore_alert(&name, state);
        }
    }

    async fn retain(&self) {
        let (Some(history), Some(hc)) = (
            self.shared.history.clone(),
            self.shared.config.history.clone(),
        ) else {
            return;
        };
        let result = tokio::task::spawn_blocking(move || {
            history.retain(OffsetDateTime::now_utc(), hc.max_age, hc.max_bytes)
        })
        .await;
        match result {
            Ok(Ok(r)) if r.dropped > 0 => {
                tracing::info!(kept = r.kept, dropped = r.dropped, "history retention")
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, history = %self.history_path(), "history retention failed")
            }
            _ => {}
        }
    }

    fn history_path(&self) -> String {
        self.shared.config.history_path()
    }

    /// A target's uptime over one of the rollups' windows (`rollup::WINDOWS`).
    pub(crate) fn window_uptime(
        &self,
        target: &str,
        window: &str,
        now: OffsetDateTime,
    ) -> Option<f64> {
        let rollups = read(&self.shared.rollups);
        let series = rollups.get(target)?;
        series
            .windows(now)
            .into_iter()
            .find(|(n, _)| *n == window)
            .and_then(|(_, stats)| stats.uptime)
    }

    /// The board, for reading.
    pub(crate) fn board(&self) -> std::sync::RwLockReadGuard<'_, Board> {
        read(&self.shared.board)
    }
}

/// The role's API routes: `GET /`, `GET /api/status`, `POST /api/push/{target}` and the badges
/// (runtime adds the rest).
pub fn app(service: Service) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(page_get))
        .routes(routes!(status_get))
        .with_state(service.clone())
        .merge(crate::pushed::routes(
            service.shared.inbox.clone(),
            service.shared.lead.clone(),
        ))
        .merge(crate::badge::routes(service))
}

/// Runs `healthcheck serve` until the context's shutdown completes: reads the history,
/// serves the page, API and metrics through the runtime, probes on the targets' intervals.
pub async fn run(config: ServeConfig, ctx: Context) -> Result<(), ServeError> {
    let span = ctx.span();
    async move {
        let mut registry = runtime::metrics::registry(&ctx);
        let service = Service::new(config.health, &mut registry)?;
        service.load().await?;
        tracing::info!(
            targets = service.shared.config.targets.len(),
            history = %service.history_path(),
            "starting"
        );
        let router = runtime::http::app(app(service.clone()), registry, &config.server, &ctx);
        // A child token: stopping the probes when the server ends (say, on a bind error)
        // must not cancel the shutdown token every other role in `up` shares.
        let stop_probes = ctx.shutdown().child_token();
        let (leading, elector) =
            crate::leader::start(&config.election, &service.shared.lead, stop_probes.clone())
                .await
                .map_err(ServeError::Election)?;
        let probes = tokio::spawn(
            service
                .run_elected(stop_probes.clone(), leading)
                .instrument(tracing::Span::current()),
        );
        let served = runtime::http::serve(&config.server, &ctx, router).await;
        stop_probes.cancel();
        let _ = probes.await;
        if let Some(elector) = elector {
            elector.stopped().await;
        }
        served.map_err(ServeError::Serve)
    }
    .instrument(span)
    .await
}

/// The status page (HTML, no external assets).
#[utoipa::path(get, path = "/", tag = "healthcheck", responses(
    (status = 200, description = "status page: every target's state, uptime, response times, last results", content_type = "text/html"),
))]
async fn page_get(State(service): State<Service>) -> Response {
    let rollups = read(&service.shared.rollups);
    let html = crate::page::render(
        &read(&service.shared.board),
        &rollups,
        OffsetDateTime::now_utc(),
    );
    ([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

/// Every target's state, uptime, alert state and last results as JSON.
#[utoipa::path(get, path = "/api/status", tag = "healthcheck", responses(
    (status = 200, description = "status of every target", content_type = "application/json"),
))]
async fn status_get(State(service): State<Service>) -> Response {
    let (now, lead) = (OffsetDateTime::now_utc(), &service.shared.lead);
    let build = |hint: usize| {
        let (board, rollups) = (read(&service.shared.board), read(&service.shared.rollups));
        let body = terms::WithLeader {
            status: crate::status::status(&board, &rollups, now),
            leader: lead.info(),
        };
        // Room for the last body and a little growth: doubling a 2 MB buffer would hold up
        // to twice that while copying.
        let mut buf = Vec::with_capacity(hint + hint / 16);
        // Serialising plain data into memory cannot fail; an empty body would show it.
        match serde_json::to_writer(&mut buf, &body) {
            Ok(()) => Bytes::from(buf),
            Err(_) => Bytes::new(),
        }
    };
    let body = service
        .shared
        .snapshot
        .body(now, lead.leading(), build)
        .await;
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_TYPE, "application/json"),
        ],
        body,
    )
        .into_response()
}

/// Poisoning only follows a panic elsewhere; the data is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}
