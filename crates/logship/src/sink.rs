//! Object storage sink over object_store: builds the store from the `--to` URL (`file://`,
//! `s3://` with `--s3-endpoint`, `gs://`, `az://`, `memory://` for tests), uploads a staged
//! object create-only (`PutMode::Create`, i.e. `If-None-Match: *`; on "already exists" it
//! compares size and sha256 and counts an equal object as delivered, a different one is a
//! conflict and is never overwritten).
//!
//! Above a threshold it uses a multipart upload whose id and parts are journaled, so that it
//! resumes after a crash. object_store 0.14 completes a `MultipartStore` upload without a
//! condition (and `PutMultipartOptions` has no mode), so a multipart upload goes to a
//! content-addressed staging object, `<prefix>/.logship-staging/<sha256>`, and is then
//! published with `copy_if_not_exists`, which is create-only on every backend: on S3 a
//! one-part UploadPartCopy whose CompleteMultipartUpload carries `If-None-Match: *`
//! (`S3CopyIfNotExists::Multipart`; AWS S3 honours it since 2024), on GCS
//! `x-goog-if-generation-match: 0`, on Azure Copy Blob with `If-None-Match: *`, on `file://`
//! a hard link. The staging object is then deleted (best effort: a bucket lifecycle rule on
//! `.logship-staging/` cleans up what a crash or a missing delete permission leaves).
//!
//! The one exception is an S3 object above 5 GiB, the largest UploadPartCopy: it is
//! completed directly under its key after a HEAD found the key free, then read back and
//! compared (size and sha256). The remaining window: a different object written under the
//! same key between that HEAD and the CompleteMultipartUpload is overwritten; the
//! comparison afterwards notices when the key no longer holds our bytes and the batch is not
//! counted delivered.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, S3CopyIfNotExists};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, ObjectStoreScheme, PutMode,
    PutPayload, RetryConfig, WriteMultipart,
};
use sha2::{Digest, Sha256};
use url::Url;

use crate::encoder::hex;

/// How an object reached the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// This call uploaded it.
    Uploaded,
    /// It was already there with the same size and sha256 (a retry after a crash).
    AlreadyThere,
}

/// Upload failures; `kind()` is the `kind` label of `ferrostack_logship_upload_errors_total`.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The store answered with an error or could not be reached.
    #[error("object store ({kind}): {source}")]
    Store {
        /// Short classification.
        kind: &'static str,
        /// The cause.
        source: object_store::Error,
    },
    /// Reading the staged object failed.
    #[error("staged object {path}: {source}")]
    Io {
        /// The staged file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A different object already has this key.
    #[error("object {key} exists with different content (size {size}, sha256 {sha256})")]
    Conflict {
        /// The key.
        key: String,
        /// Its size in the store.
        size: u64,
        /// Its sha256 in the store (empty when only the size differed).
        sha256: String,
    },
    /// Recording multipart progress failed.
    #[error("journal: {0}")]
    Journal(#[from] crate::journal::JournalError),
}

impl SinkError {
    /// Label for the upload error metric.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Store { kind, .. } => kind,
            Self::Io { .. } => "staging_io",
            Self::Conflict { .. } => "conflict",
            Self::Journal(_) => "journal",
        }
    }
}

fn store_err(source: object_store::Error) -> SinkError {
    let kind = match &source {
        object_store::Error::NotFound { .. } => "not_found",
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => "auth",
        object_store::Error::Precondition { .. } => "precondition",
        object_store::Error::NotSupported { .. } | object_store::Error::NotImplemented { .. } => {
            "unsupported"
        }
        other => {
            let mut text = String::new();
            let mut cause: Option<&dyn std::error::Error> = Some(other);
            while let Some(e) = cause {
                text.push_str(&e.to_string().to_ascii_lowercase());
                text.push('\n');
                cause = e.source();
            }
            let text = text.replace("retry_timeout", "");
            if text.contains("timed out") || text.contains("timeout") {
                "timeout"
            } else if text.contains("connect") || text.contains("error sending request") {
                "connect"
            } else if text.contains("status: 5") || text.contains("server error") {
                "server"
            } else {
                "other"
            }
        }
    };
    SinkError::Store { kind, source }
}

/// Where multipart progress is recorded (the journal, for one batch).
pub trait MultipartProgress {
    /// A new upload was created.
    fn started(&mut self, upload_id: &str) -> Result<(), SinkError>;
    /// Part `idx` was uploaded.
    fn part(&mut self, idx: usize, etag: &str) -> Result<(), SinkError>;
}

/// The object to deliver.
#[derive(Clone, Copy, Debug)]
pub struct Staged<'a> {
    /// Key relative to the store root (the URL prefix is added by the sink).
    pub key: &'a str,
    /// The staged file.
    pub path: &'a FsPath,
    /// Its size.
    pub size: u64,
    /// Its sha256.
    pub sha256: &'a str,
    /// A multipart upload already started for it, and its parts so far.
    pub upload_id: Option<&'a str>,
    /// Part ids uploaded so far.
    pub parts: &'a [String],
}

/// Sink errors at construction.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The URL scheme has no backend here.
    #[error("unsupported URL {0:?} (use file://, s3://, gs://, az://)")]
    Scheme(String),
    /// object_store rejected the URL or an option.
    #[error("{0}")]
    Store(#[from] object_store::Error),
    /// The local archive directory could not be created.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The S3 credentials file is not usable.
    #[error("--s3-credentials-file: {0}")]
    Credentials(#[from] crate::credentials::CredentialsError),
}

/// Tuning of the sink.
#[derive(Clone, Debug)]
pub struct SinkOptions {
    /// Endpoint of an S3-compatible server (`--s3-endpoint`).
    pub s3_endpoint: Option<String>,
    /// `--s3-credentials-file` and the profile to read from it.
    pub s3_credentials: Option<(PathBuf, String)>,
    /// Extra object_store config keys (e.g. `aws_access_key_id`), applied after the env.
    pub store_options: Vec<(String, String)>,
    /// Objects larger than this use a multipart upload.
    pub multipart_threshold: u64,
    /// Part size (at least 5 MiB on S3).
    pub part_size: usize,
    /// Per-request timeout.
    pub request_timeout: Duration,
}

/// Folder of the staging objects of multipart uploads, under the URL's prefix.
pub const STAGING_DIR: &str = ".logship-staging";

/// The largest object S3 copies in one UploadPartCopy (5 GiB).
const S3_MAX_COPY: u64 = 5 * 1024 * 1024 * 1024;

/// The object store plus the URL's prefix.
#[derive(Clone)]
pub struct Sink {
    store: Arc<dyn ObjectStore>,
    multipart: Option<Arc<dyn MultipartStore>>,
    prefix: Path,
    options: SinkOptions,
    /// Objects above this size cannot be published by a create-only copy.
    max_copy: u64,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("store", &self.store)
            .field("resumable_multipart", &self.multipart.is_some())
            .field("prefix", &self.prefix)
            .finish()
    }
}

// === impl Sink ===

impl Sink {
    /// Builds the store for `url`.
    pub fn new(url: &Url, options: SinkOptions) -> Result<Self, BuildError> {
        let (scheme, prefix) =
            ObjectStoreScheme::parse(url).map_err(|e| BuildError::Scheme(e.to_string()))?;
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(2),
                base: 2.0,
            },
            max_retries: 2,
            retry_timeout: Duration::from_secs(10),
        };
        let client = ClientOptions::new()
            .with_timeout(options.request_timeout)
            .with_connect_timeout(Duration::from_secs(5));
        let opts = &options.store_options;
        let mut max_copy = u64::MAX;
        let (store, multipart, prefix): (Arc<dyn ObjectStore>, Option<Arc<dyn MultipartStore>>, _) =
            match scheme {
                ObjectStoreScheme::Local => {
                    let root = url
                        .to_file_path()
                        .map_err(|()| BuildError::Scheme(url.to_string()))?;
                    std::fs::create_dir_all(&root)?;
                    let store = LocalFileSystem::new_with_prefix(&root)?.with_fsync(true);
                    (Arc::new(store), None, Path::default())
                }
                ObjectStoreScheme::Memory => {
                    let store = Arc::new(InMemory::new());
                    (store.clone(), Some(store), prefix)
                }
                ObjectStoreScheme::AmazonS3 => {
                    let mut b = AmazonS3Builder::from_env()
                        .with_url(url.as_str())
                        .with_retry(retry)
                        .with_client_options(client);
                    for (k, v) in opts {
                        b = b.with_config(k.parse()?, v);
                    }
                    if let Some(endpoint) = &options.s3_endpoint {
                        b = b
                            .with_endpoint(endpoint)
                            .with_allow_http(endpoint.starts_with("http://"));
                    }
                    // Create-only publishing of multipart uploads (see the module doc), unless
                    // the environment chose another way (AWS_COPY_IF_NOT_EXISTS).
                    if b.get_config_value(&AmazonS3ConfigKey::CopyIfNotExists)
                        .is_none()
                    {
                        b = b.with_copy_if_not_exists(S3CopyIfNotExists::Multipart);
                    }
                    if let Some((file, profile)) = &options.s3_credentials {
                        let provider = crate::credentials::FileCredentials::new(file, profile)?;
                        b = b.with_credentials(Arc::new(provider));
                    }
                    max_copy = S3_MAX_COPY;
                    let store = Arc::new(b.build()?);
                    (store.clone(), Some(store), prefix)
                }
                ObjectStoreScheme::GoogleCloudStorage => {
                    let mut b = GoogleCloudStorageBuilder::from_env().with_url(url.as_str());
                    for (k, v) in opts {
                        b = b.with_config(k.parse()?, v);
                    }
                    let store = Arc::new(b.with_retry(retry).with_client_options(client).build()?);
                    (store.clone(), Some(store), prefix)
                }
                ObjectStoreScheme::MicrosoftAzure => {
                    let mut b = MicrosoftAzureBuilder::from_env().with_url(url.as_str());
                    for (k, v) in opts {
                        b = b.with_config(k.parse()?, v);
                    }
                    let store = Arc::new(b.with_retry(retry).with_client_options(client).build()?);
                    (store.clone(), Some(store), prefix)
                }
                _ => return Err(BuildError::Scheme(url.scheme().to_string())),
            };
        Ok(Self {
            store,
            multipart,
            prefix,
            options,
            max_copy,
        })
    }

    /// True for the staging objects of multipart uploads (not part of the archive).
    pub fn is_staging(&self, path: &Path) -> bool {
        path.prefix_match(&self.prefix)
            .and_then(|mut rest| rest.next())
            .is_some_and(|first| first.as_ref() == STAGING_DIR)
    }

    fn staging_path(&self, sha256: &str) -> Path {
        self.prefix.clone().join(STAGING_DIR).join(sha256)
    }

    /// The full object path of a key.
    pub fn path(&self, key: &str) -> Path {
        let mut path = self.prefix.clone();
        for part in key.split('/').filter(|p| !p.is_empty()) {
            path = path.clone().join(part);
        }
        path
    }

    /// The store (for verify and tests).
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The URL's prefix inside the store.
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// Delivers a staged object; never overwrites a different object.
    pub async fn deliver(
        &self,
        staged: Staged<'_>,
        progress: &mut (dyn MultipartProgress + Send),
    ) -> Result<Outcome, SinkError> {
        let path = self.path(staged.key);
        if staged.size <= self.options.multipart_threshold {
            let data = tokio::fs::read(staged.path)
                .await
                .map_err(|source| SinkError::Io {
                    path: staged.path.to_path_buf(),
                    source,
                })?;
            return match self
                .store
                .put_opts(&path, PutPayload::from(data), PutMode::Create.into())
                .await
            {
                Ok(_) => Ok(Outcome::Uploaded),
                Err(object_store::Error::AlreadyExists { .. }) => self.compare(&path, staged).await,
                Err(e) => Err(store_err(e)),
            };
        }
        // Already there (a retry after a crash, also after the publish of a journaled upload):
        // compare instead of uploading or completing anything.
        match self.store.head(&path).await {
            Ok(_) => return self.compare(&path, staged).await,
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(store_err(e)),
        }
        if staged.size > self.max_copy {
            // Too large to publish by a copy: completed in place (the module doc's window),
            // then read back: only our own bytes under the key count as delivered.
            let uploaded = self.upload(&path, &path, staged, progress).await?;
            if uploaded == Outcome::Uploaded {
                self.compare(&path, staged).await?;
            }
            return Ok(uploaded);
        }
        let staging = self.staging_path(staged.sha256);
        let uploaded = self.upload(&staging, &path, staged, progress).await?;
        if uploaded == Outcome::AlreadyThere {
            // The upload was gone and the final object was found (and compared) instead.
            self.remove_staging(&staging).await;
            return Ok(Outcome::AlreadyThere);
        }
        self.publish(&staging, &path, staged).await
    }

    /// Copies the complete staging object to its key, create-only, then removes it.
    async fn publish(
        &self,
        staging: &Path,
        path: &Path,
        staged: Staged<'_>,
    ) -> Result<Outcome, SinkError> {
        let outcome = match self.store.copy_if_not_exists(staging, path).await {
            Ok(()) => {
                let meta = self.store.head(path).await.map_err(store_err)?;
                if meta.size != staged.size {
                    return Err(SinkError::Conflict {
                        key: path.to_string(),
                        size: meta.size,
                        sha256: String::new(),
                    });
                }
                Outcome::Uploaded
            }
            Err(object_store::Error::AlreadyExists { .. }) => {
                let compared = self.compare(path, staged).await;
                if matches!(compared, Ok(_) | Err(SinkError::Conflict { .. })) {
                    self.remove_staging(staging).await;
                }
                return compared;
            }
            Err(object_store::Error::NotFound { .. }) => {
                // The staging object is gone (published and removed before a crash, or
                // expired): the key decides; if it is free too, the upload starts over.
                return self.compare(path, staged).await;
            }
            Err(e) => return Err(store_err(e)),
        };
        self.remove_staging(staging).await;
        Ok(outcome)
    }

    async fn remove_staging(&self, staging: &Path) {
        match self.store.delete(staging).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => tracing::warn!(object = %staging, error = %e,
                "logship: cannot delete a staging object; a lifecycle rule on .logship-staging/ removes it"),
        }
    }

    /// Uploads `staged` to `path` (the final `key` or its staging object): resumable
    /// multipart where the store has it, else one streamed upload.
    async fn upload(
        &self,
        path: &Path,
        key: &Path,
        staged: Staged<'_>,
        progress: &mut (dyn MultipartProgress + Send),
    ) -> Result<Outcome, SinkError> {
        match &self.multipart {
            Some(mp) => {
                self.deliver_resumable(mp.as_ref(), path, key, staged, progress)
                    .await
            }
            None => self.deliver_streamed(path, staged).await,
        }
    }

    /// Uploads `staged` to `path` with a journaled multipart upload. `Uploaded` means `path`
    /// now holds the bytes; `AlreadyThere` means the upload was gone and `key` (the final
    /// object) already held them.
    async fn deliver_resumable(
        &self,
        mp: &dyn MultipartStore,
        path: &Path,
        key: &Path,
        staged: Staged<'_>,
        progress: &mut (dyn MultipartProgress + Send),
    ) -> Result<Outcome, SinkError> {
        let mut parts: Vec<String> = staged.parts.to_vec();
        let mut id = match staged.upload_id {
            Some(id) => id.to_string(),
            None => {
                let id = mp.create_multipart(path).await.map_err(store_err)?;
                progress.started(&id)?;
                id
            }
        };
        let part_size = self.options.part_size as u64;
        let n_parts = staged.size.div_ceil(part_size).max(1) as usize;
        let mut restarted = false;
        loop {
            let mut lost = false;
            for idx in parts.len()..n_parts {
                let chunk = read_chunk(staged.path, idx as u64 * part_size, part_size)?;
                match mp.put_part(path, &id, idx, chunk.into()).await {
                    Ok(part) => {
                        progress.part(idx, &part.content_id)?;
                        parts.push(part.content_id);
                    }
                    Err(object_store::Error::NotFound { .. }) => {
                        lost = true;
                        break;
                    }
                    Err(e) => return Err(store_err(e)),
                }
            }
            if !lost {
                let ids = parts
                    .iter()
                    .map(|p| PartId {
                        content_id: p.clone(),
                    })
                    .collect();
                match mp.complete_multipart(path, &id, ids).await {
                    Ok(_) => return Ok(Outcome::Uploaded),
                    Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(store_err(e)),
                }
            }
            // The upload id is gone: completed before a crash, or aborted/expired.
            if let Some(outcome) = self.find_after_loss(path, key, staged).await? {
                return Ok(outcome);
            }
            if restarted {
                return Err(store_err(object_store::Error::NotFound {
                    path: path.to_string(),
                    source: "the multipart upload was lost twice".into(),
                }));
            }
            restarted = true;
            id = mp.create_multipart(path).await.map_err(store_err)?;
            progress.started(&id)?;
            parts.clear();
        }
    }

    /// After a lost upload: `Uploaded` if `path` (a staging object) holds the bytes, the
    /// comparison with `key` if the final object exists, `None` if neither exists.
    async fn find_after_loss(
        &self,
        path: &Path,
        key: &Path,
        staged: Staged<'_>,
    ) -> Result<Option<Outcome>, SinkError> {
        for (candidate, is_key) in [(path, path == key), (key, true)] {
            match self.store.head(candidate).await {
                Ok(_) => {
                    let outcome = self.compare(candidate, staged).await?;
                    return Ok(Some(if is_key { outcome } else { Outcome::Uploaded }));
                }
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(store_err(e)),
            }
        }
        Ok(None)
    }

    /// Uploads `staged` to `path` with a multipart upload that is not resumable (`file://`).
    async fn deliver_streamed(
        &self,
        path: &Path,
        staged: Staged<'_>,
    ) -> Result<Outcome, SinkError> {
        let upload = self.store.put_multipart(path).await.map_err(store_err)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, self.options.part_size);
        let part_size = self.options.part_size as u64;
        let mut offset = 0;
        while offset < staged.size {
            let chunk = read_chunk(staged.path, offset, part_size)?;
            offset += chunk.len() as u64;
            writer.wait_for_capacity(2).await.map_err(store_err)?;
            writer.put(chunk);
        }
        writer.finish().await.map_err(store_err)?;
        Ok(Outcome::Uploaded)
    }

    /// An object exists at `path`: equal size and sha256 means delivered, else a conflict.
    async fn compare(&self, path: &Path, staged: Staged<'_>) -> Result<Outcome, SinkError> {
        let meta = self.store.head(path).await.map_err(store_err)?;
        if meta.size != staged.size {
            return Err(SinkError::Conflict {
                key: path.to_string(),
                size: meta.size,
                sha256: String::new(),
            });
        }
        let mut stream = self.store.get(path).await.map_err(store_err)?.into_stream();
        let mut hasher = Sha256::new();
        while let Some(chunk) = stream.next().await {
            hasher.update(chunk.map_err(store_err)?);
        }
        let sha256 = hex(&hasher.finalize());
        if sha256 == staged.sha256 {
            Ok(Outcome::AlreadyThere)
        } else {
            Err(SinkError::Conflict {
                key: path.to_string(),
                size: meta.size,
                sha256,
            })
        }
    }
}

fn read_chunk(path: &FsPath, offset: u64, len: u64) -> Result<Bytes, SinkError> {
    let io_err = |source| SinkError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io_err)?;
    file.seek(SeekFrom::Start(offset)).map_err(io_err)?;
    let mut buf = Vec::with_capacity(len as usize);
    file.take(len).read_to_end(&mut buf).map_err(io_err)?;
    Ok(Bytes::from(buf))
}
