//! Several roles in one process (`ferrostack up`): each started with a context of its own,
//! their readiness awaited together, and the first to fail stopping the others.

use std::error::Error as StdError;

use tokio::task::JoinSet;

use crate::{Context, Readiness};

/// A role's error, whatever its type.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// Why the roles stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RolesError {
    /// A role stopped with an error before every role was ready; the others were stopped.
    #[error("{role} failed to start")]
    Start {
        /// The role.
        role: &'static str,
        /// Its error.
        #[source]
        source: BoxError,
    },
    /// A role stopped with an error while running; the others were stopped.
    #[error("{role} failed")]
    Failed {
        /// The role.
        role: &'static str,
        /// Its error.
        #[source]
        source: BoxError,
    },
    /// A role's task panicked; the others were stopped.
    #[error("a role panicked: {0}")]
    Panicked(tokio::task::JoinError),
}

/// The roles started so far, under one root context whose shutdown stops them all.
pub struct Roles {
    root: Context,
    tasks: JoinSet<(&'static str, Result<(), BoxError>)>,
    ready: Vec<Readiness>,
}

// === impl Roles ===

impl Roles {
    /// No roles yet; each will get a context of its own from `root`.
    pub fn new(root: Context) -> Self {
        Self {
            root,
            tasks: JoinSet::new(),
            ready: Vec::new(),
        }
    }

    /// The readiness of every role started so far, for a role that must wait for them.
    pub fn readiness(&self) -> Vec<Readiness> {
        self.ready.clone()
    }

    /// Starts `role`: `run` is given the role's context and its future spawned.
    pub fn start<F, Fut, E>(&mut self, role: &'static str, run: F)
    where
        F: FnOnce(Context) -> Fut,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let ctx = self.root.for_role(role);
        self.ready.push(ctx.readiness().clone());
        let running = run(ctx);
        self.tasks
            .spawn(async move { (role, running.await.map_err(Into::into)) });
    }

    /// Calls `on_ready` once every role is ready, then waits for them all to stop. A shutdown
    /// before then goes straight to waiting; the first role to fail (or one failing to start)
    /// cancels the shutdown token, stopping the others, and is the error returned.
    pub async fn supervise(mut self, on_ready: impl FnOnce()) -> Result<(), RolesError> {
        let shutdown = self.root.shutdown().clone();
        tokio::select! {
            () = all_ready(&self.ready) => on_ready(),
            () = shutdown.cancelled() => {}
            Some(Ok((role, Err(source)))) = self.tasks.join_next() => {
                shutdown.cancel();
                return Err(RolesError::Start { role, source });
            }
        }
        let mut failed = None;
        while let Some(joined) = self.tasks.join_next().await {
            let error = match joined {
                Ok((_, Ok(()))) => continue,
                Ok((role, Err(source))) => {
                    tracing::error!(role, error = %source, "role failed; stopping the others");
                    RolesError::Failed { role, source }
                }
                Err(e) => RolesError::Panicked(e),
            };
            shutdown.cancel();
            failed.get_or_insert(error);
        }
        failed.map_or(Ok(()), Err)
    }
}

/// Resolves once each of `roles` has been ready.
pub async fn all_ready(roles: &[Readiness]) {
    for role in roles {
        role.ready().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::telemetry::LogEvents;

    fn roles() -> (Roles, CancellationToken) {
        let shutdown = CancellationToken::new();
        let root = Context::new("up", shutdown.clone(), LogEvents::default());
        (Roles::new(root), shutdown)
    }

    /// Ready at once, then stops with the shutdown.
    async fn serve(ctx: Context) -> Result<(), std::io::Error> {
        ctx.readiness().set_ready(true);
        ctx.shutdown().cancelled().await;
        Ok(())
    }

    #[tokio::test]
    async fn on_ready_runs_once_all_are_ready_and_a_failure_stops_the_others() {
        let (mut roles, shutdown) = roles();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        roles.start("server", serve);
        roles.start("breaks", |ctx| async move {
            ctx.readiness().set_ready(true);
            let _ = rx.await;
            Err(std::io::Error::other("disk gone"))
        });
        let supervised = roles.supervise(move || drop(tx));
        let e = tokio::time::timeout(Duration::from_secs(5), supervised)
            .await
            .expect("the failure stops every role")
            .unwrap_err();
        assert_eq!(e.to_string(), "breaks failed");
        assert!(shutdown.is_cancelled());
    }

    #[tokio::test]
    async fn a_role_failing_before_all_are_ready_fails_the_start() {
        let (mut roles, shutdown) = roles();
        roles.start("server", serve);
        roles.start("never", |ctx| async move {
            ctx.shutdown().cancelled().await;
            Ok::<_, std::io::Error>(())
        });
        roles.start("bad", |_| async {
            Err(std::io::Error::other("port taken"))
        });
        let supervised = roles.supervise(|| panic!("never all ready"));
        let e = tokio::time::timeout(Duration::from_secs(5), supervised)
            .await
            .expect("the failure stops every role");
        assert_eq!(e.unwrap_err().to_string(), "bad failed to start");
        assert!(shutdown.is_cancelled());
    }
}
