//! Leader election through one `coordination.k8s.io/v1` Lease, with client-go's
//! `leaderelection` semantics: the holder renews `renewTime` every retry period; a candidate
//! takes the Lease over only when its record has not changed for `leaseDurationSeconds` by the
//! candidate's own clock (so clock skew between nodes does not matter); every write carries
//! the `resourceVersion` it read, so of two candidates exactly one wins; and a leader that
//! cannot renew within the renew deadline (two thirds of the lease duration) stops leading
//! before anyone else can start.
//!
//! The leader may also keep a small note in one annotation of the Lease (written with its
//! renewals), which the next leader is handed when it takes over: state that must survive a
//! failover without a shared volume. And it may advertise where it is (say, its URL) in
//! another, which the other candidates read at every try (see [`Elector::leader`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

mod decide;

pub use decide::{Decision, Observed, decide};

/// What to elect on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseConfig {
    /// The Lease's name.
    pub name: String,
    /// The Lease's namespace.
    pub namespace: String,
    /// This candidate's `holderIdentity`; unique among the candidates.
    pub identity: String,
    /// `leaseDurationSeconds`: how long a silent leader is waited for (whole seconds, at least 3).
    pub duration: Duration,
    /// The annotation the leader's note is kept in (see [`Elector::set_note`]).
    pub note_annotation: String,
    /// An annotation and its value this candidate writes whenever it takes or renews the
    /// Lease, for the others to read (see [`Elector::leader`]).
    pub advertise: Option<(String, String)>,
}

impl LeaseConfig {
    /// How long a leader keeps leading without a successful renewal: two thirds of the lease
    /// duration (client-go's 10 s of 15 s), so it stops before any other candidate may start.
    pub fn renew_deadline(&self) -> Duration {
        self.duration * 2 / 3
    }

    /// How often the leader renews and candidates try: the duration / 7.5 (client-go's 2 s of
    /// 15 s).
    pub fn retry_period(&self) -> Duration {
        self.duration * 2 / 15
    }
}

/// One term of leadership, as handed to the new leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// The note the Lease carried when this candidate took it over (the previous leader's).
    pub note: Option<String>,
    /// `leaseTransitions` after the take-over.
    pub transitions: i32,
}

/// Why one attempt failed (the election goes on: it is retried).
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The API server refused or failed.
    #[error("lease {namespace}/{name}: {source}")]
    Api {
        /// The Lease's namespace.
        namespace: String,
        /// The Lease's name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

/// A running election; dropping it does not stop it (cancel the shutdown token given to
/// [`Elector::start`]).
#[derive(Debug)]
pub struct Elector {
    leading: watch::Receiver<Option<Term>>,
    note: watch::Sender<Option<String>>,
    valid_until: Valid,
    holder: Seen,
}

/// Another candidate holding the Lease, as last read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Its `holderIdentity`.
    pub identity: String,
    /// What it advertises in [`LeaseConfig::advertise`]'s annotation, if anything.
    pub advertised: Option<String>,
}

/// The holder as last read (`None`: no holder, this candidate, or not read yet).
type Seen = Arc<Mutex<Option<Holder>>>;

/// Until when the current term holds without another renewal: the last renewal plus the
/// renew deadline (`None`: not leading).
type Valid = Arc<Mutex<Option<Instant>>>;

impl Elector {
    /// Starts campaigning for `config`'s Lease until `shutdown`, when a leader releases it
    /// (so a successor need not wait out the lease).
    pub fn start(client: Client, config: LeaseConfig, shutdown: CancellationToken) -> Self {
        let (leading_tx, leading) = watch::channel(None);
        let (note, note_rx) = watch::channel(None);
        let valid_until = Valid::default();
        let holder = Seen::default();
        let campaign = Campaign {
            valid_until: valid_until.clone(),
            holder: holder.clone(),
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: None,
            leading: leading_tx,
            note: note_rx,
        };
        tokio::spawn(campaign.run(shutdown));
        Self {
            leading,
            note,
            valid_until,
            holder,
        }
    }

    /// Another candidate that held the Lease when it was last read (every retry period),
    /// and what it advertised; `None` when nobody or this candidate holds it.
    pub fn leader(&self) -> Option<Holder> {
        self.holder
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Leadership as it changes: `Some` while this candidate leads.
    pub fn subscribe(&self) -> watch::Receiver<Option<Term>> {
        self.leading.clone()
    }

    /// Whether this candidate leads right now by its own clock: within the renew deadline of
    /// its last renewal. Checked before acting as leader, it closes the gap a paused process
    /// (a stopped container, a long GC-like stall) would otherwise have after it wakes and
    /// before the campaign notices that its term ran out.
    pub fn valid(&self) -> bool {
        let until = *self
            .valid_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        until.is_some_and(|u| Instant::now() < u)
    }

    /// Sets the note the leader keeps in the Lease; written at once (and with every renewal).
    pub fn set_note(&self, note: String) {
        self.note.send_replace(Some(note));
    }

    /// Waits for the campaign to end (after shutdown: the Lease released).
    pub async fn stopped(&self) {
        let mut leading = self.leading.clone();
        // The campaign owns the sender: the channel closes when it ends.
        while leading.changed().await.is_ok() {}
    }
}

struct Campaign {
    api: Api<Lease>,
    config: LeaseConfig,
    /// The holder's record as last seen and when (our clock) it last changed.
    observed: Option<Observed>,
    leading: watch::Sender<Option<Term>>,
    note: watch::Receiver<Option<String>>,
    valid_until: Valid,
    holder: Seen,
}

impl Campaign {
    async fn run(mut self, shutdown: CancellationToken) {
        tracing::info!(lease = %self.name(), identity = %self.config.identity, "campaigning for the lease");
        loop {
            let Some(term) = self.acquire(&shutdown).await else {
                return;
            };
            tracing::info!(lease = %self.name(), identity = %self.config.identity, transitions = term.transitions, "leading");
            // The new leader's note starts as the one it was handed, until it sets its own.
            self.note.mark_unchanged();
            self.valid_for_now();
            self.leading.send_replace(Some(term));
            let released = self.renew(&shutdown).await;
            *self
                .valid_until
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = None;
            self.leading.send_replace(None);
            if released {
                self.release().await;
                return;
            }
            tracing::warn!(lease = %self.name(), identity = %self.config.identity, "lost the lease; following");
        }
    }

    /// Tries every retry period until this candidate holds the Lease; `None` on shutdown.
    async fn acquire(&mut self, shutdown: &CancellationToken) -> Option<Term> {
        let mut failures = 0u32;
        loop {
            match self.try_acquire_or_renew(false).await {
                Ok(Some(term)) => return Some(term),
                Ok(None) => failures = 0,
                Err(e) => {
                    // Logged on the first failure and then every 30th, not every 2 s.
                    if failures.is_multiple_of(30) {
                        tracing::warn!(error = %e, "cannot read or take the lease; retrying");
                    }
                    failures += 1;
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return None,
                () = tokio::time::sleep(self.config.retry_period()) => {}
            }
        }
    }

    /// Renews until shutdown (`true`) or until the Lease is lost or not renewed within the
    /// renew deadline (`false`).
    async fn renew(&mut self, shutdown: &CancellationToken) -> bool {
        let mut renewed = Instant::now();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return true,
                () = tokio::time::sleep(self.config.retry_period()) => {}
                changed = self.note.changed() => if changed.is_err() { return true },
            }
            let deadline = renewed + self.config.renew_deadline();
            match tokio::time::timeout_at(deadline, self.try_acquire_or_renew(true)).await {
                Ok(Ok(Some(_))) => {
                    renewed = Instant::now();
                    self.valid_for_now();
                }
                Ok(Ok(None)) => return false,
                Ok(Err(e)) if Instant::now() < deadline => {
                    tracing::warn!(error = %e, "cannot renew the lease; retrying until the renew deadline");
                }
                Ok(Err(_)) | Err(_) => return false,
            }
        }
    }

    /// client-go's `tryAcquireOrRenew`: `Some` when this candidate holds the Lease afterwards.
    async fn try_acquire_or_renew(&mut self, leading: bool) -> Result<Option<Term>, LeaseError> {
        let now = Timestamp::now();
        let Some(mut lease) = self
            .api
            .get_opt(&self.config.name)
            .await
            .map_err(|e| self.err(e))?
        else {
            return self.create(now).await;
        };
        let spec = lease.spec.clone().unwrap_or_default();
        self.saw_holder(&lease);
        let seen = Observed::of(&spec, Instant::now());
        self.observed = Some(match self.observed.take() {
            Some(old) if old.same_record(&seen) => old,
            _ => seen,
        });
        let observed = self.observed.as_ref().map_or(Decision::Wait, |o| {
            decide(
                o,
                &self.config.identity,
                self.config.duration,
                Instant::now(),
            )
        });
        if observed == Decision::Wait {
            return Ok(None);
        }
        let note = lease
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(&self.config.note_annotation).cloned());
        lease.spec = Some(self.next_spec(&spec, now));
        let annotations = lease.metadata.annotations.get_or_insert_with(BTreeMap::new);
        if leading && let Some(ours) = self.note.borrow_and_update().clone() {
            annotations.insert(self.config.note_annotation.clone(), ours);
        }
        self.advertise(annotations);
        self.write(lease, note).await
    }

    /// The record this candidate writes: a renewal keeps `acquireTime` and the transitions; a
    /// take-over starts its own.
    fn next_spec(&self, old: &LeaseSpec, now: Timestamp) -> LeaseSpec {
        let ours = old.holder_identity.as_deref() == Some(self.config.identity.as_str());
        LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(self.duration_seconds()),
            acquire_time: if ours {
                old.acquire_time.clone()
            } else {
                Some(MicroTime(now))
            },
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(
                old.lease_transitions.unwrap_or(0)
                    + i32::from(!ours && old.holder_identity.is_some()),
            ),
            ..old.clone()
        }
    }

    /// Replaces the Lease with the `resourceVersion` it was read at: a conflict means another
    /// candidate wrote first, and this one lost.
    async fn write(
        &mut self,
        lease: Lease,
        note: Option<String>,
    ) -> Result<Option<Term>, LeaseError> {
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(written) => Ok(Some(self.took(&written, note))),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    /// No Lease yet: create it held by this candidate (409: another candidate was first).
    async fn create(&mut self, now: Timestamp) -> Result<Option<Term>, LeaseError> {
        let mut lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.config.name.clone()),
                namespace: Some(self.config.namespace.clone()),
                annotations: Some(BTreeMap::new()),
                ..ObjectMeta::default()
            },
            spec: Some(self.next_spec(&LeaseSpec::default(), now)),
        };
        if let Some(annotations) = lease.metadata.annotations.as_mut() {
            self.advertise(annotations);
        }
        match self.api.create(&PostParams::default(), &lease).await {
            Ok(written) => Ok(Some(self.took(&written, None))),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Adds what this candidate advertises to the annotations it is about to write.
    fn advertise(&self, annotations: &mut BTreeMap<String, String>) {
        if let Some((key, value)) = &self.config.advertise {
            annotations.insert(key.clone(), value.clone());
        }
    }

    /// Keeps who else holds `lease` and what it advertises, for [`Elector::leader`].
    fn saw_holder(&self, lease: &Lease) {
        let identity = lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.clone())
            .filter(|h| !h.is_empty() && *h != self.config.identity);
        let holder = identity.map(|identity| Holder {
            identity,
            advertised: self.config.advertise.as_ref().and_then(|(key, _)| {
                lease
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(key).cloned())
            }),
        });
        *self.holder.lock().unwrap_or_else(PoisonError::into_inner) = holder;
    }

    fn took(&mut self, written: &Lease, note: Option<String>) -> Term {
        *self.holder.lock().unwrap_or_else(PoisonError::into_inner) = None;
        let spec = written.spec.clone().unwrap_or_default();
        self.observed = Some(Observed::of(&spec, Instant::now()));
        Term {
            note,
            transitions: spec.lease_transitions.unwrap_or(0),
        }
    }

    /// client-go's release on shutdown: the holder cleared and a 1 s duration, so a successor
    /// takes over at its next try instead of after the lease duration.
    async fn release(&mut self) {
        let result = async {
            let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
                return Ok(());
            };
            let Some(spec) = lease.spec.as_mut() else {
                return Ok(());
            };
            if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
                return Ok(());
            }
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(MicroTime(Timestamp::now()));
            self.api
                .replace(&self.config.name, &PostParams::default(), &lease)
                .await
                .map(drop)
        }
        .await;
        match result {
            Ok(()) => tracing::info!(lease = %self.name(), "released the lease"),
            Err(e) => tracing::warn!(error = %self.err(e), "cannot release the lease; it expires"),
        }
    }

    /// A renewal (or the take-over) just succeeded.
    fn valid_for_now(&self) {
        let until = Instant::now() + self.config.renew_deadline();
        *self
            .valid_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(until);
    }

    fn duration_seconds(&self) -> i32 {
        i32::try_from(self.config.duration.as_secs()).unwrap_or(i32::MAX)
    }

    fn name(&self) -> String {
        format!("{}/{}", self.config.namespace, self.config.name)
    }

    fn err(&self, source: kube::Error) -> LeaseError {
        LeaseError::Api {
            namespace: self.config.namespace.clone(),
            name: self.config.name.clone(),
            source,
        }
    }
}
