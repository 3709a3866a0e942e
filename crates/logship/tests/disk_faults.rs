//! Real I/O errors at every durability boundary (`make test-logship-faults`, root, /dev/fuse):
//! the source, the state dir and the `file://` archive live on `faultfs`, a FUSE passthrough
//! whose rules make the kernel return EIO to write(2), fsync(2), rename(2), fsync of a
//! directory or unlink(2) on chosen paths, exactly as a failing disk does. Device-mapper's
//! `error`/`flakey` targets would be the block-level equivalent, but this kernel has no
//! device-mapper driver. Each test: the fault is surfaced (stderr, the writer's returned
//! errors), nothing unshipped is deleted, and once the rules are cleared the same process goes
//! on by itself, no restart, until `verify` finds every line exactly once.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use test_support::faultfs::FaultMount;

use crate::ship_proc::{TESTKIT, spawn_ship, verify};
use crate::support::{Producer, count_files, wait_for, writer_config};

/// Waits until faultfs injected a failure and the shipper reported an I/O error on stderr.
fn wait_reported(fm: &FaultMount, log: &Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(log).unwrap();
        if fm.injected() > 0
            && text.contains("shipping failed")
            && text.contains("Input/output error")
        {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no fault reported; shipper:\n{text}\nfaultfs:\n{}",
            fm.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the source and the staging area are empty (the shipper's log on a timeout).
fn wait_drained(src: &Path, state: &Path, log: &Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while count_files(src) + count_files(&state.join("staging")) > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "not drained: {} files in src, {} staged; shipper:\n{}",
            count_files(src),
            count_files(&state.join("staging")),
            std::fs::read_to_string(log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sequence-numbered lines in sealed segments on the mount, a shipper started under `rules`;
/// once faultfs injected a failure and the shipper reported it, the rules are cleared and the
/// same shipper must drain everything exactly once.
fn shipper_under(rules: &str) {
    let Some(fm) = FaultMount::mount() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (src, state) = (fm.path().join("src"), fm.path().join("state"));
    let to = url::Url::from_directory_path(fm.path().join("archive"))
        .unwrap()
        .to_string();
    let producer = Producer::start(writer_config(&src, 2048), "eio", Duration::ZERO);
    wait_for("20 segments", Duration::from_secs(30), || {
        count_files(&src) >= 20
    });
    let written = producer.stop_lossless();
    fm.fail(rules);
    let log = tmp.path().join("ship.log");
    let mut ship = spawn_ship(&src, &state, &to, &log);
    wait_reported(&fm, &log);
    assert!(
        ship.0.try_wait().unwrap().is_none(),
        "the shipper keeps running"
    );
    let left = count_files(&src);
    assert!(left > 0, "files wait on disk");
    fm.heal();
    wait_drained(&src, &state, &log);
    let _ = Command::new("kill")
        .args(["-TERM", &ship.0.id().to_string()])
        .status();
    assert!(ship.0.wait().unwrap().success());
    let report = verify(&to);
    let expected = format!(
        "producer eio: lines={written} max_seq={} missing=0 duplicates=0",
        written - 1
    );
    assert!(
        report.contains(&expected),
        "{expected:?} in:\n{report}\nfaultfs:\n{}",
        fm.log_text()
    );
}

#[test]
fn eio_on_journal_append() {
    shipper_under("write state/journal.jsonl EIO always\n");
}

#[test]
fn eio_on_journal_fsync() {
    shipper_under("fsync state/journal.jsonl EIO always\n");
}

#[test]
fn eio_on_staging_write() {
    shipper_under("write state/staging EIO always\n");
}

#[test]
fn eio_on_staging_fsync() {
    shipper_under("fsync state/staging EIO always\n");
}

#[test]
fn eio_on_staging_directory_fsync() {
    shipper_under("fsyncdir state/staging EIO always\n");
}

#[test]
fn eio_on_upload_to_the_archive() {
    shipper_under("write archive EIO always\n");
}

#[test]
fn eio_on_local_delete() {
    shipper_under("unlink src/ EIO always\n");
}

#[test]
fn eio_on_source_directory_fsync_after_delete() {
    shipper_under("fsyncdir src EIO always\n");
}

/// `logship-testkit write` of 150 lines (one flush each, segments of ~10 lines) into the
/// mount, with `rules` active from about line 25 to about line 75; returns its JSON report.
fn writer_under(fm: &FaultMount, src: &Path, rules: &str) -> Value {
    let writer = Command::new(TESTKIT)
        .args(["write", "--max-bytes", "1000", "--producer", "eio"])
        .arg(src)
        .arg("150")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    fm.fail(rules);
    std::thread::sleep(Duration::from_secs(1));
    fm.heal();
    let out = writer.wait_with_output().unwrap();
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The writer under `rules`: the failure comes back from its calls; afterwards every line is
/// shipped exactly once or counted as dropped, and writing went on to the last line.
fn writer_fault(rules: &str) {
    let Some(fm) = FaultMount::mount() else {
        return;
    };
    let src = fm.path().join("src");
    let report = writer_under(&fm, &src, rules);
    assert!(fm.injected() > 0, "{}", fm.log_text());
    let errors = report["write_errors"].as_array().unwrap();
    assert!(
        !errors.is_empty() || !report["seal_error"].is_null(),
        "the fault came back from a call: {report}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let to = url::Url::from_directory_path(tmp.path().join("archive"))
        .unwrap()
        .to_string();
    let mut ship = spawn_ship(
        &src,
        &tmp.path().join("state"),
        &to,
        &tmp.path().join("log"),
    );
    wait_for("the shipper to drain", Duration::from_secs(60), || {
        count_files(&src) == 0
    });
    let _ = Command::new("kill")
        .args(["-TERM", &ship.0.id().to_string()])
        .status();
    assert!(ship.0.wait().unwrap().success());
    let archive = verify(&to);
    let line = archive
        .lines()
        .find(|l| l.starts_with("producer eio:"))
        .unwrap_or_else(|| panic!("{archive}"));
    let shipped: u64 = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("lines="))
        .unwrap()
        .parse()
        .unwrap();
    let dropped = report["dropped_lines_total"].as_u64().unwrap();
    assert_eq!(
        shipped + dropped,
        150,
        "shipped or counted: {line} {report}"
    );
    assert!(
        line.contains("duplicates=0") && line.contains("max_seq=149"),
        "{line}"
    );
    assert!(archive.contains("invalid_json_lines=0"), "{archive}");
}

#[test]
fn eio_on_segment_write() {
    writer_fault("write src/ EIO always\n");
}

#[test]
fn eio_on_segment_fsync() {
    writer_fault("fsync src/ EIO always\n");
}

#[test]
fn eio_on_segment_rename() {
    writer_fault("rename src/ EIO always\n");
}

#[test]
fn eio_on_segment_directory_fsync() {
    writer_fault("fsyncdir src EIO always\n");
}
