//! The sink against the local filesystem and a real S3 server: plain and multipart uploads,
//! multipart resume after a crash, and create-only collisions (same bytes → delivered,
//! different bytes → conflict, never overwritten).

use std::path::{Path, PathBuf};

use logship::encoder::sha256_file;
use logship::sink::{MultipartProgress, Outcome, Sink, SinkError, SinkOptions, Staged};
use object_store::ObjectStoreExt;
use rand::RngCore;

use crate::support::{Moto, moto_store_options};

const MIB: u64 = 1024 * 1024;

#[derive(Default)]
struct Recorder {
    upload_id: Option<String>,
    parts: Vec<String>,
    uploaded: Vec<usize>,
    fail_at_part: Option<usize>,
    /// Runs when a part is recorded (another writer acting mid-upload).
    on_part: Option<Box<dyn FnMut(usize) + Send>>,
}

impl MultipartProgress for Recorder {
    fn started(&mut self, upload_id: &str) -> Result<(), SinkError> {
        self.upload_id = Some(upload_id.to_string());
        self.parts.clear();
        Ok(())
    }

    fn part(&mut self, idx: usize, etag: &str) -> Result<(), SinkError> {
        if self.fail_at_part == Some(idx) {
            return Err(SinkError::Io {
                path: PathBuf::from("crash"),
                source: std::io::Error::other("simulated crash"),
            });
        }
        if let Some(hook) = self.on_part.as_mut() {
            hook(idx);
        }
        self.uploaded.push(idx);
        self.parts.truncate(idx);
        self.parts.push(etag.to_string());
        Ok(())
    }
}

fn random_file(dir: &Path, name: &str, len: u64) -> (PathBuf, String) {
    let path = dir.join(name);
    let mut data = vec![0u8; len as usize];
    rand::rng().fill_bytes(&mut data);
    std::fs::write(&path, &data).unwrap();
    let sha = sha256_file(&path).unwrap();
    (path, sha)
}

fn options(endpoint: Option<String>) -> SinkOptions {
    SinkOptions {
        s3_endpoint: endpoint,
        s3_credentials: None,
        store_options: moto_store_options(),
        multipart_threshold: 5 * MIB,
        part_size: 5 * MIB as usize,
        request_timeout: std::time::Duration::from_secs(30),
        s3_upload: logship::sink::S3Upload::default(),
    }
}

/// Delivers with the recorder's journaled multipart state, as a restarted shipper would.
async fn go(
    sink: &Sink,
    key: &str,
    path: &Path,
    sha: &str,
    r: &mut Recorder,
) -> Result<Outcome, SinkError> {
    let (upload_id, parts) = (r.upload_id.clone(), r.parts.clone());
    let staged = Staged {
        key,
        path,
        size: std::fs::metadata(path).unwrap().len(),
        sha256: sha,
        upload_id: upload_id.as_deref(),
        parts: &parts,
    };
    sink.deliver(staged, r).await
}

/// The bytes stored under `key`.
async fn stored(sink: &Sink, key: &str) -> Vec<u8> {
    sink.store()
        .get(&sink.path(key))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

async fn plain_multipart_and_collisions(sink: &Sink, tmp: &Path) {
    // Plain: uploaded once, the retry of the same bytes is "already there".
    let (small, small_sha) = random_file(tmp, "small", 1000);
    let mut r = Recorder::default();
    let key = "2026-11-21/h/api/00000000000000000000.jsonl.zst";
    let out = go(sink, key, &small, &small_sha, &mut r).await;
    assert_eq!(out.unwrap(), Outcome::Uploaded);
    let out = go(sink, key, &small, &small_sha, &mut r).await;
    assert_eq!(out.unwrap(), Outcome::AlreadyThere);

    // Collision with different bytes (same size and different size): conflict, not overwritten.
    let (other, other_sha) = random_file(tmp, "other", 1000);
    let out = go(sink, key, &other, &other_sha, &mut r).await;
    assert!(matches!(out, Err(SinkError::Conflict { .. })), "{out:?}");
    let (longer, longer_sha) = random_file(tmp, "longer", 1001);
    let out = go(sink, key, &longer, &longer_sha, &mut r).await;
    assert!(matches!(out, Err(SinkError::Conflict { .. })), "{out:?}");
    assert_eq!(stored(sink, key).await, std::fs::read(&small).unwrap());

    // Multipart above the threshold; the retry finds it.
    let (big, big_sha) = random_file(tmp, "big", 12 * MIB);
    let key = "2026-11-21/h/api/00000000000000000001.jsonl.zst";
    let mut r = Recorder::default();
    let out = go(sink, key, &big, &big_sha, &mut r).await;
    assert_eq!(out.unwrap(), Outcome::Uploaded);
    let meta = sink.store().head(&sink.path(key)).await.unwrap();
    assert_eq!(meta.size, 12 * MIB);
    let mut fresh = Recorder::default();
    let out = go(sink, key, &big, &big_sha, &mut fresh).await;
    assert_eq!(out.unwrap(), Outcome::AlreadyThere);
    let (big2, big2_sha) = random_file(tmp, "big2", 12 * MIB);
    let mut fresh = Recorder::default();
    let out = go(sink, key, &big2, &big2_sha, &mut fresh).await;
    assert!(matches!(out, Err(SinkError::Conflict { .. })), "{out:?}");
}

#[tokio::test]
async fn local_filesystem_plain_multipart_and_create_only_collision() {
    let tmp = tempfile::tempdir().unwrap();
    let url = url::Url::from_directory_path(tmp.path().join("archive")).unwrap();
    let sink = Sink::new(&url, options(None)).unwrap();
    plain_multipart_and_collisions(&sink, tmp.path()).await;
}

#[tokio::test]
async fn s3_plain_multipart_and_create_only_collision() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("logs");
    let tmp = tempfile::tempdir().unwrap();
    let url = url::Url::parse("s3://logs/archive").unwrap();
    let sink = Sink::new(&url, options(Some(moto.endpoint.clone()))).unwrap();
    plain_multipart_and_collisions(&sink, tmp.path()).await;
}

/// The race a HEAD check before the upload cannot close: a different object takes the key
/// while the multipart upload runs (here: another writer's PUT as part 1 is recorded, after the
/// HEAD found the key free). Completing the upload must not overwrite it: the create-only
/// publish finds it, it is a conflict, the other object stays, no staging object is left.
/// A second round does the same across a crash: a journaled upload is not completed over an
/// object that appeared while the shipper was down.
#[tokio::test]
async fn s3_multipart_never_overwrites_an_object_created_during_the_upload() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("logs");
    let tmp = tempfile::tempdir().unwrap();
    let url = url::Url::parse("s3://logs/archive").unwrap();
    let sink = Sink::new(&url, options(Some(moto.endpoint.clone()))).unwrap();
    let (mine, sha) = random_file(tmp.path(), "mine", 12 * MIB);
    let (theirs, _) = random_file(tmp.path(), "theirs", 3000);
    let theirs = std::fs::read(theirs).unwrap();

    let key = "race/00000000000000000009.jsonl.zst";
    let (m, object, body) = (
        moto.clone_handle(),
        format!("logs/archive/{key}"),
        theirs.clone(),
    );
    let mut r = Recorder {
        on_part: Some(Box::new(move |idx| {
            if idx == 1 {
                m.put_object(&object, &body);
            }
        })),
        ..Recorder::default()
    };
    let out = go(&sink, key, &mine, &sha, &mut r).await;
    assert!(matches!(out, Err(SinkError::Conflict { .. })), "{out:?}");
    assert_eq!(r.uploaded, vec![0, 1, 2], "the race happened mid-upload");
    assert_no_overwrite_and_no_staging(&sink, key, &theirs).await;

    // Across a crash: the upload is journaled, the other object appears while we are down.
    let key = "race/00000000000000000010.jsonl.zst";
    let mut r = Recorder {
        fail_at_part: Some(2),
        ..Recorder::default()
    };
    let out = go(&sink, key, &mine, &sha, &mut r).await;
    assert!(out.is_err(), "crash while recording the last part");
    assert!(r.upload_id.is_some());
    sink.store()
        .put(&sink.path(key), theirs.clone().into())
        .await
        .unwrap();
    r.fail_at_part = None;
    let out = go(&sink, key, &mine, &sha, &mut r).await;
    assert!(matches!(out, Err(SinkError::Conflict { .. })), "{out:?}");
    assert_no_overwrite_and_no_staging(&sink, key, &theirs).await;
}

async fn assert_no_overwrite_and_no_staging(sink: &Sink, key: &str, theirs: &[u8]) {
    assert_eq!(stored(sink, key).await, theirs, "not overwritten");
    let staging = sink.prefix().clone().join(logship::sink::STAGING_DIR);
    let left = sink
        .store()
        .list_with_delimiter(Some(&staging))
        .await
        .unwrap();
    assert!(
        left.objects.is_empty(),
        "staging removed: {:?}",
        left.objects
    );
}

#[tokio::test]
async fn s3_multipart_resumes_after_a_crash_without_reuploading_recorded_parts() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("logs");
    let tmp = tempfile::tempdir().unwrap();
    let url = url::Url::parse("s3://logs/archive").unwrap();
    let sink = Sink::new(&url, options(Some(moto.endpoint.clone()))).unwrap();
    let (big, sha) = random_file(tmp.path(), "big", 12 * MIB);
    let key = "k/00000000000000000007.jsonl.zst";
    let mut r = Recorder {
        fail_at_part: Some(1),
        ..Recorder::default()
    };
    let out = go(&sink, key, &big, &sha, &mut r).await;
    assert!(out.is_err(), "crash after part 0 was recorded");
    assert_eq!(r.uploaded, vec![0]);
    assert!(r.upload_id.is_some());
    let err = sink.store().head(&sink.path(key)).await.unwrap_err();
    assert!(
        matches!(err, object_store::Error::NotFound { .. }),
        "not complete yet"
    );

    // Restart: the journaled upload id and part 0 are reused.
    r.fail_at_part = None;
    r.uploaded.clear();
    let out = go(&sink, key, &big, &sha, &mut r).await;
    assert_eq!(out.unwrap(), Outcome::Uploaded);
    assert_eq!(
        r.uploaded,
        vec![1, 2],
        "only the missing parts were uploaded"
    );
    assert_eq!(stored(&sink, key).await, std::fs::read(&big).unwrap());

    // A crash after completion but before the journal noted it: completing again (or, where
    // the upload id is gone, finding and comparing the object) delivers the same single object.
    let mut again = Recorder {
        upload_id: r.upload_id.clone(),
        parts: r.parts.clone(),
        ..Recorder::default()
    };
    let out = go(&sink, key, &big, &sha, &mut again).await;
    assert!(out.is_ok(), "{out:?}");
    assert!(again.uploaded.is_empty(), "no part uploaded again");
    let listed = sink
        .store()
        .list_with_delimiter(Some(&sink.path("k")))
        .await
        .unwrap();
    assert_eq!(listed.objects.len(), 1);
    assert_eq!(stored(&sink, key).await, std::fs::read(&big).unwrap());
}
