//! The segment naming contract between the writer and a shipper: the segment being written is
//! `.open-<ULID>.jsonl` and a shipper takes no name starting with `.`; a sealed segment is
//! `<UTC time of its ULID>-<ULID>.jsonl`, so sorting names sorts segments by write order.

use std::ffi::OsStr;

use ulid::Ulid;

/// Prefix of the segment being written; shippers ignore names starting with `.`.
pub const OPEN_PREFIX: &str = ".open-";
/// Extension of every segment.
pub const SEGMENT_EXT: &str = "jsonl";

/// Name of the segment `id` while it is written.
pub fn open_name(id: Ulid) -> String {
    format!("{OPEN_PREFIX}{id}.{SEGMENT_EXT}")
}

/// The id of an open segment's name; `None` for any other name.
pub fn open_id(name: &str) -> Option<Ulid> {
    name.strip_prefix(OPEN_PREFIX)
        .and_then(|rest| rest.strip_suffix(SEGMENT_EXT))
        .and_then(|rest| rest.strip_suffix('.'))
        .and_then(|id| Ulid::from_string(id).ok())
}

/// Final name of a segment: `<UTC time of its ULID>-<ULID>.jsonl` (sortable by time).
pub fn sealed_name(id: Ulid) -> String {
    let ms = id.timestamp_ms();
    let ts = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!(
        "[year][month][day]T[hour][minute][second].[subsecond digits:3]Z"
    );
    let stamp = ts.format(&fmt).unwrap_or_default();
    format!("{stamp}-{id}.{SEGMENT_EXT}")
}

/// Whether a shipper may take the file `name`: every name but those starting with `.`, which
/// are open segments and other files still being written.
pub fn is_finished(name: &OsStr) -> bool {
    name.as_encoded_bytes().first() != Some(&b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shipper_skips_open_segments_and_takes_sealed_ones() {
        let id = Ulid::generate();
        assert!(!is_finished(OsStr::new(&open_name(id))));
        assert!(is_finished(OsStr::new(&sealed_name(id))));
        assert!(is_finished(OsStr::new("app.log")));
        assert!(!is_finished(OsStr::new(".tmp-upload")));
    }

    #[test]
    fn open_names_round_trip_and_nothing_else_parses() {
        let id = Ulid::generate();
        assert_eq!(open_id(&open_name(id)), Some(id));
        assert_eq!(open_id(&sealed_name(id)), None);
        assert_eq!(open_id(&format!("{OPEN_PREFIX}{id}.log")), None);
        assert_eq!(open_id(&format!("{OPEN_PREFIX}{id}jsonl")), None);
        assert_eq!(open_id(&format!("{OPEN_PREFIX}nope.{SEGMENT_EXT}")), None);
    }

    #[test]
    fn sealed_names_sort_in_write_order() {
        let mut ids = ulid::Generator::new();
        let first = Ulid::from_parts(1_764_000_000_000, 5);
        let later = Ulid::from_parts(1_764_000_000_001, 1);
        let same_ms = [ids.generate().unwrap(), ids.generate().unwrap()];
        assert!(sealed_name(first) < sealed_name(later));
        assert!(sealed_name(same_ms[0]) < sealed_name(same_ms[1]));
        assert!(
            sealed_name(first).starts_with("20251124T"),
            "{}",
            sealed_name(first)
        );
    }
}
