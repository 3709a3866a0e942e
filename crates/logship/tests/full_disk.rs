//! A real full disk (`make test-logship-faults`, root): the writer's directory or the
//! shipper's state dir is a tiny ext4 filesystem on a loop device that the test fills, so
//! write(2), fsync and mkdir get ENOSPC from the kernel itself. The failure must be surfaced
//! (the writer's returned errors and counters; the shipper's stderr), nothing unshipped
//! deleted, and once space is freed both go on by themselves, no restart: the archive then holds
//! every line exactly once (the writer's refused lines counted as dropped, never half-written).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use test_support::loopfs::LoopFs;

use crate::ship_proc::{TESTKIT, spawn_ship, terminate, verify};
use crate::support::{Producer, count_files, wait_for, writer_config};

#[test]
fn a_full_state_disk_stops_shipping_loudly_and_it_resumes_by_itself_once_space_is_freed() {
    let Some(disk) = LoopFs::mount(16) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (src, state) = (tmp.path().join("src"), disk.path().join("state"));
    let to = url::Url::from_directory_path(tmp.path().join("archive"))
        .unwrap()
        .to_string();
    let log = tmp.path().join("ship.log");
    let ship = spawn_ship(&src, &state, &to, &log);
    wait_for("the shipper's journal", Duration::from_secs(30), || {
        state.join("journal.jsonl").exists()
    });
    disk.fill();
    let producer = Producer::start(writer_config(&src, 2048), "enospc", Duration::ZERO);
    wait_for("20 segments", Duration::from_secs(30), || {
        count_files(&src) >= 20
    });
    let written = producer.stop_lossless();
    let files = count_files(&src);
    wait_for("ENOSPC reported", Duration::from_secs(30), || {
        let text = std::fs::read_to_string(&log).unwrap();
        text.contains("shipping failed") && text.contains("No space left on device")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(count_files(&src), files, "nothing unshipped was deleted");

    disk.heal();
    wait_for("the shipper to drain", Duration::from_secs(60), || {
        count_files(&src) == 0 && count_files(&state.join("staging")) == 0
    });
    terminate(ship);
    let report = verify(&to);
    let expected = format!(
        "producer enospc: lines={written} max_seq={} missing=0 duplicates=0",
        written - 1
    );
    assert!(report.contains(&expected), "{expected:?} in:\n{report}");
}

/// Ships `src` to a fresh `file://` archive until it is empty; returns `verify`'s report.
fn ship_all(src: &Path) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let to = url::Url::from_directory_path(tmp.path().join("archive"))
        .unwrap()
        .to_string();
    let ship = spawn_ship(src, &tmp.path().join("state"), &to, &tmp.path().join("log"));
    wait_for("the shipper to drain", Duration::from_secs(60), || {
        count_files(src) == 0
    });
    terminate(ship);
    verify(&to)
}

#[test]
fn a_full_log_disk_refuses_lines_truthfully_and_the_writer_resumes_by_itself() {
    let Some(disk) = LoopFs::mount(16) else {
        return;
    };
    let src = disk.path().join("src");
    let lines = 150u64;
    let mut writer = Command::new(TESTKIT)
        .args(["write", "--max-bytes", "1000", "--producer", "full"])
        .arg(&src)
        .arg(lines.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // 20 ms a line: full from about line 25 to about line 75.
    std::thread::sleep(Duration::from_millis(500));
    disk.fill();
    std::thread::sleep(Duration::from_secs(1));
    disk.heal();
    let stdout = writer.stdout.take().unwrap();
    let report: Value = serde_json::from_reader(stdout).unwrap();
    assert!(writer.wait().unwrap().success());
    let errors = report["write_errors"].as_array().unwrap();
    assert!(!errors.is_empty(), "the full disk was reported: {report}");
    let first = errors[0]["error"].as_str().unwrap();
    assert!(first.contains("No space left on device"), "{first}");
    let archive = ship_all(&src);
    let line = archive
        .lines()
        .find(|l| l.starts_with("producer full:"))
        .unwrap_or_else(|| panic!("{archive}"));
    let dropped = report["dropped_lines_total"].as_u64().unwrap();
    let shipped: u64 = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("lines="))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        shipped + dropped,
        lines,
        "each line shipped or counted: {line}"
    );
    assert!(line.contains("duplicates=0"), "{line}");
    assert!(
        line.contains(&format!("max_seq={}", lines - 1)),
        "writing went on after the disk was healed: {line}"
    );
    assert!(
        archive.contains("invalid_json_lines=0"),
        "whole lines: {archive}"
    );
}
