//! The completeness check of `logship verify`: the manifests (`crate::manifest`) against the
//! objects they describe and against each other. Per source (host, source name and stream) the line
//! ranges of all manifests, sorted, must run from line 0 without a gap or an overlap; each
//! manifest's object must exist with the manifest's size, sha256 and line count. Every
//! problem is one [`Finding`] with a stable code, printed the way `logship fsck` prints its
//! findings.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::manifest::Manifest;

/// One problem verify found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What kind (snake_case, stable): `gap`, `overlap`, `object_missing`, `object_corrupt`,
    /// `line_count_mismatch`, `manifest_unreadable`, `object_unreadable`, `invalid_json`,
    /// `producer_missing`, `producer_duplicate`.
    pub code: &'static str,
    /// Where: an object key or `<host>/<source>/<stream>`.
    pub at: String,
    /// What it means.
    pub message: String,
}

/// What verify read of one data object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectFacts {
    /// Stored bytes.
    pub size: u64,
    /// sha256 of the stored bytes (`None`: could not be read).
    pub sha256: Option<String>,
    /// Newline-terminated lines after decompression (`None`: could not be read to its end).
    pub lines: Option<u64>,
}

/// Checks `manifests` against `objects` (by key relative to the prefix) and each source's
/// line ranges.
pub fn check(manifests: &[Manifest], objects: &BTreeMap<String, ObjectFacts>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for m in manifests {
        check_object(m, objects.get(&m.key), &mut findings);
    }
    let mut sources: BTreeMap<(&str, &str, &str), Vec<&Manifest>> = BTreeMap::new();
    for m in manifests.iter().filter(|m| m.lines > 0) {
        let id = (m.host.as_str(), m.source.as_str(), m.stream.as_str());
        sources.entry(id).or_default().push(m);
    }
    for ((host, source, stream), mut list) in sources {
        list.sort_by_key(|m| (m.first_line, m.end_line()));
        check_ranges(&format!("{host}/{source}/{stream}"), &list, &mut findings);
    }
    findings
}

fn check_object(m: &Manifest, object: Option<&ObjectFacts>, findings: &mut Vec<Finding>) {
    let Some(o) = object else {
        findings.push(Finding {
            code: "object_missing",
            at: m.key.clone(),
            message: format!(
                "the manifest lists lines {}..={} of {}/{} but the object is not in the archive",
                m.first_line,
                m.last_line.unwrap_or(m.first_line),
                m.host,
                m.source
            ),
        });
        return;
    };
    if o.size != m.size || o.sha256.as_ref().is_some_and(|h| *h != m.sha256) {
        findings.push(Finding {
            code: "object_corrupt",
            at: m.key.clone(),
            message: format!(
                "{} bytes with sha256 {}, the manifest says {} bytes with sha256 {}",
                o.size,
                o.sha256.as_deref().unwrap_or("?"),
                m.size,
                m.sha256
            ),
        });
    } else if let Some(lines) = o.lines.filter(|&n| n != m.lines) {
        findings.push(Finding {
            code: "line_count_mismatch",
            at: m.key.clone(),
            message: format!("{lines} lines, the manifest says {}", m.lines),
        });
    }
}

/// `list`: one source's manifests with lines, sorted by first line.
fn check_ranges(at: &str, list: &[&Manifest], findings: &mut Vec<Finding>) {
    let mut expected = 0u64;
    let mut previous: Option<&Manifest> = None;
    for m in list {
        if m.first_line > expected {
            findings.push(Finding {
                code: "gap",
                at: at.to_string(),
                message: format!(
                    "lines {expected}..={} are in no object (between {} and {})",
                    m.first_line - 1,
                    previous.map_or("the start", |p| p.key.as_str()),
                    m.key
                ),
            });
        } else if m.first_line < expected {
            findings.push(Finding {
                code: "overlap",
                at: at.to_string(),
                message: format!(
                    "lines {}..={} are in two objects ({} and {})",
                    m.first_line,
                    expected.min(m.end_line()) - 1,
                    previous.map_or("", |p| p.key.as_str()),
                    m.key
                ),
            });
        }
        if m.end_line() > expected {
            expected = m.end_line();
            previous = Some(m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(key: &str, first_line: u64, lines: u64) -> Manifest {
        Manifest {
            key: key.into(),
            host: "h".into(),
            source: "api".into(),
            stream: "s".into(),
            seq: 0,
            first_line,
            last_line: lines.checked_sub(1).map(|n| first_line + n),
            lines,
            size: 1,
            sha256: "x".into(),
        }
    }

    fn facts(list: &[&Manifest]) -> BTreeMap<String, ObjectFacts> {
        list.iter()
            .map(|m| {
                let f = ObjectFacts {
                    size: m.size,
                    sha256: Some(m.sha256.clone()),
                    lines: Some(m.lines),
                };
                (m.key.clone(), f)
            })
            .collect()
    }

    fn codes(f: &[Finding]) -> Vec<&str> {
        f.iter().map(|f| f.code).collect()
    }

    #[test]
    fn consecutive_ranges_are_clean_and_gaps_and_overlaps_are_found() {
        let (a, b, c) = (m("a", 0, 10), m("b", 10, 5), m("c", 15, 1));
        let empty = m("e", 16, 0);
        let objects = facts(&[&a, &b, &c, &empty]);
        let all = [a.clone(), b.clone(), c.clone(), empty];
        assert!(
            check(&all, &objects).is_empty(),
            "an empty object is no gap"
        );
        let gap = check(&[a.clone(), c.clone()], &facts(&[&a, &c]));
        assert_eq!(codes(&gap), ["gap"]);
        assert!(gap[0].message.starts_with("lines 10..=14"), "{gap:?}");
        let late = check(std::slice::from_ref(&b), &facts(&[&b]));
        assert!(late[0].message.starts_with("lines 0..=9"), "{late:?}");
        let twice = m("b2", 12, 5);
        let over = check(
            &[a.clone(), b.clone(), twice.clone()],
            &facts(&[&a, &b, &twice]),
        );
        assert_eq!(codes(&over), ["overlap"]);
        assert!(over[0].message.starts_with("lines 12..=14"), "{over:?}");
    }

    #[test]
    fn objects_are_checked_against_their_manifests() {
        let (a, b) = (m("a", 0, 10), m("b", 10, 5));
        let mut objects = facts(&[&a, &b]);
        objects.remove("b");
        assert_eq!(
            codes(&check(&[a.clone(), b.clone()], &objects)),
            ["object_missing"]
        );
        let mut objects = facts(&[&a]);
        objects.get_mut("a").unwrap().sha256 = Some("y".into());
        assert_eq!(
            codes(&check(std::slice::from_ref(&a), &objects)),
            ["object_corrupt"]
        );
        let mut objects = facts(&[&a]);
        objects.get_mut("a").unwrap().lines = Some(9);
        assert_eq!(codes(&check(&[a], &objects)), ["line_count_mismatch"]);
    }
}
