//! Multipart uploads of large objects: resumable ones whose upload id and parts are journaled
//! (so that a crash resumes them, and a lost upload is found or started over), and streamed
//! ones where the store cannot resume (`file://`).

use std::io::{Read, Seek, SeekFrom};
use std::path::Path as FsPath;

use bytes::Bytes;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{MultipartId, ObjectStoreExt, WriteMultipart};

use super::error::store_err;
use super::{MultipartProgress, Outcome, Sink, SinkError, Staged};

/// How far a journaled upload got.
enum Parts {
    /// Every part is uploaded.
    Done,
    /// The store no longer knows the upload id.
    Lost,
}

impl Sink {
    /// Uploads `staged` to `path` (the final `key` or its staging object): resumable
    /// multipart where the store has it, else one streamed upload.
    pub(super) async fn upload(
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
            None => start(mp, path, progress).await?,
        };
        let mut restarted = false;
        loop {
            if let Parts::Done = self
                .put_parts(mp, path, &id, staged, &mut parts, progress)
                .await?
            {
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
            id = start(mp, path, progress).await?;
            parts.clear();
        }
    }

    /// Uploads the parts after those in `parts`, journaling each.
    async fn put_parts(
        &self,
        mp: &dyn MultipartStore,
        path: &Path,
        id: &MultipartId,
        staged: Staged<'_>,
        parts: &mut Vec<String>,
        progress: &mut (dyn MultipartProgress + Send),
    ) -> Result<Parts, SinkError> {
        let part_size = self.options.part_size as u64;
        let n_parts = staged.size.div_ceil(part_size).max(1) as usize;
        for idx in parts.len()..n_parts {
            let chunk = read_chunk(staged.path, idx as u64 * part_size, part_size)?;
            match mp.put_part(path, id, idx, chunk.into()).await {
                Ok(part) => {
                    progress.part(idx, &part.content_id)?;
                    parts.push(part.content_id);
                }
                Err(object_store::Error::NotFound { .. }) => return Ok(Parts::Lost),
                Err(e) => return Err(store_err(e)),
            }
        }
        Ok(Parts::Done)
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
}

/// Creates an upload and journals its id before any part is sent.
async fn start(
    mp: &dyn MultipartStore,
    path: &Path,
    progress: &mut (dyn MultipartProgress + Send),
) -> Result<String, SinkError> {
    let id = mp.create_multipart(path).await.map_err(store_err)?;
    progress.started(&id)?;
    Ok(id)
}

/// Up to `len` bytes of the staged file from `offset`.
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

#[cfg(test)]
mod tests;
