//! From the `--to` URL to an object store: the backend of its scheme, the prefix inside the
//! store, whether uploads are resumable (a `MultipartStore`), and the largest object a
//! create-only copy can publish.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, S3CopyIfNotExists};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, ObjectStoreScheme, RetryConfig};
use url::Url;

use super::{BuildError, SinkOptions};

/// Connect timeout of every store client.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest object S3 copies in one UploadPartCopy (5 GiB).
const S3_MAX_COPY: u64 = 5 * 1024 * 1024 * 1024;

/// A store built for a URL.
pub(super) struct Built {
    pub(super) store: Arc<dyn ObjectStore>,
    /// The same store where it can resume a multipart upload by id (not `file://`).
    pub(super) multipart: Option<Arc<dyn MultipartStore>>,
    /// The URL's path inside the store.
    pub(super) prefix: Path,
    /// Objects above this size cannot be published by a create-only copy.
    pub(super) max_copy: u64,
}

impl Built {
    fn resumable<S: ObjectStore + MultipartStore>(store: S, prefix: Path) -> Self {
        let store = Arc::new(store);
        Self {
            store: store.clone(),
            multipart: Some(store),
            prefix,
            max_copy: u64::MAX,
        }
    }
}

/// GCS and Azure take the same steps (S3 has more: endpoint, copy mode, credentials file);
/// only the builder type differs, and they share no trait.
macro_rules! cloud {
    ($builder:ty, $url:expr, $options:expr) => {{
        let mut b = <$builder>::from_env().with_url($url.as_str());
        for (k, v) in &$options.store_options {
            b = b.with_config(k.parse()?, v);
        }
        b.with_retry(retry())
            .with_client_options(client($options))
            .build()?
    }};
}

/// Builds the store for `url`.
pub(super) fn build(url: &Url, options: &SinkOptions) -> Result<Built, BuildError> {
    let (scheme, prefix) =
        ObjectStoreScheme::parse(url).map_err(|e| BuildError::Scheme(e.to_string()))?;
    Ok(match scheme {
        ObjectStoreScheme::Local => local(url)?,
        ObjectStoreScheme::Memory => Built::resumable(InMemory::new(), prefix),
        ObjectStoreScheme::AmazonS3 => Built {
            max_copy: S3_MAX_COPY,
            ..Built::resumable(s3(url, options)?, prefix)
        },
        ObjectStoreScheme::GoogleCloudStorage => {
            Built::resumable(cloud!(GoogleCloudStorageBuilder, url, options), prefix)
        }
        ObjectStoreScheme::MicrosoftAzure => {
            Built::resumable(cloud!(MicrosoftAzureBuilder, url, options), prefix)
        }
        _ => return Err(BuildError::Scheme(url.scheme().to_string())),
    })
}

/// Few, short retries: the shipper retries a failed batch itself, with its own backoff.
fn retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: 2,
        retry_timeout: Duration::from_secs(10),
    }
}

fn client(options: &SinkOptions) -> ClientOptions {
    ClientOptions::new()
        .with_timeout(options.request_timeout)
        .with_connect_timeout(CONNECT_TIMEOUT)
}

/// `file://`: the directory (created) is the store's root, so the prefix is empty.
fn local(url: &Url) -> Result<Built, BuildError> {
    let root = url
        .to_file_path()
        .map_err(|()| BuildError::Scheme(url.to_string()))?;
    std::fs::create_dir_all(&root)?;
    let store = LocalFileSystem::new_with_prefix(&root)?.with_fsync(true);
    Ok(Built {
        store: Arc::new(store),
        multipart: None,
        prefix: Path::default(),
        max_copy: u64::MAX,
    })
}

fn s3(url: &Url, options: &SinkOptions) -> Result<object_store::aws::AmazonS3, BuildError> {
    Ok(s3_builder(url, options)?.build()?)
}

/// The S3 builder of `url` with every setting of `options` (the uploads listing reads its
/// bucket, region and endpoint).
pub(super) fn s3_builder(url: &Url, options: &SinkOptions) -> Result<AmazonS3Builder, BuildError> {
    let mut b = AmazonS3Builder::from_env()
        .with_url(url.as_str())
        .with_retry(retry())
        .with_client_options(client(options));
    for (k, v) in &options.store_options {
        b = b.with_config(k.parse()?, v);
    }
    for (k, v) in options.s3_upload.store_config() {
        b = b.with_config(k.parse()?, v);
    }
    // Content-MD5 on every upload (see `options`).
    b = b.with_http_connector(super::options::Md5Connector {
        timeout: options.request_timeout,
        connect_timeout: CONNECT_TIMEOUT,
    });
    if let Some(endpoint) = &options.s3_endpoint {
        b = b
            .with_endpoint(endpoint)
            .with_allow_http(endpoint.starts_with("http://"));
    }
    // Create-only publishing of multipart uploads (see the module doc), unless the
    // environment chose another way (AWS_COPY_IF_NOT_EXISTS).
    if b.get_config_value(&AmazonS3ConfigKey::CopyIfNotExists)
        .is_none()
    {
        b = b.with_copy_if_not_exists(S3CopyIfNotExists::Multipart);
    }
    if let Some((file, profile)) = &options.s3_credentials {
        let provider = crate::credentials::FileCredentials::new(file, profile)?;
        b = b.with_credentials(Arc::new(provider));
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(store_options: &[(&str, &str)]) -> SinkOptions {
        SinkOptions {
            s3_endpoint: Some("http://127.0.0.1:9".into()),
            s3_credentials: None,
            store_options: store_options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            multipart_threshold: 32 << 20,
            part_size: 8 << 20,
            request_timeout: Duration::from_secs(1),
            s3_upload: super::super::S3Upload::default(),
        }
    }

    fn built(url: &str, store_options: &[(&str, &str)]) -> Result<Built, BuildError> {
        build(&Url::parse(url).unwrap(), &options(store_options))
    }

    #[test]
    fn a_file_url_is_a_created_root_without_resumable_uploads() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("archive/here");
        let b = built(Url::from_directory_path(&root).unwrap().as_str(), &[]).unwrap();
        assert!(root.is_dir());
        assert_eq!(b.prefix, Path::default());
        assert!(b.multipart.is_none());
        assert_eq!(b.max_copy, u64::MAX);
    }

    #[test]
    fn cloud_urls_keep_their_prefix_and_resume_uploads() {
        let azurite = [("azure_storage_use_emulator", "true")];
        for (url, store_options, max_copy) in [
            ("memory:///logs/a", &[][..], u64::MAX),
            (
                "s3://bucket/logs/a",
                &[("aws_region", "us-east-1")][..],
                S3_MAX_COPY,
            ),
            ("gs://bucket/logs/a", &[][..], u64::MAX),
            ("az://container/logs/a", &azurite[..], u64::MAX),
        ] {
            let b = built(url, store_options).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(b.prefix.as_ref(), "logs/a", "{url}");
            assert!(b.multipart.is_some(), "{url}");
            assert_eq!(b.max_copy, max_copy, "{url}");
        }
    }

    #[test]
    fn store_options_reach_every_cloud_backend() {
        for url in ["s3://bucket/p", "gs://bucket/p", "az://container/p"] {
            let e = built(url, &[("no_such_option", "x")]).err();
            assert!(matches!(e, Some(BuildError::Store(_))), "{url}: {e:?}");
        }
    }

    #[test]
    fn schemes_without_a_backend_are_refused() {
        for url in ["http://example.com/x", "ftp://example.com/x"] {
            let e = built(url, &[]).err();
            assert!(matches!(e, Some(BuildError::Scheme(_))), "{url}: {e:?}");
        }
    }
}
