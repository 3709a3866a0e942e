//! The log-file writer (`--log-file-dir`) and the shipper share one pending bound,
//! `--max-pending-bytes` (env FERROSTACK_MAX_PENDING_BYTES), tested through the real binary:
//! at the bound a role keeps logging to stdout, seals and stops writing files, raises
//! `ferrostack_logfile_pending_full` and logs a warning, and deletes nothing; `logship` raises
//! `ferrostack_logship_pending_full` at the same setting.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use support::{Proc, get_text, json_lines};

const BOUND: u64 = 6000;

/// Name → contents of every file in `dir`.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The status of `GET path` on `proc`.
async fn status_of(proc: &Proc, path: &str) -> u16 {
    reqwest::get(proc.url(path))
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Calls data-api's /api until it warns that the bound is reached, then waits for the open
/// segment, handed to the sealer thread at the bound, to be renamed; returns the files.
async fn fill_to_the_bound(data: &Proc, segments: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut calls = 0;
    while !data.stderr().contains("pending bound reached") {
        assert!(
            calls < 400,
            "the bound was never reached:\n{}",
            data.stderr()
        );
        assert_eq!(status_of(data, &format!("/api?before={calls}")).await, 200);
        calls += 1;
    }
    test_support::poll_async(
        "the open segment to be sealed at the bound, for the shipper",
        Duration::from_secs(10),
        Duration::from_millis(25),
        || async move {
            let files = snapshot(segments);
            files.keys().all(|n| !n.starts_with('.')).then_some(files)
        },
    )
    .await
}

/// `ferrostack_logfile_pending_full` is 1 and at least `lines` lines were counted dropped.
async fn assert_pending_full(data: &Proc, lines: f64) {
    let metrics = get_text(&data.url("/metrics")).await;
    assert_eq!(
        metric(&metrics, "ferrostack_logfile_pending_full"),
        Some(1.0),
        "{metrics}"
    );
    let dropped = metric(&metrics, "ferrostack_logfile_dropped_lines_total").unwrap();
    assert!(
        dropped >= lines,
        "lines not written to files are counted: {dropped}"
    );
}

/// stdout has the line of each of the 20 calls made past the bound.
fn assert_stdout_has_the_calls_past_the_bound(stdout: &str) {
    let lines = json_lines(stdout);
    for i in 0..20 {
        let needle = format!("\"after\":\"{i}\"");
        assert!(
            lines
                .iter()
                .any(|l| l["params"].as_str().is_some_and(|p| p.contains(&needle))),
            "stdout still has the line of call {i}"
        );
    }
}

/// One warning names the bound.
fn assert_bound_warning(stderr: &str) {
    let warning = json_lines(stderr)
        .into_iter()
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("pending bound reached"))
        })
        .unwrap();
    assert_eq!(warning["level"], "WARN");
    assert_eq!(warning["max_pending_bytes"], BOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn at_the_pending_bound_a_role_logs_to_stdout_only_and_deletes_no_log_file() {
    let mut data = support::start(
        &["data-api", "--log-file-dir", "segments"],
        &[("FERROSTACK_MAX_PENDING_BYTES", &BOUND.to_string())],
    );
    let segments = data.path().join("segments");
    let files = fill_to_the_bound(&data, &segments).await;
    let kept: usize = files.values().map(Vec::len).sum();
    assert!(
        (BOUND..BOUND + 4096).contains(&(kept as u64)),
        "the files stop at the bound: {kept} bytes"
    );

    for i in 0..20 {
        assert_eq!(status_of(&data, &format!("/api?after={i}")).await, 200);
    }
    assert_pending_full(&data, 20.0).await;
    assert_eq!(
        snapshot(&segments),
        files,
        "no file written to or deleted past the bound"
    );

    assert!(data.stop().success());
    assert_eq!(snapshot(&segments), files, "nor at shutdown");
    assert_stdout_has_the_calls_past_the_bound(&data.stdout());
    assert_bound_warning(&data.stderr());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_flag_bounds_the_shipper() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("api");
    std::fs::create_dir(&src).unwrap();
    for i in 0..10 {
        std::fs::write(
            src.join(format!("{i}.json")),
            format!("{{\"pad\":\"{}\"}}\n", "x".repeat(990)),
        )
        .unwrap();
    }
    let archive = dir.path().join("archive");
    let state = dir.path().join("state");
    let to = format!("file://{}", archive.display());
    let args = [
        "--max-pending-bytes",
        "5000",
        "logship",
        "--source",
        src.to_str().unwrap(),
        "--to",
        &to,
        "--state-dir",
        state.to_str().unwrap(),
        // A batch closes after an hour: the files stay pending.
        "--batch-max-age",
        "1h",
        "--drain-delay",
        "0s",
    ];
    let mut ship = support::start(&args, &[]);
    let mut full = None;
    for _ in 0..400 {
        full = metric(
            &get_text(&ship.url("/metrics")).await,
            "ferrostack_logship_pending_full",
        );
        if full == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(full, Some(1.0));
    assert!(ship.stop().success());
    assert!(
        ship.stdout().contains("pending bound reached"),
        "{}",
        ship.stdout()
    );
}

#[test]
fn a_bad_s3_credentials_file_is_exit_2_naming_the_flag_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials");
    std::fs::write(&file, "[default]\naws_access_key_id = AKIANOSECRETHERE\n").unwrap();
    let run = |to: &str| {
        std::process::Command::new(support::BIN)
            .args(["logship", "--source", "logs", "--to", to])
            .arg("--s3-credentials-file")
            .arg(&file)
            .current_dir(dir.path())
            .env_clear()
            .output()
            .unwrap()
    };
    let out = run("s3://bucket/prefix");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    for needle in [
        "--s3-credentials-file",
        file.to_str().unwrap(),
        "[default]",
        "missing aws_secret_access_key",
    ] {
        assert!(stderr.contains(needle), "{needle} in {stderr}");
    }
    assert!(!stderr.contains("AKIANOSECRETHERE"), "{stderr}");

    let out = run("file:///tmp/archive");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--s3-credentials-file: only for s3://"),
        "{stderr}"
    );
}

/// `logship` shipping `src` to a file:// archive at `archive`, its state in `state`.
fn ship(src: &Path, archive: &Path, state: &Path) -> Proc {
    let to = format!("file://{}", archive.display());
    let args = [
        "logship",
        "--source",
        src.to_str().unwrap(),
        "--to",
        &to,
        "--state-dir",
        state.to_str().unwrap(),
        "--batch-max-age",
        "100ms",
        "--drain-delay",
        "0s",
    ];
    support::start(&args, &[])
}

/// The error line naming the symlinked source, at level ERROR.
fn assert_symlink_error_logged(stdout: &str) {
    let error = json_lines(stdout)
        .into_iter()
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("logship: cannot list source"))
        })
        .unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(error["level"], "ERROR");
    assert!(
        error["error"]
            .as_str()
            .is_some_and(|e| e.contains("source api") && e.contains("symbolic link")),
        "{error}"
    );
}

/// Nothing from outside the source is in the archive (zstd of a tiny line keeps it literal).
fn assert_nothing_from_outside_in(archive: &Path) {
    let from_outside = |p: &std::path::PathBuf| {
        std::fs::read(p)
            .unwrap()
            .windows(7)
            .any(|w| w == b"outside")
    };
    assert!(
        !walk(archive).iter().any(from_outside),
        "nothing from outside in the archive"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_swapped_for_a_symlink_is_not_followed_and_the_admin_port_counts_it() {
    let dir = tempfile::tempdir().unwrap();
    let (src, elsewhere) = (dir.path().join("api"), dir.path().join("elsewhere"));
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("a.json"), "{\"a\":1}\n").unwrap();
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("outside.json"), "{\"outside\":1}\n").unwrap();
    let archive = dir.path().join("archive");
    let mut shipper = ship(&src, &archive, &dir.path().join("state"));
    test_support::wait_until_async("a.json shipped", Duration::from_secs(10), || {
        !src.join("a.json").exists()
    })
    .await;
    std::fs::remove_dir_all(&src).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &src).unwrap();
    let name = "ferrostack_logship_source_errors_total{source=\"api\",kind=\"symlink\"}";
    let url = &shipper.url("/metrics");
    let pause = Duration::from_millis(50);
    test_support::poll_async(
        "the symlink counted",
        Duration::from_secs(10),
        pause,
        || async move { metric(&get_text(url).await, name).filter(|n| *n > 0.0) },
    )
    .await;
    // The batch age has long passed: a followed symlink would have shipped it by now.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        elsewhere.join("outside.json").exists(),
        "deleted outside the source"
    );
    assert!(shipper.stop().success());
    assert_symlink_error_logged(&shipper.stdout());
    assert_nothing_from_outside_in(&archive);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// `ferrostack logship fsck ARGS` in `dir`: (exit code, stdout, stderr).
fn fsck_in(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(support::BIN)
        .args(["logship", "fsck"])
        .args(args)
        .current_dir(dir)
        .env_clear()
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `logship fsck` through the binary: exit 2 with one line for a state directory it cannot
/// read, 1 with one line per finding (and after `--repair` fixed them), 0 once clean; `--json`
/// gives one object per finding and a summary.
#[test]
fn fsck_exit_codes_and_output() {
    let dir = tempfile::tempdir().unwrap();
    let fsck = |args: &[&str]| fsck_in(dir.path(), args);
    let (code, _, stderr) = fsck(&["--state-dir", "missing"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("missing"), "{stderr}");

    let state = dir.path().join("state");
    std::fs::create_dir_all(state.join("staging")).unwrap();
    std::fs::write(
        state.join("journal.jsonl"),
        "{\"op\":\"next\",\"seq\":4}\n{\"op\":\"bat",
    )
    .unwrap();
    std::fs::write(state.join("staging/00000000000000000002.jsonl.zst"), "old").unwrap();
    let (code, stdout, _) = fsck(&["--state-dir", "state"]);
    assert_eq!(code, Some(1), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].starts_with("REPAIRABLE journal_torn_tail state/journal.jsonl:2: "),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("REPAIRABLE staging_orphan "),
        "{stdout}"
    );
    assert!(
        lines[2].starts_with("2 problems (0 repaired, 2 repairable"),
        "{stdout}"
    );

    let (code, stdout, _) = fsck(&["--state-dir", "state", "--json"]);
    assert_eq!(code, Some(1), "{stdout}");
    let objects: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects[0]["code"], "journal_torn_tail", "{stdout}");
    assert_eq!(objects[0]["state"], "repairable", "{stdout}");
    assert_eq!(objects[2]["summary"]["problems"], 2, "{stdout}");

    let (code, stdout, _) = fsck(&["--state-dir", "state", "--repair"]);
    assert_eq!(code, Some(1), "problems were found and repaired: {stdout}");
    assert!(
        stdout.contains("2 problems (2 repaired, 0 repairable with --repair, 0 left"),
        "{stdout}"
    );
    let (code, stdout, _) = fsck(&["--state-dir", "state"]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.starts_with(
            "clean (journal, staging, files checked; 0 unfinished batches, next seq 4)"
        ),
        "{stdout}"
    );
}

/// A bad S3 upload option is exit 2 with one line naming the flag, from the flag or its
/// FERROSTACK_* variable.
#[test]
fn bad_s3_upload_options_are_exit_2_naming_the_flag() {
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let out = std::process::Command::new(support::BIN)
            .args(["logship", "--source", "logs", "--to", "s3://bucket/p"])
            .args(args)
            .env_clear()
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    for (args, env, needle) in [
        (
            &["--s3-sse", "aes"][..],
            &[][..],
            "--s3-sse: \"aes\": use AES256 or aws:kms",
        ),
        (
            &[],
            &[("FERROSTACK_S3_STORAGE_CLASS", "COLD")][..],
            "--s3-storage-class: \"COLD\"",
        ),
        (
            &["--s3-tags", "team"],
            &[],
            "--s3-tags: \"team\": expected KEY=VALUE",
        ),
        (
            &["--s3-sse-kms-key-id", "k"],
            &[],
            "--s3-sse-kms-key-id: needs --s3-sse aws:kms",
        ),
    ] {
        let (code, stderr) = run(args, env);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(needle), "{needle} in {stderr}");
    }
}
