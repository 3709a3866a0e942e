use super::*;

fn memory(prefix: &str) -> Sink {
    let options = SinkOptions {
        s3_endpoint: None,
        s3_credentials: None,
        store_options: Vec::new(),
        multipart_threshold: 1024,
        part_size: 4,
        request_timeout: Duration::from_secs(5),
        s3_upload: super::S3Upload::default(),
    };
    Sink::new(
        &Url::parse(&format!("memory:///{prefix}")).unwrap(),
        options,
    )
    .unwrap()
}

#[test]
fn keys_are_joined_under_the_prefix_without_empty_segments() {
    let sink = memory("archive/x");
    assert_eq!(sink.path("a//b/c.jsonl").as_ref(), "archive/x/a/b/c.jsonl");
    assert_eq!(sink.path("/c").as_ref(), "archive/x/c");
}

#[test]
fn only_the_staging_folder_under_the_prefix_is_staging() {
    let sink = memory("archive");
    assert!(sink.is_staging(&sink.staging_path("ab12")));
    assert!(!sink.is_staging(&sink.path("2026-01-01/h/r/1.jsonl.zst")));
    assert!(!sink.is_staging(&Path::from(format!("other/{STAGING_DIR}/ab12"))));
    assert!(!sink.is_staging(&sink.path(&format!("x/{STAGING_DIR}/ab12"))));
}

/// Records nothing: small objects are one create-only PUT.
struct NoProgress;

impl MultipartProgress for NoProgress {
    fn started(&mut self, _: &str) -> Result<(), SinkError> {
        panic!("a small object has no multipart upload")
    }
    fn part(&mut self, _: usize, _: &str) -> Result<(), SinkError> {
        panic!("a small object has no parts")
    }
}

#[tokio::test]
async fn a_second_delivery_compares_and_a_different_object_is_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("staged");
    std::fs::write(&file, "{\"a\":1}\n").unwrap();
    let sha = hex(&Sha256::digest(b"{\"a\":1}\n"));
    let staged = Staged {
        key: "k.jsonl",
        path: &file,
        size: 8,
        sha256: &sha,
        upload_id: None,
        parts: &[],
    };
    let sink = memory("p");
    let first = sink.deliver(staged, &mut NoProgress).await.unwrap();
    assert_eq!(first, Outcome::Uploaded);
    let again = sink.deliver(staged, &mut NoProgress).await.unwrap();
    assert_eq!(again, Outcome::AlreadyThere);
    std::fs::write(&file, "{\"a\":2}\n").unwrap();
    let other = hex(&Sha256::digest(b"{\"a\":2}\n"));
    let differs = Staged {
        sha256: &other,
        ..staged
    };
    let e = sink.deliver(differs, &mut NoProgress).await.unwrap_err();
    assert!(
        matches!(&e, SinkError::Conflict { sha256, .. } if *sha256 == sha),
        "{e}"
    );
    let kept = sink.store().get(&sink.path("k.jsonl")).await.unwrap();
    assert_eq!(
        kept.bytes().await.unwrap().as_ref(),
        b"{\"a\":1}\n",
        "never overwritten"
    );
}
