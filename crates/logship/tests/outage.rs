//! Storage outage: the link to a real S3 server (moto) is cut for 20 s while a producer keeps
//! writing; the pending metric rises during the outage and falls after it, upload errors are
//! counted, and afterwards every line is in the archive exactly once.

use std::time::{Duration, Instant};

use logship::Metrics;
use tokio_util::sync::CancellationToken;

use crate::support::{
    Moto, Producer, Proxy, count_files, moto_store_options, test_options, wait_for_async,
    writer_config,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_outage_of_20s_loses_nothing_and_pending_rises_and_falls() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("outage");
    let proxy = Proxy::start(moto.endpoint.trim_start_matches("http://"));
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("own");
    let mut opts = test_options(
        vec![src.display().to_string()],
        "s3://outage/logs".into(),
        &tmp.path().join("state"),
    );
    opts.s3_endpoint = Some(proxy.endpoint.clone());
    opts.store_options = moto_store_options();
    opts.request_timeout = Duration::from_secs(2);
    let cfg = opts.validate().unwrap();
    let metrics = Metrics::default();
    let token = CancellationToken::new();
    let run = tokio::spawn(logship::run_until(
        cfg.clone(),
        metrics.clone(),
        token.clone(),
    ));
    let producer = Producer::start(
        writer_config(&src, 8192),
        "outage",
        Duration::from_millis(1),
    );

    let m = metrics.clone();
    wait_for_async("shipping to flow", Duration::from_secs(30), || {
        m.shipped_objects.get() >= 3
    })
    .await;
    let before = metrics.pending_bytes.get();
    proxy.set_down(true);
    let cut = Instant::now();
    let mut peak = 0;
    while cut.elapsed() < Duration::from_secs(20) {
        peak = peak.max(metrics.pending_bytes.get());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let shipped_during = metrics.shipped_objects.get();
    proxy.set_down(false);
    assert!(
        peak > before + 100_000,
        "pending rose during the outage: {before} -> {peak}"
    );
    let m = metrics.clone();
    wait_for_async(
        "pending to fall after the outage",
        Duration::from_secs(60),
        || m.pending_bytes.get() < peak / 4,
    )
    .await;
    assert!(metrics.shipped_objects.get() > shipped_during);
    let errors: u64 = ["connect", "timeout", "other", "server"]
        .iter()
        .map(|k| {
            metrics
                .upload_errors
                .get_or_create(&logship::metrics::ErrorLabels { kind: (*k).into() })
                .get()
        })
        .sum();
    assert!(errors > 0, "upload errors were counted during the outage");
    eprintln!(
        "outage: pending bytes {before} before, {peak} peak, {} after; {errors} upload errors",
        metrics.pending_bytes.get()
    );

    let writer = producer.writer.clone();
    let written = producer.stop();
    assert_eq!(
        writer.stats().dropped_lines.get(),
        0,
        "the writer dropped lines"
    );
    wait_for_async("drained", Duration::from_secs(60), || {
        count_files(&src) == 0
    })
    .await;
    token.cancel();
    run.await.unwrap().unwrap();
    let report = logship::verify(&cfg.to, cfg.sink.clone()).await.unwrap();
    let p = &report.producers["outage"];
    assert_eq!(
        (p.lines, p.missing, p.duplicates),
        (written, 0, 0),
        "{report}"
    );
    assert!(report.ok(), "{report}");
}
