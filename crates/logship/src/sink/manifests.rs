//! The sink's side of the manifests (`crate::manifest`): each object's user metadata, and the
//! manifest object, written create-only; one already there with the same bytes (a retry after
//! a crash) counts as written, a different one is a conflict and is never overwritten.

use object_store::{Attribute, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use super::{Sink, SinkError, store_err};
use crate::manifest::{MANIFEST_DIR, Manifest};

impl Sink {
    /// Adds `metadata` to a PUT's attributes where the store keeps user metadata (the local
    /// file store refuses any attribute).
    pub(super) fn with_metadata(
        &self,
        mut opts: PutOptions,
        metadata: &[(&'static str, String)],
    ) -> PutOptions {
        if self.url.scheme() != "file" {
            for (name, value) in metadata {
                opts.attributes
                    .insert(Attribute::Metadata((*name).into()), value.clone().into());
            }
        }
        opts
    }

    /// True for the manifest objects (not part of the data).
    pub fn is_manifest(&self, path: &object_store::path::Path) -> bool {
        path.prefix_match(&self.prefix)
            .and_then(|mut rest| rest.next())
            .is_some_and(|first| first.as_ref() == MANIFEST_DIR)
    }

    /// The folder of the manifest objects.
    pub fn manifest_dir(&self) -> object_store::path::Path {
        self.prefix.clone().join(MANIFEST_DIR)
    }

    /// Writes the manifest object of a delivered object, create-only.
    pub async fn write_manifest(&self, manifest: &Manifest) -> Result<(), SinkError> {
        let path = self.path(&manifest.object_key());
        let line = manifest.to_line();
        // The data's storage class and tags (and Content-MD5, for Object Lock buckets).
        let opts = self.options.s3_upload.put_options(PutMode::Create);
        match self
            .store
            .put_opts(&path, PutPayload::from(line.clone()), opts)
            .await
        {
            Ok(_) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) => {
                let there = self.store.get(&path).await.map_err(store_err)?;
                let there = there.bytes().await.map_err(store_err)?;
                if there[..] == line[..] {
                    return Ok(());
                }
                Err(SinkError::Conflict {
                    key: path.to_string(),
                    size: there.len() as u64,
                    sha256: crate::encoder::hex(&<sha2::Sha256 as sha2::Digest>::digest(&there)),
                })
            }
            Err(e) => Err(store_err(e)),
        }
    }
}
