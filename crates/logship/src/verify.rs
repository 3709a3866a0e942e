//! `logship verify`: lists the archive under the URL, downloads and decompresses every object,
//! counts objects, lines and bytes, checks lines are JSON, and for lines of a test producer
//! (`{"producer": ID, "seq": N, ...}`, also inside tracing's `fields`) checks that every seq
//! from 0 to the highest appears exactly once. Unreadable objects, lines that are not JSON,
//! missing or duplicate seqs are problems (`ok()` is false). Objects are decompressed as a
//! stream and a line longer than [`MAX_LINE_BYTES`] makes its object unreadable, so memory
//! stays bounded whatever an object expands to (a zstd bomb). Staging objects of multipart
//! uploads (`.logship-staging/`) are not part of the archive and are skipped.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, BufReader, Read};

use futures::StreamExt;
use object_store::ObjectStoreExt;
use serde::Deserialize;
use url::Url;

use crate::encoder::decoder;

/// The longest line verify reads; a longer one makes its object unreadable.
pub const MAX_LINE_BYTES: u64 = 8 * 1024 * 1024;
use crate::sink::{BuildError, Sink, SinkOptions};

/// Sequence check of one producer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProducerReport {
    /// Lines seen.
    pub lines: u64,
    /// Highest seq.
    pub max_seq: u64,
    /// Seqs in 0..=max missing.
    pub missing: u64,
    /// Lines whose seq was seen before.
    pub duplicates: u64,
    /// The first few missing seqs.
    pub first_missing: Vec<u64>,
}

/// What verify found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Objects listed.
    pub objects: u64,
    /// Compressed bytes.
    pub bytes: u64,
    /// Uncompressed lines.
    pub lines: u64,
    /// Lines that are not JSON.
    pub invalid_lines: u64,
    /// Objects that could not be read or decompressed, with the reason.
    pub unreadable: Vec<(String, String)>,
    /// Per test producer.
    pub producers: BTreeMap<String, ProducerReport>,
}

impl Report {
    /// True if the archive has no problem.
    pub fn ok(&self) -> bool {
        self.unreadable.is_empty()
            && self.invalid_lines == 0
            && self
                .producers
                .values()
                .all(|p| p.missing == 0 && p.duplicates == 0)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "objects={} bytes={} lines={} invalid_json_lines={} unreadable={}",
            self.objects,
            self.bytes,
            self.lines,
            self.invalid_lines,
            self.unreadable.len()
        )?;
        for (key, why) in &self.unreadable {
            writeln!(f, "unreadable {key}: {why}")?;
        }
        for (id, p) in &self.producers {
            writeln!(
                f,
                "producer {id}: lines={} max_seq={} missing={} duplicates={} first_missing={:?}",
                p.lines, p.max_seq, p.missing, p.duplicates, p.first_missing
            )?;
        }
        write!(f, "{}", if self.ok() { "OK" } else { "PROBLEMS FOUND" })
    }
}

/// Verify errors (the archive could not be listed at all).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Bad destination.
    #[error("--to: {0}")]
    Sink(#[from] BuildError),
    /// Listing failed.
    #[error("listing the archive: {0}")]
    List(#[from] object_store::Error),
}

#[derive(Deserialize)]
struct Probe {
    producer: Option<String>,
    seq: Option<u64>,
    fields: Option<Fields>,
}

#[derive(Deserialize)]
struct Fields {
    producer: Option<String>,
    seq: Option<u64>,
}

/// Checks the archive at `url`.
pub async fn verify(url: &Url, options: SinkOptions) -> Result<Report, VerifyError> {
    let sink = Sink::new(url, options)?;
    let store = sink.store().clone();
    let prefix = sink.prefix().clone();
    let prefix = (!prefix.as_ref().is_empty()).then_some(prefix);
    let keys = list_keys(&sink, prefix.as_ref()).await?;
    let mut report = Report::default();
    let mut seqs: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (key, location, size) in keys {
        report.objects += 1;
        report.bytes += size;
        let data = match store.get(&location).await {
            Ok(r) => r.bytes().await,
            Err(e) => Err(e),
        };
        let data = match data {
            Ok(b) => b,
            Err(e) => {
                report.unreadable.push((key, e.to_string()));
                continue;
            }
        };
        // Decompression is CPU work: off the async threads.
        let k = key.clone();
        let scanned = tokio::task::spawn_blocking(move || scan_object(&k, &data[..])).await;
        let object = match scanned {
            Ok(object) => object,
            Err(e) => ObjectScan {
                error: Some(e.to_string()),
                ..ObjectScan::default()
            },
        };
        report.lines += object.lines;
        report.invalid_lines += object.invalid;
        for (producer, seq) in object.seqs {
            seqs.entry(producer).or_default().push(seq);
        }
        if let Some(why) = object.error {
            report.unreadable.push((key, why));
        }
    }
    for (producer, list) in seqs {
        report.producers.insert(producer, summarize(list));
    }
    Ok(report)
}

/// What one object held.
#[derive(Default)]
struct ObjectScan {
    lines: u64,
    invalid: u64,
    seqs: Vec<(String, u64)>,
    /// Why the object could not be read to its end.
    error: Option<String>,
}

/// Decompresses an object as a stream, line by line, each line at most [`MAX_LINE_BYTES`].
fn scan_object(key: &str, data: &[u8]) -> ObjectScan {
    let mut object = ObjectScan::default();
    let mut reader = match decoder(key, data) {
        Ok(r) => BufReader::new(r),
        Err(e) => {
            object.error = Some(e.to_string());
            return object;
        }
    };
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader)
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut line)
        {
            Ok(0) => return object,
            Ok(_) => {}
            Err(e) => {
                object.error = Some(e.to_string());
                return object;
            }
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        } else if line.len() as u64 > MAX_LINE_BYTES {
            object.error = Some(format!(
                "line {} is longer than {MAX_LINE_BYTES} bytes; not read further",
                object.lines + 1
            ));
            return object;
        }
        if !line.is_empty() {
            object.lines += 1;
            probe_line(&line, &mut object);
        }
    }
}

fn probe_line(line: &[u8], object: &mut ObjectScan) {
    match serde_json::from_slice::<Probe>(line) {
        Ok(p) => {
            let (producer, seq) = match p.fields {
                Some(f) if f.producer.is_some() => (f.producer, f.seq),
                _ => (p.producer, p.seq),
            };
            if let (Some(producer), Some(seq)) = (producer, seq) {
                object.seqs.push((producer, seq));
            }
        }
        Err(_) => object.invalid += 1,
    }
}

/// The archive's keys, sorted, without the local store's temporary files (`#`) and staging
/// objects, with their location and size.
async fn list_keys(
    sink: &Sink,
    prefix: Option<&object_store::path::Path>,
) -> Result<Vec<(String, object_store::path::Path, u64)>, VerifyError> {
    let mut listing = sink.store().list(prefix);
    let mut keys = Vec::new();
    while let Some(meta) = listing.next().await {
        let meta = meta?;
        let key = meta.location.to_string();
        // `#` marks the local store's temporary files; staging objects are not the archive.
        if !key.contains('#') && !sink.is_staging(&meta.location) {
            keys.push((key, meta.location, meta.size));
        }
    }
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(keys)
}

/// The sequence check of one producer's seqs.
fn summarize(mut list: Vec<u64>) -> ProducerReport {
    list.sort_unstable();
    let lines = list.len() as u64;
    let max_seq = list.last().copied().unwrap_or(0);
    list.dedup();
    let mut first_missing = Vec::new();
    let mut expected = 0;
    for &s in &list {
        while expected < s && first_missing.len() < 10 {
            first_missing.push(expected);
            expected += 1;
        }
        expected = s + 1;
    }
    ProducerReport {
        lines,
        max_seq,
        missing: max_seq + 1 - list.len() as u64,
        duplicates: lines - list.len() as u64,
        first_missing,
    }
}
