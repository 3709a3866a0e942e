//! A failed disk write is never reported as success. The writer runs in a real process under a
//! file-size rlimit (`ulimit -f`, SIGXFSZ ignored), so write(2) really fails with EFBIG once a
//! segment reaches the limit, in the writer's background flush. The next `write()` must return
//! that error, the byte counter must match the bytes in the files, every file must hold whole
//! lines only, and every line must be either in a file or counted as dropped.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Runs `logship-testkit write DIR LINES` with a 4 KiB file-size limit; returns its JSON
/// report and its stderr.
fn write_under_file_size_limit(dir: &Path, lines: u64) -> (Value, String) {
    let out = Command::new("bash")
        .arg("-c")
        // 4 KiB per file (bash counts 1024-byte blocks); ignoring SIGXFSZ turns the signal
        // into an EFBIG error from write(2), inherited across exec.
        .arg(r#"trap '' XFSZ; ulimit -f 4 && exec "$0" write "$1" "$2""#)
        .arg(env!("CARGO_BIN_EXE_logship-testkit"))
        .arg(dir)
        .arg(lines.to_string())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "testkit failed: {stderr}");
    (serde_json::from_slice(&out.stdout).unwrap(), stderr)
}

/// What the segments in a directory hold.
struct OnDisk {
    bytes: u64,
    /// The `seq` of every line, each seen once.
    seqs: BTreeSet<u64>,
    files: usize,
}

/// Reads every segment in `dir`, requiring each to be sealed and to hold whole lines only.
fn read_segments(dir: &Path) -> OnDisk {
    let mut on_disk = OnDisk {
        bytes: 0,
        seqs: BTreeSet::new(),
        files: 0,
    };
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.starts_with('.'), "every segment is sealed: {name}");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with('\n'), "{name} ends with a whole line");
        on_disk.bytes += text.len() as u64;
        on_disk.files += 1;
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            let seq = v["seq"].as_u64().unwrap();
            assert!(on_disk.seqs.insert(seq), "duplicate {line}");
        }
    }
    on_disk
}

#[test]
fn a_failed_background_write_is_returned_by_the_next_call_and_never_counted_as_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("logs");
    let lines = 150u64;
    let (report, stderr) = write_under_file_size_limit(&dir, lines);

    let errors = report["write_errors"].as_array().unwrap();
    assert!(
        !errors.is_empty(),
        "a write() after the failed background flush returns the error: {report}"
    );
    let first = errors[0]["error"].as_str().unwrap();
    assert!(
        first.contains("failed in the background") && first.contains("File too large"),
        "{first}"
    );
    assert!(report["write_errors_total"].as_u64().unwrap() >= 1);
    assert!(
        stderr.contains("log file write failed"),
        "reported on stderr: {stderr}"
    );

    // Nothing claimed that is not on disk: counted bytes = bytes in the files, whole lines only.
    let OnDisk { bytes, seqs, files } = read_segments(&dir);
    assert!(
        files >= 2,
        "writing went on in a fresh segment ({files} files)"
    );
    assert_eq!(report["bytes_total"].as_u64().unwrap(), bytes);
    let dropped = report["dropped_lines_total"].as_u64().unwrap();
    assert_eq!(
        seqs.len() as u64 + dropped,
        lines,
        "every line is in a file or counted as dropped"
    );
    // ferrostack_logship_lost_lines_total{reason} sees them as write errors, none as the bound.
    assert_eq!(
        report["lost_write_error"].as_u64(),
        Some(dropped),
        "{report}"
    );
    assert_eq!(report["lost_pending_bound"].as_u64(), Some(0), "{report}");
    for e in errors {
        let seq = e["seq"].as_u64().unwrap();
        assert!(
            !seqs.contains(&seq),
            "line {seq} got an error yet was written"
        );
    }
}
