//! The S3 upload options against moto, read back from the server: a shipper with `--s3-sse
//! aws:kms --s3-sse-kms-key-id`, `--s3-storage-class` and `--s3-tags` ships into a bucket with
//! Object Lock and a default retention, which refuses any PUT without Content-MD5 (shown with a
//! plain PUT first), and every object carries the encryption, the class and the tags.

use std::time::Duration;

use url::Url;

use crate::support::{
    InProcess, Moto, count_files, http, moto_store_options, test_options, wait_for_async,
};

const LOCK_CONFIG: &str = r#"<ObjectLockConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>1</Days></DefaultRetention></Rule></ObjectLockConfiguration>"#;

/// A bucket with Object Lock and a default retention of one day.
fn locked_bucket(moto: &Moto, bucket: &str) {
    let lock = [("x-amz-bucket-object-lock-enabled", "true")];
    let resp = http(&moto.endpoint, "PUT", &format!("/{bucket}"), &lock, b"");
    assert!(resp.starts_with("HTTP/1.1 200"), "create bucket: {resp}");
    let path = format!("/{bucket}?object-lock");
    let resp = http(&moto.endpoint, "PUT", &path, &[], LOCK_CONFIG.as_bytes());
    assert!(resp.starts_with("HTTP/1.1 200"), "object lock: {resp}");
}

/// boto3 (SigV4; moto refuses unsigned reads of KMS-encrypted objects) lists `prefix` and
/// returns each object's encryption, KMS key, storage class and tags.
const READ_BACK: &str = r#"
import boto3, json, sys
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
out = []
for o in s3.list_objects_v2(Bucket=sys.argv[2], Prefix=sys.argv[3]).get("Contents", []):
    h = s3.head_object(Bucket=sys.argv[2], Key=o["Key"])
    t = s3.get_object_tagging(Bucket=sys.argv[2], Key=o["Key"])["TagSet"]
    out.append({"key": o["Key"], "sse": h.get("ServerSideEncryption"),
                "kms_key": h.get("SSEKMSKeyId"), "class": h.get("StorageClass"),
                "tags": [[x["Key"], x["Value"]] for x in t]})
print(json.dumps(out))
"#;

fn read_back(endpoint: &str, bucket: &str, prefix: &str) -> Vec<serde_json::Value> {
    let moto = test_support::tool("moto_server").unwrap();
    let python = moto.with_file_name("python");
    let out = std::process::Command::new(python)
        .args(["-c", READ_BACK, endpoint, bucket, prefix])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encryption_storage_class_tags_and_content_md5_reach_s3() {
    let Some(moto) = Moto::start() else { return };
    locked_bucket(&moto, "locked");
    let plain = http(&moto.endpoint, "PUT", "/locked/plain.txt", &[], b"no md5");
    assert!(
        plain.starts_with("HTTP/1.1 400"),
        "the bucket refuses a PUT without Content-MD5: {plain}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("api");
    std::fs::create_dir(&src).unwrap();
    for i in 0..3 {
        let line = format!("{{\"producer\":\"s3opt\",\"seq\":{i}}}\n");
        std::fs::write(src.join(format!("{i}.json")), line).unwrap();
    }
    let mut opts = test_options(
        vec![src.display().to_string()],
        "s3://locked/logs".into(),
        &tmp.path().join("state"),
    );
    opts.batch_max_files = 1;
    opts.s3_endpoint = Some(moto.endpoint.clone());
    opts.store_options = moto_store_options();
    opts.s3_upload.sse = Some("aws:kms".into());
    opts.s3_upload.sse_kms_key_id = Some("ferrostack-key-1".into());
    opts.s3_upload.storage_class = Some("STANDARD_IA".into());
    opts.s3_upload.tags = vec!["team=core".into(), "env=prod".into()];
    let cfg = opts.validate().unwrap();
    let shipper = InProcess::start(&cfg);
    wait_for_async(
        "shipped into the locked bucket",
        Duration::from_secs(30),
        || count_files(&src) == 0,
    )
    .await;
    let metrics = shipper.stop().await;
    assert_eq!(metrics.shipped_objects.get(), 3);

    let objects = read_back(&moto.endpoint, "locked", "logs/");
    // 3 objects and their 3 manifests, all with the options.
    assert_eq!(objects.len(), 6, "{objects:?}");
    for o in &objects {
        assert_eq!(o["sse"], "aws:kms", "{o}");
        assert_eq!(o["kms_key"], "ferrostack-key-1", "{o}");
        assert_eq!(o["class"], "STANDARD_IA", "{o}");
        assert_eq!(
            o["tags"],
            serde_json::json!([["team", "core"], ["env", "prod"]]),
            "{o}"
        );
    }
    let report = logship::verify(&Url::parse("s3://locked/logs").unwrap(), cfg.sink.clone())
        .await
        .unwrap();
    assert!(report.ok(), "{report}");
    assert_eq!(report.producers["s3opt"].lines, 3, "{report}");
}
