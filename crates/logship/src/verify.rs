//! `logship verify`: lists the archive under the URL, downloads and decompresses every object,
//! counts objects, lines and bytes, checks lines are JSON, and for lines of a test producer
//! (`{"producer": ID, "seq": N, ...}`, also inside tracing's `fields`) checks that every seq
//! from 0 to the highest appears exactly once. Unreadable objects, missing or duplicate seqs
//! are problems (`ok()` is false); non-JSON lines are reported only. Staging objects of
//! multipart uploads (`.logship-staging/`) are not part of the archive and are skipped.

use std::collections::BTreeMap;
use std::fmt;

use futures::StreamExt;
use object_store::ObjectStoreExt;
use serde::Deserialize;
use url::Url;

use crate::encoder::decode;
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
    let mut listing = store.list(prefix.as_ref());
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
    let mut report = Report::default();
    let mut seqs: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (key, location, size) in keys {
        report.objects += 1;
        report.bytes += size;
        let data = match store.get(&location).await {
            Ok(r) => match r.bytes().await {
                Ok(b) => b,
                Err(e) => {
                    report.unreadable.push((key, e.to_string()));
                    continue;
                }
            },
            Err(e) => {
                report.unreadable.push((key, e.to_string()));
                continue;
            }
        };
        let plain = match decode(&key, &data) {
            Ok(p) => p,
            Err(e) => {
                report.unreadable.push((key, e.to_string()));
                continue;
            }
        };
        for line in plain.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            report.lines += 1;
            match serde_json::from_slice::<Probe>(line) {
                Ok(p) => {
                    let (producer, seq) = match p.fields {
                        Some(f) if f.producer.is_some() => (f.producer, f.seq),
                        _ => (p.producer, p.seq),
                    };
                    if let (Some(producer), Some(seq)) = (producer, seq) {
                        seqs.entry(producer).or_default().push(seq);
                    }
                }
                Err(_) => report.invalid_lines += 1,
            }
        }
    }
    for (producer, mut list) in seqs {
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
        report.producers.insert(
            producer,
            ProducerReport {
                lines,
                max_seq,
                missing: max_seq + 1 - list.len() as u64,
                duplicates: lines - list.len() as u64,
                first_missing,
            },
        );
    }
    Ok(report)
}
