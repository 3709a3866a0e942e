//! `--s3-credentials-file` against moto with request signing enforced (IAM users and keys
//! made through moto's IAM API, then `/moto-api/reset-auth`): wrong keys in the file are
//! refused, the same sink picks up the rotated file (replaced by rename, as Kubernetes does
//! with a Secret) without a restart, and the secret never shows in an error or `Debug`.

use std::path::Path;
use std::time::Duration;

use logship::sink::{MultipartProgress, Outcome, Sink, SinkError, SinkOptions, Staged};
use object_store::ObjectStoreExt;

use crate::support::{Moto, http};

struct NoMultipart;

impl MultipartProgress for NoMultipart {
    fn started(&mut self, _: &str) -> Result<(), SinkError> {
        Ok(())
    }
    fn part(&mut self, _: usize, _: &str) -> Result<(), SinkError> {
        Ok(())
    }
}

/// An IAM call to moto; the Authorization header only routes it (not checked yet).
fn iam(moto: &Moto, form: &str) -> String {
    let auth = "AWS4-HMAC-SHA256 Credential=AKIASETUP/20260101/us-east-1/iam/aws4_request, \
                SignedHeaders=host, Signature=00";
    let resp = http(
        &moto.endpoint,
        "POST",
        "/",
        &[
            ("Authorization", auth),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        format!("{form}&Version=2010-05-08").as_bytes(),
    );
    assert!(resp.starts_with("HTTP/1.1 200"), "{form}: {resp}");
    resp
}

fn between<'a>(text: &'a str, tag: &str) -> &'a str {
    let start = text.find(&format!("<{tag}>")).unwrap() + tag.len() + 2;
    let end = text[start..].find(&format!("</{tag}>")).unwrap();
    &text[start..start + end]
}

/// Writes the credentials file the way a Secret update lands: a new file renamed over it.
fn write_credentials(path: &Path, key_id: &str, secret: &str) {
    let next = path.with_extension("next");
    std::fs::write(
        &next,
        format!("[default]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n"),
    )
    .unwrap();
    std::fs::rename(&next, path).unwrap();
}

#[tokio::test]
async fn s3_credentials_come_from_the_file_and_a_rotated_file_is_used_without_restart() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("logs");
    iam(&moto, "Action=CreateUser&UserName=logship");
    let policy = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A\
                  %22Allow%22%2C%22Action%22%3A%22*%22%2C%22Resource%22%3A%22*%22%7D%5D%7D";
    iam(
        &moto,
        &format!("Action=PutUserPolicy&UserName=logship&PolicyName=all&PolicyDocument={policy}"),
    );
    let created = iam(&moto, "Action=CreateAccessKey&UserName=logship");
    let (key_id, secret) = (
        between(&created, "AccessKeyId").to_string(),
        between(&created, "SecretAccessKey").to_string(),
    );
    // From here on moto checks every request's signature and the user's policy.
    let resp = http(&moto.endpoint, "POST", "/moto-api/reset-auth", &[], b"0");
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");

    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("credentials");
    write_credentials(&file, "AKIAWRONGWRONGWRONG0", "not-the-secret-0123456789");
    let sink = Sink::new(
        &url::Url::parse("s3://logs/archive").unwrap(),
        SinkOptions {
            s3_endpoint: Some(moto.endpoint.clone()),
            s3_credentials: Some((file.clone(), "default".into())),
            store_options: vec![("aws_region".into(), "us-east-1".into())],
            multipart_threshold: 32 << 20,
            part_size: 8 << 20,
            request_timeout: Duration::from_secs(30),
            s3_upload: logship::sink::S3Upload::default(),
        },
    )
    .unwrap();
    let object = tmp.path().join("object");
    std::fs::write(&object, b"{\"line\":1}\n").unwrap();
    let sha = logship::encoder::sha256_file(&object).unwrap();
    let staged = Staged {
        key: "k/00000000000000000000.jsonl.zst",
        path: &object,
        size: 11,
        sha256: &sha,
        upload_id: None,
        parts: &[],
    };

    let refused = sink.deliver(staged, &mut NoMultipart).await.unwrap_err();
    assert_eq!(refused.kind(), "auth", "{refused}");
    let shown = format!("{refused} {refused:?} {sink:?}");
    assert!(!shown.contains("not-the-secret"), "secret shown: {shown}");

    write_credentials(&file, &key_id, &secret);
    let out = sink.deliver(staged, &mut NoMultipart).await.unwrap();
    assert_eq!(out, Outcome::Uploaded);
    let head = sink.store().head(&sink.path(staged.key)).await.unwrap();
    assert_eq!(head.size, 11);
    assert!(!format!("{sink:?}").contains(&secret));
}
