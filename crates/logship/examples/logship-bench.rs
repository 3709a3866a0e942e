//! Benchmark driver for bench/logship/run.sh (release build):
//! `writer DIR MIB`: MIB of 200-byte JSON lines through the rotating writer, then the same
//! bytes through a plain 64 KiB BufWriter (the limit); prints both rates.
//! `gen DIR MIB`: writes MIB of such lines as sealed 64 MiB segments (input for the shipper).
//! `ship SRC STATE ARCHIVE_DIR`: ships SRC to file://ARCHIVE_DIR until SRC is empty; prints
//! the rate over the uncompressed bytes, when the first object was stored and the most files
//! a listing kept in memory.
//! `backlog DIR FILES KIB`: FILES finished files of KIB each of such lines (the restart
//! backlog).

use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use logfile::{RotatingWriter, WriterConfig};
use logship::{Metrics, Options};
use tokio_util::sync::CancellationToken;

const LINE: usize = 200;

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A 200-byte JSON log line (newline included) with random request and trace ids, so that
/// it compresses about as well as real service logs (~5x with zstd -3).
fn line(i: u64, out: &mut Vec<u8>) {
    out.clear();
    let r = splitmix(i);
    let id = ulid::Ulid::from_parts(1_763_740_800_000 + i / 1000, u128::from(r) << 16);
    let _ = write!(
        out,
        "{{\"timestamp\":\"2026-11-21T16:{:02}:{:02}.{:06}Z\",\"level\":\"INFO\",\"message\":\"request served\",\"role\":\"backend-api\",\"request_id\":\"{id}\",\"trace\":\"{:016x}\",\"latency_ms\":{}",
        (i / 60_000) % 60,
        (i / 1000) % 60,
        r % 1_000_000,
        splitmix(r),
        r % 997
    );
    let pad = LINE.saturating_sub(out.len() + 2);
    out.extend(std::iter::repeat_n(b' ', pad));
    out.extend_from_slice(b"}\n");
    out.truncate(LINE);
}

fn rate(bytes: u64, took: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / took.as_secs_f64()
}

/// Two rounds of plain then writer, best of each: the comparison is the cost of the writer's
/// path (lock, buffer, rotation, fsync at seal) over a plain buffered write, not the disk's
/// writeback, which swings either measurement on a shared VM (run.sh uses tmpfs).
fn writer(dir: &Path, mib: u64) -> std::io::Result<()> {
    let n = mib * 1024 * 1024 / LINE as u64;
    let mut buf = Vec::with_capacity(LINE);
    std::fs::create_dir_all(dir)?;
    let (mut best_plain, mut best_writer) = (Duration::MAX, Duration::MAX);
    for _ in 0..2 {
        let plain_path = dir.join("plain.jsonl");
        let start = Instant::now();
        let mut plain = BufWriter::with_capacity(64 * 1024, std::fs::File::create(&plain_path)?);
        for i in 0..n {
            line(i, &mut buf);
            plain.write_all(&buf)?;
        }
        plain.flush()?;
        best_plain = best_plain.min(start.elapsed());
        drop(plain);
        std::fs::remove_file(&plain_path)?;
        let seg = dir.join("segments");
        let w = RotatingWriter::open(WriterConfig::new(&seg))?;
        let start = Instant::now();
        for i in 0..n {
            line(i, &mut buf);
            (&w).write_all(&buf)?;
        }
        w.seal()?;
        best_writer = best_writer.min(start.elapsed());
        drop(w);
        std::fs::remove_dir_all(&seg)?;
    }
    let bytes = n * LINE as u64;
    let (w, p) = (rate(bytes, best_writer), rate(bytes, best_plain));
    println!(
        "writer: {bytes} bytes, rotating writer {w:.1} MiB/s ({:.0} lines/s), plain BufWriter {p:.1} MiB/s, ratio {:.2}",
        n as f64 / best_writer.as_secs_f64(),
        w / p
    );
    Ok(())
}

fn gen_segments(dir: &Path, mib: u64) -> std::io::Result<()> {
    let n = mib * 1024 * 1024 / LINE as u64;
    let w = RotatingWriter::open(WriterConfig::new(dir))?;
    let mut buf = Vec::with_capacity(LINE);
    for i in 0..n {
        line(i, &mut buf);
        (&w).write_all(&buf)?;
    }
    w.seal()
}

fn gen_backlog(dir: &Path, files: u64, kib: u64) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut buf = Vec::with_capacity(LINE);
    let mut i = 0u64;
    for f in 0..files {
        let mut out = BufWriter::with_capacity(
            1 << 16,
            std::fs::File::create(dir.join(format!("{f:09}.jsonl")))?,
        );
        for _ in 0..kib * 1024 / LINE as u64 {
            line(i, &mut buf);
            out.write_all(&buf)?;
            i += 1;
        }
        out.flush()?;
    }
    Ok(())
}

async fn ship(src: &Path, state: &Path, archive: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let bytes: u64 = std::fs::read_dir(src)?
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    std::fs::create_dir_all(archive)?;
    let to = url::Url::from_directory_path(archive).map_err(|()| "archive path")?;
    let mut opts = Options::new(vec![src.display().to_string()], to.to_string());
    opts.state_dir = state.to_path_buf();
    opts.batch_max_age = Duration::ZERO;
    opts.scan_interval = Duration::from_millis(20);
    let config = opts.validate()?;
    let metrics = Metrics::default();
    let token = CancellationToken::new();
    let start = Instant::now();
    let run = tokio::spawn(logship::run_until(config, metrics.clone(), token.clone()));
    let (mut first, mut listed) = (None, 0);
    while metrics.shipped_files.get() == 0 || metrics.pending_files.get() > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        listed = listed.max(metrics.listed_files.get());
        if first.is_none() && metrics.shipped_objects.get() > 0 {
            first = Some(start.elapsed());
        }
    }
    token.cancel();
    run.await??;
    let took = start.elapsed();
    println!(
        "ship: {bytes} bytes in {:.2}s = {:.1} MiB/s, {} objects, {} stored bytes (ratio {:.2}), first object after {:.3}s, at most {listed} files listed in memory",
        took.as_secs_f64(),
        rate(bytes, took),
        metrics.shipped_objects.get(),
        metrics.shipped_bytes.get(),
        bytes as f64 / metrics.shipped_bytes.get().max(1) as f64,
        first.unwrap_or(took).as_secs_f64()
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_default();
    match arg(0) {
        "writer" => writer(Path::new(arg(1)), arg(2).parse()?)?,
        "gen" => gen_segments(Path::new(arg(1)), arg(2).parse()?)?,
        "backlog" => gen_backlog(Path::new(arg(1)), arg(2).parse()?, arg(3).parse()?)?,
        "ship" => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            rt.block_on(ship(
                Path::new(arg(1)),
                Path::new(arg(2)),
                Path::new(arg(3)),
            ))?;
        }
        _ => {
            return Err(
                "usage: logship-bench writer DIR MIB | gen DIR MIB | backlog DIR FILES KIB | ship SRC STATE ARCHIVE".into(),
            );
        }
    }
    Ok(())
}
