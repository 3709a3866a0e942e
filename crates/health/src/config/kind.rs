//! The probe type a target's URL names (`http(s)://`, `tcp://`, `tls://`, `dns://`,
//! `grpc(s)://`, `icmp://`), its default condition, and which placeholders make sense for it.

use std::str::FromStr;

use hickory_proto::rr::{Name, RecordType};
use http::Uri;

use super::FieldError;
use crate::condition::Condition;

/// The record types a `dns://` target may ask for.
const DNS_TYPES: [RecordType; 9] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::CNAME,
    RecordType::MX,
    RecordType::NS,
    RecordType::TXT,
    RecordType::SRV,
    RecordType::PTR,
    RecordType::SOA,
];

/// How a target is probed, from its URL's scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeKind {
    /// `http://` or `https://`: an HTTP/1.1 request.
    Http,
    /// `tcp://host:port` (plain) or `tls://host:port` (`tls: true`, a TLS handshake after
    /// connecting): the target's `body`, if any, is sent and the reply read into `[BODY]`.
    Tcp {
        /// Handshake TLS after connecting.
        tls: bool,
    },
    /// `dns://server[:port]/name?type=A`: one query to that server.
    Dns(DnsQuery),
    /// `grpc://host:port[/service]`: `grpc.health.v1.Health/Check` for the service (empty:
    /// the server as a whole); `grpcs://` over TLS (`tls: true`).
    Grpc {
        /// The service name asked about.
        service: String,
        /// Handshake TLS after connecting.
        tls: bool,
    },
    /// `icmp://host`: one echo request on an unprivileged ping socket.
    Icmp,
}

/// The question a `dns://` target asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsQuery {
    /// Fully qualified name asked for.
    pub name: Name,
    /// Record type asked for.
    pub record_type: RecordType,
}

// === impl ProbeKind ===

impl ProbeKind {
    /// The probe type of an absolute URL with a host, or why it cannot be probed.
    pub(super) fn parse(raw: &str, url: &Uri) -> Result<Self, FieldError> {
        let scheme = url.scheme_str().unwrap_or("");
        let need_port = || match url.port_u16() {
            Some(p) if p != 0 => Ok(()),
            _ => Err((
                "url",
                format!("{raw:?} needs a port ({scheme}://host:port)"),
            )),
        };
        let no_path = || match url.path_and_query().map(|p| p.as_str()) {
            None | Some("" | "/") => Ok(()),
            Some(p) => Err((
                "url",
                format!("{raw:?}: a {scheme}:// URL takes no path or query ({p:?})"),
            )),
        };
        match scheme {
            "http" | "https" => Ok(Self::Http),
            "tcp" | "tls" => {
                need_port()?;
                no_path()?;
                Ok(Self::Tcp {
                    tls: scheme == "tls",
                })
            }
            "dns" => parse_dns(raw, url).map(Self::Dns),
            "grpc" | "grpcs" => {
                need_port()?;
                let service = url.path().trim_start_matches('/').to_owned();
                if url.query().is_some() {
                    return Err(("url", format!("{raw:?}: a grpc:// URL takes no query")));
                }
                Ok(Self::Grpc {
                    service,
                    tls: scheme == "grpcs",
                })
            }
            "icmp" => {
                no_path()?;
                if url.port().is_some() {
                    return Err(("url", format!("{raw:?}: an icmp:// URL takes no port")));
                }
                Ok(Self::Icmp)
            }
            _ => Err((
                "url",
                format!(
                    "{raw:?} must be an absolute http://, https://, tcp://, tls://, dns://, \
                     grpc://, grpcs:// or icmp:// URL"
                ),
            )),
        }
    }

    /// The scheme's name in messages.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Tcp { tls: false } => "tcp",
            Self::Tcp { tls: true } => "tls",
            Self::Dns(_) => "dns",
            Self::Grpc { tls: false, .. } => "grpc",
            Self::Grpc { tls: true, .. } => "grpcs",
            Self::Icmp => "icmp",
        }
    }

    /// The condition used when a target lists none.
    pub(super) fn default_condition(&self) -> &'static str {
        match self {
            Self::Http => "[STATUS] == 200",
            Self::Tcp { .. } | Self::Icmp => "[CONNECTED] == true",
            Self::Dns(_) => "[DNS_RCODE] == NOERROR",
            Self::Grpc { .. } => "[BODY] == SERVING",
        }
    }

    /// The placeholders this probe type fills.
    fn placeholders(&self) -> &'static [&'static str] {
        match self {
            Self::Http => &[
                "[STATUS]",
                "[RESPONSE_TIME]",
                "[BODY]",
                "[CERTIFICATE_EXPIRATION]",
                "[CONNECTED]",
                "[IP]",
            ],
            Self::Tcp { tls: false } => &["[CONNECTED]", "[RESPONSE_TIME]", "[BODY]", "[IP]"],
            Self::Tcp { tls: true } => &[
                "[CONNECTED]",
                "[RESPONSE_TIME]",
                "[BODY]",
                "[IP]",
                "[CERTIFICATE_EXPIRATION]",
            ],
            Self::Dns(_) => &["[DNS_RCODE]", "[BODY]", "[RESPONSE_TIME]", "[IP]"],
            Self::Grpc { tls: false, .. } => &["[CONNECTED]", "[BODY]", "[RESPONSE_TIME]", "[IP]"],
            Self::Grpc { tls: true, .. } => &[
                "[CONNECTED]",
                "[BODY]",
                "[RESPONSE_TIME]",
                "[IP]",
                "[CERTIFICATE_EXPIRATION]",
            ],
            Self::Icmp => &["[CONNECTED]", "[RESPONSE_TIME]", "[IP]"],
        }
    }

    /// Every condition uses a placeholder this probe type fills.
    pub(super) fn check_conditions(&self, conditions: &[Condition]) -> Result<(), FieldError> {
        let allowed = self.placeholders();
        for c in conditions {
            let p = c.placeholder();
            if !allowed.contains(&p) {
                return Err((
                    "conditions",
                    format!(
                        "{:?}: {p} does not apply to a {} target (it has {})",
                        c.to_string(),
                        self.name(),
                        allowed.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// `dns://server[:port]/name?type=A`: the name is required, the type defaults to A.
fn parse_dns(raw: &str, url: &Uri) -> Result<DnsQuery, FieldError> {
    let err = |msg: String| ("url", format!("{raw:?}: {msg}"));
    let name = url.path().trim_start_matches('/');
    if name.is_empty() {
        return Err(err("name the query: dns://server/name?type=A".into()));
    }
    let mut name = Name::from_ascii(name).map_err(|e| err(format!("bad name {name:?}: {e}")))?;
    name.set_fqdn(true);
    let mut record_type = RecordType::A;
    for pair in url
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        match pair.split_once('=') {
            Some(("type", t)) => {
                record_type = RecordType::from_str(&t.to_ascii_uppercase())
                    .ok()
                    .filter(|t| DNS_TYPES.contains(t))
                    .ok_or_else(|| {
                        let known: Vec<String> =
                            DNS_TYPES.iter().map(ToString::to_string).collect();
                        err(format!("type {t:?} is not one of {}", known.join(", ")))
                    })?;
            }
            _ => {
                return Err(err(format!(
                    "unknown query parameter {pair:?} (only type=)"
                )));
            }
        }
    }
    Ok(DnsQuery { name, record_type })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(raw: &str) -> Result<ProbeKind, FieldError> {
        ProbeKind::parse(raw, &raw.parse().unwrap())
    }

    #[test]
    fn parses_each_scheme() {
        assert_eq!(kind("https://h/x").unwrap(), ProbeKind::Http);
        assert_eq!(kind("tcp://h:5432").unwrap(), ProbeKind::Tcp { tls: false });
        assert_eq!(kind("tls://h:443").unwrap(), ProbeKind::Tcp { tls: true });
        assert_eq!(kind("icmp://h").unwrap(), ProbeKind::Icmp);
        assert_eq!(
            kind("grpc://h:50051/pkg.Svc").unwrap(),
            ProbeKind::Grpc {
                service: "pkg.Svc".into(),
                tls: false
            }
        );
        let ProbeKind::Dns(q) = kind("dns://127.0.0.1:5353/example.com?type=mx").unwrap() else {
            panic!("not dns");
        };
        assert_eq!(q.name.to_string(), "example.com.");
        assert_eq!(q.record_type, RecordType::MX);
    }

    #[test]
    fn rejects_what_cannot_be_probed() {
        for (raw, says) in [
            ("ftp://h/", "must be an absolute http://"),
            ("tcp://h", "needs a port"),
            ("tcp://h:1/path", "no path"),
            ("dns://1.1.1.1/", "name the query"),
            ("dns://1.1.1.1/x?type=AXFR", "not one of A, AAAA"),
            ("dns://1.1.1.1/x?class=IN", "unknown query parameter"),
            ("icmp://h:7", "no port"),
            ("grpc://h", "needs a port"),
        ] {
            let (field, msg) = kind(raw).unwrap_err();
            assert_eq!(field, "url");
            assert!(msg.contains(says), "{raw}: {msg}");
        }
    }

    #[test]
    fn the_readme_probe_types_example_parses() {
        let readme = include_str!("../../../../README.md");
        let section = readme.split("### Probe types beside HTTP").nth(1).unwrap();
        let yaml = section.split("```yaml\n").nth(1).unwrap();
        // The example's CA file, made real.
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let cert = rcgen::generate_simple_self_signed(vec!["ldap.internal".into()]).unwrap();
        std::fs::write(&ca, cert.cert.pem()).unwrap();
        let yaml = yaml.split("```").next().unwrap();
        let yaml = &yaml.replace("/etc/ssl/internal-ca.pem", &ca.display().to_string());
        let kinds = |t: Vec<super::super::Target>| -> Vec<&'static str> {
            t.iter().map(|t| t.kind.name()).collect()
        };
        let all = [
            "tcp", "tcp", "tcp", "tls", "tls", "dns", "dns", "grpc", "grpcs", "icmp",
        ];
        match super::super::parse_targets("README.md", yaml) {
            Ok(t) => assert_eq!(kinds(t), all),
            // Where this machine denies ping sockets, only the icmp target may fail, so.
            Err(e) if e.target() == Some("gateway") && e.to_string().contains("ping_group") => {
                let without = yaml.split("  - name: gateway").next().unwrap();
                let t = super::super::parse_targets("README.md", without).unwrap();
                assert_eq!(kinds(t), all[..9]);
            }
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn conditions_must_fit_the_type() {
        let c = |t: &str| vec![Condition::parse(t).unwrap()];
        let tcp = ProbeKind::Tcp { tls: false };
        assert!(tcp.check_conditions(&c("[CONNECTED] == true")).is_ok());
        let (field, msg) = tcp.check_conditions(&c("[STATUS] == 200")).unwrap_err();
        assert_eq!(field, "conditions");
        assert!(
            msg.contains("[STATUS] does not apply to a tcp target"),
            "{msg}"
        );
        assert!(
            ProbeKind::Http
                .check_conditions(&c("[DNS_RCODE] == NOERROR"))
                .is_err()
        );
        assert!(ProbeKind::Icmp.check_conditions(&c("[BODY] == x")).is_err());
    }
}
