//! The probe and write loop under leadership. A follower only follows the history (so its
//! page and API show what the leader wrote, when it can see that file); the leader also
//! probes, appends and alerts. On taking over, the new leader first reads what the old one
//! appended and merges the old one's incident note (see `leader`), silently, and only then
//! probes; on losing the Lease it stops its probes and drops their unwritten results at once.

use std::sync::Arc;

use kubeapi::lease::Term;
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{RETAIN_EVERY, SAVE_EVERY, SYNC_EVERY, Service, read, write};
use crate::leader::LeaderInfo;
use crate::probe::probe;
use crate::record::Record;
use crate::status::Status;

/// `GET /api/status`: the status and this replica's leadership.
#[derive(Serialize)]
pub(super) struct WithLeader<'a> {
    #[serde(flatten)]
    pub(super) status: Status<'a>,
    pub(super) leader: LeaderInfo,
}

/// The probe tasks of one term.
struct Probes {
    stop: CancellationToken,
    tasks: JoinSet<()>,
    term: Term,
}

impl Service {
    /// Probes until `shutdown` is cancelled, alone (no election).
    pub async fn run(self, shutdown: CancellationToken) {
        self.run_elected(shutdown, crate::leader::alone()).await;
    }

    /// Until `shutdown`: follows the history, and while `leading` says so, probes and alerts.
    pub async fn run_elected(
        self,
        shutdown: CancellationToken,
        mut leading: watch::Receiver<Option<Term>>,
    ) {
        // Pushed results arrive on the same channel (see `pushed`).
        let (tx, Some(mut rx)) = self.shared.inbox.channel() else {
            tracing::error!("the service is already running");
            return;
        };
        let mut probes = None;
        let mut sync = tokio::time::interval(SYNC_EVERY);
        let mut retain = tokio::time::interval(RETAIN_EVERY);
        retain.tick().await; // `load` just ran it
        let mut save = tokio::time::interval(SAVE_EVERY);
        save.tick().await; // and saved the rollups
        let mut watching = true;
        let term = leading.borrow_and_update().clone();
        self.lead_or_follow(term, &mut probes, &tx, &mut rx, &shutdown)
            .await;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                changed = leading.changed(), if watching => {
                    // Closed: the election ended (shutdown, or none at all); keep the state.
                    watching = changed.is_ok();
                    let term = leading.borrow_and_update().clone();
                    self.lead_or_follow(term, &mut probes, &tx, &mut rx, &shutdown).await;
                }
                Some(first) = rx.recv() => {
                    let mut batch = vec![first];
                    while let Ok(more) = rx.try_recv() {
                        batch.push(more);
                    }
                    // A term that ran out (the process was paused) writes nothing more; the
                    // election then reports the loss and the probes stop.
                    if self.shared.lead.leading() {
                        self.record(batch).await;
                    }
                }
                _ = sync.tick() => self.record(Vec::new()).await,
                // Only the leader keeps the files: followers fold in memory what they read.
                _ = retain.tick(), if probes.is_some() => {
                    // Fold everything appended so far: a rewrite loses the tail's position.
                    self.record(Vec::new()).await;
                    self.save_rollups().await;
                    self.retain().await;
                }
                _ = save.tick(), if probes.is_some() => self.save_rollups().await,
            }
        }
        if probes.is_some() {
            self.save_rollups().await;
        }
        if let Some(p) = probes.take() {
            self.step_down(p, &mut rx).await;
        }
    }

    async fn lead_or_follow(
        &self,
        term: Option<Term>,
        probes: &mut Option<Probes>,
        tx: &mpsc::Sender<Record>,
        rx: &mut mpsc::Receiver<Record>,
        shutdown: &CancellationToken,
    ) {
        let same = matches!((&term, &*probes), (Some(t), Some(p)) if *t == p.term);
        if same {
            return;
        }
        if let Some(p) = probes.take() {
            self.step_down(p, rx).await;
        }
        if let Some(term) = term {
            self.take_over(&term).await;
            *probes = Some(self.start_probes(term, tx, shutdown.child_token()));
        }
    }

    /// Catches up with the history (silently: the old leader alerted on it), merges the old
    /// leader's note, then starts alerting.
    async fn take_over(&self, term: &Term) {
        self.shared.lead.set_leading(false);
        self.record(Vec::new()).await;
        self.shared
            .lead
            .take_over(term, &mut write(&self.shared.board));
        // The rollups, kept apart from the board, learn what the note told it: a resumed
        // incident's target has been up, so its failures charge the SLO, not `degraded`.
        let succeeded: Vec<String> = read(&self.shared.board)
            .targets()
            .filter(|v| v.freshness.succeeded)
            .map(|v| v.name.clone())
            .collect();
        let mut rollups = write(&self.shared.rollups);
        succeeded.iter().for_each(|t| rollups.mark_succeeded(t));
        drop(rollups);
        self.shared.lead.set_leading(true);
    }

    /// Stops alerting and probing at once; results not yet written are dropped (the next
    /// leader probes again).
    async fn step_down(&self, probes: Probes, rx: &mut mpsc::Receiver<Record>) {
        self.shared.lead.set_leading(false);
        probes.stop.cancel();
        let mut tasks = probes.tasks;
        tasks.shutdown().await;
        while rx.try_recv().is_ok() {}
    }

    fn start_probes(
        &self,
        term: Term,
        tx: &mpsc::Sender<Record>,
        stop: CancellationToken,
    ) -> Probes {
        let config = &self.shared.config;
        let slots = Arc::new(Semaphore::new(
            config
                .max_concurrent_probes
                .clamp(1, Semaphore::MAX_PERMITS),
        ));
        let mut tasks = JoinSet::new();
        for target in config.targets.iter().cloned() {
            if target.push.is_some() {
                // Never probed; one with a heartbeat fails when silent (while this term lasts).
                if let Some(watch) = self.shared.inbox.watcher(&target, stop.clone()) {
                    tasks.spawn(watch);
                }
                continue;
            }
            let (tx, stop, slots) = (tx.clone(), stop.clone(), slots.clone());
            tasks.spawn(async move {
                loop {
                    let probed = async {
                        // Never closed, so acquiring only waits for a free slot.
                        let _slot = slots.acquire().await;
                        // Boxed once it has a slot: a probe's future (resolver, TLS, HTTP,
                        // gRPC) is ~8 KiB, and inline it would size every target's task while
                        // it sleeps or waits; so only the probes in flight hold one.
                        let mut record = Box::pin(probe(&target)).await;
                        target.maintenance.mark(&mut record);
                        record
                    };
                    let record = tokio::select! {
                        r = probed => r,
                        () = stop.cancelled() => return,
                    };
                    if tx.send(record).await.is_err() {
                        return;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(target.interval) => {}
                        () = stop.cancelled() => return,
                    }
                }
            });
        }
        Probes { stop, tasks, term }
    }
}
