//! The audit CronJob's metrics, pushed to a Pushgateway after an API-server run: objects
//! audited, findings by policy and severity, and the time of the last completed audit.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use time::OffsetDateTime;

use super::Summary;

/// The Pushgateway job label.
pub(crate) const JOB: &str = "ferrostack-webhook-audit";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FindingLabels {
    policy: &'static str,
    severity: &'static str,
}

/// The run's gauges as Prometheus text.
pub(crate) fn body(summary: &Summary, finished: OffsetDateTime) -> String {
    let mut registry = Registry::default();
    let objects: Gauge = Gauge::default();
    objects.set(i64::try_from(summary.objects).unwrap_or(i64::MAX));
    registry.register(
        "ferrostack_webhook_audit_objects",
        "Objects the last audit judged",
        objects,
    );
    let findings: Family<FindingLabels, Gauge> = Family::default();
    for ((policy, severity), n) in &summary.by_policy {
        let labels = FindingLabels { policy, severity };
        findings
            .get_or_create(&labels)
            .set(i64::try_from(*n).unwrap_or(i64::MAX));
    }
    registry.register(
        "ferrostack_webhook_audit_findings",
        "Findings of the last audit, by policy and severity (error: an enforced policy)",
        findings,
    );
    let last: Gauge<f64, AtomicU64> = Gauge::default();
    last.set(finished.unix_timestamp_nanos() as f64 / 1e9);
    registry.register(
        "ferrostack_webhook_audit_last_success_timestamp_seconds",
        "Unix time at which an audit last completed",
        last,
    );
    runtime::metrics::push::encode(&registry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_carries_objects_findings_and_the_time() {
        let mut summary = Summary {
            objects: 3,
            ..Summary::default()
        };
        summary.by_policy.insert(("image-tag", "error"), 2);
        let text = body(&summary, time::macros::datetime!(2026-12-06 12:00 UTC));
        assert!(
            text.contains("ferrostack_webhook_audit_objects 3"),
            "{text}"
        );
        assert!(
            text.contains(
                r#"ferrostack_webhook_audit_findings{policy="image-tag",severity="error"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains("ferrostack_webhook_audit_last_success_timestamp_seconds 1796558400"),
            "{text}"
        );
    }
}
