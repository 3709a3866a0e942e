//! Crash test: a producer writes sequence-numbered lines through the rotating writer while a
//! real shipper process is SIGKILLed at random moments 30 times; a last run drains the rest.
//! Every line must then be in the archive exactly once (checked by `verify`).

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rand::Rng;

use crate::support::{Moto, Producer, count_files, wait_for, writer_config};

const KILLS: usize = 30;

fn testkit<S: AsRef<OsStr>>(args: &[S], env: &[(&str, &str)], log: &Path) -> Command {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_logship-testkit"));
    cmd.args(args).stdout(Stdio::null()).stderr(log);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// The `ship` command line: `src` to `to`, state in `state`, then `extra`.
fn ship_args(src: &Path, state: &Path, to: &str, extra: &[&str]) -> Vec<String> {
    let (src_s, state_s) = (src.display().to_string(), state.display().to_string());
    let mut ship: Vec<String> = [
        "ship",
        "--source",
        &src_s,
        "--to",
        to,
        "--state-dir",
        &state_s,
    ]
    .map(String::from)
    .to_vec();
    ship.extend(extra.iter().map(|a| (*a).to_string()));
    ship
}

/// Starts the shipper `KILLS` times, each SIGKILLed after a random 30–500 ms.
fn kill_repeatedly(ship: &[String], env: &[(&str, &str)], log: &Path) {
    let mut rng = rand::rng();
    for _ in 0..KILLS {
        let mut child = testkit(ship, env, log).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(30..500)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
}

/// A clean run drains what is left of `src` and `staging`, then stops on SIGTERM.
fn drain_and_terminate(
    ship: &[String],
    env: &[(&str, &str)],
    log: &Path,
    src: &Path,
    staging: &Path,
) {
    let mut child = testkit(ship, env, log).spawn().unwrap();
    wait_for("the shipper to drain", Duration::from_secs(60), || {
        count_files(src) == 0 && count_files(staging) == 0
    });
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success(), "clean exit on SIGTERM");
}

/// `verify` finds each of the `written` lines in the archive exactly once (an endpoint among
/// `extra` is passed on to it).
fn verify_exactly_once(to: &str, extra: &[&str], env: &[(&str, &str)], log: &Path, written: u64) {
    let mut verify: Vec<&str> = vec!["verify", "--to", to];
    verify.extend(
        extra
            .iter()
            .filter(|a| a.starts_with("http"))
            .flat_map(|e| ["--s3-endpoint", e]),
    );
    let out = testkit(&verify, env, log)
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    let expected = format!(
        "producer crash: lines={written} max_seq={} missing=0 duplicates=0",
        written - 1
    );
    assert!(
        report.contains(&expected),
        "expected {expected:?} in:\n{report}"
    );
    assert!(out.status.success(), "verify failed:\n{report}");
}

/// Tells from the shipper's log how many runs there were and how often a kill struck between
/// upload and journal (the object was found already stored).
fn summarize_runs(to: &str, log: &Path) {
    let log = std::fs::read_to_string(log).unwrap();
    eprintln!(
        "{to}: {} runs, {} objects delivered, {} found already stored after a kill",
        log.matches("logship started").count(),
        log.matches("object delivered").count(),
        log.matches("existing=true").count()
    );
}

fn crash_and_verify(root: &Path, to: &str, extra: &[&str], env: &[(&str, &str)]) {
    let src = root.join("own");
    let state = root.join("state");
    let ship = ship_args(&src, &state, to, extra);
    let producer = Producer::start(
        writer_config(&src, 4096),
        "crash",
        Duration::from_micros(300),
    );
    let log = root.join("ship.log");
    kill_repeatedly(&ship, env, &log);
    let writer = producer.writer.clone();
    let written = producer.stop_lossless();
    assert_eq!(writer.stats().write_errors.get(), 0);
    assert!(written > 1000, "producer wrote {written} lines");

    drain_and_terminate(&ship, env, &log, &src, &state.join("staging"));
    verify_exactly_once(to, extra, env, &log, written);
    summarize_runs(to, &log);
}

#[test]
fn shipper_sigkilled_30_times_to_local_archive_loses_and_duplicates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let to = url::Url::from_directory_path(tmp.path().join("archive"))
        .unwrap()
        .to_string();
    crash_and_verify(tmp.path(), &to, &[], &[]);
}

#[test]
fn shipper_sigkilled_30_times_to_s3_loses_and_duplicates_nothing() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("crash");
    let tmp = tempfile::tempdir().unwrap();
    let env = [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ];
    crash_and_verify(
        tmp.path(),
        "s3://crash/archive",
        &["--s3-endpoint", &moto.endpoint],
        &env,
    );
}
