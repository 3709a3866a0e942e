//! What a non-HTTP probe measured beyond the common fields, kept in the history as optional
//! fields (absent ones are not written, and lines written before they existed still parse).

use serde::{Deserialize, Serialize};

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
