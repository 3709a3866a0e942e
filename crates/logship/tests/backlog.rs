//! A backlog restarts in bounded memory: 10,000 files wait when the shipper starts; its
//! listing keeps at most one batch of them (`ferrostack_logship_listed_files` ≤
//! `--batch-max-files`) while all of them are counted as pending, the first object is stored
//! while almost all of the backlog still waits, and the backlog drains exactly once.

use std::time::Duration;

use crate::support::{InProcess, count_files, test_options, wait_for_async};

const FILES: u64 = 10_000;
const BATCH: usize = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10000_file_backlog_is_listed_a_batch_at_a_time_and_drains_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    for seq in 0..FILES {
        let line = format!("{{\"producer\":\"backlog\",\"seq\":{seq}}}\n");
        std::fs::write(src.join(format!("{seq:06}.json")), line).unwrap();
    }
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
