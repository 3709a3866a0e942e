//! The prober: one attempt per try, with retries backing off exponentially, then the
//! conditions. The URL's scheme picks the probe type (`http`/`https`, `tcp`, `tls`, `dns`,
//! `grpc`, `icmp`); each type fills the same `Attempt`, so timeouts, retries and conditions
//! work alike for all of them.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use rustls::pki_types::ServerName;
use time::OffsetDateTime;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::condition::{Observation, format_duration};
use crate::config::{ProbeKind, Target};
use crate::record::{Detail, Phases, Record};

mod dns;
mod grpc;
mod http;
mod icmp;
mod tcp;

pub use icmp::check_ping_socket;

/// Bodies are read up to this size; conditions see that prefix, and a JSON path on a longer
/// body says so instead of calling it not JSON.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// What one attempt saw.
#[derive(Debug, Default)]
struct Attempt {
    status: Option<u16>,
    body: Bytes,
    /// The body went on past `BODY_LIMIT`.
    body_over_limit: bool,
    phases: Phases,
    certificate_not_after: Option<i64>,
    ip: Option<IpAddr>,
    connected: bool,
    /// What the non-HTTP probe types measured.
    detail: Detail,
    error: Option<String>,
    /// Where the attempt is; named in a timeout error.
    stage: &'static str,
}

/// Probes a target: attempts with retries and backoff, then the conditions.
pub async fn probe(target: &Target) -> Record {
    let time = OffsetDateTime::now_utc();
    let start = Instant::now();
    let mut attempts = 0;
    let mut backoff = target.retry_backoff;
    loop {
        attempts += 1;
        let attempt_start = Instant::now();
        let attempt = attempt(target).await;
        let response_time = attempt_start.elapsed();
        let obs = Observation {
            status: attempt.status,
            response_time,
            body: &attempt.body,
            body_over_limit: attempt.body_over_limit,
            certificate_expiration: attempt
                .certificate_not_after
                .map(|t| t - OffsetDateTime::now_utc().unix_timestamp()),
            connected: attempt.connected,
            ip: attempt.ip,
            dns_rcode: attempt.detail.dns_rcode.as_deref(),
            ..Observation::default()
        };
        let failed: Vec<String> = target
            .conditions
            .iter()
            .map(|c| c.evaluate(&obs))
            .filter(|o| !o.success)
            .map(|o| o.shown)
            .collect();
        let success = attempt.error.is_none() && failed.is_empty();
        if success || attempts > target.retries {
            return Record {
                time,
                target: target.name.clone(),
                url: shown_url(target),
                success,
                status: attempt.status,
                response_time_seconds: response_time.as_secs_f64(),
                duration_seconds: start.elapsed().as_secs_f64(),
                attempts,
                error: attempt.error,
                failed,
                phases: attempt.phases,
                certificate_not_after: attempt.certificate_not_after,
                detail: attempt.detail,
                // Marked by the caller, which knows the windows (see `maintenance`).
                maintenance: false,
            };
        }
        tokio::time::sleep(backoff).await;
        backoff = backoff.saturating_mul(2);
    }
}

/// The URL as the history shows it: `Uri` writes a `/` path after a bare authority, which
/// only an HTTP URL really has (`tcp://db:5432`, not `tcp://db:5432/`).
fn shown_url(target: &Target) -> String {
    let url = target.url.to_string();
    let bare =
        target.kind != ProbeKind::Http && target.url.path() == "/" && target.url.query().is_none();
    if bare {
        url.trim_end_matches('/').to_owned()
    } else {
        url
    }
}

/// One try within the target's timeout, dispatched on the probe type.
async fn attempt(target: &Target) -> Attempt {
    let mut a = Attempt {
        stage: "resolving",
        ..Attempt::default()
    };
    let work = async {
        match &target.kind {
            ProbeKind::Http => http::attempt(target, &mut a).await,
            ProbeKind::Tcp { tls } => tcp::attempt(target, *tls, &mut a).await,
            ProbeKind::Dns(query) => dns::attempt(target, query, &mut a).await,
            ProbeKind::Grpc { service, tls } => grpc::attempt(target, service, *tls, &mut a).await,
            ProbeKind::Icmp => icmp::attempt(target, &mut a).await,
        }
    };
    match tokio::time::timeout(target.timeout, work).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => a.error = Some(e),
        Err(_) => {
            a.error = Some(format!(
                "timeout after {} ({})",
                format_duration(target.timeout),
                a.stage
            ));
        }
    }
    a
}

/// Resolves `host` (brackets allowed around an IPv6 literal), timing the `resolve` phase.
async fn resolve(host: &str, port: u16, a: &mut Attempt) -> Result<Vec<SocketAddr>, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    a.stage = "resolving";
    let t = Instant::now();
    let addrs = tokio::net::lookup_host((bare, port))
        .await
        .map_err(|e| format!("resolve {bare}: {e}"));
    Phases::add(&mut a.phases.resolve, t.elapsed().as_secs_f64());
    let addrs: Vec<SocketAddr> = addrs?.collect();
    if addrs.is_empty() {
        return Err(format!("resolve {bare}: no addresses"));
    }
    Ok(addrs)
}

/// Resolves and connects over TCP (first address that answers), timing `resolve` and
/// `connect` and noting the address and IP protocol.
async fn connect(host: &str, port: u16, a: &mut Attempt) -> Result<TcpStream, String> {
    let addrs = resolve(host, port, a).await?;
    a.stage = "connecting";
    let t = Instant::now();
    let mut last_err = String::new();
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                a.ip = Some(addr.ip());
                a.detail.ip_protocol = Some(if addr.is_ipv4() { 4 } else { 6 });
                stream = Some(s);
                break;
            }
            Err(e) => last_err = format!("connect {addr}: {e}"),
        }
    }
    Phases::add(&mut a.phases.connect, t.elapsed().as_secs_f64());
    let stream = stream.ok_or(last_err)?;
    a.connected = true;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// The TLS handshake of a `tls://` or `grpcs://` probe with the target's `tls` settings,
/// offering `alpn`: times the `tls` phase and notes the leaf certificate's expiry (known even
/// when verification rejects it) and the negotiated version.
async fn handshake(
    target: &Target,
    host: &str,
    stream: TcpStream,
    alpn: Vec<Vec<u8>>,
    a: &mut Attempt,
) -> Result<TlsStream<TcpStream>, String> {
    a.stage = "TLS handshake";
    let t = Instant::now();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(bare.to_owned())
        .map_err(|e| format!("TLS server name {bare:?}: {e}"))?;
    let (config, seen) = target.tls.for_handshake();
    let mut config = (*config).clone();
    config.alpn_protocols = alpn;
    let handshake = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await;
    Phases::add(&mut a.phases.tls, t.elapsed().as_secs_f64());
    a.certificate_not_after = seen.get();
    let stream = handshake.map_err(|e| format!("TLS handshake: {e}"))?;
    a.detail.tls_version = stream
        .get_ref()
        .1
        .protocol_version()
        .and_then(|v| v.as_str())
        .map(|v| v.replace('v', " ").replace('_', "."));
    Ok(stream)
}
