//! Probe metrics under blackbox_exporter's names, labelled by target: `probe_success`,
//! `probe_duration_seconds`, `probe_http_status_code`, `probe_http_duration_seconds{phase}`
//! (only the phases measured), `probe_ssl_earliest_cert_expiry`, plus
//! `ferrostack_healthcheck_consecutive_failures` and
//! `ferrostack_healthcheck_last_run_timestamp_seconds`; the `probe_http_*` ones for http(s)
//! targets only, the other probe types' in `kinds`.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::record::Record;

mod kinds;

type FloatGauge = Gauge<f64, AtomicU64>;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabel {
    target: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    target: String,
    phase: &'static str,
}

/// The health checker's metric families; cheap to clone (shared handles).
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    success: Family<TargetLabel, Gauge>,
    duration: Family<TargetLabel, FloatGauge>,
    status: Family<TargetLabel, Gauge>,
    phase: Family<PhaseLabel, FloatGauge>,
    cert_expiry: Family<TargetLabel, Gauge>,
    consecutive_failures: Family<TargetLabel, Gauge>,
    last_run: FloatGauge,
    kinds: kinds::KindMetrics,
}

// === impl Metrics ===

impl Metrics {
    /// Creates the families and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let mut m = Self::default();
        registry.register(
            "probe_success",
            "Whether the probe succeeded (1) or failed (0)",
            m.success.clone(),
        );
        registry.register(
            "probe_duration_seconds",
            "How long the probe took, retries included, in seconds",
            m.duration.clone(),
        );
        registry.register(
            "probe_http_status_code",
            "HTTP status code of the final response (0: none)",
            m.status.clone(),
        );
        registry.register(
            "probe_http_duration_seconds",
            "Duration of the HTTP request by phase, summed over redirects",
            m.phase.clone(),
        );
        registry.register(
            "probe_ssl_earliest_cert_expiry",
            "Unix time at which the server's leaf certificate expires",
            m.cert_expiry.clone(),
        );
        registry.register(
            "ferrostack_healthcheck_consecutive_failures",
            "Failed probes in a row",
            m.consecutive_failures.clone(),
        );
        registry.register(
            "ferrostack_healthcheck_last_run_timestamp_seconds",
            "Unix time of the latest probe",
            m.last_run.clone(),
        );
        m.kinds = kinds::KindMetrics::register(registry);
        m
    }

    /// Sets every gauge of the record's target from it.
    pub fn observe(&self, r: &Record, consecutive_failures: u32) {
        let label = TargetLabel {
            target: r.target.clone(),
        };
        self.success.get_or_create(&label).set(i64::from(r.success));
        self.kinds.observe(r);
        let http = r.url.starts_with("http://") || r.url.starts_with("https://");
        self.duration.get_or_create(&label).set(r.duration_seconds);
        if http {
            self.status
                .get_or_create(&label)
                .set(r.status.map_or(0, i64::from));
        } else {
            self.status.remove(&label);
        }
        for (phase, seconds) in r.phases.iter() {
            let key = PhaseLabel {
                target: r.target.clone(),
                phase,
            };
            match seconds.filter(|_| http) {
                Some(s) => {
                    self.phase.get_or_create(&key).set(s);
                }
                None => {
                    self.phase.remove(&key);
                }
            }
        }
        match r.certificate_not_after {
            Some(t) => {
                self.cert_expiry.get_or_create(&label).set(t);
            }
            None => {
                self.cert_expiry.remove(&label);
            }
        }
        self.consecutive_failures
            .get_or_create(&label)
            .set(i64::from(consecutive_failures));
        let now = self.last_run.get().max(r.unix_seconds());
        self.last_run.set(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Phases;

    #[test]
    fn exposes_blackbox_names_with_measured_phases_only() {
        let mut registry = Registry::default();
        let m = Metrics::register(&mut registry);
        let r = Record {
            time: time::macros::datetime!(2026-01-01 0:00 UTC),
            target: "api".into(),
            url: "http://api/".into(),
            success: false,
            status: Some(503),
            response_time_seconds: 0.5,
            duration_seconds: 0.75,
            attempts: 2,
            error: None,
            failed: vec![],
            phases: Phases {
                resolve: Some(0.001),
                connect: Some(0.002),
                processing: Some(0.4),
                transfer: Some(0.01),
                tls: None,
            },
            certificate_not_after: None,
            detail: crate::record::Detail::default(),
            maintenance: false,
        };
        m.observe(&r, 4);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "probe_success{target=\"api\"} 0",
            "probe_duration_seconds{target=\"api\"} 0.75",
            "probe_http_status_code{target=\"api\"} 503",
            "probe_http_duration_seconds{target=\"api\",phase=\"connect\"} 0.002",
            "probe_http_duration_seconds{target=\"api\",phase=\"processing\"} 0.4",
            "ferrostack_healthcheck_consecutive_failures{target=\"api\"} 4",
            "ferrostack_healthcheck_last_run_timestamp_seconds 1767225600.0",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(
            !text.contains("phase=\"tls\""),
            "tls was not measured:\n{text}"
        );
        assert!(!text.contains("probe_ssl_earliest_cert_expiry{"), "{text}");
    }
}
