//! Which `healthcheck serve` replica probes, writes the history and alerts: the one that holds
//! the Lease (see `kubeapi::lease`). Without API access (`up`, a laptop) the process leads
//! alone, as before there were replicas.
//!
//! Resuming on failover: an incident open when the leader died must be neither notified
//! again nor lost. A new leader first reads the history the old one wrote (a shared file), and
//! then merges the incident note the old leader kept in an annotation of the Lease (written
//! on every fire and resolve): for each target, whichever of the two saw the later result
//! wins. So replicas with their own history (the chart's emptyDir) resume from the note, and
//! replicas sharing one history file from the file itself.

pub mod args;
mod note;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub use kubeapi::lease::Term;
use kubeapi::lease::{Elector, LeaseConfig};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use args::{ElectionConfig, LeaseArgs};
pub use note::{Incident, Incidents};

use crate::board::Board;

/// The annotation of the Lease the leader keeps its open incidents in.
pub const NOTE_ANNOTATION: &str = "ferrostack.io/healthcheck-incidents";
/// The annotation of the Lease the leader keeps its `--advertise-url` in.
pub const URL_ANNOTATION: &str = "ferrostack.io/healthcheck-leader-url";

/// This replica's part: whether it leads, the `ferrostack_healthcheck_leader` gauge, and the
/// incident note it keeps while leading.
#[derive(Debug)]
pub struct Leadership {
    /// Set once a new leader has caught up with the history and the note; cleared the
    /// moment leadership is lost. Notifications are sent only while it is set.
    leading: AtomicBool,
    gauge: Gauge,
    info: Mutex<LeaderInfo>,
    incidents: Mutex<Incidents>,
    notes: Mutex<Option<Arc<Elector>>>,
}

/// Leadership as `/api/status` reports it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LeaderInfo {
    /// Whether this replica probes, writes the history and alerts.
    pub leading: bool,
    /// `lease` (elected through a Lease) or `none` (no API access: this process alone).
    pub election: &'static str,
    /// The Lease, `namespace/name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease: Option<String>,
    /// This replica's holder identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
}

impl Leadership {
    /// Registers the gauge; not leading until told.
    pub fn register(registry: &mut Registry) -> Self {
        let gauge = Gauge::default();
        registry.register(
            "ferrostack_healthcheck_leader",
            "1 while this replica leads (probes, writes the history, alerts), else 0",
            gauge.clone(),
        );
        Self {
            leading: AtomicBool::new(false),
            gauge,
            info: Mutex::new(LeaderInfo {
                election: "none",
                ..LeaderInfo::default()
            }),
            incidents: Mutex::default(),
            notes: Mutex::default(),
        }
    }

    /// Whether this replica leads (and so may append and notify): caught up, and, when
    /// elected, still within the renew deadline of its last renewal by its own clock.
    pub fn leading(&self) -> bool {
        self.leading.load(Ordering::Acquire) && lock(&self.notes).as_ref().is_none_or(|e| e.valid())
    }

    /// Elected, and another replica leads (or this one is still catching up): results it
    /// took in would not be written. Alone (no election) it is never a follower.
    pub fn follower(&self) -> bool {
        lock(&self.info).election != "none" && !self.leading()
    }

    /// As after `start` found API access, without a Lease (tests of follower behaviour).
    #[cfg(test)]
    pub(crate) fn elected_for_test(&self) {
        lock(&self.info).election = "lease";
    }

    /// The leader's `--advertise-url`, when another replica leads and advertises one: where
    /// a follower forwards what only the leader may take in.
    pub fn leader_url(&self) -> Option<url::Url> {
        let elector = lock(&self.notes).clone()?;
        elector.leader()?.advertised?.parse().ok()
    }

    /// The status API's view.
    pub fn info(&self) -> LeaderInfo {
        lock(&self.info).clone()
    }

    /// Starts (`true`) or stops leading: the gauge, the status, the notifications.
    pub(crate) fn set_leading(&self, leading: bool) {
        self.leading.store(leading, Ordering::Release);
        self.gauge.set(i64::from(leading));
        lock(&self.info).leading = leading;
    }

    /// Takes over: merges the previous leader's note into `board` (see the module doc) and
    /// starts this leader's note from the result.
    pub(crate) fn take_over(&self, term: &Term, board: &mut Board) {
        let handed = term
            .note
            .as_deref()
            .map(Incidents::parse)
            .unwrap_or_default();
        let merged = handed.merge_into(board);
        if merged > 0 {
            tracing::info!(
                targets = merged,
                "resumed alert states from the lease's incident note"
            );
        }
        let ours = handed.updated_from(board);
        self.publish(&ours);
        *lock(&self.incidents) = ours;
    }

    /// A target's alert fired (`firing_since` set) or resolved at `at`: noted in the Lease.
    pub(crate) fn transition(
        &self,
        target: &str,
        firing_since: Option<OffsetDateTime>,
        at: OffsetDateTime,
    ) {
        let mut incidents = lock(&self.incidents);
        incidents.set(target, Incident { firing_since, at });
        self.publish(&incidents);
    }

    fn publish(&self, incidents: &Incidents) {
        if let Some(elector) = lock(&self.notes).as_ref() {
            elector.set_note(incidents.to_json());
        }
    }
}

/// Starts the election `config` asks for; the receiver says when this replica leads. Without
/// API access it leads at once, alone, and says so once.
pub(crate) async fn start(
    config: &ElectionConfig,
    leadership: &Leadership,
    shutdown: CancellationToken,
) -> Result<(watch::Receiver<Option<Term>>, Option<Arc<Elector>>), kubeapi::ClientError> {
    let Some(client) = kubeapi::client(&config.access).await? else {
        tracing::info!(
            "no Kubernetes API access (not in a pod, no --kubeconfig): no leader election, this process probes and alerts alone"
        );
        return Ok((alone(), None));
    };
    let namespace = config
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_owned());
    let lease = LeaseConfig {
        name: config.lease_name.clone(),
        namespace,
        identity: config.identity.clone(),
        duration: config.duration,
        note_annotation: NOTE_ANNOTATION.to_owned(),
        advertise: config
            .advertise_url
            .as_ref()
            .map(|u| (URL_ANNOTATION.to_owned(), u.to_string())),
    };
    *lock(&leadership.info) = LeaderInfo {
        leading: false,
        election: "lease",
        lease: Some(format!("{}/{}", lease.namespace, lease.name)),
        identity: Some(lease.identity.clone()),
    };
    let elector = Arc::new(Elector::start(client, lease, shutdown));
    *lock(&leadership.notes) = Some(elector.clone());
    Ok((elector.subscribe(), Some(elector)))
}

/// Leadership that never changes: this process alone.
pub(crate) fn alone() -> watch::Receiver<Option<Term>> {
    // The sender goes at once: the receiver keeps its value, and the serve loop stops
    // watching a closed channel.
    watch::channel(Some(Term {
        note: None,
        transitions: 0,
    }))
    .1
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
