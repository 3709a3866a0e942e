//! The store checks: staging objects of multipart uploads (`<prefix>/.logship-staging/<sha256>`)
//! that no unfinished batch will publish, and the temporary files an interrupted upload leaves
//! in a `file://` store (`<key>#<n>`). Neither is ever the only copy of unshipped data: an
//! undelivered batch keeps its staged file or its source files until its object is delivered.

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;

use url::Url;

use super::{Fix, FsckError, Problem, io_err};
use crate::journal::OpenBatch;
use crate::sink::{STAGING_DIR, Sink};

/// Lists the store under the URL's prefix.
pub(super) async fn check(
    url: &Url,
    sink: &Sink,
    open: &BTreeMap<u64, OpenBatch>,
) -> Result<Vec<Problem>, FsckError> {
    let wanted: BTreeSet<&str> = open
        .values()
        .filter(|b| !b.delivered)
        .map(|b| b.record.sha256.as_str())
        .collect();
    let prefix = sink.prefix();
    let prefix = (!prefix.as_ref().is_empty()).then_some(prefix);
    let mut listing = sink.store().list(prefix);
    let mut problems = Vec::new();
    while let Some(meta) = listing.next().await {
        let location = meta?.location;
        let key = location.to_string();
        if sink.is_staging(&location) {
            let sha = location.filename().unwrap_or_default();
            if !wanted.contains(sha) {
                problems.push(Problem {
                    code: "store_staging_orphan",
                    at: key,
                    message: format!(
                        "staging object of no undelivered batch (its data is published or still on disk); a leftover of {STAGING_DIR}/"
                    ),
                    fix: Some(Fix::DeleteObject(location)),
                });
            }
        }
    }
    uploads(sink, open, &mut problems).await?;
    if url.scheme() == "file"
        && let Ok(root) = url.to_file_path()
    {
        local_uploads(&root, &mut problems)?;
    }
    Ok(problems)
}

/// S3 multipart uploads under the prefix that no unfinished batch of the journal records (a
/// crash between CreateMultipartUpload and its journal entry, or a lost state directory).
async fn uploads(
    sink: &Sink,
    open: &BTreeMap<u64, OpenBatch>,
    problems: &mut Vec<Problem>,
) -> Result<(), FsckError> {
    let Some(uploads) = sink.uploads().await? else {
        return Ok(());
    };
    let known: BTreeSet<&str> = open
        .values()
        .filter_map(|b| b.upload_id.as_deref())
        .collect();
    for upload in uploads {
        if known.contains(upload.id.as_str()) {
            continue;
        }
        problems.push(Problem {
            code: "store_upload_orphan",
            at: format!("{} (upload {})", upload.path, upload.id),
            message: "multipart upload no unfinished batch records; its parts are aborted (the batch's data is delivered or still in the state directory)".into(),
            fix: Some(Fix::AbortUpload(upload)),
        });
    }
    Ok(())
}

/// The `file://` store's unfinished uploads: `<key>#<digits>` files (which its listing hides).
fn local_uploads(dir: &std::path::Path, problems: &mut Vec<Problem>) -> Result<(), FsckError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("list", dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err("list", dir))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(io_err("stat", &path))?;
        if kind.is_dir() {
            local_uploads(&path, problems)?;
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let upload = name
            .rsplit_once('#')
            .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if kind.is_file() && upload {
            problems.push(Problem {
                code: "store_upload_orphan",
                at: path.display().to_string(),
                message: "temporary file of an upload that did not finish (its batch ships again from the state directory)".into(),
                fix: Some(Fix::Remove(path)),
            });
        }
    }
    Ok(())
}

/// Deletes a store object (gone already is fine).
pub(super) async fn delete(sink: &Sink, path: &Path) -> Result<(), FsckError> {
    match sink.store().delete(path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
