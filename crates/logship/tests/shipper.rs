//! The shipper in process against the local filesystem store: a crash between upload and
//! journal is delivered once, 10,000 small files ship in batches and each is deleted only after
//! its batch is in the archive, and the pending bound keeps every unshipped file.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use logship::encoder::{Compression, Encoded, Input, encode};
use logship::journal::{BatchRecord, Journal};
use logship::sink::{MultipartProgress, Sink, SinkError, Staged};
use logship::{Config, Metrics, Options, RotatingWriter};
use object_store::ObjectStoreExt;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::support::{
    InProcess, Producer, count_files, test_options, upload_errors, wait_for_async, writer_config,
};

struct NoMultipart;

impl MultipartProgress for NoMultipart {
    fn started(&mut self, _: &str) -> Result<(), SinkError> {
        Ok(())
    }
    fn part(&mut self, _: usize, _: &str) -> Result<(), SinkError> {
        Ok(())
    }
}

fn archive_url(root: &Path) -> Url {
    Url::from_directory_path(root.join("archive")).unwrap()
}

fn config(opts: Options) -> Config {
    opts.validate().unwrap()
}

/// All lines in the archive, decoded.
async fn archive_lines(config: &Config) -> (usize, Vec<String>) {
    let sink = Sink::new(&config.to, config.sink.clone()).unwrap();
    let mut objects = 0;
    let mut lines = Vec::new();
    let mut list = sink.store().list(None);
    use futures::StreamExt;
    while let Some(meta) = list.next().await {
        let meta = meta.unwrap();
        if sink.is_manifest(&meta.location) {
            continue; // the manifests (tests/manifests.rs) are not data
        }
        objects += 1;
        let key = meta.location.to_string();
        let data = sink
            .store()
            .get(&meta.location)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let plain = logship::encoder::decode(&key, &data, 1 << 30).unwrap();
        lines.extend(
            String::from_utf8(plain)
                .unwrap()
                .lines()
                .map(str::to_string),
        );
    }
    (objects, lines)
}

/// Writes `{"file":I}` into `count` files of `src`, named in shipping order.
fn write_numbered_files(src: &Path, count: usize) -> Vec<PathBuf> {
    fs::create_dir_all(src).unwrap();
    (0..count)
        .map(|i| {
            let p = src.join(format!("2026-11-21T00000{i}Z-x.json"));
            fs::write(&p, format!("{{\"file\":{i}}}\n")).unwrap();
            p
        })
        .collect()
}

/// Leaves what a run killed after uploading `files` under `key` but before journaling the
/// delivery leaves: the batch journaled, the object stored, the staged copy gone (it was
/// encoded into `elsewhere`). Returns the encoding.
async fn killed_after_upload(
    cfg: &Config,
    files: &[PathBuf],
    elsewhere: &Path,
    key: &str,
) -> Encoded {
    let inputs: Vec<Input> = files
        .iter()
        .map(|p| Input {
            path: p.clone(),
            expect: None,
        })
        .collect();
    let enc = encode(&inputs, elsewhere, Compression::Zstd(3)).unwrap();
    let mut journal = Journal::open(&cfg.state_dir).unwrap();
    journal
        .record_batch(BatchRecord {
            seq: 0,
            source: "api".into(),
            key: key.into(),
            files: enc.files.clone(),
            size: enc.size,
            sha256: enc.sha256.clone(),
            raw_bytes: enc.raw_bytes,
            first_line: 0,
            lines: enc.lines,
        })
        .unwrap();
    drop(journal);
    let sink = Sink::new(&cfg.to, cfg.sink.clone()).unwrap();
    let staged = Staged {
        key,
        path: elsewhere,
        size: enc.size,
        sha256: &enc.sha256,
        upload_id: None,
        parts: &[],
    };
    sink.deliver(staged, &mut NoMultipart).await.unwrap();
    enc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_upload_before_journal_is_delivered_once_without_duplicate() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("api");
    let files = write_numbered_files(&src, 3);
    let cfg = config(test_options(
        vec![src.display().to_string()],
        archive_url(tmp.path()).to_string(),
        &tmp.path().join("state"),
    ));
    let key = "2026-11-21/testhost/api/00000000000000000000.jsonl.zst";
    let enc = killed_after_upload(&cfg, &files, &tmp.path().join("encoded"), key).await;

    let shipper = InProcess::start(&cfg);
    wait_for_async("files deleted", Duration::from_secs(20), || {
        count_files(&src) == 0
    })
    .await;
    let metrics = shipper.stop().await;
    let (objects, mut lines) = archive_lines(&cfg).await;
    lines.sort();
    assert_eq!(objects, 1, "no duplicate object");
    assert_eq!(lines, vec!["{\"file\":0}", "{\"file\":1}", "{\"file\":2}"]);
    assert_eq!(metrics.shipped_files.get(), 3);
    assert_eq!(metrics.shipped_objects.get(), 1, "counted delivered");
    let sink = Sink::new(&cfg.to, cfg.sink.clone()).unwrap();
    let head = sink.store().head(&sink.path(key)).await.unwrap();
    assert_eq!(head.size, enc.size);
}

/// Writes `count` one-line files into `src`, each line naming its file; returns the names.
fn write_named_files(src: &Path, count: usize) -> BTreeSet<String> {
    fs::create_dir_all(src).unwrap();
    (0..count)
        .map(|i| {
            let name = format!("20261121T000000.{i:05}Z-01JD.json");
            let line = format!("{{\"file\":\"{name}\"}}");
            fs::write(src.join(&name), format!("{line}\n")).unwrap();
            name
        })
        .collect()
}

/// The files named by archived lines.
fn named_files(lines: &[String]) -> BTreeSet<String> {
    lines
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["file"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// Samples the source and the archive until the source is empty, requiring every file gone
/// from `all` to be archived already; returns how many samples it took.
async fn watch_deletions_follow_the_archive(
    src: &Path,
    all: &BTreeSet<String>,
    cfg: &Config,
) -> usize {
    let mut samples = 0;
    loop {
        // Source listing first, archive second: whatever is gone from the source must
        // already be in the archive.
        let present: BTreeSet<String> = fs::read_dir(src)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let (_, lines) = archive_lines(cfg).await;
        let shipped = named_files(&lines);
        for name in all.difference(&present) {
            assert!(
                shipped.contains(name),
                "{name} deleted before its batch was stored"
            );
        }
        samples += 1;
        if present.is_empty() {
            return samples;
        }
        assert!(samples < 2000, "shipping 10,000 files did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_small_files_ship_in_batches_each_deleted_only_after_its_batch_is_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("backend-api");
    let all = write_named_files(&src, 10_000);
    let mut opts = test_options(
        vec![src.display().to_string()],
        archive_url(tmp.path()).to_string(),
        &tmp.path().join("state"),
    );
    opts.batch_max_files = 1000;
    opts.batch_max_age = Duration::from_secs(3600);
    let cfg = config(opts);
    let shipper = InProcess::start(&cfg);
    let samples = watch_deletions_follow_the_archive(&src, &all, &cfg).await;
    let metrics = shipper.stop().await;
    let (objects, lines) = archive_lines(&cfg).await;
    assert_eq!(objects, 10, "10 batches of 1000 files");
    assert_eq!(lines.len(), 10_000);
    let unique: BTreeSet<_> = lines.iter().collect();
    assert_eq!(unique.len(), 10_000, "no duplicates");
    assert_eq!(metrics.shipped_files.get(), 10_000);
    assert_eq!(metrics.pending_files.get(), 0);
    assert!(
        samples > 1,
        "observed shipping in progress ({samples} samples)"
    );
}

/// Takes the local archive away (its root becomes a plain file, so every upload fails) or
/// brings it back empty.
fn set_storage_down(archive: &Path, down: bool) {
    if down {
        fs::remove_dir_all(archive).unwrap();
        fs::write(archive, "storage is down").unwrap();
    } else {
        fs::remove_file(archive).unwrap();
        fs::create_dir(archive).unwrap();
    }
}

/// Name and contents of every sealed file in `dir`.
fn sealed_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// While storage is down and both sides are full: the files kept fill the bound, none of them
/// is deleted, further lines are dropped (not written), and the failures are counted.
async fn assert_held_at_the_bound(
    src: &Path,
    snapshot: &[(String, Vec<u8>)],
    writer: &RotatingWriter,
    metrics: &Metrics,
    bound: u64,
) {
    let kept: usize = snapshot.iter().map(|(_, d)| d.len()).sum();
    assert!(
        kept as u64 >= bound && (kept as u64) < bound + 4000,
        "kept {kept}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (name, _) in snapshot {
        assert!(src.join(name).exists(), "unshipped {name} was deleted");
    }
    assert!(
        writer.stats().dropped_lines.get() > 0,
        "lines beyond the bound are not written to files"
    );
    let kinds = [
        "io",
        "other",
        "not_found",
        "staging_io",
        "unsupported",
        "auth",
    ];
    let errors = upload_errors(metrics, &kinds);
    assert!(errors > 0, "upload errors are counted");
    assert!(metrics.pending_bytes.get() >= bound as i64);
}

/// Every line of the files kept at the bound is archived, nothing twice, and fewer lines than
/// were `written` (the rest went to stdout only).
async fn assert_kept_files_archived_once(
    cfg: &Config,
    snapshot: &[(String, Vec<u8>)],
    written: u64,
) {
    let (_, lines) = archive_lines(cfg).await;
    let archived: BTreeSet<&str> = lines.iter().map(String::as_str).collect();
    assert_eq!(archived.len(), lines.len(), "no duplicates");
    for (name, data) in snapshot {
        for line in String::from_utf8_lossy(data).lines() {
            assert!(archived.contains(line), "{name}: {line} lost");
        }
    }
    assert!(
        (lines.len() as u64) < written,
        "some lines went to stdout only"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_bound_reached_stops_file_writes_and_deletes_nothing_unshipped() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("own");
    let bound = 20_000;
    let mut opts = test_options(
        vec![src.display().to_string()],
        archive_url(tmp.path()).to_string(),
        &tmp.path().join("state"),
    );
    opts.max_pending_bytes = bound;
    let cfg = config(opts);
    let shipper = InProcess::start(&cfg);
    let metrics = &shipper.metrics;
    let archive = tmp.path().join("archive");
    let journal = tmp.path().join("state/journal.jsonl");
    wait_for_async("shipper started", Duration::from_secs(10), || {
        journal.exists()
    })
    .await;
    set_storage_down(&archive, true);

    let producer = Producer::start(
        logfile::WriterConfig {
            max_pending_bytes: bound,
            ..writer_config(&src, 2000)
        },
        "bound",
        Duration::from_micros(200),
    );
    let w = producer.writer.clone();
    wait_for_async("writer pending full", Duration::from_secs(20), || {
        w.stats().pending_full.get() == 1
    })
    .await;
    wait_for_async("shipper pending full", Duration::from_secs(20), || {
        metrics.pending_full.get() == 1
    })
    .await;
    let snapshot = sealed_files(&src);
    assert_held_at_the_bound(&src, &snapshot, &w, metrics, bound).await;

    // Storage is back: everything drains, the writer writes files again.
    set_storage_down(&archive, false);
    wait_for_async(
        "shipper drains below the bound",
        Duration::from_secs(30),
        || metrics.pending_full.get() == 0,
    )
    .await;
    wait_for_async("writer resumes", Duration::from_secs(30), || {
        w.stats().pending_full.get() == 0
    })
    .await;
    let written = producer.stop();
    wait_for_async("drained", Duration::from_secs(30), || {
        count_files(&src) == 0
    })
    .await;
    shipper.stop().await;
    assert_kept_files_archived_once(&cfg, &snapshot, written).await;
}

fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logship_role_serves_probes_and_shipper_metrics_on_the_admin_port() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("api");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a.json"), "{\"a\":1}\n").unwrap();
    let cfg = config(test_options(
        vec![src.display().to_string()],
        archive_url(tmp.path()).to_string(),
        &tmp.path().join("state"),
    ));
    let port = test_support::free_port();
    let server = runtime::http::ServerArgs {
        host: std::net::Ipv4Addr::LOCALHOST.into(),
        drain_delay: Duration::from_millis(50),
        ..runtime::args::defaults().unwrap()
    };
    let with = logship::RunWith {
        admin: Some(runtime::http::ServerConfig::new(&server, port).unwrap()),
        seal_on_shutdown: None,
    };
    let token = CancellationToken::new();
    let ctx = runtime::Context::new("logship", token.clone(), Default::default());
    let run = tokio::spawn(logship::run(cfg, with, ctx.clone()));
    wait_for_async("ready", Duration::from_secs(10), || {
        ctx.readiness().is_ready()
    })
    .await;
    let mut metrics = String::new();
    for _ in 0..200 {
        metrics = tokio::task::spawn_blocking(move || http_get(port, "/metrics"))
            .await
            .unwrap();
        if metrics.contains("ferrostack_logship_shipped_files_total 1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(
        metrics.contains("ferrostack_logship_shipped_files_total 1"),
        "{metrics}"
    );
    assert_eq!(count_files(&src), 0);
    assert!(metrics.contains("ferrostack_build_info"), "{metrics}");
    let ready = tokio::task::spawn_blocking(move || http_get(port, "/readyz"))
        .await
        .unwrap();
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    token.cancel();
    run.await.unwrap().unwrap();
}
