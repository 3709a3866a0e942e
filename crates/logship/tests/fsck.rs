//! `logship fsck` on real state directories: hand-corrupted journals (torn tail, damaged line,
//! gap, unknown and reused sequence numbers, a file in two batches), a staging area with
//! leftovers and a corrupt staged object, missing referenced files, and a store with orphaned
//! staging objects and unfinished uploads (a `file://` store and moto); `--repair` followed by a
//! clean fsck, a shipper run and a verify that finds every line.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use logship::encoder::{self, Compression, Input};
use logship::fsck::{Report, State};
use logship::journal::{BatchRecord, Journal};
use object_store::ObjectStoreExt;
use url::Url;

use crate::support::{
    InProcess, Moto, count_files, moto_store_options, test_options, wait_for_async,
};

/// `(code, state)` of every finding.
fn codes(report: &Report) -> Vec<(&'static str, State)> {
    report.findings.iter().map(|f| (f.code, f.state)).collect()
}

async fn check(state: &Path, repair: bool) -> Report {
    logship::fsck(state, None, repair).await.unwrap()
}

/// Source files `<n>.json` of `lines` producer lines each, in `dir`.
fn sources(dir: &Path, files: u64, lines: u64, first_seq: u64) -> Vec<PathBuf> {
    fs::create_dir_all(dir).unwrap();
    (0..files)
        .map(|f| {
            let path = dir.join(format!("{f:03}.json"));
            let text: String = (0..lines)
                .map(|l| {
                    let seq = first_seq + f * lines + l;
                    format!("{{\"producer\":\"fsck\",\"seq\":{seq}}}\n")
                })
                .collect();
            fs::write(&path, text).unwrap();
            path
        })
        .collect()
}

/// Encodes `files` into the staging area and journals them as batch `seq` (the state a crash
/// right after the journal entry leaves): the shipper's own encoder and journal.
fn journal_batch(state: &Path, seq: u64, files: &[PathBuf]) -> BatchRecord {
    let staging = state.join("staging");
    fs::create_dir_all(&staging).unwrap();
    let staged = staging.join(format!("{seq:020}.jsonl.zst"));
    let inputs: Vec<Input> = files
        .iter()
        .map(|p| Input {
            path: p.clone(),
            expect: None,
        })
        .collect();
    let enc = encoder::encode(&inputs, &staged, Compression::Zstd(3)).unwrap();
    let record = BatchRecord {
        seq,
        source: "app".into(),
        key: format!("2026-12-06/testhost/app/{seq:020}.jsonl.zst"),
        files: enc.files,
        size: enc.size,
        sha256: enc.sha256,
        raw_bytes: enc.raw_bytes,
        first_line: 0,
        lines: enc.lines,
    };
    Journal::open(state)
        .unwrap()
        .record_batch(record.clone())
        .unwrap();
    record
}

fn append_raw(state: &Path, raw: &str) {
    OpenOptions::new()
        .append(true)
        .open(state.join("journal.jsonl"))
        .unwrap()
        .write_all(raw.as_bytes())
        .unwrap();
}

#[tokio::test]
async fn a_torn_journal_tail_is_found_left_alone_then_cut_by_repair() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let files = sources(&tmp.path().join("app"), 1, 3, 0);
    journal_batch(&state, 0, &files);
    append_raw(&state, r#"{"op":"delivered","se"#);
    let before = fs::read(state.join("journal.jsonl")).unwrap();
    let report = check(&state, false).await;
    assert_eq!(
        codes(&report),
        [("journal_torn_tail", State::Repairable)],
        "{report}"
    );
    assert_eq!(report.exit_code(), 1);
    assert_eq!(
        report.findings[0].at,
        format!("{}:2", state.join("journal.jsonl").display())
    );
    assert_eq!(
        fs::read(state.join("journal.jsonl")).unwrap(),
        before,
        "without --repair nothing changes"
    );
    let repaired = check(&state, true).await;
    assert_eq!(codes(&repaired), [("journal_torn_tail", State::Repaired)]);
    assert_eq!(repaired.exit_code(), 1, "problems were found (e2fsck's 1)");
    let again = check(&state, false).await;
    assert!(again.clean(), "{again}");
    assert_eq!(again.exit_code(), 0);
    assert_eq!(again.open_batches, 1, "the batch before the tail is kept");
}

#[tokio::test]
async fn damaged_lines_gaps_and_stray_entries_are_found_and_the_rewrite_keeps_open_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let files = sources(&tmp.path().join("app"), 3, 2, 0);
    let first = journal_batch(&state, 0, &files[..1]);
    append_raw(&state, "\u{0}\u{0}garbage\n");
    append_raw(&state, "{\"op\":\"delivered\",\"seq\":7}\n");
    // Batch 1 and 2 lost: batch 3 follows batch 0.
    journal_batch(&state, 3, &files[1..2]);
    let report = check(&state, false).await;
    assert_eq!(
        codes(&report),
        [
            ("journal_damaged_entry", State::Repairable),
            ("journal_unknown_seq", State::Repairable),
            ("journal_gap", State::Repairable),
        ],
        "{report}"
    );
    assert!(report.findings[2].message.contains("1..=2"), "{report}");
    let repaired = check(&state, true).await;
    assert_eq!(repaired.count(State::Repaired), 3, "{repaired}");
    let again = check(&state, false).await;
    assert!(again.clean(), "{again}");
    let journal = Journal::open(&state).unwrap();
    assert_eq!(journal.get(0).unwrap().record, first);
    assert!(journal.get(3).is_some());
    assert_eq!(journal.next_seq(), 4);
}

#[tokio::test]
async fn a_reused_sequence_number_and_a_file_in_two_batches_are_left_and_named() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let files = sources(&tmp.path().join("app"), 2, 2, 0);
    journal_batch(&state, 0, &files[..1]);
    append_raw(
        &state,
        "{\"op\":\"delivered\",\"seq\":0}\n{\"op\":\"done\",\"seq\":0}\n",
    );
    journal_batch(&state, 0, &files[1..]);
    journal_batch(&state, 1, &files[1..]);
    let report = check(&state, true).await;
    assert_eq!(
        codes(&report),
        [
            ("journal_duplicate_seq", State::Left),
            ("journal_duplicate_file", State::Left),
        ],
        "{report}"
    );
    assert_eq!(report.findings[1].at, files[1].display().to_string());
    assert_eq!(report.exit_code(), 1);
}

#[tokio::test]
async fn staging_leftovers_are_removed_and_a_corrupt_staged_object_only_with_its_files() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let files = sources(&tmp.path().join("app"), 2, 5, 0);
    journal_batch(&state, 0, &files[..1]);
    journal_batch(&state, 1, &files[1..]);
    let staging = state.join("staging");
    fs::write(staging.join(".01JEXAMPLE.tmp"), "partial").unwrap();
    fs::write(staging.join("00000000000000000009.jsonl.zst"), "old").unwrap();
    fs::write(staging.join("notes.txt"), "mine").unwrap();
    // Batch 0: a bit flip in its staged object, its file unchanged.
    let staged0 = staging.join("00000000000000000000.jsonl.zst");
    let mut bytes = fs::read(&staged0).unwrap();
    bytes[8] ^= 0xff;
    fs::write(&staged0, &bytes).unwrap();
    // Batch 1: staged object gone and its file gone too: lost, nothing to repair.
    fs::remove_file(staging.join("00000000000000000001.jsonl.zst")).unwrap();
    fs::remove_file(&files[1]).unwrap();
    let report = check(&state, true).await;
    let mut found = codes(&report);
    found.sort_unstable();
    assert_eq!(
        found,
        [
            ("file_missing", State::Left),
            ("staging_corrupt", State::Repaired),
            ("staging_orphan", State::Repaired),
            ("staging_temp", State::Repaired),
            ("staging_unknown", State::Left),
        ],
        "{report}"
    );
    let left: Vec<_> = fs::read_dir(&staging)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, ["notes.txt"], "only what is not logship's stays");
    assert!(files[0].exists(), "no source file is touched");
}

#[tokio::test]
async fn a_corrupt_staged_object_whose_files_changed_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let files = sources(&tmp.path().join("app"), 1, 5, 0);
    journal_batch(&state, 0, &files);
    let staged = state.join("staging/00000000000000000000.jsonl.zst");
    fs::write(&staged, "corrupt").unwrap();
    fs::write(&files[0], "{\"producer\":\"fsck\",\"seq\":99}\n").unwrap();
    let report = check(&state, true).await;
    assert_eq!(
        codes(&report),
        [("staging_corrupt", State::Left)],
        "{report}"
    );
    assert!(staged.exists());
}

#[tokio::test]
async fn an_unreadable_state_dir_is_an_error_not_a_report() {
    let tmp = tempfile::tempdir().unwrap();
    let err = logship::fsck(&tmp.path().join("missing"), None, false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
    let file = tmp.path().join("file");
    fs::write(&file, "").unwrap();
    assert!(logship::fsck(&file, None, false).await.is_err());
}

/// A crash state (batch 0 journaled, not uploaded; a torn tail; a temp file; an unfinished
/// upload in the store; a leftover staging object), repaired, checked clean, then shipped:
/// every line arrives exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_then_ship_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (state, src, archive) = (
        tmp.path().join("state"),
        tmp.path().join("app"),
        tmp.path().join("archive"),
    );
    let files = sources(&src, 4, 50, 0);
    journal_batch(&state, 0, &files[..2]);
    append_raw(&state, "{\"op\":\"multip");
    fs::write(state.join("staging/.01JTMP.tmp"), "x").unwrap();
    let key_dir = archive.join("2026-12-06/testhost/app");
    fs::create_dir_all(&key_dir).unwrap();
    fs::write(key_dir.join("00000000000000000000.jsonl.zst#3"), "half").unwrap();
    fs::create_dir_all(archive.join(".logship-staging")).unwrap();
    fs::write(archive.join(".logship-staging/abc123"), "old").unwrap();
    let to = Url::from_directory_path(&archive).unwrap();
    let cfg = test_options(
        vec![format!("app={}", src.display())],
        to.to_string(),
        &state,
    )
    .validate()
    .unwrap();
    let fsck = |repair| logship::fsck(&state, Some((&to, cfg.sink.clone())), repair);
    let report = fsck(true).await.unwrap();
    let mut found = codes(&report);
    found.sort_unstable();
    assert_eq!(
        found,
        [
            ("journal_torn_tail", State::Repaired),
            ("staging_temp", State::Repaired),
            ("store_staging_orphan", State::Repaired),
            ("store_upload_orphan", State::Repaired),
        ],
        "{report}"
    );
    let again = fsck(false).await.unwrap();
    assert!(again.clean(), "{again}");
    let shipper = InProcess::start(&cfg);
    wait_for_async("everything shipped", Duration::from_secs(30), || {
        count_files(&src) == 0
    })
    .await;
    shipper.stop().await;
    let verified = logship::verify(&to, cfg.sink.clone()).await.unwrap();
    assert!(verified.ok(), "{verified}");
    assert_eq!(verified.producers["fsck"].lines, 200, "{verified}");
    assert_eq!(verified.producers["fsck"].max_seq, 199, "{verified}");
    let after = fsck(false).await.unwrap();
    assert!(after.clean(), "{after}");
}

/// S3 (moto): a staging object no batch refers to is deleted by `--repair`; one an undelivered
/// batch will publish is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphaned_staging_objects_in_s3_are_deleted_and_wanted_ones_kept() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("fsck");
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let files = sources(&tmp.path().join("app"), 1, 5, 0);
    let record = journal_batch(&state, 0, &files);
    let handle = moto.clone_handle();
    let wanted = format!("fsck/logs/.logship-staging/{}", record.sha256);
    let orphan = "fsck/logs/.logship-staging/0123abcd";
    handle.put_object(&wanted, b"part of batch 0");
    handle.put_object(orphan, b"left by a crash");
    let mut opts = test_options(vec![], "s3://fsck/logs".into(), &state);
    opts.s3_endpoint = Some(moto.endpoint.clone());
    opts.store_options = moto_store_options();
    let (url, sink) = opts.destination().unwrap();
    let report = logship::fsck(&state, Some((&url, sink.clone())), true)
        .await
        .unwrap();
    assert_eq!(
        codes(&report),
        [("store_staging_orphan", State::Repaired)],
        "{report}"
    );
    assert_eq!(report.findings[0].at, "logs/.logship-staging/0123abcd");
    let store = logship::sink::Sink::new(&url, sink.clone()).unwrap();
    let exists = async |key: &str| {
        let path = object_store::path::Path::from(key);
        match store.store().head(&path).await {
            Ok(_) => true,
            Err(object_store::Error::NotFound { .. }) => false,
            Err(e) => panic!("{key}: {e}"),
        }
    };
    assert!(
        !exists("logs/.logship-staging/0123abcd").await,
        "orphan deleted"
    );
    assert!(
        exists(&format!("logs/.logship-staging/{}", record.sha256)).await,
        "the one batch 0 will publish is kept"
    );
    let again = logship::fsck(&state, Some((&url, sink)), false)
        .await
        .unwrap();
    assert!(again.clean(), "{again}");
}

/// Starts a multipart upload of `bucket/key` on moto (unsigned); its id.
fn start_upload(moto: &Moto, object: &str) -> String {
    let resp = crate::support::http(
        &moto.endpoint,
        "POST",
        &format!("/{object}?uploads"),
        &[],
        b"",
    );
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let id = resp
        .split("<UploadId>")
        .nth(1)
        .and_then(|s| s.split("</UploadId>").next());
    id.unwrap_or_else(|| panic!("no UploadId in {resp}"))
        .to_string()
}

/// S3 (moto): an upload no unfinished batch records is found by ListMultipartUploads and
/// aborted by `--repair`; the journaled one and one outside the prefix are left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphaned_multipart_uploads_in_s3_are_aborted_and_journaled_ones_kept() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("mpu");
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let files = sources(&tmp.path().join("app"), 1, 5, 0);
    let record = journal_batch(&state, 0, &files);
    let journaled = start_upload(
        &moto,
        &format!("mpu/logs/.logship-staging/{}", record.sha256),
    );
    Journal::open(&state)
        .unwrap()
        .record_multipart(0, &journaled)
        .unwrap();
    let orphan = start_upload(
        &moto,
        "mpu/logs/2026-12-06/testhost/app/00000000000000000003.jsonl.zst",
    );
    let outside = start_upload(&moto, "mpu/other/x.jsonl.zst");
    let mut opts = test_options(vec![], "s3://mpu/logs".into(), &state);
    opts.s3_endpoint = Some(moto.endpoint.clone());
    opts.store_options = moto_store_options();
    let (url, sink) = opts.destination().unwrap();
    let report = logship::fsck(&state, Some((&url, sink.clone())), true)
        .await
        .unwrap();
    assert_eq!(
        codes(&report),
        [("store_upload_orphan", State::Repaired)],
        "{report}"
    );
    assert!(report.findings[0].at.contains(&orphan), "{report}");
    let listed = crate::support::http(&moto.endpoint, "GET", "/mpu?uploads", &[], b"");
    assert!(!listed.contains(&orphan), "aborted: {listed}");
    assert!(
        listed.contains(&journaled),
        "the journaled upload is kept: {listed}"
    );
    assert!(listed.contains(&outside), "outside the prefix: {listed}");
    let again = logship::fsck(&state, Some((&url, sink)), false)
        .await
        .unwrap();
    assert!(again.clean(), "{again}");
}
