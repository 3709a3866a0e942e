//! `logship verify` as a real process: a zstd bomb (a small object expanding to 1 GiB) is an
//! unreadable object and exit 1 under a 512 MiB data limit, not an abort; lines that are not
//! JSON make the archive not OK (exit 1).

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use url::Url;

const DIR: &str = "2026-11-21/testhost/api";

fn object(archive: &Path, seq: u64) -> std::path::PathBuf {
    let dir = archive.join(DIR);
    fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{seq:020}.jsonl.zst"))
}

fn good_object(archive: &Path, seq: u64, lines: &[&str]) {
    let mut text = String::new();
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    fs::write(
        object(archive, seq),
        zstd::encode_all(text.as_bytes(), 3).unwrap(),
    )
    .unwrap();
}

/// Runs `logship-testkit verify` with its data segment limited to 512 MiB.
fn verify(archive: &Path) -> (Option<i32>, String, String) {
    let to = Url::from_directory_path(archive).unwrap().to_string();
    let out = Command::new("bash")
        .arg("-c")
        .arg(r#"ulimit -d 524288 && exec "$0" verify --to "$1""#)
        .arg(env!("CARGO_BIN_EXE_logship-testkit"))
        .arg(&to)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_zstd_bomb_is_an_unreadable_object_and_exit_1_not_an_abort() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    good_object(&archive, 0, &[r#"{"producer":"p","seq":0}"#]);
    let bomb = object(&archive, 1);
    let mut enc = zstd::stream::write::Encoder::new(fs::File::create(&bomb).unwrap(), 3).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        enc.write_all(&zeros).unwrap();
    }
    enc.finish().unwrap();
    let small = fs::metadata(&bomb).unwrap().len();
    assert!(small < 200 * 1024, "the bomb is small: {small} bytes");
    good_object(&archive, 2, &[r#"{"producer":"p","seq":1}"#]);

    let (code, stdout, stderr) = verify(&archive);
    assert_eq!(code, Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains("unreadable=1") && stdout.contains("longer than 8388608 bytes"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("unreadable {DIR}/00000000000000000001")),
        "{stdout}"
    );
    assert!(
        stdout.contains("producer p: lines=2 max_seq=1 missing=0 duplicates=0"),
        "the other objects are still checked: {stdout}"
    );
    assert!(stdout.trim_end().ends_with("PROBLEMS FOUND"), "{stdout}");
}

#[test]
fn lines_that_are_not_json_make_verify_fail() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    good_object(
        &archive,
        0,
        &[
            r#"{"producer":"p","seq":0}"#,
            "not json",
            r#"{"producer":"p","seq":1}"#,
            "{trunc",
        ],
    );
    let (code, stdout, stderr) = verify(&archive);
    assert_eq!(code, Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("invalid_json_lines=2"), "{stdout}");
    assert!(
        !stdout.contains("OK\n") && !stdout.trim_end().ends_with("OK"),
        "{stdout}"
    );
    assert!(stdout.trim_end().ends_with("PROBLEMS FOUND"), "{stdout}");

    // Only good lines: OK, exit 0.
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    good_object(&archive, 0, &[r#"{"producer":"p","seq":0}"#]);
    let (code, stdout, _) = verify(&archive);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.trim_end().ends_with("OK"), "{stdout}");
}
