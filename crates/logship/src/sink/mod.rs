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

mod build;
mod error;
mod manifests;
mod multipart;
pub mod options;
mod uploads;

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutPayload};
use sha2::{Digest, Sha256};
use url::Url;

use crate::encoder::hex;
use error::store_err;

pub use error::{BuildError, SinkError};
pub use options::{S3Upload, S3UploadFlags};
pub use uploads::{Upload, UploadsError};

/// How an object reached the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// This call uploaded it.
    Uploaded,
    /// It was already there with the same size and sha256 (a retry after a crash).
    AlreadyThere,
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
    /// S3 encryption, storage class and tags (empty elsewhere).
    pub s3_upload: S3Upload,
}

/// Folder of the staging objects of multipart uploads, under the URL's prefix.
pub const STAGING_DIR: &str = ".logship-staging";

/// The object store plus the URL's prefix.
#[derive(Clone)]
pub struct Sink {
    store: Arc<dyn ObjectStore>,
    multipart: Option<Arc<dyn MultipartStore>>,
    prefix: Path,
    options: SinkOptions,
    /// The `--to` URL (the uploads listing builds its S3 request from it).
    url: Url,
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
        let built = build::build(url, &options)?;
        Ok(Self {
            store: built.store,
            multipart: built.multipart,
            prefix: built.prefix,
            options,
            url: url.clone(),
            max_copy: built.max_copy,
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
        self.deliver_with(staged, &[], progress).await
    }

    /// [`Sink::deliver`] with `metadata` as the object's user metadata where the store keeps
    /// it (not `file://`), on objects up to the multipart threshold.
    pub async fn deliver_with(
        &self,
        staged: Staged<'_>,
        metadata: &[(&'static str, String)],
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
                .put_opts(
                    &path,
                    PutPayload::from(data),
                    self.with_metadata(
                        self.options.s3_upload.put_options(PutMode::Create),
                        metadata,
                    ),
                )
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
                self.same_size(path, staged).await?;
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

    /// A conflict unless the object at `path` has the staged object's size (the cheap check,
    /// one HEAD, before any content is read).
    async fn same_size(&self, path: &Path, staged: Staged<'_>) -> Result<(), SinkError> {
        let meta = self.store.head(path).await.map_err(store_err)?;
        if meta.size == staged.size {
            return Ok(());
        }
        Err(SinkError::Conflict {
            key: path.to_string(),
            size: meta.size,
            sha256: String::new(),
        })
    }

    /// An object exists at `path`: equal size and sha256 means delivered, else a conflict.
    async fn compare(&self, path: &Path, staged: Staged<'_>) -> Result<Outcome, SinkError> {
        self.same_size(path, staged).await?;
        let mut stream = self.store.get(path).await.map_err(store_err)?.into_stream();
        let mut hasher = Sha256::new();
        while let Some(chunk) = stream.next().await {
            hasher.update(chunk.map_err(store_err)?);
        }
        let sha256 = hex(&hasher.finalize());
        if sha256 == staged.sha256 {
            Ok(Outcome::AlreadyThere)
        } else {
            // Same size (checked above), other content.
            Err(SinkError::Conflict {
                key: path.to_string(),
                size: staged.size,
                sha256,
            })
        }
    }
}

#[cfg(test)]
mod tests;
