//! `dns://server[:port]/name?type=A` probes: one query to that server over UDP, repeated
//! over TCP when the UDP answer comes back truncated. `[DNS_RCODE]` is the response code
//! (`NOERROR`, `NXDOMAIN`, ...), `[BODY]` the answer records' data, one per line, in the
//! server's order (so a single answer compares whole: `[BODY] == 127.0.0.1`).

use std::net::SocketAddr;
use std::time::Instant;

use hickory_client::client::{Client, ClientHandle};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::DNSClass;
use hickory_proto::runtime::TokioRuntimeProvider;
use hickory_proto::tcp::TcpClientStream;
use hickory_proto::udp::UdpClientStream;
use hickory_proto::xfer::DnsResponse;

use super::Attempt;
use crate::config::{DnsQuery, Target};
use crate::record::Phases;

const DNS_PORT: u16 = 53;

/// One query on a `dns://` target.
pub(super) async fn attempt(target: &Target, q: &DnsQuery, a: &mut Attempt) -> Result<(), String> {
    let host = target.url.host().ok_or("URL has no host")?;
    let port = target.url.port_u16().unwrap_or(DNS_PORT);
    let server = *super::resolve(host, port, a)
        .await?
        .first()
        .ok_or("no server address")?;
    a.ip = Some(server.ip());
    a.detail.ip_protocol = Some(if server.is_ipv4() { 4 } else { 6 });
    let mut response = query_udp(target, server, q, a).await?;
    if response.truncated() {
        response = query_tcp(target, server, q, a).await?;
    }
    a.connected = true;
    let code = response.response_code();
    a.detail.dns_rcode = Some(rcode_name(code));
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    a.detail.dns_rrs = Some([
        count(response.answers().len()),
        count(response.name_servers().len()),
        count(response.additionals().len()),
    ]);
    let answers: Vec<String> = response
        .answers()
        .iter()
        .map(|r| r.data().to_string())
        .collect();
    a.body = answers.join("\n").into();
    Ok(())
}

async fn query_udp(
    target: &Target,
    server: SocketAddr,
    q: &DnsQuery,
    a: &mut Attempt,
) -> Result<DnsResponse, String> {
    a.stage = "connecting";
    let t = Instant::now();
    let stream = UdpClientStream::builder(server, TokioRuntimeProvider::new())
        .with_timeout(Some(target.timeout))
        .build();
    let connected = Client::connect(stream).await;
    Phases::add(&mut a.phases.connect, t.elapsed().as_secs_f64());
    let (client, background) = connected.map_err(|e| format!("DNS over UDP to {server}: {e}"))?;
    ask(client, background, server, q, a).await
}

async fn query_tcp(
    target: &Target,
    server: SocketAddr,
    q: &DnsQuery,
    a: &mut Attempt,
) -> Result<DnsResponse, String> {
    a.stage = "connecting over TCP (the UDP answer was truncated)";
    let t = Instant::now();
    let (stream, handle) = TcpClientStream::new(
        server,
        None,
        Some(target.timeout),
        TokioRuntimeProvider::new(),
    );
    let connected = Client::with_timeout(stream, handle, target.timeout, None).await;
    Phases::add(&mut a.phases.connect, t.elapsed().as_secs_f64());
    let (client, background) = connected.map_err(|e| format!("DNS over TCP to {server}: {e}"))?;
    ask(client, background, server, q, a).await
}

/// Runs the client's background task for the one query it sends.
async fn ask<B>(
    mut client: Client,
    background: B,
    server: SocketAddr,
    q: &DnsQuery,
    a: &mut Attempt,
) -> Result<DnsResponse, String>
where
    B: Future + Send + 'static,
    B::Output: Send,
{
    let background = tokio::spawn(background);
    a.stage = "waiting for the answer";
    let t = Instant::now();
    let response = client
        .query(q.name.clone(), DNSClass::IN, q.record_type)
        .await;
    Phases::add(&mut a.phases.processing, t.elapsed().as_secs_f64());
    background.abort();
    response.map_err(|e| format!("DNS query to {server}: {e}"))
}

/// The response code's name as DNS tools print it (`dig`, miekg/dns, Gatus).
fn rcode_name(code: ResponseCode) -> String {
    let name = match code {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::YXDomain => "YXDOMAIN",
        ResponseCode::YXRRSet => "YXRRSET",
        ResponseCode::NXRRSet => "NXRRSET",
        ResponseCode::NotAuth => "NOTAUTH",
        ResponseCode::NotZone => "NOTZONE",
        other => return u16::from(other).to_string(),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_response_codes_as_dig_does() {
        assert_eq!(rcode_name(ResponseCode::NoError), "NOERROR");
        assert_eq!(rcode_name(ResponseCode::NXDomain), "NXDOMAIN");
        assert_eq!(rcode_name(ResponseCode::Unknown(3000)), "3000");
    }
}
