//! Namespace labels for `pod-security`, learned as the built-in Pod Security admission learns
//! them: one read-only watch of every Namespace, kept in a reflector store that reviews read.
//!
//! An AdmissionReview does not carry its namespace's labels, so without API access (`up`, a
//! laptop) `webhook serve` says so at start and holds every namespace to the policy file's
//! level; `webhook check` reads Namespace documents in its input instead.

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Client};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub use kubeapi::{ApiAccess, ClientError, client};

/// The labels of every Namespace, as the watch last saw them.
#[derive(Clone)]
pub struct NamespaceLabels {
    store: Store<Namespace>,
}

impl std::fmt::Debug for NamespaceLabels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamespaceLabels")
            .field("namespaces", &self.store.state().len())
            .finish()
    }
}

impl NamespaceLabels {
    /// `name`'s labels as JSON, when the namespace is known.
    pub fn get(&self, name: &str) -> Option<Value> {
        let namespace = self.store.get(&ObjectRef::new(name))?;
        serde_json::to_value(namespace.metadata.labels.clone().unwrap_or_default()).ok()
    }

    /// Whether the first full list has arrived.
    pub async fn synced(&self) {
        // The store's writer was dropped only when the watch ended; either way, stop waiting.
        let _ = self.store.wait_until_ready().await;
    }
}

/// Starts watching every Namespace until `shutdown`; errors are retried with backoff and
/// logged, the last known labels staying in use meanwhile.
pub fn watch(client: Client, shutdown: CancellationToken) -> NamespaceLabels {
    let (store, writer) = reflector::store();
    let stream = watcher(Api::<Namespace>::all(client), watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .applied_objects();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                next = stream.next() => match next {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => tracing::warn!(error = %e, "namespace watch failed; retrying"),
                    None => break,
                },
            }
        }
    });
    NamespaceLabels { store }
}
