//! A background failure (the flush thread's write, the sealer's fsync or rename) kept for the
//! next caller, the way fsync(2) reports a failed writeback: once.

use std::io;
use std::sync::{Arc, Mutex};

/// The first background failure not yet returned to a caller (shared with the sealer thread).
#[derive(Clone, Debug, Default)]
pub(crate) struct Deferred(Arc<Mutex<Option<io::Error>>>);

impl Deferred {
    /// Keeps `error` unless an earlier one is still waiting (the first failure is the cause).
    pub(crate) fn set(&self, op: &str, error: &io::Error) {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(io::Error::new(
                error.kind(),
                format!("log file {op} failed in the background: {error}"),
            ));
        }
    }

    /// The waiting failure, handed out once.
    pub(crate) fn take(&self) -> Option<io::Error> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_is_returned_once() {
        let deferred = Deferred::default();
        assert!(deferred.take().is_none());
        let shared = deferred.clone();
        shared.set(
            "write",
            &io::Error::new(io::ErrorKind::StorageFull, "disk full"),
        );
        shared.set("seal", &io::Error::other("later"));
        let e = deferred.take().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert_eq!(
            e.to_string(),
            "log file write failed in the background: disk full"
        );
        assert!(deferred.take().is_none(), "reported once");
        shared.set("seal", &io::Error::other("next"));
        assert!(deferred.take().unwrap().to_string().contains("seal failed"));
    }
}
