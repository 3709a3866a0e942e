//! The one probe-result builder of the integration tests.

use ferrostack_health::record::{Phases, Record};
use time::OffsetDateTime;

/// A result for `target` at `time`: a 200 success, or a 503 failing `[STATUS] (503) == 200`.
/// A test sets the fields it cares about with `Record { field, ..record(..) }`.
pub(crate) fn record(target: &str, time: OffsetDateTime, success: bool) -> Record {
    Record {
        time,
        target: target.into(),
        url: format!("http://{target}.example/"),
        success,
        status: Some(if success { 200 } else { 503 }),
        response_time_seconds: 0.02,
        duration_seconds: 0.02,
        attempts: 1,
        error: None,
        failed: if success {
            vec![]
        } else {
            vec!["[STATUS] (503) == 200".into()]
        },
        phases: Phases::default(),
        certificate_not_after: None,
        detail: ferrostack_health::record::Detail::default(),
        maintenance: false,
    }
}
