//! The `/api/status` body, built once and shared: every request of the same second, while no
//! new result arrived and leadership did not change, gets the same bytes. Under load this
//! bounds both the work (one serialisation a second, not one a request) and the memory (one
//! body of ~1.7 MB for 1,000 targets, not one per request in flight), and only one body is
//! built at a time.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use time::OffsetDateTime;
use tokio::sync::Mutex;

/// What a body is valid for: the results seen, the second (windows, `generated_at`, the
/// maintenance state move with the clock) and whether this replica leads.
type Key = (u64, i64, bool);

/// The last body and the counter of results taken in.
#[derive(Debug, Default)]
pub(super) struct Snapshot {
    generation: AtomicU64,
    last: Mutex<Option<(Key, Bytes)>>,
}

impl Snapshot {
    /// New results were taken in: the next request builds a new body.
    pub(super) fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// As `changed`, if there are `records`.
    pub(super) fn changed_by<T>(&self, records: &[T]) {
        if !records.is_empty() {
            self.changed();
        }
    }

    /// The body for `now`, built by `build` unless the last one is still valid. `build` gets
    /// the last body's length, to size its buffer once instead of doubling it.
    pub(super) async fn body(
        &self,
        now: OffsetDateTime,
        leading: bool,
        build: impl FnOnce(usize) -> Bytes,
    ) -> Bytes {
        let key = (
            self.generation.load(Ordering::Acquire),
            now.unix_timestamp(),
            leading,
        );
        let mut last = self.last.lock().await;
        if let Some((k, body)) = last.as_ref()
            && *k == key
        {
            return body.clone();
        }
        // Let go of the old body first: requests still sending it keep it alive, but this
        // one does not have to hold it beside the new one.
        let hint = last.take().map_or(0, |(_, b)| b.len());
        let body = build(hint);
        *last = Some((key, body.clone()));
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_is_reused_until_a_result_the_second_or_leadership_changes() {
        let s = Snapshot::default();
        let t = time::macros::datetime!(2026-12-06 12:00:00.1 UTC);
        let built = std::cell::Cell::new(0);
        let build = |_| {
            built.set(built.get() + 1);
            Bytes::from(built.get().to_string())
        };
        assert_eq!(s.body(t, true, build).await, "1");
        let later = t + time::Duration::milliseconds(500);
        assert_eq!(
            s.body(later, true, build).await,
            "1",
            "same second, nothing new"
        );
        s.changed();
        assert_eq!(s.body(later, true, build).await, "2", "a new result");
        assert_eq!(s.body(later, false, build).await, "3", "leadership changed");
        let next = t + time::Duration::seconds(1);
        assert_eq!(s.body(next, false, build).await, "4", "the next second");
        let hint = std::cell::Cell::new(None);
        s.changed();
        s.body(next, false, |h| {
            hint.set(Some(h));
            Bytes::new()
        })
        .await;
        assert_eq!(hint.get(), Some(1), "the last body's length");
    }
}
