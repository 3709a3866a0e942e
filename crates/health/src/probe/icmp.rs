//! `icmp://host` probes: one echo request on an unprivileged ICMP datagram ("ping") socket,
//! which Linux grants only to groups inside the sysctl `net.ipv4.ping_group_range`. Where
//! the process may not open one, `check_ping_socket` says so at start-up, naming the sysctl,
//! instead of every probe failing later.

use std::io;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::time::Instant;

use socket2::{Domain, Protocol, Socket, Type};
use surge_ping::{Client, Config, ICMP, IcmpPacket, PingIdentifier, PingSequence};

use super::Attempt;
use crate::config::Target;
use crate::record::Phases;

/// The echo request's payload (as `ping -s 8`: room for nothing but a marker).
const PAYLOAD: &[u8] = b"ferrosk8";

/// Whether this process may open an unprivileged ping socket; the error is one line naming
/// the sysctl `net.ipv4.ping_group_range`, the process's group and what to set.
pub fn check_ping_socket() -> Result<(), String> {
    match Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::ICMPV4)) {
        Ok(_) => Ok(()),
        Err(e) => Err(explain(&e, process_gid(), ping_group_range().as_deref())),
    }
}

fn explain(e: &io::Error, gid: Option<u32>, range: Option<&str>) -> String {
    if e.kind() != io::ErrorKind::PermissionDenied {
        return format!("icmp targets need an unprivileged ICMP (ping) socket, which failed: {e}");
    }
    let gid = gid.map_or_else(|| "the process's group".to_owned(), |g| format!("gid {g}"));
    let range = range.map_or_else(String::new, |r| format!(" (now {r:?})"));
    format!(
        "icmp targets need an unprivileged ICMP (ping) socket, but {gid} is outside the sysctl \
         net.ipv4.ping_group_range{range}: set it to a range holding that group, e.g. \
         sysctl -w net.ipv4.ping_group_range=\"0 2147483647\" (in Kubernetes: the pod's \
         securityContext.sysctls)"
    )
}

/// The effective group: the owner group of `/proc/self`.
fn process_gid() -> Option<u32> {
    std::fs::metadata("/proc/self").ok().map(|m| m.gid())
}

fn ping_group_range() -> Option<String> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").ok()?;
    Some(text.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// One echo request and its reply.
pub(super) async fn attempt(target: &Target, a: &mut Attempt) -> Result<(), String> {
    let host = target.url.host().ok_or("URL has no host")?;
    let ip: IpAddr = super::resolve(host, 0, a)
        .await?
        .first()
        .ok_or("no address")?
        .ip();
    a.ip = Some(ip);
    a.detail.ip_protocol = Some(if ip.is_ipv4() { 4 } else { 6 });
    a.stage = "opening the ping socket";
    let t = Instant::now();
    let kind = if ip.is_ipv4() { ICMP::V4 } else { ICMP::V6 };
    let config = Config::builder()
        .kind(kind)
        .sock_type_hint(Type::DGRAM)
        .build();
    let client = Client::new(&config);
    // blackbox_exporter's `setup` phase.
    Phases::add(&mut a.phases.connect, t.elapsed().as_secs_f64());
    let client = client.map_err(|e| format!("ping socket: {e}"))?;
    a.stage = "waiting for the echo reply";
    let t = Instant::now();
    let mut pinger = client.pinger(ip, PingIdentifier(rand_ident())).await;
    pinger.timeout(target.timeout);
    let reply = pinger.ping(PingSequence(0), PAYLOAD).await;
    // blackbox_exporter's `rtt` phase.
    Phases::add(&mut a.phases.processing, t.elapsed().as_secs_f64());
    let (packet, _) = reply.map_err(|e| format!("ping {ip}: {e}"))?;
    a.connected = true;
    a.detail.icmp_reply_hop_limit = match packet {
        IcmpPacket::V4(p) => p.get_ttl(),
        IcmpPacket::V6(p) => Some(p.get_max_hop_limit()).filter(|h| *h != 0),
    };
    Ok(())
}

/// An identifier for this echo request; on a datagram socket the kernel uses the socket's
/// own, so this only has to tell concurrent probes apart where raw sockets are used.
fn rand_ident() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    (nanos & 0xffff) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_socket_names_the_sysctl_group_and_fix() {
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        let msg = explain(&denied, Some(1000), Some("1 0"));
        assert!(
            msg.contains("gid 1000 is outside the sysctl net.ipv4.ping_group_range (now \"1 0\")"),
            "{msg}"
        );
        assert!(msg.contains("ping_group_range=\"0 2147483647\""), "{msg}");
        assert!(!msg.contains('\n'));
        let other = explain(&io::Error::other("no ICMP"), None, None);
        assert!(other.contains("failed: no ICMP"), "{other}");
    }
}
