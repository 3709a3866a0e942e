//! `logship verify`: lists the archive under the URL, downloads and decompresses every object,
//! counts objects, lines and bytes, checks lines are JSON, and for lines of a test producer
//! (`{"producer": ID, "seq": N, ...}`, also inside tracing's `fields`) checks that every seq
//! from 0 to the highest appears exactly once. Unreadable objects, lines that are not JSON,
//! missing or duplicate seqs are problems (`ok()` is false). Objects are decompressed as a
//! stream and a line longer than [`MAX_LINE_BYTES`] makes its object unreadable, so memory
//! stays bounded whatever an object expands to (a zstd bomb). Staging objects of multipart
//! uploads (`.logship-staging/`) are not part of the archive and are skipped.
//!
//! The manifests (`.manifests/`, `crate::manifest`) are read too and checked by
//! [`crate::completeness`]: no gap or overlap in any source's line ranges, each object with
//! its manifest's size, sha256 and line count. Objects without a manifest (archives of older
//! versions, or an object whose manifest the shipper has not written yet) are counted, not a
//! problem.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, BufReader, Read};

use futures::StreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use serde::Deserialize;
use url::Url;

use crate::completeness::{self, Finding, ObjectFacts};
use crate::encoder::{decoder, hex};
use crate::manifest::Manifest;

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
    /// Manifests read.
    pub manifests: u64,
    /// Objects no manifest describes.
    pub unmanifested: u64,
    /// What the manifests check found (`crate::completeness`).
    pub findings: Vec<Finding>,
}

impl Report {
    /// True if the archive has no problem.
    pub fn ok(&self) -> bool {
        self.unreadable.is_empty()
            && self.findings.is_empty()
            && self.invalid_lines == 0
            && self
                .producers
                .values()
                .all(|p| p.missing == 0 && p.duplicates == 0)
    }
}

impl Report {
    /// Every problem as a finding: the completeness findings, then unreadable objects
    /// (`object_unreadable`), lines that are not JSON (`invalid_json`) and the test producers'
    /// missing and repeated seqs (`producer_missing`, `producer_duplicate`).
    pub fn all_findings(&self) -> Vec<Finding> {
        let mut out = self.findings.clone();
        for (key, why) in &self.unreadable {
            out.push(finding("object_unreadable", key, why.clone()));
        }
        if self.invalid_lines > 0 {
            let why = format!("{} lines are not JSON", self.invalid_lines);
            out.push(finding("invalid_json", "archive", why));
        }
        for (id, p) in &self.producers {
            if p.missing > 0 {
                let why = format!(
                    "{} seqs missing, the first {:?}",
                    p.missing, p.first_missing
                );
                out.push(finding("producer_missing", id, why));
            }
            if p.duplicates > 0 {
                let why = format!("{} seqs seen twice", p.duplicates);
                out.push(finding("producer_duplicate", id, why));
            }
        }
        out
    }

    /// One JSON object per finding, then a summary object: `{"summary": {...}}` (as
    /// `logship fsck --json`).
    pub fn json_lines(&self) -> String {
        let mut out = String::new();
        let findings = self.all_findings();
        for f in &findings {
            out.push_str(&serde_json::to_string(f).unwrap_or_default());
            out.push('\n');
        }
        let summary = serde_json::json!({"summary": {
            "problems": findings.len(),
            "objects": self.objects,
            "bytes": self.bytes,
            "lines": self.lines,
            "manifests": self.manifests,
            "objects_without_manifest": self.unmanifested,
            "ok": self.ok(),
        }});
        out.push_str(&summary.to_string());
        out
    }
}

fn finding(code: &'static str, at: &str, message: String) -> Finding {
    Finding {
        code,
        at: at.to_string(),
        message,
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
        writeln!(
            f,
            "manifests={} objects_without_manifest={} completeness_problems={}",
            self.manifests,
            self.unmanifested,
            self.findings.len()
        )?;
        for x in &self.findings {
            writeln!(f, "{} {}: {}", x.code, x.at, x.message)?;
        }
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
    let listing = list_keys(&sink).await?;
    let mut report = Report::default();
    let mut seqs: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut facts = BTreeMap::new();
    for (key, location, size) in listing.data {
        report.objects += 1;
        report.bytes += size;
        let object = read_object(&sink, &key, &location).await;
        report.lines += object.lines;
        report.invalid_lines += object.invalid;
        for (producer, seq) in object.seqs {
            seqs.entry(producer).or_default().push(seq);
        }
        let lines = object.error.is_none().then_some(object.newlines);
        if let Some(why) = object.error {
            report.unreadable.push((key, why));
        }
        let sha256 = object.sha256;
        let facts_of = ObjectFacts {
            size,
            sha256,
            lines,
        };
        facts.insert(relative(&sink, &location), facts_of);
    }
    for (producer, list) in seqs {
        report.producers.insert(producer, summarize(list));
    }
    let manifests = read_manifests(&sink, &listing.manifests, &mut report).await;
    let described: std::collections::BTreeSet<&str> =
        manifests.iter().map(|m| m.key.as_str()).collect();
    report.unmanifested = facts
        .keys()
        .filter(|k| !described.contains(k.as_str()))
        .count() as u64;
    report
        .findings
        .extend(completeness::check(&manifests, &facts));
    Ok(report)
}

/// Downloads and scans one object (decompression is CPU work: off the async threads).
async fn read_object(sink: &Sink, key: &str, location: &ObjectPath) -> ObjectScan {
    let data = match sink.store().get(location).await {
        Ok(r) => r.bytes().await,
        Err(e) => Err(e),
    };
    let data = match data {
        Ok(b) => b,
        Err(e) => {
            return ObjectScan {
                error: Some(e.to_string()),
                ..ObjectScan::default()
            };
        }
    };
    let k = key.to_string();
    let scanned = tokio::task::spawn_blocking(move || {
        let mut object = scan_object(&k, &data[..]);
        object.sha256 = Some(hex(&<sha2::Sha256 as sha2::Digest>::digest(&data[..])));
        object
    })
    .await;
    scanned.unwrap_or_else(|e| ObjectScan {
        error: Some(e.to_string()),
        ..ObjectScan::default()
    })
}

/// Reads the manifest objects; an unreadable one is a `manifest_unreadable` finding.
async fn read_manifests(sink: &Sink, paths: &[ObjectPath], report: &mut Report) -> Vec<Manifest> {
    let mut out = Vec::new();
    for path in paths {
        let data = match sink.store().get(path).await {
            Ok(r) => r.bytes().await,
            Err(e) => Err(e),
        };
        let parsed = data.map_err(|e| e.to_string()).and_then(|data| {
            data.split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| serde_json::from_slice::<Manifest>(l).map_err(|e| e.to_string()))
                .collect::<Result<Vec<_>, _>>()
        });
        match parsed {
            Ok(list) => {
                report.manifests += 1;
                out.extend(list);
            }
            Err(why) => report.findings.push(Finding {
                code: "manifest_unreadable",
                at: path.to_string(),
                message: why,
            }),
        }
    }
    out
}

/// A location's key relative to the URL's prefix (as manifests name objects).
fn relative(sink: &Sink, location: &ObjectPath) -> String {
    match location.prefix_match(sink.prefix()) {
        Some(parts) => parts
            .map(|p| p.as_ref().to_string())
            .collect::<Vec<_>>()
            .join("/"),
        None => location.to_string(),
    }
}

/// What one object held.
#[derive(Default)]
struct ObjectScan {
    lines: u64,
    /// Newline-terminated lines, empty ones too (the manifests' count).
    newlines: u64,
    /// sha256 of the stored bytes.
    sha256: Option<String>,
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
            object.newlines += 1;
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

/// The archive's data objects (sorted, with location and size) and manifest objects.
#[derive(Default)]
struct Listing {
    data: Vec<(String, ObjectPath, u64)>,
    manifests: Vec<ObjectPath>,
}

/// Lists the archive, without the local store's temporary files (`#`) and staging objects.
async fn list_keys(sink: &Sink) -> Result<Listing, VerifyError> {
    let prefix = (!sink.prefix().as_ref().is_empty()).then(|| sink.prefix().clone());
    let mut listing = sink.store().list(prefix.as_ref());
    let mut out = Listing::default();
    while let Some(meta) = listing.next().await {
        let meta = meta?;
        let key = meta.location.to_string();
        // `#` marks the local store's temporary files; staging objects are not the archive.
        if key.contains('#') || sink.is_staging(&meta.location) {
            continue;
        }
        if sink.is_manifest(&meta.location) {
            out.manifests.push(meta.location);
        } else {
            out.data.push((key, meta.location, meta.size));
        }
    }
    out.data.sort_by(|a, b| a.0.cmp(&b.0));
    out.manifests.sort();
    Ok(out)
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
