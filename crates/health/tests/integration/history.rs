//! The history under concurrent writer processes: appends and retention rewrites from several
//! processes at once never lose, tear or interleave a line.

use std::process::Command;
use std::time::Duration;

use ferrostack_health::history::History;
use ferrostack_health::record::Record;
use time::OffsetDateTime;

use crate::fixtures;

const CHILD_ENV: &str = "FERROSTACK_TEST_HISTORY_CHILD";
const WRITERS: usize = 4;
const BATCHES: usize = 60;
const FRESH_PER_BATCH: usize = 5;

fn record(writer: &str, seq: usize, time: OffsetDateTime) -> Record {
    Record {
        // Long lines: a batch is far larger than one pipe buffer or page.
        error: Some("e".repeat(2000)),
        ..fixtures::record(&format!("{writer}-{seq}"), time, false)
    }
}

/// One writer process: batches of fresh and stale records, with retention now and then.
fn child(path: &str, writer: &str) {
    let h = History::new(path);
    let mut seq = 0;
    for batch in 0..BATCHES {
        let now = OffsetDateTime::now_utc();
        let mut records = Vec::new();
        for _ in 0..FRESH_PER_BATCH {
            records.push(record(writer, seq, now));
            seq += 1;
        }
        records.push(record("stale", 0, now - Duration::from_secs(7200)));
        h.append(&records).unwrap();
        if batch % 5 == 0 {
            h.retain(now, Some(Duration::from_secs(3600)), None)
                .unwrap();
        }
    }
}

#[test]
fn concurrent_writer_processes_never_corrupt_the_history() {
    if let (Ok(path), Ok(writer)) = (
        std::env::var(CHILD_ENV),
        std::env::var("FERROSTACK_TEST_WRITER"),
    ) {
        child(&path, &writer);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..WRITERS)
        .map(|w| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "history::concurrent_writer_processes_never_corrupt_the_history",
                    "--test-threads=1",
                ])
                .env(CHILD_ENV, &path)
                .env("FERROSTACK_TEST_WRITER", format!("w{w}"))
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let h = History::new(&path);
    h.retain(
        OffsetDateTime::now_utc(),
        Some(Duration::from_secs(3600)),
        None,
    )
    .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with('\n'));
    let mut seen = std::collections::HashSet::new();
    for line in text.lines() {
        let r: Record =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("torn line ({e}): {:.80}", line));
        assert!(seen.insert(r.target.clone()), "duplicate {}", r.target);
    }
    assert!(
        !seen.iter().any(|t| t.starts_with("stale")),
        "retention dropped every stale record"
    );
    for w in 0..WRITERS {
        for seq in 0..BATCHES * FRESH_PER_BATCH {
            assert!(seen.contains(&format!("w{w}-{seq}")), "lost w{w}-{seq}");
        }
    }
    assert_eq!(seen.len(), WRITERS * BATCHES * FRESH_PER_BATCH);
}
