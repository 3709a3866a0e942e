use std::fs::File;
use std::path::PathBuf;

use super::*;
use crate::segment::{OPEN_PREFIX, SEGMENT_EXT, sealed_name};

fn sealed(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_str().unwrap().starts_with('.'))
        .collect();
    v.sort();
    v
}

fn config(dir: &Path) -> WriterConfig {
    WriterConfig {
        max_bytes: 1000,
        flush_interval: Duration::from_millis(20),
        buffer_bytes: 256,
        ..WriterConfig::new(dir)
    }
}

#[test]
fn size_rotation_never_splits_a_line_and_keeps_every_line_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let w = RotatingWriter::open(config(dir.path())).unwrap();
    let mut expected = String::new();
    for i in 0..500 {
        let line = format!("{{\"seq\":{i},\"pad\":\"{}\"}}\n", "x".repeat(i % 37));
        (&w).write_all(line.as_bytes()).unwrap();
        expected.push_str(&line);
    }
    w.seal().unwrap();
    let files = sealed(dir.path());
    assert!(
        files.len() > 10,
        "rotated by size: {} segments",
        files.len()
    );
    let mut all = String::new();
    for f in &files {
        let name = f.file_name().unwrap().to_str().unwrap();
        assert!(name.ends_with(".jsonl") && name.contains('-'), "{name}");
        let text = fs::read_to_string(f).unwrap();
        assert!(text.len() <= 1000, "{name} is {} bytes", text.len());
        assert!(text.ends_with('\n'), "segment ends with a whole line");
        for line in text.lines() {
            serde_json::from_str::<serde_json::Value>(line).unwrap();
        }
        all.push_str(&text);
    }
    assert_eq!(all, expected);
    assert_eq!(w.stats().bytes.get(), expected.len() as u64);
    assert_eq!(w.stats().write_errors.get(), 0);
}

#[test]
fn age_rotation_seals_a_quiet_segment() {
    let dir = tempfile::tempdir().unwrap();
    let w = RotatingWriter::open(WriterConfig {
        max_age: Duration::from_millis(100),
        ..config(dir.path())
    })
    .unwrap();
    (&w).write_all(b"{\"a\":1}\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while sealed(dir.path()).is_empty() {
        assert!(Instant::now() < deadline, "segment never sealed by age");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        fs::read_to_string(&sealed(dir.path())[0]).unwrap(),
        "{\"a\":1}\n"
    );
}

#[test]
fn open_segment_of_a_dead_writer_is_sealed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let id = Ulid::generate();
    let open = dir.path().join(format!("{OPEN_PREFIX}{id}.{SEGMENT_EXT}"));
    fs::write(&open, "{\"a\":1}\n{\"torn\":").unwrap();
    let _w = RotatingWriter::open(config(dir.path())).unwrap();
    assert!(!open.exists());
    let files = sealed(dir.path());
    assert_eq!(files.len(), 1);
    assert_eq!(
        files[0].file_name().unwrap().to_str().unwrap(),
        sealed_name(id)
    );
    assert_eq!(
        fs::read_to_string(&files[0]).unwrap(),
        "{\"a\":1}\n{\"torn\":\n"
    );
}

#[test]
fn open_segment_of_a_live_writer_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let a = RotatingWriter::open(config(dir.path())).unwrap();
    (&a).write_all(b"{\"a\":1}\n").unwrap();
    a.flush_buffer().unwrap();
    let _b = RotatingWriter::open(config(dir.path())).unwrap();
    assert!(sealed(dir.path()).is_empty(), "b must not seal a's segment");
    a.seal().unwrap();
    assert_eq!(sealed(dir.path()).len(), 1);
}

#[test]
fn pending_bound_stops_file_writes_until_drained() {
    let dir = tempfile::tempdir().unwrap();
    let w = RotatingWriter::open(WriterConfig {
        max_pending_bytes: 3000,
        ..config(dir.path())
    })
    .unwrap();
    let line = format!("{{\"pad\":\"{}\"}}\n", "y".repeat(90));
    for _ in 0..100 {
        (&w).write_all(line.as_bytes()).unwrap();
    }
    assert_eq!(w.stats().pending_full.get(), 1);
    w.seal().unwrap(); // waits for the sealer thread
    let dropped = w.stats().dropped_lines.get();
    assert!(dropped > 50, "dropped {dropped}");
    let kept: u64 = sealed(dir.path())
        .iter()
        .map(|f| fs::metadata(f).unwrap().len())
        .sum();
    assert!((3000..4100).contains(&kept), "kept {kept} bytes");
    // The shipper drains the directory: the writer resumes.
    for f in sealed(dir.path()) {
        fs::remove_file(f).unwrap();
    }
    std::thread::sleep(Duration::from_millis(1100));
    (&w).write_all(line.as_bytes()).unwrap();
    assert_eq!(w.stats().pending_full.get(), 0);
    w.seal().unwrap();
    assert_eq!(sealed(dir.path()).len(), 1);
}

#[test]
fn failed_disk_write_is_an_error_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let w = RotatingWriter::open(config(&logs)).unwrap();
    fs::remove_dir_all(&logs).unwrap();
    fs::write(&logs, "not a directory").unwrap();
    let err = (&w).write_all(b"{\"a\":1}\n");
    assert!(err.is_err());
    assert_eq!(w.stats().write_errors.get(), 1);
}

/// Points the open segment at /dev/full, whose every write(2) fails with ENOSPC (and whose
/// ftruncate and fsync fail too, so the broken segment is not sealed but left `.open-`).
fn break_the_disk(w: &RotatingWriter) {
    let mut state = w.shared.lock();
    let open = state.open.as_mut().unwrap();
    open.file = File::options().write(true).open("/dev/full").unwrap();
}

#[test]
fn a_background_write_failure_is_returned_by_the_next_call_once() {
    let dir = tempfile::tempdir().unwrap();
    let w = RotatingWriter::open(WriterConfig {
        flush_interval: Duration::from_secs(3600),
        ..config(dir.path())
    })
    .unwrap();
    (&w).write_all(b"{\"a\":1}\n").unwrap();
    break_the_disk(&w);
    w.shared.tick(); // the flush thread's turn: the failure is kept, not lost
    assert!(w.stats().write_errors.get() >= 1);
    assert_eq!(
        w.stats().dropped_lines.get(),
        1,
        "the buffered line is lost"
    );
    let e = (&w).write_all(b"{\"b\":2}\n").unwrap_err();
    assert!(e.to_string().contains("failed in the background"), "{e}");
    assert_eq!(
        w.stats().dropped_lines.get(),
        2,
        "the failing call did not take its line"
    );
    (&w).write_all(b"{\"c\":3}\n").unwrap();
    w.seal().unwrap();
    let files = sealed(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(fs::read_to_string(&files[0]).unwrap(), "{\"c\":3}\n");
}
