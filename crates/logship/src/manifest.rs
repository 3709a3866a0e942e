//! Per-object manifests, so that the archive proves its own completeness: for each object,
//! its host, source, line numbering (`stream`), batch sequence number, the source's line range
//! (`first_line` ..= `last_line`; a source's lines are numbered from 0 across all its objects,
//! restarts and journal compactions of one state directory, its stream), line count, size and sha256 of the stored bytes. Written create-only,
//! like the data, as one JSON line in `<prefix>/.manifests/<key>.json` after the object is
//! stored and before the batch is journaled delivered (a crash in between writes the same
//! bytes again); on stores that keep user metadata (not `file://`) the same fields are the
//! object's metadata (`x-amz-meta-logship-*` on S3). A plain reader of the archive ignores
//! `.manifests/`; `logship verify` reads it.

use serde::{Deserialize, Serialize};

use crate::journal::BatchRecord;

/// Folder of the manifests, under the URL's prefix.
pub const MANIFEST_DIR: &str = ".manifests";

/// What one object holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The object's key relative to the URL's prefix.
    pub key: String,
    /// The shipping host (`{host}` of the key).
    pub host: String,
    /// The source's name (`{role}` of the key).
    pub source: String,
    /// The line numbering (`Journal::stream`): a new state directory starts a new one.
    pub stream: String,
    /// The batch's sequence number.
    pub seq: u64,
    /// The source's line number of the object's first line.
    pub first_line: u64,
    /// The source's line number of the object's last line (`None` for an object without
    /// lines: only empty files).
    pub last_line: Option<u64>,
    /// Lines (newline-terminated records) in the uncompressed object.
    pub lines: u64,
    /// Stored (compressed) bytes.
    pub size: u64,
    /// sha256 of the stored bytes, lowercase hex.
    pub sha256: String,
}

impl Manifest {
    /// The manifest of a journaled batch shipped by `host` in line numbering `stream`.
    pub fn of(record: &BatchRecord, host: &str, stream: &str) -> Self {
        Self {
            key: record.key.clone(),
            host: host.to_string(),
            source: record.source.clone(),
            stream: stream.to_string(),
            seq: record.seq,
            first_line: record.first_line,
            last_line: record.lines.checked_sub(1).map(|n| record.first_line + n),
            lines: record.lines,
            size: record.size,
            sha256: record.sha256.clone(),
        }
    }

    /// The line number after the object's last line.
    pub fn end_line(&self) -> u64 {
        self.first_line + self.lines
    }

    /// The manifest object's key relative to the URL's prefix.
    pub fn object_key(&self) -> String {
        format!("{MANIFEST_DIR}/{}.json", self.key)
    }

    /// The manifest object's bytes: one JSON line (deterministic, so a retry writes the same).
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).unwrap_or_default();
        line.push(b'\n');
        line
    }

    /// The object's user metadata (names without the store's `x-amz-meta-` prefix).
    pub fn metadata(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![
            ("logship-host", self.host.clone()),
            ("logship-source", self.source.clone()),
            ("logship-stream", self.stream.clone()),
            ("logship-seq", self.seq.to_string()),
            ("logship-first-line", self.first_line.to_string()),
            ("logship-lines", self.lines.to_string()),
            ("logship-sha256", self.sha256.clone()),
        ];
        if let Some(last) = self.last_line {
            out.push(("logship-last-line", last.to_string()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_is_inclusive_and_empty_objects_have_no_last_line() {
        let record = BatchRecord {
            seq: 7,
            source: "api".into(),
            key: "d/h/api/7.jsonl.zst".into(),
            files: Vec::new(),
            size: 10,
            sha256: "ab".into(),
            raw_bytes: 30,
            first_line: 100,
            lines: 3,
        };
        let m = Manifest::of(&record, "h", "s");
        assert_eq!(
            (m.first_line, m.last_line, m.end_line()),
            (100, Some(102), 103)
        );
        assert_eq!(m.object_key(), ".manifests/d/h/api/7.jsonl.zst.json");
        let back: Manifest = serde_json::from_slice(&m.to_line()).unwrap();
        assert_eq!(back, m);
        let empty = Manifest::of(&BatchRecord { lines: 0, ..record }, "h", "s");
        assert_eq!(empty.last_line, None);
        assert!(
            !empty
                .metadata()
                .iter()
                .any(|(k, _)| *k == "logship-last-line")
        );
    }
}
