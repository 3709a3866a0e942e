//! The election's one decision, kept apart from the API calls so its edge cases are tested on
//! their own: may this candidate write the Lease now, or must it wait?

use std::time::Duration;

use k8s_openapi::api::coordination::v1::LeaseSpec;
use tokio::time::Instant;

/// The Lease record as a candidate last saw it, and since when (its own clock) it has looked
/// like that.
#[derive(Debug, Clone)]
pub struct Observed {
    spec: LeaseSpec,
    since: Instant,
}

impl Observed {
    /// `spec` as seen at `at`.
    pub fn of(spec: &LeaseSpec, at: Instant) -> Self {
        Self {
            spec: spec.clone(),
            since: at,
        }
    }

    /// Whether `other` is the same record (then the older observation, and its time, stands).
    pub fn same_record(&self, other: &Self) -> bool {
        self.spec == other.spec
    }
}

/// What a candidate may do with the Lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// It holds the Lease: renew it.
    Renew,
    /// Nobody holds it, or its holder has been silent for the lease duration: take it over.
    Acquire,
    /// Another candidate holds it and renewed within the lease duration.
    Wait,
}

/// Decides from the observed record: the lease duration counts from when this candidate saw
/// the record last change, not from its `renewTime`, so a clock ahead or behind elsewhere
/// cannot shorten anyone's term. The record's own `leaseDurationSeconds` counts (the holder
/// may use another duration, as on release), else `ours`.
pub fn decide(observed: &Observed, identity: &str, ours: Duration, now: Instant) -> Decision {
    let holder = observed
        .spec
        .holder_identity
        .as_deref()
        .filter(|h| !h.is_empty());
    match holder {
        None => Decision::Acquire,
        Some(h) if h == identity => Decision::Renew,
        Some(_) => {
            let duration = observed
                .spec
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map_or(ours, Duration::from_secs);
            if now >= observed.since + duration {
                Decision::Acquire
            } else {
                Decision::Wait
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: Option<&str>, seconds: Option<i32>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            lease_duration_seconds: seconds,
            ..LeaseSpec::default()
        }
    }

    const D: Duration = Duration::from_secs(15);

    #[test]
    fn a_free_lease_is_taken_and_our_own_renewed() {
        let t0 = Instant::now();
        for free in [spec(None, Some(15)), spec(Some(""), Some(15))] {
            assert_eq!(
                decide(&Observed::of(&free, t0), "a", D, t0),
                Decision::Acquire
            );
        }
        let ours = Observed::of(&spec(Some("a"), Some(15)), t0);
        assert_eq!(decide(&ours, "a", D, t0 + D * 10), Decision::Renew);
    }

    #[test]
    fn another_holder_is_waited_for_the_lease_duration_from_when_we_saw_it_change() {
        let t0 = Instant::now();
        let theirs = Observed::of(&spec(Some("b"), Some(15)), t0);
        assert_eq!(decide(&theirs, "a", D, t0), Decision::Wait);
        assert_eq!(
            decide(&theirs, "a", D, t0 + D - Duration::from_millis(1)),
            Decision::Wait
        );
        assert_eq!(decide(&theirs, "a", D, t0 + D), Decision::Acquire);
        // A released Lease says 1 s: no need to wait out our 15 s.
        let released = Observed::of(&spec(Some("b"), Some(1)), t0);
        assert_eq!(
            decide(&released, "a", D, t0 + Duration::from_secs(1)),
            Decision::Acquire
        );
        // Without a duration in the record, ours counts.
        let bare = Observed::of(&spec(Some("b"), None), t0);
        assert_eq!(
            decide(&bare, "a", D, t0 + Duration::from_secs(14)),
            Decision::Wait
        );
    }

    #[test]
    fn a_renewal_restarts_the_wait_but_an_unchanged_record_does_not() {
        let t0 = Instant::now();
        let first = Observed::of(&spec(Some("b"), Some(15)), t0);
        let mut renewed = spec(Some("b"), Some(15));
        renewed.lease_transitions = Some(1);
        let again = Observed::of(&spec(Some("b"), Some(15)), t0 + Duration::from_secs(10));
        assert!(first.same_record(&again));
        assert!(!first.same_record(&Observed::of(&renewed, t0)));
    }
}
