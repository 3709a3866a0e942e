//! Objects that prove their own completeness, over real stores: a shipper writes a manifest
//! per object (`.manifests/<key>.json`) with consecutive line ranges per source; `verify`
//! finds a deleted object (object_missing), a deleted object and manifest (gap), a second copy
//! of an object (overlap) and a corrupted body (object_corrupt), as a real process with exit
//! 1 and `--json`; on moto the manifest's fields are the object's metadata, read back with
//! boto3; `ferrostack_logship_lost_lines_total{reason}` moves with a forced drop and is zero
//! otherwise.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use logship::manifest::Manifest;
use url::Url;

use crate::support::{
    InProcess, Moto, count_files, moto_store_options, test_options, wait_for_async,
};

/// Ships `files` one-file objects of two lines each (the last without its newline) from
/// source `api` into `store`; returns the archive's manifests, sorted by first line.
async fn ship(tmp: &Path, to: &str, files: usize, tune: impl FnOnce(&mut logship::Options)) {
    let src = tmp.join("api");
    fs::create_dir_all(&src).unwrap();
    for i in 0..files {
        let (a, b) = (2 * i, 2 * i + 1);
        let text =
            format!("{{\"producer\":\"m\",\"seq\":{a}}}\n{{\"producer\":\"m\",\"seq\":{b}}}");
        fs::write(src.join(format!("{i:03}.json")), text).unwrap();
    }
    let mut opts = test_options(
        vec![src.display().to_string()],
        to.into(),
        &tmp.join("state"),
    );
    opts.batch_max_files = 1;
    tune(&mut opts);
    let cfg = opts.validate().unwrap();
    let shipper = InProcess::start(&cfg);
    wait_for_async("shipped", Duration::from_secs(30), || {
        count_files(&src) == 0
    })
    .await;
    let metrics = shipper.stop().await;
    assert_eq!(metrics.shipped_objects.get(), files as u64);
}

fn manifests(archive: &Path) -> Vec<(PathBuf, Manifest)> {
    let mut out = Vec::new();
    let mut dirs = vec![archive.join(".manifests")];
    while let Some(dir) = dirs.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                let m = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
                out.push((p, m));
            }
        }
    }
    out.sort_by_key(|(_, m): &(PathBuf, Manifest)| m.first_line);
    out
}

/// The first finding's code: the manifests' findings come before the test producer's (which
/// see the same damage by the seqs in the lines).
fn first(codes: &[String]) -> &str {
    codes.first().map_or("", String::as_str)
}

/// `logship-testkit verify --json` on the archive: exit code and the findings' codes.
fn verify(archive: &Path) -> (Option<i32>, Vec<String>, String) {
    let to = Url::from_directory_path(archive).unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_logship-testkit"))
        .args(["verify", "--json", "--to", &to])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let codes = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["code"].as_str().map(str::to_string))
        .collect();
    (out.status.code(), codes, stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_have_consecutive_ranges_and_verify_finds_gaps_overlaps_and_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    fs::create_dir(&archive).unwrap();
    let to = Url::from_directory_path(&archive).unwrap().to_string();
    ship(tmp.path(), &to, 4, |_| {}).await;

    let list = manifests(&archive);
    let ranges: Vec<_> = list
        .iter()
        .map(|(_, m)| (m.first_line, m.last_line))
        .collect();
    assert_eq!(
        ranges,
        [(0, Some(1)), (2, Some(3)), (4, Some(5)), (6, Some(7))]
    );
    for (_, m) in &list {
        let object = fs::read(archive.join(&m.key)).unwrap();
        assert_eq!(m.size, object.len() as u64);
        assert_eq!((m.host.as_str(), m.source.as_str()), ("testhost", "api"));
    }
    let (code, codes, out) = verify(&archive);
    assert_eq!((code, codes.len()), (Some(0), 0), "{out}");
    assert!(out.contains(r#""manifests":4"#), "{out}");

    // A corrupted body (same size): its sha256 no longer matches the manifest.
    let (_, second) = &list[1];
    let body = archive.join(&second.key);
    let saved = fs::read(&body).unwrap();
    let mut bad = saved.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    fs::write(&body, &bad).unwrap();
    let (code, codes, out) = verify(&archive);
    assert_eq!(code, Some(1), "{out}");
    assert!(codes.iter().any(|c| c == "object_corrupt"), "{out}");
    fs::write(&body, &saved).unwrap();

    overlap_is_found(&archive, &list[0].1);
    let (last_path, last) = &list[3];
    a_wrong_line_count_is_found(&archive, last_path, last);

    // An object deleted: its manifest names it missing; with its manifest: a gap.
    let (third_manifest, third) = &list[2];
    fs::remove_file(archive.join(&third.key)).unwrap();
    let (code, codes, out) = verify(&archive);
    assert_eq!((code, first(&codes)), (Some(1), "object_missing"), "{out}");
    fs::remove_file(third_manifest).unwrap();
    let (code, codes, out) = verify(&archive);
    assert_eq!((code, first(&codes)), (Some(1), "gap"), "{out}");
    assert!(out.contains("lines 4..=5 are in no object"), "{out}");
}

/// A second copy of an object under another key (a duplicate shipment): its lines are in two
/// objects. The archive is as before afterwards.
fn overlap_is_found(archive: &Path, original: &Manifest) {
    // A second copy of an object under another key: its lines are in two objects.
    let copy_key = original.key.replace(".jsonl", "-copy.jsonl");
    fs::copy(archive.join(&original.key), archive.join(&copy_key)).unwrap();
    let copy = Manifest {
        key: copy_key.clone(),
        ..original.clone()
    };
    let copy_manifest = archive.join(copy.object_key());
    fs::write(&copy_manifest, copy.to_line()).unwrap();
    let (code, codes, out) = verify(archive);
    assert_eq!((code, first(&codes)), (Some(1), "overlap"), "{out}");
    fs::remove_file(&copy_manifest).unwrap();
    fs::remove_file(archive.join(&copy_key)).unwrap();
}

/// A manifest claiming one line more than its (intact, last) object holds: the only finding,
/// and on its own exit 1. The archive is as before afterwards.
fn a_wrong_line_count_is_found(archive: &Path, path: &Path, last: &Manifest) {
    let wrong = Manifest {
        lines: last.lines + 1,
        last_line: last.last_line.map(|n| n + 1),
        ..last.clone()
    };
    fs::write(path, wrong.to_line()).unwrap();
    let (code, codes, out) = verify(archive);
    assert_eq!(
        (code, codes),
        (Some(1), vec!["line_count_mismatch".to_string()]),
        "{out}"
    );
    fs::write(path, last.to_line()).unwrap();
}

/// boto3 reads each object's user metadata.
const HEAD: &str = r#"
import boto3, json, sys
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
out = {}
for o in s3.list_objects_v2(Bucket=sys.argv[2], Prefix=sys.argv[3]).get("Contents", []):
    out[o["Key"]] = s3.head_object(Bucket=sys.argv[2], Key=o["Key"])["Metadata"]
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_s3_each_object_carries_its_manifest_as_metadata() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("manifests");
    let tmp = tempfile::tempdir().unwrap();
    ship(tmp.path(), "s3://manifests/logs", 3, |o| {
        o.s3_endpoint = Some(moto.endpoint.clone());
        o.store_options = moto_store_options();
    })
    .await;
    let python = test_support::tool("moto_server")
        .unwrap()
        .with_file_name("python");
    let out = Command::new(python)
        .args(["-c", HEAD, &moto.endpoint, "manifests", "logs/"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let heads: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&out.stdout).unwrap();
    let data: Vec<_> = heads
        .keys()
        .filter(|k| !k.contains("/.manifests/"))
        .collect();
    assert_eq!(data.len(), 3, "{heads:?}");
    for key in data {
        let manifest_key = format!("logs/.manifests/{}.json", &key["logs/".len()..]);
        assert!(
            heads.contains_key(&manifest_key),
            "{manifest_key} in {heads:?}"
        );
        let meta = &heads[key];
        let first: u64 = meta["logship-first-line"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(meta["logship-source"], "api", "{meta}");
        assert_eq!(meta["logship-host"], "testhost", "{meta}");
        assert_eq!(meta["logship-lines"], "2", "{meta}");
        assert_eq!(meta["logship-last-line"], (first + 1).to_string(), "{meta}");
        assert_eq!(meta["logship-sha256"].as_str().unwrap().len(), 64, "{meta}");
    }
    let url = Url::parse("s3://manifests/logs").unwrap();
    let mut opts = logship::Options::new(Vec::new(), url.to_string());
    opts.s3_endpoint = Some(moto.endpoint.clone());
    opts.store_options = moto_store_options();
    let (_, sink) = opts.destination().unwrap();
    let report = logship::verify(&url, sink).await.unwrap();
    assert!(report.ok(), "{report}");
    assert_eq!((report.manifests, report.unmanifested), (3, 0), "{report}");
}

fn scrape(registry: &prometheus_client::registry::Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text
}

fn lost(text: &str, reason: &str) -> u64 {
    let prefix = format!("ferrostack_logship_lost_lines_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("{prefix} not in\n{text}"))
        .parse()
        .unwrap()
}

#[test]
fn lost_lines_count_the_writers_drops_and_are_zero_otherwise() {
    let tmp = tempfile::tempdir().unwrap();
    let line = format!("{{\"pad\":\"{}\"}}\n", "y".repeat(90));
    // A writer that never reaches its bound: every reason is exported, all zero.
    let calm =
        logfile::RotatingWriter::open(logfile::WriterConfig::new(tmp.path().join("calm"))).unwrap();
    (&calm).write_all(line.as_bytes()).unwrap();
    calm.seal().unwrap();
    let mut registry = prometheus_client::registry::Registry::default();
    logship::Metrics::register_with_writer(&mut registry, Some(calm.stats().clone()));
    let text = scrape(&registry);
    for reason in logship::lost::REASONS {
        assert_eq!(lost(&text, reason), 0, "{reason}");
    }
    // A writer over its pending bound drops lines: the same count, reason pending_bound.
    let full = logfile::RotatingWriter::open(logfile::WriterConfig {
        max_pending_bytes: 3000,
        ..logfile::WriterConfig::new(tmp.path().join("full"))
    })
    .unwrap();
    for _ in 0..100 {
        (&full).write_all(line.as_bytes()).unwrap();
    }
    full.seal().unwrap();
    let mut registry = prometheus_client::registry::Registry::default();
    logship::Metrics::register_with_writer(&mut registry, Some(full.stats().clone()));
    let text = scrape(&registry);
    let dropped = full.stats().dropped_lines.get();
    assert!(dropped > 50, "dropped {dropped}");
    assert_eq!(lost(&text, "pending_bound"), dropped, "{text}");
    assert_eq!(
        lost(&text, "write_error") + lost(&text, "vanished"),
        0,
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journaled_batch_whose_files_vanished_counts_its_lines_as_lost() {
    use logship::journal::{BatchRecord, FileRef, Journal};
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("api");
    fs::create_dir(&src).unwrap();
    let archive = tmp.path().join("archive");
    fs::create_dir(&archive).unwrap();
    let to = Url::from_directory_path(&archive).unwrap().to_string();
    let opts = test_options(
        vec![src.display().to_string()],
        to,
        &tmp.path().join("state"),
    );
    let cfg = opts.validate().unwrap();
    // A batch of 5 lines journaled (as before a crash), its file then removed by someone else.
    let mut journal = Journal::open(&cfg.state_dir).unwrap();
    let first_line = journal.next_line("api");
    journal
        .record_batch(BatchRecord {
            seq: 0,
            source: "api".into(),
            key: "2026-12-06/testhost/api/00000000000000000000.jsonl.zst".into(),
            files: vec![FileRef {
                path: src.join("gone.json"),
                size: 50,
                stamp: None,
            }],
            size: 40,
            sha256: "00".into(),
            raw_bytes: 50,
            first_line,
            lines: 5,
        })
        .unwrap();
    drop(journal);
    let shipper = InProcess::start(&cfg);
    let lost = shipper.metrics.lost.clone();
    wait_for_async("the batch given up", Duration::from_secs(20), || {
        lost.get("vanished") > 0
    })
    .await;
    let metrics = shipper.stop().await;
    assert_eq!(metrics.lost.get("vanished"), 5);
    assert_eq!(
        metrics.lost.get("pending_bound") + metrics.lost.get("write_error"),
        0
    );
    assert_eq!(metrics.shipped_objects.get(), 0);
}
