//! Source safety over real directories and real shipper processes: a source swapped for a
//! symlink is never followed out of itself, a file appended after it was read is never deleted
//! unread, one unreadable file does not block its source, and a full state disk leaves no
//! temporary files behind and resumes by itself once space returns.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use logship::metrics::{SourceErrorLabels, SourceLabels};
use logship::{Config, Metrics};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::support::{count_files, test_options, wait_for, wait_for_async};

fn config(root: &Path, src: &Path) -> Config {
    test_options(
        vec![src.display().to_string()],
        Url::from_directory_path(root.join("archive"))
            .unwrap()
            .to_string(),
        &root.join("state"),
    )
    .validate()
    .unwrap()
}

fn source_errors(metrics: &Metrics, source: &str, kind: &str) -> u64 {
    metrics
        .source_errors
        .get_or_create(&SourceErrorLabels {
            source: source.into(),
            kind: kind.into(),
        })
        .get()
}

/// Every line in the archive.
async fn archived(cfg: &Config) -> String {
    let report = logship::verify(&cfg.to, cfg.sink.clone()).await.unwrap();
    assert!(report.unreadable.is_empty(), "{report}");
    let mut all = String::new();
    for entry in walk(&url_dir(&cfg.to)) {
        let key = entry.display().to_string();
        let data = fs::read(&entry).unwrap();
        let plain = logship::encoder::decode(&key, &data, 1 << 30).unwrap();
        all.push_str(&String::from_utf8(plain).unwrap());
    }
    all
}

fn url_dir(url: &Url) -> PathBuf {
    url.to_file_path().unwrap()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return out;
    };
    for e in rd {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if !p.to_string_lossy().contains('#') {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_replaced_by_a_symlink_is_refused_and_files_outside_it_survive_unshipped() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("api");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("a.json"), "{\"file\":\"a\"}\n").unwrap();
    let elsewhere = tmp.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    for name in ["e1.json", "e2.json"] {
        fs::write(
            elsewhere.join(name),
            format!("{{\"outside\":\"{name}\"}}\n"),
        )
        .unwrap();
    }
    let cfg = config(tmp.path(), &src);
    let metrics = Metrics::default();
    let token = CancellationToken::new();
    let run = tokio::spawn(logship::run_until(
        cfg.clone(),
        metrics.clone(),
        token.clone(),
    ));
    wait_for_async("a.json shipped", Duration::from_secs(20), || {
        count_files(&src) == 0
    })
    .await;

    // The swap, while the shipper runs.
    fs::remove_dir_all(&src).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &src).unwrap();
    // Many scans (50 ms) and batch ages (200 ms) later:
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for name in ["e1.json", "e2.json"] {
        assert!(
            elsewhere.join(name).exists(),
            "{name} outside the source was deleted"
        );
    }
    assert!(
        source_errors(&metrics, "api", "symlink") > 0,
        "the refusal is counted under the source's name"
    );
    token.cancel();
    run.await.unwrap().unwrap();
    let lines = archived(&cfg).await;
    assert!(lines.contains("\"file\":\"a\""), "{lines}");
    assert!(!lines.contains("outside"), "shipped from outside: {lines}");

    // A source that is a symlink at start is a configuration error naming it.
    let err = test_options(
        vec![src.display().to_string()],
        cfg.to.to_string(),
        tmp.path(),
    )
    .validate()
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("--source") && err.contains("symbolic link"),
        "{err}"
    );
}

/// Appends `{"producer":"app","seq":N}` to `file` the way a plain producer does (open with
/// O_APPEND, write, close).
fn append_line(file: &Path, seq: u64) {
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .unwrap();
    f.write_all(format!("{{\"producer\":\"app\",\"seq\":{seq}}}\n").as_bytes())
        .unwrap();
}

/// Waits (up to 10 s) until someone reads `name` in the directory `inotify` watches.
fn read_soon(inotify: &Inotify, name: &str) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        match inotify.read_events() {
            Ok(events)
                if events
                    .iter()
                    .any(|e| e.name.as_deref() == Some(name.as_ref())) =>
            {
                return true;
            }
            Ok(_) => {}
            Err(nix::errno::Errno::EAGAIN) => std::thread::sleep(Duration::from_micros(200)),
            Err(e) => panic!("inotify: {e}"),
        }
    }
    false
}

/// Appends one line to `file` each time someone reads it, up to `times` times (fewer if it is
/// not read again within 10 s), numbering from `seq`; returns the next seq.
fn append_on_each_read(file: &Path, mut seq: u64, times: usize) -> u64 {
    let inotify = Inotify::init(InitFlags::IN_NONBLOCK).unwrap();
    inotify
        .add_watch(file.parent().unwrap(), AddWatchFlags::IN_ACCESS)
        .unwrap();
    let name = file.file_name().unwrap().to_str().unwrap();
    for _ in 0..times {
        if !read_soon(&inotify, name) {
            break;
        }
        append_line(file, seq);
        seq += 1;
    }
    seq
}

/// The plain-file contract (`--quiet-period`): a file written to at least every quiet period
/// is not read; once quiet it is read, and an append that lands after that read (a producer
/// breaking the contract) keeps the file, which is shipped again: nothing is deleted unread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_appended_after_it_was_read_is_never_deleted_unread() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("app");
    fs::create_dir(&src).unwrap();
    let mut opts = test_options(
        vec![src.display().to_string()],
        Url::from_directory_path(tmp.path().join("archive"))
            .unwrap()
            .to_string(),
        &tmp.path().join("state"),
    );
    // A batch is ready as soon as its one file is quiet.
    opts.batch_max_files = 1;
    opts.quiet_period = Duration::from_secs(1);
    let cfg = opts.validate().unwrap();
    let metrics = Metrics::default();
    let token = CancellationToken::new();
    let run = tokio::spawn(logship::run_until(
        cfg.clone(),
        metrics.clone(),
        token.clone(),
    ));
    // Within the contract: a line every millisecond for 2 s; the file is never quiet.
    let file = src.join("app.log");
    let mut seq = 0u64;
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        append_line(&file, seq);
        seq += 1;
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        metrics.shipped_objects.get(),
        0,
        "a file written to within the quiet period is not read"
    );
    // Breaking it: each time the shipper reads the (now quiet) file, append at once.
    let late = tokio::task::spawn_blocking(move || append_on_each_read(&file, seq, 3));
    let written = late.await.unwrap();
    wait_for_async("the file shipped whole", Duration::from_secs(30), || {
        count_files(&src) == 0
    })
    .await;
    token.cancel();
    run.await.unwrap().unwrap();

    let report = logship::verify(&cfg.to, cfg.sink.clone()).await.unwrap();
    let app = &report.producers["app"];
    assert_eq!(app.max_seq + 1, written, "{report}");
    assert_eq!(app.missing, 0, "appended lines were lost: {report}");
    let changed = metrics
        .changed_files
        .get_or_create(&SourceLabels {
            source: "app".into(),
        })
        .get();
    assert!(
        changed > 0,
        "an append after the read is seen and counted ({report})"
    );
}

/// Runs `logship-testkit ship` without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH (so a mode 000
/// file is unreadable even to root), SIGTERMs it once `done` holds, returns (stdout, stderr).
fn ship_without_dac(args: &[&str], done: impl FnMut() -> bool) -> (String, String) {
    let child = Command::new("setpriv")
        .args(["--bounding-set", "-dac_override,-dac_read_search", "--"])
        .arg(env!("CARGO_BIN_EXE_logship-testkit"))
        .arg("ship")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for("the readable files shipped", Duration::from_secs(20), done)
    }));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(waited.is_ok(), "stderr:\n{stderr}");
    (stdout, stderr)
}

#[test]
fn an_unreadable_file_is_skipped_naming_it_and_the_rest_of_its_source_ships() {
    if Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("SKIP: setpriv (util-linux) not found");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("api");
    fs::create_dir(&src).unwrap();
    for name in ["a.json", "b.json", "c.json"] {
        fs::write(src.join(name), format!("{{\"file\":\"{name}\"}}\n")).unwrap();
    }
    // Mode 000: open(2) fails with EACCES for a process without the DAC capabilities.
    let bad = src.join("b.json");
    fs::set_permissions(&bad, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    let archive = tmp.path().join("archive");
    fs::create_dir(&archive).unwrap();
    let to = Url::from_directory_path(&archive).unwrap().to_string();
    let state = tmp.path().join("state").display().to_string();
    let src_s = src.display().to_string();
    let args = ["--source", &src_s, "--to", &to, "--state-dir", &state];
    let (stdout, stderr) = ship_without_dac(&args, || {
        !src.join("a.json").exists() && !src.join("c.json").exists()
    });
    assert!(bad.exists(), "the unreadable file stays on disk");
    let line = stderr
        .lines()
        .find(|l| l.contains("cannot read a file"))
        .unwrap_or_else(|| panic!("no error line:\n{stderr}"));
    assert!(
        line.contains(bad.to_str().unwrap()) && line.contains("Permission denied"),
        "the error names the source file: {line}"
    );
    assert!(!line.contains("staging"), "names no staging file: {line}");
    assert!(
        stdout.contains(
            "ferrostack_logship_source_errors_total{source=\"api\",kind=\"unreadable\"} 1"
        ),
        "counted once, not retried while unchanged:\n{stdout}"
    );
}

/// A tmpfs mounted for the test, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Self> {
        fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Self(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Lines of incompressible JSON: `lines` × ~850 bytes.
fn random_lines(producer: &str, lines: u64) -> String {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut out = String::new();
    for seq in 0..lines {
        let pad: String = (0..800)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
                        [(x % 64) as usize],
                )
            })
            .collect();
        out.push_str(&format!(
            "{{\"producer\":\"{producer}\",\"seq\":{seq},\"pad\":\"{pad}\"}}\n"
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_state_disk_leaves_no_temp_files_and_shipping_resumes_when_space_returns() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(_mount) = Tmpfs::mount(&tmp.path().join("state"), "2m") else {
        eprintln!("SKIP: cannot mount a tmpfs (needs root)");
        return;
    };
    let state = tmp.path().join("state");
    let src = tmp.path().join("api");
    fs::create_dir(&src).unwrap();
    // ~1.3 MB compressed: more than is left on the state disk below.
    fs::write(src.join("big.json"), random_lines("disk", 2000)).unwrap();
    // Fill the state disk but ~300 KB.
    let filler = state.join("filler");
    fs::write(&filler, vec![1u8; 2 * 1024 * 1024 - 300 * 1024]).unwrap();
    let cfg = config(tmp.path(), &src);
    let metrics = Metrics::default();
    let token = CancellationToken::new();
    let run = tokio::spawn(logship::run_until(
        cfg.clone(),
        metrics.clone(),
        token.clone(),
    ));
    // Several failed encodes (the backoff is 50-500 ms in tests).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(src.join("big.json").exists(), "nothing shipped yet");
    fs::remove_file(&filler).unwrap();
    wait_for_async(
        "shipping resumed by itself",
        Duration::from_secs(30),
        || count_files(&src) == 0,
    )
    .await;
    token.cancel();
    run.await.unwrap().unwrap();
    let staging = state.join("staging");
    let left: Vec<_> = fs::read_dir(&staging)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left in {}: {left:?}", staging.display());
    let report = logship::verify(&cfg.to, cfg.sink.clone()).await.unwrap();
    assert!(report.ok(), "{report}");
    assert_eq!(report.producers["disk"].lines, 2000, "{report}");
}

#[test]
fn a_journal_append_that_fails_on_a_full_disk_leaves_no_partial_entry() {
    use logship::journal::{BatchRecord, FileRef, Journal};
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let Some(_mount) = Tmpfs::mount(&state, "1m") else {
        eprintln!("SKIP: cannot mount a tmpfs (needs root)");
        return;
    };
    let record = |seq: u64, files: usize| BatchRecord {
        seq,
        source: "api".into(),
        key: format!("k/{seq}"),
        files: (0..files)
            .map(|i| FileRef {
                path: PathBuf::from(format!("/logs/api/2026-11-21T00:00:00Z-{i:05}.jsonl")),
                size: 100,
                stamp: None,
            })
            .collect(),
        size: 5,
        sha256: "ab".into(),
        raw_bytes: 10,
        first_line: 0,
        lines: 0,
    };
    let mut journal = Journal::open(&state).unwrap();
    let filler = state.join("filler");
    fs::write(&filler, vec![1u8; 1024 * 1024 - 32 * 1024]).unwrap();
    // ~70 KB: the write(2) stops part-way when the disk is full.
    let err = journal.record_batch(record(0, 1000)).unwrap_err();
    assert!(err.to_string().contains("No space left"), "{err}");
    assert_eq!(
        fs::metadata(state.join("journal.jsonl")).unwrap().len(),
        0,
        "the partial entry is cut off"
    );
    fs::remove_file(&filler).unwrap();
    journal.record_batch(record(0, 1)).unwrap();
    drop(journal);
    let journal = Journal::open(&state).unwrap();
    assert_eq!(
        journal.next_seq(),
        1,
        "the entry after the failure survives a restart"
    );
    assert_eq!(journal.get(0).unwrap().record.files.len(), 1);
}
