//! The log-file writer of `GET /` under 1,000 concurrent requests, in a test binary of its
//! own so no sibling test competes for the two cores while it is timed: 1,000 requests of
//! 1 s of work each must overlap (a timer, not a blocked thread) and finish within 3 s.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;

/// `n` concurrent `GET url`: each answer's status and JSON body.
async fn get_all(client: &reqwest::Client, url: &str, n: usize) -> Vec<(u16, Value)> {
    futures::future::join_all((0..n).map(|_| async move {
        let r = client.get(url).send().await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    }))
    .await
}

/// The longest latency of `GET /` the server's access lines report, in ms.
fn slowest_root_in_server_ms(stdout: &str) -> f64 {
    support::json_lines(stdout)
        .iter()
        .filter(|l| l["message"] == "request completed" && l["path"] == "/")
        .filter_map(|l| l["latency_ms"].as_f64())
        .fold(0.0, f64::max)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_concurrent_requests_give_a_thousand_whole_distinct_files() {
    let backend = support::start(
        // debug: successful requests' access lines, whose latency this test reports.
        &[
            "backend-api",
            "--work-delay",
            "1s",
            "--log-dir",
            "logs",
            "--log-level",
            "debug",
        ],
        &[],
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let url = backend.url("/");
    let start = Instant::now();
    let answers = get_all(&client, &url, 1000).await;
    let elapsed = start.elapsed();
    assert!(answers.iter().all(|(s, _)| *s == 200));
    let mut names: Vec<String> = answers
        .iter()
        .map(|(_, b)| b["file"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 1000, "file names must be unique");
    let files = support::log_dir_files(&backend.path().join("logs"));
    assert_eq!(
        files.len(),
        1000,
        "exactly the answered files, no temp files"
    );
    for f in &files {
        let doc: Value =
            serde_json::from_slice(&std::fs::read(f).unwrap()).expect("every file is whole JSON");
        assert!(doc["message"].is_string());
    }
    // The 1 s of work is a timer, not a blocked thread: all of it overlaps.
    let server_max_ms = slowest_root_in_server_ms(&backend.stdout());
    eprintln!(
        "1,000 concurrent GET / with 1 s of work: {elapsed:?} (slowest inside the server: {server_max_ms:.0} ms)"
    );
    assert!(
        elapsed < Duration::from_secs(3),
        "1,000 requests of 1 s took {elapsed:?}; the slowest took {server_max_ms:.0} ms inside the server"
    );
}
