//! The shipper in process against the local filesystem store: a crash between upload and
//! journal is delivered once, 10,000 small files ship in batches and each is deleted only after
//! its batch is in the archive, and the pending bound keeps every unshipped file.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::time::Duration;

use logship::encoder::{Compression, Input, encode};
use logship::journal::{BatchRecord, Journal};
use logship::sink::{MultipartProgress, Sink, SinkError, Staged};
use logship::{Config, Metrics, Options};
use object_store::ObjectStoreExt;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::support::{Producer, count_files, test_options, wait_for_async, writer_config};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_upload_before_journal_is_delivered_once_without_duplicate() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("api");
    fs::create_dir_all(&src).unwrap();
    let mut files = Vec::new();
    for i in 0..3 {
        let p = src.join(format!("2026-11-21T00000{i}Z-x.json"));
        fs::write(&p, format!("{{\"file\":{i}}}\n")).unwrap();
        files.push(p);
    }
    let cfg = config(test_options(
        vec![src.display().to_string()],
        archive_url(tmp.path()).to_string(),
        &tmp.path().join("state"),
    ));
    // The previous run packed the batch, journaled it and uploaded it, then was killed before
    // journaling the delivery (and its staged copy is gone too).
    let elsewhere = tmp.path().join("encoded");
    let inputs: Vec<Input> = files
        .iter()
        .map(|p| Input {
            path: p.clone(),
            expect: None,
        })
        .collect();
    let enc = encode(&inputs, &elsewhere, Compression::Zstd(3)).unwrap();
    let key = "2026-11-21/testhost/api/00000000000000000000.jsonl.zst";
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
        })
        .unwrap();
    drop(journal);
    let sink = Sink::new(&cfg.to, cfg.sink.clone()).unwrap();
    let staged = Staged {
        key,
        path: &elsewhere,
        size: enc.size,
        sha256: &enc.sha256,
        upload_id: None,
        parts: &[],
    };
    sink.deliver(staged, &mut NoMultipart).await.unwrap();

    let metrics = Metrics::default();
    let token = CancellationToken::new();
    let run = tokio::spawn(logship::run_until(
        cfg.clone(),
        metrics.clone(),
        token.clone(),
    ));
    wait_for_async("files deleted", Duration::from_secs(20), || {
        count_files(&src) == 0
    })
    .await;
    token.cancel();
    run.await.unwrap().unwrap();
    let (objects, mut lines) = archive_lines(&cfg).await;
    lines.sort();
    assert_eq!(objects, 1, "no duplicate object");
    assert_eq!(lines, vec!["{\"file\":0}", "{\"file\":1}", "{\"file\":2}"]);
    assert_eq!(metrics.shipped_files.get(), 3);
    assert_eq!(metrics.shipped_objects.get(), 1, "counted delivered");
    let head = sink.store().head(&sink.path(key)).await.unwrap();
    assert_eq!(head.size, enc.size);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_small_files_ship_in_batches_each_deleted_only_after_its_batch_is_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("backend-api");
    fs::create_dir_all(&src).unwrap();
    let mut all = BTreeSet::new();
    for i in 0..10_000 {
        let name = format!("20261121T000000.{i:05}Z-01JD.json");
        let line = format!("{{\"file\":\"{name}\"}}");
        fs::write(src.join(&name), format!("{line}\n")).unwrap();
        all.insert(name);
    }
    let mut opts = test_options(
        vec![src.display().to_string()],
        archive_url(tmp.path()).to_string(),
        &tmp.path().join("state"),
    );
    opts.batch_max_files = 1000;
    opts.batch_max_age = Duration::from_secs(3600);
    let cfg = config(opts);
    let metrics = Metrics::default();
    let token = CancellationToken::new();
    let run = tokio::spawn(logship::run_until(
        cfg.clone(),
        metrics.clone(),
        token.clone(),
    ));
    let mut samples = 0;
    loop {
        // Source listing first, archive second: whatever is gone from the source must
        // already be in the archive.
        let present: BTreeSet<String> = fs::read_dir(&src)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let (_, lines) = archive_lines(&cfg).await;
        let shipped: BTreeSet<String> = lines
            .iter()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["file"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        for name in all.difference(&present) {
            assert!(
                shipped.contains(name),
                "{name} deleted before its batch was stored"
            );
        }
        samples += 1;
        if present.is_empty() {
            break;
        }
        assert!(samples < 2000, "shipping 10,000 files did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    token.cancel();
    run.await.unwrap().unwrap();
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
    let metrics = Metrics::default();
    let token = CancellationToken::new();
    let run = tokio::spawn(logship::run_until(
        cfg.clone(),
        metrics.clone(),
        token.clone(),
    ));
    // Storage goes away: the archive root becomes a plain file, so every upload fails.
    let archive = tmp.path().join("archive");
    let journal = tmp.path().join("state/journal.jsonl");
    wait_for_async("shipper started", Duration::from_secs(10), || {
        journal.exists()
    })
    .await;
    fs::remove_dir_all(&archive).unwrap();
    fs::write(&archive, "storage is down").unwrap();

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
    let snapshot: Vec<(String, Vec<u8>)> = fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    let kept: usize = snapshot.iter().map(|(_, d)| d.len()).sum();
    assert!(
        kept as u64 >= bound && (kept as u64) < bound + 4000,
        "kept {kept}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (name, _) in &snapshot {
        assert!(src.join(name).exists(), "unshipped {name} was deleted");
    }
    assert!(
        w.stats().dropped_lines.get() > 0,
        "lines beyond the bound are not written to files"
    );
    let errors: u64 = [
        "io",
        "other",
        "not_found",
        "staging_io",
        "unsupported",
        "auth",
    ]
    .iter()
    .map(|k| {
        metrics
            .upload_errors
            .get_or_create(&logship::metrics::ErrorLabels { kind: (*k).into() })
            .get()
    })
    .sum();
    assert!(errors > 0, "upload errors are counted");
    assert!(metrics.pending_bytes.get() >= bound as i64);

    // Storage is back: everything drains, the writer writes files again.
    fs::remove_file(&archive).unwrap();
    fs::create_dir(&archive).unwrap();
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
    token.cancel();
    run.await.unwrap().unwrap();
    let (_, lines) = archive_lines(&cfg).await;
    let archived: BTreeSet<&str> = lines.iter().map(String::as_str).collect();
    assert_eq!(archived.len(), lines.len(), "no duplicates");
    for (name, data) in &snapshot {
        for line in String::from_utf8_lossy(data).lines() {
            assert!(archived.contains(line), "{name}: {line} lost");
        }
    }
    assert!(
        (lines.len() as u64) < written,
        "some lines went to stdout only"
    );
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
