//! Namespace labels for `pod-security`, learned as the built-in Pod Security admission learns
//! them: one read-only watch of every Namespace, kept in a reflector store that reviews read.
//!
//! An AdmissionReview does not carry its namespace's labels, so without API access (`up`, a
//! laptop) `webhook serve` says so at start and holds every namespace to the policy file's
//! level; `webhook check` reads Namespace documents in its input instead.

use std::path::{Path, PathBuf};

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Client};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// Where the API server is: in the cluster (the ServiceAccount's token), or a kubeconfig.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiAccess {
    /// No API server: namespace labels are not known.
    None,
    /// The pod's ServiceAccount (`KUBERNETES_SERVICE_HOST` is set).
    InCluster,
    /// A kubeconfig file (`--kubeconfig`), its current context.
    Kubeconfig(PathBuf),
}

impl ApiAccess {
    /// In the cluster when the pod environment says so, else the kubeconfig given; never the
    /// user's default kubeconfig, which on a laptop may name any cluster.
    pub fn detect(kubeconfig: Option<&Path>) -> Self {
        match kubeconfig {
            Some(path) => Self::Kubeconfig(path.to_owned()),
            None if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() => Self::InCluster,
            None => Self::None,
        }
    }
}

/// Why the API client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The kubeconfig is unreadable or invalid.
    #[error("kubeconfig {path}: {source}", path = path.display())]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The in-cluster environment is incomplete.
    #[error("in-cluster API access: {0}")]
    InCluster(#[from] kube::config::InClusterError),
    /// The client could not be built from the configuration.
    #[error("API client: {0}")]
    Client(#[from] kube::Error),
}

/// A client for `access`, or `None` without API access.
pub async fn client(access: &ApiAccess) -> Result<Option<Client>, ClientError> {
    // kube's TLS asks rustls for the process's provider, which is ambiguous with both of
    // rustls' backends in the build: the webhook's own TLS uses aws-lc-rs, so that. An error
    // only says one is installed already.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let config = match access {
        ApiAccess::None => return Ok(None),
        ApiAccess::InCluster => kube::Config::incluster()?,
        ApiAccess::Kubeconfig(path) => {
            let wrap = |source| ClientError::Kubeconfig {
                path: path.clone(),
                source,
            };
            let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(wrap)?;
            let options = kube::config::KubeConfigOptions::default();
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(wrap)?
        }
    };
    Ok(Some(Client::try_from(config)?))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_access_is_the_cluster_or_an_explicit_kubeconfig_never_a_default_one() {
        let path = Path::new("/tmp/kc");
        assert_eq!(
            ApiAccess::detect(Some(path)),
            ApiAccess::Kubeconfig(path.to_owned())
        );
    }
}
