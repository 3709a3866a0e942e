use super::*;

fn record(target: &str, time: OffsetDateTime, success: bool) -> Record {
    Record {
        response_time_seconds: 0.01,
        duration_seconds: 0.01,
        ..Record::sample(target, time, success)
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

#[test]
fn appends_and_reads_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::new(dir.path().join("sub/history.jsonl"));
    let t = now();
    h.append(&[record("a", t, true), record("b", t, false)])
        .unwrap();
    h.append(&[record("a", t, false)]).unwrap();
    let all = h.read_all().unwrap();
    let got: Vec<_> = all.iter().map(|r| (r.target.as_str(), r.success)).collect();
    assert_eq!(got, [("a", true), ("b", false), ("a", false)]);
    assert!(dir.path().join("sub/history.jsonl.lock").exists());
}

#[test]
fn an_append_after_a_torn_line_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.jsonl");
    let h = History::new(&path);
    let t = now();
    h.append(&[record("before", t, true)]).unwrap();
    // A writer killed in the middle of its line.
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(br#"{"time":"2026-01-01T00:00:00Z","tar"#)
        .unwrap();
    drop(f);
    h.append(&[record("after", t, true), record("later", t, false)])
        .unwrap();
    let mut tail = Tail::default();
    let read = tail.read(&h).unwrap();
    let names: Vec<_> = read.records.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(names, ["before", "after", "later"]);
    assert_eq!(read.skipped, 1, "the torn line is skipped, alone");
}

#[test]
fn reading_a_missing_history_gives_nothing() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        History::new(dir.path().join("none"))
            .read_all()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn retention_drops_old_records_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::new(dir.path().join("h.jsonl"));
    let t = now();
    h.append(&[
        record("old", t - Duration::from_secs(7200), true),
        record("new", t - Duration::from_secs(60), true),
    ])
    .unwrap();
    let r = h.retain(t, Some(Duration::from_secs(3600)), None).unwrap();
    assert_eq!(
        r,
        Retained {
            kept: 1,
            dropped: 1
        }
    );
    let names: Vec<_> = h
        .read_all()
        .unwrap()
        .into_iter()
        .map(|r| r.target)
        .collect();
    assert_eq!(names, ["new"]);
    assert!(
        std::fs::read_dir(dir.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains(".tmp-")),
        "no temp file left behind"
    );
}

#[test]
fn retention_by_size_drops_the_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::new(dir.path().join("h.jsonl"));
    let t = now();
    let records: Vec<_> = (0..10).map(|i| record(&format!("t{i}"), t, true)).collect();
    h.append(&records).unwrap();
    let size = std::fs::metadata(h.path()).unwrap().len();
    let r = h.retain(t, None, Some(size / 2)).unwrap();
    assert_eq!(r.kept + r.dropped, 10);
    assert!(std::fs::metadata(h.path()).unwrap().len() <= size / 2);
    let names: Vec<_> = h
        .read_all()
        .unwrap()
        .into_iter()
        .map(|r| r.target)
        .collect();
    assert_eq!(names.last().map(String::as_str), Some("t9"));
    assert!(!names.contains(&"t0".to_owned()));
}

#[test]
fn retention_that_drops_nothing_does_not_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::new(dir.path().join("h.jsonl"));
    h.append(&[record("a", now(), true)]).unwrap();
    let before = std::fs::metadata(h.path()).unwrap().ino();
    let r = h
        .retain(now(), Some(Duration::from_secs(60)), Some(1 << 20))
        .unwrap();
    assert_eq!(
        r,
        Retained {
            kept: 1,
            dropped: 0
        }
    );
    assert_eq!(std::fs::metadata(h.path()).unwrap().ino(), before);
}

#[test]
fn retention_drops_torn_and_garbage_lines() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::new(dir.path().join("h.jsonl"));
    h.append(&[record("a", now(), true)]).unwrap();
    let mut f = OpenOptions::new().append(true).open(h.path()).unwrap();
    f.write_all(b"not json\n{\"time\":\"2026-").unwrap();
    let r = h
        .retain(now(), Some(Duration::from_secs(3600)), None)
        .unwrap();
    assert_eq!(
        r,
        Retained {
            kept: 1,
            dropped: 2
        }
    );
    assert!(std::fs::read_to_string(h.path()).unwrap().ends_with("}\n"));
}

#[test]
fn tail_reads_only_new_complete_lines_and_notices_rewrites() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::new(dir.path().join("h.jsonl"));
    let mut tail = Tail::default();
    assert!(tail.read(&h).unwrap().records.is_empty());
    let t = now();
    h.append(&[record("a", t - Duration::from_secs(7200), true)])
        .unwrap();
    let first = tail.read(&h).unwrap();
    assert_eq!((first.reset, first.records.len()), (false, 1));
    // A half-written line is not consumed until its newline arrives.
    let mut f = OpenOptions::new().append(true).open(h.path()).unwrap();
    let line = serde_json::to_string(&record("b", t, true)).unwrap();
    f.write_all(&line.as_bytes()[..10]).unwrap();
    assert!(tail.read(&h).unwrap().records.is_empty());
    f.write_all(&line.as_bytes()[10..]).unwrap();
    f.write_all(b"\n").unwrap();
    let names: Vec<_> = tail
        .read(&h)
        .unwrap()
        .records
        .into_iter()
        .map(|r| r.target)
        .collect();
    assert_eq!(names, ["b"]);
    // Retention replaces the file: the tail starts over from the new one.
    h.retain(t, Some(Duration::from_secs(3600)), None).unwrap();
    let after = tail.read(&h).unwrap();
    assert!(after.reset);
    let names: Vec<_> = after.records.into_iter().map(|r| r.target).collect();
    assert_eq!(names, ["b"]);
}

#[test]
fn retention_removes_the_temp_files_of_rewrites_that_died() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::new(dir.path().join("h.jsonl"));
    h.append(&[record("a", now(), true)]).unwrap();
    // A rewrite killed before its rename leaves its temp file behind.
    let stale = dir.path().join(".h.jsonl.tmp-4242");
    std::fs::write(&stale, b"half a history").unwrap();
    let other = dir.path().join(".other.jsonl.tmp-4242");
    std::fs::write(&other, b"another history's").unwrap();
    h.retain(now(), Some(Duration::from_secs(60)), None)
        .unwrap();
    assert!(!stale.exists(), "the dead rewrite's temp file is removed");
    assert!(other.exists(), "another history's files are left alone");
    assert_eq!(h.read_all().unwrap().len(), 1);
}
