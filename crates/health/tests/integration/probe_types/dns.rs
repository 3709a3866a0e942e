//! `dns://` against a real dnsmasq on a loopback port, with the records the test gives it.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ferrostack_health::probe::probe;

use crate::support::targets;

/// dnsmasq answering for `ok.test` (A, MX, a CNAME `www.ok.test`), ten long TXT records on
/// `big.test` (more than its 512-byte UDP limit: truncated, so the probe asks again over
/// TCP), and NXDOMAIN for every other name under `test`.
struct Dnsmasq {
    child: Child,
    port: u16,
}

impl Dnsmasq {
    fn start() -> Option<Self> {
        // Debian installs it in /usr/sbin, which a non-root PATH may lack.
        let sbin = std::path::PathBuf::from("/usr/sbin/dnsmasq");
        let bin = Some(sbin)
            .filter(|p| p.is_file())
            .or_else(|| test_support::tool("dnsmasq"))?;
        let port = test_support::free_port();
        let mut args = vec![
            "--keep-in-foreground".to_owned(),
            "--conf-file=/dev/null".into(),
            "--no-resolv".into(),
            "--no-hosts".into(),
            "--bind-interfaces".into(),
            "--listen-address=127.0.0.1".into(),
            format!("--port={port}"),
            "--pid-file=".into(),
            "--user=root".into(),
            "--edns-packet-max=512".into(),
            "--local=/test/".into(),
            "--host-record=ok.test,127.0.0.1".into(),
            "--mx-host=ok.test,mail.ok.test,10".into(),
            "--cname=www.ok.test,ok.test".into(),
        ];
        let long = "x".repeat(100);
        args.extend((0..10).map(|i| format!("--txt-record=big.test,{i}{long}")));
        let child = Command::new(bin)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let d = Self { child, port };
        d.wait_listening();
        Some(d)
    }

    /// dnsmasq opens its TCP listener with its UDP one: ready once a connect succeeds.
    fn wait_listening(&self) {
        let addr = format!("127.0.0.1:{}", self.port);
        test_support::wait_until("dnsmasq listening", Duration::from_secs(10), || {
            std::net::TcpStream::connect(&addr).is_ok()
        });
    }

    fn url(&self, query: &str) -> String {
        format!("dns://127.0.0.1:{}/{query}", self.port)
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn dns_answers_rcode_and_records_from_a_real_server() {
    let Some(d) = Dnsmasq::start() else { return };
    let t = targets(&format!(
        "targets:\n  - {{name: a, url: '{}', conditions: ['[DNS_RCODE] == NOERROR', '[BODY] == 127.0.0.1', '[RESPONSE_TIME] < 5s']}}\n  - {{name: mx, url: '{}', conditions: ['[BODY] == \"10 mail.ok.test.\"']}}\n  - {{name: cname, url: '{}', conditions: ['[BODY] contains ok.test.']}}\n  - {{name: nx, url: '{}'}}\n",
        d.url("ok.test?type=A"),
        d.url("ok.test?type=MX"),
        d.url("www.ok.test?type=cname"),
        d.url("missing.test"),
    ));
    let r = probe(&t[0]).await;
    assert!(r.success, "{r:?}");
    assert_eq!(r.detail.dns_rcode.as_deref(), Some("NOERROR"));
    assert_eq!(r.detail.dns_rrs.map(|n| n[0]), Some(1));
    assert!(r.phases.processing.is_some(), "{r:?}");
    let r = probe(&t[1]).await;
    assert!(r.success, "{r:?}");
    let r = probe(&t[2]).await;
    assert!(r.success, "{r:?}");
    // The default condition, [DNS_RCODE] == NOERROR, shows what came back.
    let r = probe(&t[3]).await;
    assert!(!r.success);
    assert_eq!(r.error, None, "an answer came: {r:?}");
    assert_eq!(r.failed, ["[DNS_RCODE] (NXDOMAIN) == NOERROR"]);
}

#[tokio::test]
async fn dns_truncated_answer_is_asked_again_over_tcp() {
    let Some(d) = Dnsmasq::start() else { return };
    let t = targets(&format!(
        "targets: [{{name: big, url: '{}', conditions: ['[DNS_RCODE] == NOERROR', '[BODY] contains 9xxx']}}]",
        d.url("big.test?type=TXT")
    ));
    let r = probe(&t[0]).await;
    assert!(r.success, "{r:?}");
    assert_eq!(r.detail.dns_rrs.map(|n| n[0]), Some(10), "{r:?}");
}

#[tokio::test]
async fn dns_server_that_does_not_answer_times_out() {
    // A UDP socket that reads and never answers.
    let mute = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = mute.local_addr().unwrap().port();
    let t = targets(&format!(
        "targets: [{{name: mute, url: 'dns://127.0.0.1:{port}/ok.test', timeout: 300ms}}]"
    ));
    let r = probe(&t[0]).await;
    assert!(!r.success);
    let e = r.error.as_deref().unwrap_or("");
    assert!(e.contains("timeout") || e.contains("timed out"), "{e}");
    assert_eq!(r.failed, ["[DNS_RCODE] (no DNS answer) == NOERROR"]);
    drop(mute);
}
