//! `icmp://` echo to 127.0.0.1, and the start-up error where the process may not open a
//! ping socket. Both need root to set the sysctl `net.ipv4.ping_group_range` for a moment;
//! one test does both so nothing else in this binary races it.

use ferrostack_health::probe::probe;

use crate::support::targets;

const SYSCTL: &str = "/proc/sys/net/ipv4/ping_group_range";

/// Sets `ping_group_range` and restores the previous value when dropped.
struct PingRange {
    saved: String,
}

impl PingRange {
    /// `None` (after a SKIP line) where the sysctl cannot be written (not root).
    fn set(range: &str) -> Option<Self> {
        let saved = std::fs::read_to_string(SYSCTL).ok()?;
        if let Err(e) = std::fs::write(SYSCTL, range) {
            eprintln!("SKIP icmp: cannot write {SYSCTL} ({e}); needs root");
            return None;
        }
        Some(Self { saved })
    }

    fn change(&self, range: &str) {
        std::fs::write(SYSCTL, range).unwrap();
    }
}

impl Drop for PingRange {
    fn drop(&mut self) {
        let _ = std::fs::write(SYSCTL, self.saved.trim());
    }
}

#[tokio::test]
async fn icmp_echo_and_the_start_up_error_naming_the_sysctl() {
    let Some(range) = PingRange::set("0 2147483647") else {
        return;
    };
    let t = targets(
        "targets: [{name: lo, url: 'icmp://127.0.0.1', conditions: ['[CONNECTED] == true', '[RESPONSE_TIME] < 5s', '[IP] == 127.0.0.1']}]",
    );
    let r = probe(&t[0]).await;
    assert!(r.success, "{r:?}");
    assert!(r.phases.processing.is_some(), "rtt measured: {r:?}");

    range.change("1 0");
    let e = ferrostack_health::config::parse_targets(
        "t.yaml",
        "targets: [{name: lo, url: 'icmp://127.0.0.1'}]",
    )
    .unwrap_err();
    drop(range);
    assert_eq!((e.target(), e.field()), (Some("lo"), Some("url")));
    let msg = e.to_string();
    assert!(
        msg.contains("outside the sysctl net.ipv4.ping_group_range (now \"1 0\")"),
        "{msg}"
    );
    assert!(!msg.contains('\n'), "{msg}");
}
