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

use support::{get_text, json_lines};

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

#[tokio::test(flavor = "multi_thread")]
async fn at_the_pending_bound_a_role_logs_to_stdout_only_and_deletes_no_log_file() {
    let mut data = support::start(
        &["data-api", "--log-file-dir", "segments"],
        &[("FERROSTACK_MAX_PENDING_BYTES", &BOUND.to_string())],
    );
    let segments = data.path().join("segments");
    let client = reqwest::Client::new();
    let mut calls = 0;
    while !data.stderr().contains("pending bound reached") {
        assert!(
            calls < 400,
            "the bound was never reached:\n{}",
            data.stderr()
        );
        let r = client
            .get(data.url(&format!("/api?before={calls}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        calls += 1;
    }
    // The open segment is handed to the sealer thread at the bound: wait for its rename.
    let mut files = snapshot(&segments);
    for _ in 0..400 {
        if files.keys().all(|n| !n.starts_with('.')) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        files = snapshot(&segments);
    }
    let kept: usize = files.values().map(Vec::len).sum();
    assert!(
        (BOUND..BOUND + 4096).contains(&(kept as u64)),
        "the files stop at the bound: {kept} bytes"
    );
    assert!(
        files.keys().all(|n| !n.starts_with('.')),
        "the open segment is sealed at the bound, for the shipper: {:?}",
        files.keys()
    );

    for i in 0..20 {
        let r = client
            .get(data.url(&format!("/api?after={i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let metrics = get_text(&data.url("/metrics")).await;
    assert_eq!(
        metric(&metrics, "ferrostack_logfile_pending_full"),
        Some(1.0),
        "{metrics}"
    );
    let dropped = metric(&metrics, "ferrostack_logfile_dropped_lines_total").unwrap();
    assert!(
        dropped >= 20.0,
        "lines not written to files are counted: {dropped}"
    );
    assert_eq!(
        snapshot(&segments),
        files,
        "no file written to or deleted past the bound"
    );

    assert!(data.stop().success());
    assert_eq!(snapshot(&segments), files, "nor at shutdown");
    let lines = json_lines(&data.stdout());
    for i in 0..20 {
        let needle = format!("\"after\":\"{i}\"");
        assert!(
            lines
                .iter()
                .any(|l| l["params"].as_str().is_some_and(|p| p.contains(&needle))),
            "stdout still has the line of call {i}"
        );
    }
    let warning = json_lines(&data.stderr())
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

#[tokio::test(flavor = "multi_thread")]
async fn a_source_swapped_for_a_symlink_is_not_followed_and_the_admin_port_counts_it() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("api");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("a.json"), "{\"a\":1}\n").unwrap();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("outside.json"), "{\"outside\":1}\n").unwrap();
    let archive = dir.path().join("archive");
    let state = dir.path().join("state");
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
    let mut ship = support::start(&args, &[]);
    for _ in 0..400 {
        if !src.join("a.json").exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(!src.join("a.json").exists(), "{}", ship.stdout());
    std::fs::remove_dir_all(&src).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &src).unwrap();
    let name = "ferrostack_logship_source_errors_total{source=\"api\",kind=\"symlink\"}";
    let mut counted = None;
    for _ in 0..200 {
        counted = metric(&get_text(&ship.url("/metrics")).await, name);
        if counted.is_some_and(|n| n > 0.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The batch age has long passed: a followed symlink would have shipped it by now.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        elsewhere.join("outside.json").exists(),
        "deleted outside the source"
    );
    let metrics = get_text(&ship.url("/metrics")).await;
    assert!(counted.is_some_and(|n| n > 0.0), "{metrics}");
    assert!(ship.stop().success());
    let error = json_lines(&ship.stdout())
        .into_iter()
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("logship: cannot list source"))
        })
        .unwrap_or_else(|| panic!("{}", ship.stdout()));
    assert_eq!(error["level"], "ERROR");
    assert!(
        error["error"]
            .as_str()
            .is_some_and(|e| e.contains("source api") && e.contains("symbolic link")),
        "{error}"
    );
    let shipped: Vec<_> = walk(&archive);
    assert!(
        shipped.iter().all(|p| !std::fs::read(p)
            .unwrap()
            .windows(7)
            .any(|w| w == b"outside")),
        "nothing from outside in the archive (zstd of a tiny line keeps it literal)"
    );
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
