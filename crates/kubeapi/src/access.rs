//! Where the API server is: in the cluster (the pod's ServiceAccount), an explicit
//! kubeconfig, or nowhere (`up`, a laptop) — never the user's default kubeconfig, which on a
//! laptop may name any cluster.

use std::path::{Path, PathBuf};

use kube::Client;

/// Where the API server is: in the cluster (the ServiceAccount's token), or a kubeconfig.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiAccess {
    /// No API server.
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
        Self::detect_in(
            kubeconfig,
            std::env::var_os("KUBERNETES_SERVICE_HOST").is_some(),
        )
    }

    fn detect_in(kubeconfig: Option<&Path>, in_pod: bool) -> Self {
        match kubeconfig {
            Some(path) => Self::Kubeconfig(path.to_owned()),
            None if in_pod => Self::InCluster,
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

/// A client for `access`, or `None` without API access. Its default namespace is the
/// ServiceAccount's (in the cluster) or the kubeconfig context's.
pub async fn client(access: &ApiAccess) -> Result<Option<Client>, ClientError> {
    // kube's TLS asks rustls for the process's provider, which is ambiguous with both of
    // rustls' backends in the build: the roles' own TLS uses aws-lc-rs, so that. An error
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_access_is_the_cluster_or_an_explicit_kubeconfig_never_a_default_one() {
        let path = Path::new("/tmp/kc");
        assert_eq!(
            ApiAccess::detect_in(Some(path), true),
            ApiAccess::Kubeconfig(path.to_owned())
        );
        assert_eq!(ApiAccess::detect_in(None, true), ApiAccess::InCluster);
        assert_eq!(ApiAccess::detect_in(None, false), ApiAccess::None);
    }

    #[tokio::test]
    async fn a_bad_kubeconfig_names_the_file() {
        let path = Path::new("/nonexistent/kubeconfig");
        let Err(e) = client(&ApiAccess::Kubeconfig(path.to_owned())).await else {
            panic!("a missing kubeconfig gave a client");
        };
        assert!(
            e.to_string()
                .starts_with("kubeconfig /nonexistent/kubeconfig: "),
            "{e}"
        );
        assert!(client(&ApiAccess::None).await.unwrap().is_none());
    }
}
