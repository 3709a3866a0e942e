//! A backlog restarts in bounded memory: 10,000 files wait when the shipper starts; its
//! listing keeps at most one batch of them (`ferrostack_logship_listed_files` ≤
//! `--batch-max-files`) while all of them are counted as pending, the first object is stored
//! while almost all of the backlog still waits, and the backlog drains exactly once. The first
//! batch is packed from the names alone; the backlog's bytes are counted beside the shipping
//! (never waited for the first time: `census`' unit test) and logged once, with the batches
//! packed before the count was known.

use std::time::Duration;

use std::process::{Command, Stdio};

use crate::support::{InProcess, count_files, test_options, wait_for, wait_for_async};

const FILES: u64 = 10_000;
const BATCH: usize = 500;

/// Writes `n` one-line files named in time order into `dir`.
fn write_backlog(dir: &std::path::Path, n: u64) {
    std::fs::create_dir(dir).unwrap();
    for seq in 0..n {
        let line = format!("{{\"producer\":\"backlog\",\"seq\":{seq}}}\n");
        std::fs::write(dir.join(format!("{seq:06}.json")), line).unwrap();
    }
}

#[test]
fn the_backlog_is_counted_beside_the_shipping_and_logged_once() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write_backlog(&src, 2_000);
    let log_path = tmp.path().join("ship.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let to = url::Url::from_directory_path(tmp.path().join("archive"))
        .unwrap()
        .to_string();
    let (src_s, state_s) = (
        src.display().to_string(),
        tmp.path().join("state").display().to_string(),
    );
    let args = [
        "ship",
        "--source",
        &src_s,
        "--to",
        &to,
        "--state-dir",
        &state_s,
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_logship-testkit"))
        .args(args.iter().copied().chain(["--batch-max-files", "100"]))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let read = || std::fs::read_to_string(&log_path).unwrap_or_default();
    wait_for("the count to be logged", Duration::from_secs(60), || {
        read().contains("pending files counted")
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let log = read();
    let line = log
        .lines()
        .find(|l| l.contains("pending files counted"))
        .unwrap();
    assert!(line.contains("files=2000"), "every file counted: {line}");
    // How many batches were packed before it is a race the count may win on a warm cache (2,000
    // files in ~3 ms); that the first count is never waited for is the census' unit test.
    assert!(line.contains("packed_before="), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10000_file_backlog_is_listed_a_batch_at_a_time_and_drains_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write_backlog(&src, FILES);
    let to = url::Url::from_directory_path(tmp.path().join("archive"))
        .unwrap()
        .to_string();
    let mut opts = test_options(
        vec![src.display().to_string()],
        to.clone(),
        &tmp.path().join("state"),
    );
    opts.batch_max_files = BATCH;
    let shipper = InProcess::start(&opts.validate().unwrap());
    let m = shipper.metrics.clone();
    wait_for_async("the first object", Duration::from_secs(60), || {
        m.shipped_objects.get() > 0
    })
    .await;
    let (listed, pending) = (m.listed_files.get(), m.pending_files.get());
    assert!(
        listed as usize <= BATCH,
        "one batch in memory: {listed} listed"
    );
    assert!(
        pending as u64 >= FILES - 4 * BATCH as u64,
        "the rest waits: {pending}"
    );
    let mut max_listed = listed;
    wait_for_async("the backlog to drain", Duration::from_secs(120), || {
        max_listed = max_listed.max(m.listed_files.get());
        count_files(&src) == 0
    })
    .await;
    assert!(max_listed as usize <= BATCH, "{max_listed} listed at most");
    shipper.stop().await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_logship-testkit"))
        .args(["verify", "--to", &to])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    let expected = format!(
        "producer backlog: lines={FILES} max_seq={} missing=0 duplicates=0",
        FILES - 1
    );
    assert!(report.contains(&expected), "{expected:?} in:\n{report}");
}
