//! What a non-HTTP probe measured beyond the common fields, kept in the history as optional
//! fields (absent ones are not written, and lines written before they existed still parse).

use serde::{Deserialize, Serialize};

use super::Record;

/// Per-type measurements of one probe (blackbox_exporter's `probe_ip_protocol`,
/// `probe_tls_version_info`, `probe_dns_*_rrs`, `probe_grpc_*`, `probe_icmp_*`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detail {
    /// 4 or 6: the IP version of the address probed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_protocol: Option<u8>,
    /// Negotiated TLS version, e.g. `TLS 1.3` (`tls://` targets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_version: Option<String>,
    /// Response code of a DNS answer, e.g. `NOERROR`, `NXDOMAIN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_rcode: Option<String>,
    /// Records in the DNS answer's answer, authority and additional sections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_rrs: Option<[u32; 3]>,
    /// gRPC status code of the health check call (0: OK).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc_status_code: Option<i32>,
    /// The health service's answer: `SERVING`, `NOT_SERVING`, `UNKNOWN`, `SERVICE_UNKNOWN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc_serving_status: Option<String>,
    /// TTL (hop limit) of the ICMP echo reply, where the socket reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp_reply_hop_limit: Option<u8>,
}

// === impl Detail ===

impl Detail {
    /// Nothing was measured beyond the common fields.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

// === impl Record ===

impl Record {
    /// What the target answered, in a word for people (the status page): `HTTP 200`,
    /// `NOERROR`, `SERVING`, `connected`; `None` when nothing came back.
    pub fn answer(&self) -> Option<String> {
        let d = &self.detail;
        if let Some(s) = self.status {
            return Some(format!("HTTP {s}"));
        }
        if let Some(code) = d.dns_rcode.as_ref().or(d.grpc_serving_status.as_ref()) {
            return Some(code.clone());
        }
        // tcp, tls and icmp: reached, whatever the conditions said of the reply.
        (self.error.is_none() && d.ip_protocol.is_some()).then(|| "connected".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_in_a_word_per_probe_type() {
        let time = time::macros::datetime!(2026-01-01 0:00 UTC);
        let http = Record::sample("a", time, true);
        assert_eq!(http.answer().as_deref(), Some("HTTP 200"));
        let with = |detail: Detail, error: Option<&str>| Record {
            status: None,
            error: error.map(str::to_owned),
            detail,
            ..http.clone()
        };
        let dns = Detail {
            dns_rcode: Some("NXDOMAIN".into()),
            ..Detail::default()
        };
        assert_eq!(with(dns, None).answer().as_deref(), Some("NXDOMAIN"));
        let tcp = Detail {
            ip_protocol: Some(4),
            ..Detail::default()
        };
        assert_eq!(
            with(tcp.clone(), None).answer().as_deref(),
            Some("connected")
        );
        assert_eq!(with(tcp, Some("TLS handshake: x")).answer(), None);
    }
}
