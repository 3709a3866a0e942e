use std::time::Duration;

use sha2::{Digest, Sha256};
use url::Url;

use super::*;
use crate::encoder::hex;
use crate::sink::SinkOptions;

/// The journal's view of an upload; fails the part `fail_at` once to simulate a crash there.
#[derive(Default)]
struct Journal {
    started: Vec<String>,
    parts: Vec<(usize, String)>,
    fail_at: Option<usize>,
}

impl MultipartProgress for Journal {
    fn started(&mut self, upload_id: &str) -> Result<(), SinkError> {
        self.started.push(upload_id.to_string());
        Ok(())
    }
    fn part(&mut self, idx: usize, etag: &str) -> Result<(), SinkError> {
        if self.fail_at == Some(idx) {
            self.fail_at = None;
            return Err(SinkError::Io {
                path: "journal".into(),
                source: std::io::Error::other("crash"),
            });
        }
        self.parts.push((idx, etag.to_string()));
        Ok(())
    }
}

fn sink() -> Sink {
    let options = SinkOptions {
        s3_endpoint: None,
        s3_credentials: None,
        store_options: Vec::new(),
        multipart_threshold: 4,
        part_size: 4,
        request_timeout: Duration::from_secs(5),
        s3_upload: crate::sink::S3Upload::default(),
    };
    Sink::new(&Url::parse("memory:///p").unwrap(), options).unwrap()
}

#[tokio::test]
async fn a_journaled_upload_resumes_after_its_recorded_parts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("staged");
    let data = b"0123456789"; // three parts of 4 bytes
    std::fs::write(&file, data).unwrap();
    let sha = hex(&Sha256::digest(data));
    let staged = Staged {
        key: "big.jsonl",
        path: &file,
        size: 10,
        sha256: &sha,
        upload_id: None,
        parts: &[],
    };
    let sink = sink();
    let mut before = Journal {
        fail_at: Some(1),
        ..Journal::default()
    };
    assert!(
        sink.deliver(staged, &mut before).await.is_err(),
        "crashed at part 1"
    );
    assert_eq!(before.started.len(), 1);
    assert_eq!(before.parts.len(), 1, "only part 0 was journaled");
    let parts: Vec<String> = before.parts.iter().map(|(_, etag)| etag.clone()).collect();
    let resumed = Staged {
        upload_id: Some(&before.started[0]),
        parts: &parts,
        ..staged
    };
    let mut after = Journal::default();
    let outcome = sink.deliver(resumed, &mut after).await.unwrap();
    assert_eq!(outcome, Outcome::Uploaded);
    assert!(after.started.is_empty(), "the journaled upload was resumed");
    let idx: Vec<usize> = after.parts.iter().map(|(i, _)| *i).collect();
    assert_eq!(idx, [1, 2]);
    let object = sink.store().get(&sink.path("big.jsonl")).await.unwrap();
    assert_eq!(object.bytes().await.unwrap().as_ref(), data);
    let staging = sink.staging_path(&sha);
    assert!(
        sink.store().head(&staging).await.is_err(),
        "staging object removed"
    );
}

#[test]
fn chunks_are_read_at_their_offset_and_short_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("staged");
    std::fs::write(&file, b"0123456789").unwrap();
    assert_eq!(read_chunk(&file, 4, 4).unwrap().as_ref(), b"4567");
    assert_eq!(read_chunk(&file, 8, 4).unwrap().as_ref(), b"89");
    assert!(read_chunk(&file, 12, 4).unwrap().is_empty());
    let missing = read_chunk(&dir.path().join("gone"), 0, 4).unwrap_err();
    assert_eq!(missing.kind(), "staging_io");
}
