//! The metrics of the non-HTTP probe types, under blackbox_exporter's names (its
//! `prober/{tcp,dns,grpc,icmp}.go`), each labelled by target: `probe_ip_protocol`,
//! `probe_tls_version_info{version}`, `probe_dns_duration_seconds{phase}`,
//! `probe_dns_{answer,authority,additional}_rrs`, `probe_grpc_duration_seconds{phase}`,
//! `probe_grpc_status_code`, `probe_grpc_healthcheck_response{serving_status}`,
//! `probe_grpc_ssl`, `probe_icmp_duration_seconds{phase}`, `probe_icmp_reply_hop_limit`, and
//! for every type `probe_dns_lookup_time_seconds` (resolving the target's host name). A
//! series that the latest probe did not measure is removed, not left at its old value.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{PhaseLabel, TargetLabel};
use crate::record::Record;

type FloatGauge = Gauge<f64, AtomicU64>;

/// The serving states blackbox_exporter reports, one series each (1 for the current one).
const SERVING_STATUSES: [&str; 4] = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];

/// Names and help of the per-target gauges, in `KindMetrics::register`'s order.
const GAUGES: [(&str, &str); 7] = [
    (
        "probe_ip_protocol",
        "IP version of the address probed (4 or 6)",
    ),
    ("probe_dns_answer_rrs", "Records in the DNS answer section"),
    (
        "probe_dns_authority_rrs",
        "Records in the DNS authority section",
    ),
    (
        "probe_dns_additional_rrs",
        "Records in the DNS additional section",
    ),
    (
        "probe_grpc_status_code",
        "gRPC status code of the health check (0: OK)",
    ),
    (
        "probe_icmp_reply_hop_limit",
        "TTL or hop limit of the ICMP echo reply",
    ),
    (
        "probe_grpc_ssl",
        "Whether the gRPC probe used TLS (1) or not (0)",
    ),
];

/// Names and help of the per-phase gauges: dns, grpc, icmp.
const PHASE_GAUGES: [(&str, &str); 3] = [
    (
        "probe_dns_duration_seconds",
        "Duration of the DNS probe by phase",
    ),
    (
        "probe_grpc_duration_seconds",
        "Duration of the gRPC probe by phase",
    ),
    (
        "probe_icmp_duration_seconds",
        "Duration of the ICMP probe by phase",
    ),
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    target: String,
    version: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServingLabel {
    target: String,
    serving_status: &'static str,
}

/// The per-type families; cheap to clone (shared handles).
#[derive(Debug, Clone, Default)]
pub(super) struct KindMetrics {
    ip_protocol: Family<TargetLabel, Gauge>,
    tls_version: Family<VersionLabel, Gauge>,
    dns_phase: Family<PhaseLabel, FloatGauge>,
    dns_rrs: [Family<TargetLabel, Gauge>; 3],
    grpc_phase: Family<PhaseLabel, FloatGauge>,
    grpc_status: Family<TargetLabel, Gauge>,
    grpc_serving: Family<ServingLabel, Gauge>,
    icmp_phase: Family<PhaseLabel, FloatGauge>,
    icmp_hop_limit: Family<TargetLabel, Gauge>,
    grpc_ssl: Family<TargetLabel, Gauge>,
    lookup_time: Family<TargetLabel, FloatGauge>,
}

// === impl KindMetrics ===

impl KindMetrics {
    /// Creates the families and registers them in `registry`.
    pub(super) fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        let gauges = [
            &m.ip_protocol,
            &m.dns_rrs[0],
            &m.dns_rrs[1],
            &m.dns_rrs[2],
            &m.grpc_status,
            &m.icmp_hop_limit,
            &m.grpc_ssl,
        ];
        for ((name, help), family) in GAUGES.into_iter().zip(gauges) {
            registry.register(name, help, family.clone());
        }
        let phases = [&m.dns_phase, &m.grpc_phase, &m.icmp_phase];
        for ((name, help), family) in PHASE_GAUGES.into_iter().zip(phases) {
            registry.register(name, help, family.clone());
        }
        registry.register(
            "probe_dns_lookup_time_seconds",
            "Time resolving the target's host name, in seconds (every probe type)",
            m.lookup_time.clone(),
        );
        registry.register(
            "probe_tls_version_info",
            "The TLS version negotiated (1 for the version in the label)",
            m.tls_version.clone(),
        );
        registry.register(
            "probe_grpc_healthcheck_response",
            "The gRPC health service's answer (1 for the serving status in the label)",
            m.grpc_serving.clone(),
        );
        m
    }

    /// Sets the record's per-type series and removes those it did not measure.
    pub(super) fn observe(&self, r: &Record) {
        let label = TargetLabel {
            target: r.target.clone(),
        };
        let d = &r.detail;
        match r.phases.resolve {
            Some(s) => {
                self.lookup_time.get_or_create(&label).set(s);
            }
            None => {
                self.lookup_time.remove(&label);
            }
        }
        let ssl = match scheme(r) {
            "grpc" => Some(0),
            "grpcs" => Some(1),
            _ => None,
        };
        set_or_remove(&self.grpc_ssl, &label, ssl);
        set_or_remove(&self.ip_protocol, &label, d.ip_protocol.map(i64::from));
        set_or_remove(
            &self.icmp_hop_limit,
            &label,
            d.icmp_reply_hop_limit.map(i64::from),
        );
        set_or_remove(&self.grpc_status, &label, d.grpc_status_code.map(i64::from));
        for (i, family) in self.dns_rrs.iter().enumerate() {
            set_or_remove(family, &label, d.dns_rrs.map(|n| i64::from(n[i])));
        }
        clear_tls_versions(&self.tls_version, &r.target);
        if let Some(version) = &d.tls_version {
            let key = VersionLabel {
                target: r.target.clone(),
                version: version.clone(),
            };
            self.tls_version.get_or_create(&key).set(1);
        }
        for serving_status in SERVING_STATUSES {
            let key = ServingLabel {
                target: r.target.clone(),
                serving_status,
            };
            match &d.grpc_serving_status {
                Some(s) => {
                    self.grpc_serving
                        .get_or_create(&key)
                        .set(i64::from(s == serving_status));
                }
                None => {
                    self.grpc_serving.remove(&key);
                }
            }
        }
        self.observe_phases(r);
    }

    /// blackbox_exporter's phase names per type, from the record's common phases.
    fn observe_phases(&self, r: &Record) {
        let p = &r.phases;
        let scheme = match scheme(r) {
            // gRPC over TLS: the same phases.
            "grpcs" => "grpc",
            other => other,
        };
        let families: [(&str, _, &[Phase]); 3] = [
            (
                "dns",
                &self.dns_phase,
                &[
                    ("resolve", p.resolve),
                    ("connect", p.connect),
                    ("request", p.processing),
                ],
            ),
            // blackbox_exporter's gRPC client connects on its first call, so its `check`
            // covers connect, TLS and the call; it has no `connect` phase (its binary's
            // output: deploy/tests/cluster/test_upstream_probes.py).
            (
                "grpc",
                &self.grpc_phase,
                &[("resolve", p.resolve), ("check", grpc_check(p))],
            ),
            (
                "icmp",
                &self.icmp_phase,
                &[
                    ("resolve", p.resolve),
                    ("setup", p.connect),
                    ("rtt", p.processing),
                ],
            ),
        ];
        for (kind, family, phases) in families {
            for &(phase, seconds) in phases {
                let key = PhaseLabel {
                    target: r.target.clone(),
                    phase,
                };
                match seconds.filter(|_| scheme == kind) {
                    Some(s) => {
                        family.get_or_create(&key).set(s);
                    }
                    None => {
                        family.remove(&key);
                    }
                }
            }
        }
    }
}

/// The record's URL scheme: its probe type.
fn scheme(r: &Record) -> &str {
    r.url.split_once("://").map_or("", |(s, _)| s)
}

fn set_or_remove(family: &Family<TargetLabel, Gauge>, label: &TargetLabel, value: Option<i64>) {
    match value {
        Some(v) => {
            family.get_or_create(label).set(v);
        }
        None => {
            family.remove(label);
        }
    }
}

/// A phase's name and what it measured.
type Phase = (&'static str, Option<f64>);

/// A gRPC probe's `check` phase: connect, TLS and the call, those measured.
fn grpc_check(p: &crate::record::Phases) -> Option<f64> {
    p.processing
        .map(|call| call + p.connect.unwrap_or(0.0) + p.tls.unwrap_or(0.0))
}

/// Removes a target's `probe_tls_version_info` series, whatever their version.
fn clear_tls_versions(family: &Family<VersionLabel, Gauge>, target: &str) {
    // Only a handful of TLS versions exist; try each instead of scanning the family.
    for version in ["TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3"] {
        family.remove(&VersionLabel {
            target: target.to_owned(),
            version: version.to_owned(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Detail, Phases};

    fn text(registry: &Registry) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
        text
    }

    fn record(target: &str, url: &str, detail: Detail) -> Record {
        Record {
            url: url.into(),
            phases: Phases {
                resolve: Some(0.001),
                connect: Some(0.002),
                processing: Some(0.003),
                ..Phases::default()
            },
            detail,
            ..Record::sample(target, time::macros::datetime!(2026-01-01 0:00 UTC), true)
        }
    }

    #[test]
    fn dns_and_icmp_series_under_blackbox_names_and_gone_when_not_measured() {
        let mut registry = Registry::default();
        let m = KindMetrics::register(&mut registry);
        let dns = Detail {
            ip_protocol: Some(4),
            dns_rcode: Some("NOERROR".into()),
            dns_rrs: Some([2, 1, 0]),
            ..Detail::default()
        };
        m.observe(&record("ns", "dns://10.0.0.2/a.test?type=A", dns));
        let icmp = Detail {
            ip_protocol: Some(6),
            icmp_reply_hop_limit: Some(64),
            ..Detail::default()
        };
        m.observe(&record("gw", "icmp://[::1]", icmp));
        let t = text(&registry);
        for line in [
            "probe_dns_answer_rrs{target=\"ns\"} 2",
            "probe_dns_authority_rrs{target=\"ns\"} 1",
            "probe_dns_additional_rrs{target=\"ns\"} 0",
            "probe_dns_duration_seconds{target=\"ns\",phase=\"request\"} 0.003",
            "probe_dns_lookup_time_seconds{target=\"ns\"} 0.001",
            "probe_icmp_duration_seconds{target=\"gw\",phase=\"setup\"} 0.002",
            "probe_icmp_duration_seconds{target=\"gw\",phase=\"rtt\"} 0.003",
            "probe_icmp_reply_hop_limit{target=\"gw\"} 64",
            "probe_ip_protocol{target=\"gw\"} 6",
        ] {
            assert!(t.contains(line), "missing {line} in\n{t}");
        }
        assert!(
            !t.contains("probe_icmp_duration_seconds{target=\"ns\""),
            "{t}"
        );
        // The target now measured nothing of the kind (say, its URL changed): gone, but for
        // the name lookup every type has.
        m.observe(&record("ns", "http://ns/", Detail::default()));
        let t = text(&registry);
        let left: Vec<&str> = t.lines().filter(|l| l.contains("target=\"ns\"")).collect();
        assert_eq!(left, ["probe_dns_lookup_time_seconds{target=\"ns\"} 0.001"]);
    }
}
