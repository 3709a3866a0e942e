//! kill -9 at every durability boundary (built with `--features failpoints`; `make
//! test-logship-faults`): a real writer or shipper process is SIGKILLed by a named failpoint
//! (tikv/fail-rs, `LOGSHIP_KILL_AT=NAME@N` in `logship-testkit`) at the Nth pass through segment
//! write, segment fsync, rename, directory fsync, journal append, journal fsync, staging, upload,
//! after the upload, local delete and after the deletes. The process must really die there (a
//! failpoint that is never reached fails the test); restarted, it must finish by itself, and
//! `verify` must then find every line exactly once, none lost, none duplicated.
//!
//! The fsck hook: [`killed_shipper`] leaves a state dir exactly as a kill left it, for `logship
//! fsck` to be run on before the restart.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Producer, count_files, wait_for, writer_config};

const TESTKIT: &str = env!("CARGO_BIN_EXE_logship-testkit");

/// A state left by a kill: the source, state dir and archive of one scenario, kept for fsck.
pub(crate) struct Killed {
    /// Owns every directory below; deleted on drop.
    #[allow(dead_code, reason = "owns the directories; an fsck test reads it")]
    pub(crate) root: tempfile::TempDir,
    /// The source directory (sealed segments of producer `faults`).
    pub(crate) src: PathBuf,
    /// The shipper's `--state-dir`, as the kill left it.
    pub(crate) state: PathBuf,
    /// The archive URL (`file://`).
    pub(crate) to: String,
    /// Lines the producer wrote (seq 0..written).
    pub(crate) written: u64,
    /// The shipper's stderr so far.
    pub(crate) log: PathBuf,
}

/// Writes sequence-numbered lines (producer `faults`) into many small sealed segments, then
/// runs the shipper until the failpoint `failpoint` SIGKILLs it at its `nth` pass; asserts it
/// died there. The state dir is left as the kill left it (the fsck hook).
pub(crate) fn killed_shipper(failpoint: &str, nth: u32) -> Killed {
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("src");
    let state = root.path().join("state");
    let to = url::Url::from_directory_path(root.path().join("archive"))
        .unwrap()
        .to_string();
    let producer = Producer::start(writer_config(&src, 2048), "faults", Duration::ZERO);
    wait_for("20 segments", Duration::from_secs(30), || {
        count_files(&src) >= 20
    });
    let written = producer.stop_lossless();
    let killed = Killed {
        src,
        state,
        to,
        written,
        log: root.path().join("ship.log"),
        root,
    };
    let status = run_ship(&killed, Some(&format!("{failpoint}@{nth}")));
    assert_eq!(
        status.signal(),
        Some(9),
        "the shipper was SIGKILLed at {failpoint}@{nth} ({status}); log:\n{}",
        std::fs::read_to_string(&killed.log).unwrap_or_default()
    );
    killed
}

/// Runs `logship-testkit ship` on a scenario (batches of 3 files), killed at `kill_at` or else
/// stopped with SIGTERM once the source and staging are empty.
pub(crate) fn run_ship(k: &Killed, kill_at: Option<&str>) -> ExitStatus {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&k.log)
        .unwrap();
    let mut cmd = Command::new(TESTKIT);
    cmd.arg("ship")
        .arg("--source")
        .arg(&k.src)
        .args(["--to", &k.to, "--state-dir"])
        .arg(&k.state)
        .args(["--batch-max-files", "3"])
        .stdout(Stdio::null())
        .stderr(log);
    if let Some(at) = kill_at {
        cmd.env("LOGSHIP_KILL_AT", at);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        let drained = count_files(&k.src) == 0 && count_files(&k.state.join("staging")) == 0;
        if kill_at.is_none() && drained {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            return child.wait().unwrap();
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("the shipper neither died at {kill_at:?} nor drained within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `logship-testkit verify`: its report, asserting exit 0 (no problem in the archive).
pub(crate) fn verify(to: &str) -> String {
    let out = Command::new(TESTKIT)
        .args(["verify", "--to", to])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "verify found problems:\n{report}");
    report
}

/// Kill at `failpoint` on its 1st and again (restarted) on its 4th pass, then a clean run:
/// every line is in the archive exactly once and nothing is left behind.
fn kill_restart_and_verify(failpoint: &str) {
    let k = killed_shipper(failpoint, 1);
    let again = run_ship(&k, Some(&format!("{failpoint}@4")));
    assert_eq!(
        again.signal(),
        Some(9),
        "second kill at {failpoint}: {again}"
    );
    let clean = run_ship(&k, None);
    assert!(
        clean.success(),
        "the restarted shipper finished cleanly: {clean}"
    );
    let report = verify(&k.to);
    let expected = format!(
        "producer faults: lines={} max_seq={} missing=0 duplicates=0",
        k.written,
        k.written - 1
    );
    assert!(report.contains(&expected), "{expected:?} in:\n{report}");
    assert_eq!(count_files(&k.src), 0, "every shipped file deleted");
    let log = std::fs::read_to_string(&k.log).unwrap();
    assert_eq!(log.matches("SIGKILL at failpoint").count(), 2, "{log}");
}

#[test]
fn kill_9_at_journal_append() {
    kill_restart_and_verify("logship::journal_append");
}

#[test]
fn kill_9_at_journal_fsync() {
    kill_restart_and_verify("logship::journal_fsync");
}

#[test]
fn kill_9_at_staging() {
    kill_restart_and_verify("logship::staging");
}

#[test]
fn kill_9_before_upload() {
    kill_restart_and_verify("logship::upload");
}

#[test]
fn kill_9_after_upload_before_its_journal_entry() {
    kill_restart_and_verify("logship::uploaded");
}

#[test]
fn kill_9_at_local_delete() {
    kill_restart_and_verify("logship::delete");
}

#[test]
fn kill_9_after_the_deletes_before_done() {
    kill_restart_and_verify("logship::deleted");
}

/// Runs `logship-testkit write` (one flush per line, segments sealed every ~10 lines) killed
/// at `failpoint`'s `nth` pass; asserts it died there.
fn killed_writer(dir: &Path, failpoint: &str, nth: u32) {
    let out = Command::new(TESTKIT)
        .args(["write", "--max-bytes", "1000", "--producer", "writer"])
        .arg(dir)
        .arg("60")
        .env("LOGSHIP_KILL_AT", format!("{failpoint}@{nth}"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.signal(),
        Some(9),
        "the writer was SIGKILLed at {failpoint}@{nth}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The writer killed at `failpoint`; a new writer on the directory (the restarted process)
/// recovers its open segment; the shipper ships all; the archive holds seq 0..n exactly once
/// with n ≥ `at_least`, in whole lines.
fn writer_kill_and_verify(failpoint: &str, nth: u32, at_least: u64) {
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("src");
    killed_writer(&src, failpoint, nth);
    let restart = Command::new(TESTKIT)
        .arg("write")
        .arg(&src)
        .arg("0")
        .output()
        .unwrap();
    assert!(restart.status.success(), "the restarted writer recovers");
    let k = Killed {
        state: root.path().join("state"),
        to: url::Url::from_directory_path(root.path().join("archive"))
            .unwrap()
            .to_string(),
        written: 0,
        log: root.path().join("ship.log"),
        src,
        root,
    };
    assert!(run_ship(&k, None).success());
    let report = verify(&k.to);
    let line = report
        .lines()
        .find(|l| l.starts_with("producer writer:"))
        .unwrap_or_else(|| panic!("no writer lines in:\n{report}"));
    let field = |name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .unwrap()
            .parse()
            .unwrap()
    };
    let (lines, max_seq) = (field("lines="), field("max_seq="));
    assert_eq!(lines, max_seq + 1, "a gap-free prefix: {line}");
    assert!(line.contains("missing=0 duplicates=0"), "{line}");
    assert!(
        lines >= at_least,
        "the lines written before the kill survive: {line}"
    );
    assert!(
        report.contains("invalid_json_lines=0"),
        "whole lines: {report}"
    );
}

#[test]
fn kill_9_at_segment_write() {
    // Every earlier flush (one line each or more) reached the open segment's file.
    writer_kill_and_verify("logfile::segment_write", 25, 24);
}

#[test]
fn kill_9_at_segment_fsync() {
    writer_kill_and_verify("logfile::segment_fsync", 2, 10);
}

#[test]
fn kill_9_at_segment_rename() {
    writer_kill_and_verify("logfile::segment_rename", 2, 10);
}

#[test]
fn kill_9_at_directory_fsync() {
    writer_kill_and_verify("logfile::dir_fsync", 2, 10);
}
