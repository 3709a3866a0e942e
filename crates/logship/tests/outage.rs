//! Storage outage: the link to a real S3 server (moto) is cut for 20 s while a producer keeps
//! writing; the pending metric rises during the outage and falls after it, upload errors are
//! counted, and afterwards every line is in the archive exactly once.

use std::path::Path;
use std::time::{Duration, Instant};

use logship::{Config, Metrics};

use crate::support::{
    InProcess, Moto, Producer, Proxy, count_files, moto_store_options, test_options, upload_errors,
    wait_for_async, writer_config,
};

/// Pending bytes around a cut link, and what had shipped when it came back.
struct Outage {
    before: i64,
    peak: i64,
    shipped_during: u64,
}

/// A shipper of `src` to the `outage` bucket through `proxy`, with a short request timeout so
/// a cut link turns into upload errors quickly.
fn config_through(proxy: &Proxy, src: &Path, state: &Path) -> Config {
    let mut opts = test_options(
        vec![src.display().to_string()],
        "s3://outage/logs".into(),
        state,
    );
    opts.s3_endpoint = Some(proxy.endpoint.clone());
    opts.store_options = moto_store_options();
    opts.request_timeout = Duration::from_secs(2);
    opts.validate().unwrap()
}

/// Cuts the link for `length`, sampling the pending bytes, then restores it.
async fn cut_link(proxy: &Proxy, metrics: &Metrics, length: Duration) -> Outage {
    let before = metrics.pending_bytes.get();
    proxy.set_down(true);
    let cut = Instant::now();
    let mut peak = 0;
    while cut.elapsed() < length {
        peak = peak.max(metrics.pending_bytes.get());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let shipped_during = metrics.shipped_objects.get();
    proxy.set_down(false);
    Outage {
        before,
        peak,
        shipped_during,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_outage_of_20s_loses_nothing_and_pending_rises_and_falls() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("outage");
    let proxy = Proxy::start(moto.endpoint.trim_start_matches("http://"));
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("own");
    let cfg = config_through(&proxy, &src, &tmp.path().join("state"));
    let shipper = InProcess::start(&cfg);
    let metrics = &shipper.metrics;
    let producer = Producer::start(
        writer_config(&src, 8192),
        "outage",
        Duration::from_millis(1),
    );

    wait_for_async("shipping to flow", Duration::from_secs(30), || {
        metrics.shipped_objects.get() >= 3
    })
    .await;
    let Outage {
        before,
        peak,
        shipped_during,
    } = cut_link(&proxy, metrics, Duration::from_secs(20)).await;
    assert!(
        peak > before + 100_000,
        "pending rose during the outage: {before} -> {peak}"
    );
    wait_for_async(
        "pending to fall after the outage",
        Duration::from_secs(60),
        || metrics.pending_bytes.get() < peak / 4,
    )
    .await;
    assert!(metrics.shipped_objects.get() > shipped_during);
    let errors = upload_errors(metrics, &["connect", "timeout", "other", "server"]);
    assert!(errors > 0, "upload errors were counted during the outage");
    eprintln!(
        "outage: pending bytes {before} before, {peak} peak, {} after; {errors} upload errors",
        metrics.pending_bytes.get()
    );

    let written = producer.stop_lossless();
    wait_for_async("drained", Duration::from_secs(60), || {
        count_files(&src) == 0
    })
    .await;
    shipper.stop().await;
    let report = logship::verify(&cfg.to, cfg.sink.clone()).await.unwrap();
    let p = &report.producers["outage"];
    assert_eq!(
        (p.lines, p.missing, p.duplicates),
        (written, 0, 0),
        "{report}"
    );
    assert!(report.ok(), "{report}");
}
