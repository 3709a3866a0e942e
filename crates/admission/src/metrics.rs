//! Webhook metrics: reviews by operation, kind and decision; review latency; violations by
//! policy and mode; exceptions by policy and state; certificate reloads.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::policy::Violation;
use crate::review::Decision;

/// Labels of `ferrostack_webhook_reviews_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReviewLabels {
    /// CREATE, UPDATE, DELETE, CONNECT (`unknown` when the body is not an AdmissionReview).
    pub operation: &'static str,
    /// The request's kind when the policies apply to it, else `other` (`unknown` when the body
    /// is not an AdmissionReview): a bounded set whatever clients send.
    pub kind: &'static str,
    /// allowed, warned, denied, patched, timeout, error.
    pub decision: &'static str,
}

/// Labels of `ferrostack_webhook_violations_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ViolationLabels {
    /// The policy name.
    pub policy: &'static str,
    /// enforce or warn.
    pub mode: &'static str,
}

/// Labels of `ferrostack_webhook_exceptions_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ExceptionLabels {
    /// The policy excused (`exceptions` for a malformed annotation).
    pub policy: &'static str,
    /// active, expired, refused, malformed.
    pub state: &'static str,
}

/// Labels of `ferrostack_webhook_certificate_reloads_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// success or failure.
    pub outcome: &'static str,
}

/// The webhook's metric handles (cheap to clone).
#[derive(Clone, Debug)]
pub struct Metrics {
    /// `ferrostack_webhook_reviews_total`
    pub reviews: Family<ReviewLabels, Counter>,
    /// `ferrostack_webhook_review_duration_seconds`
    pub duration: Histogram,
    /// `ferrostack_webhook_violations_total`
    pub violations: Family<ViolationLabels, Counter>,
    /// `ferrostack_webhook_exceptions_total`
    pub exceptions: Family<ExceptionLabels, Counter>,
    /// `ferrostack_webhook_certificate_reloads_total`
    pub reloads: Family<ReloadLabels, Counter>,
}

// === impl Metrics ===

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            reviews: Family::default(),
            duration: Histogram::new([
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
            violations: Family::default(),
            exceptions: Family::default(),
            reloads: Family::default(),
        }
    }
}

impl Metrics {
    /// New handles registered in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Metrics::default();
        registry.register(
            "ferrostack_webhook_reviews",
            "AdmissionReviews answered, by operation, kind and decision",
            m.reviews.clone(),
        );
        registry.register(
            "ferrostack_webhook_review_duration_seconds",
            "Time from receiving an AdmissionReview to having its answer",
            m.duration.clone(),
        );
        registry.register(
            "ferrostack_webhook_violations",
            "Policy violations found in admitted objects (not counted for dryRun requests), by policy and mode",
            m.violations.clone(),
        );
        registry.register(
            "ferrostack_webhook_exceptions",
            "Violations an exception annotation touched (not counted for dryRun requests), by policy and state: active (a warning until it expires), expired, refused (namespace may not grant), malformed",
            m.exceptions.clone(),
        );
        registry.register(
            "ferrostack_webhook_certificate_reloads",
            "Serving certificate reloads from files, by outcome",
            m.reloads.clone(),
        );
        m
    }

    /// Counts one answered review and observes its latency.
    pub fn count_review(
        &self,
        operation: &'static str,
        kind: &'static str,
        decision: Decision,
        elapsed: Duration,
    ) {
        self.reviews
            .get_or_create(&ReviewLabels {
                operation,
                kind,
                decision: decision.as_str(),
            })
            .inc();
        self.duration.observe(elapsed.as_secs_f64());
    }

    /// Counts violations by policy and mode.
    pub fn record_violations(&self, violations: &[Violation]) {
        for v in violations {
            self.violations
                .get_or_create(&ViolationLabels {
                    policy: v.policy,
                    mode: v.mode.as_str(),
                })
                .inc();
            if let Some(state) = v.exception {
                let labels = ExceptionLabels {
                    policy: v.policy,
                    state: state.as_str(),
                };
                self.exceptions.get_or_create(&labels).inc();
            }
        }
    }
}
