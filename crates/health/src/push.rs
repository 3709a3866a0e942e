//! Pushgateway for the CronJob: after a run, POST the probe gauges and
//! `ferrostack_healthcheck_last_success_timestamp_seconds` to
//! `<url>/metrics/job/ferrostack-healthcheck`. POST replaces only the metric names pushed,
//! so a run that could not complete leaves the last-success timestamp as it was.

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use crate::metrics::Metrics;
use crate::record::Record;

/// The Pushgateway job label.
pub const JOB: &str = "ferrostack-healthcheck";

/// The Prometheus text body for a run's results; `last_success` is set when the run
/// completed (every target probed and the history written).
pub fn body(records: &[(Record, u32)], last_success: Option<f64>) -> String {
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    for (r, failures) in records {
        metrics.observe(r, *failures);
    }
    if let Some(t) = last_success {
        let g: Gauge<f64, AtomicU64> = Gauge::default();
        g.set(t);
        registry.register(
            "ferrostack_healthcheck_last_success_timestamp_seconds",
            "Unix time at which a healthcheck run last completed",
            g,
        );
    }
    runtime::metrics::push::encode(&registry)
}

/// POSTs `body` to the Pushgateway at `url`.
pub async fn push(url: &str, body: String) -> Result<(), String> {
    runtime::metrics::push::push(url, JOB, body)
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_prometheus_text_without_eof() {
        let text = body(&[], Some(1_767_225_600.0));
        assert!(
            text.contains("ferrostack_healthcheck_last_success_timestamp_seconds 1767225600.0"),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");
        assert!(!body(&[], None).contains("last_success"));
    }
}
