//! Process limits: started under a shell's low soft open-files limit, the binary raises it to
//! the hard limit and serves far more connections than the soft limit would have allowed.

#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::Proc;

/// More connections than the soft limit of 256 has file descriptors.
const CONNECTIONS: usize = 600;

#[test]
fn a_soft_open_files_limit_of_256_is_raised_and_600_connections_are_served() {
    let port = support::free_port();
    let dir = tempfile::tempdir().unwrap();
    let stdout = std::fs::File::create(dir.path().join("stdout")).unwrap();
    let stderr = std::fs::File::create(dir.path().join("stderr")).unwrap();
    let child = Command::new("sh")
        .args(["-c", r#"ulimit -S -n 256 && exec "$@""#, "sh", support::BIN])
        .args(["data-api", "--host", "127.0.0.1", "--drain-delay", "0s"])
        .args(["--port", &port.to_string()])
        .current_dir(dir.path())
        .stdout(stdout)
        .stderr(stderr)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let data = Proc {
        child: Some(child),
        dir,
        base: format!("http://127.0.0.1:{port}"),
        port,
    };
    data.wait_ready(&data.url("/readyz"));

    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let (soft, hard) = match line.split_whitespace().collect::<Vec<_>>()[..] {
        [_, _, _, soft, hard, ..] => (soft.parse::<u64>().unwrap(), hard.parse::<u64>().unwrap()),
        _ => panic!("unexpected limits line: {line}"),
    };
    assert!(
        hard > CONNECTIONS as u64 + 64,
        "the hard limit ({hard}) is too low for this test"
    );
    assert_eq!(soft, hard.min(1 << 20), "{line}");

    // Every connection open at once, then each asks once: with the soft limit left at 256,
    // accept would fail with EMFILE and the later connections would never be answered.
    let mut conns: Vec<TcpStream> = (0..CONNECTIONS)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    for c in &mut conns {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n")
            .unwrap();
    }
    for (i, c) in conns.iter_mut().enumerate() {
        let mut head = [0u8; 12];
        c.read_exact(&mut head)
            .unwrap_or_else(|e| panic!("connection {i} got no answer: {e}"));
        assert_eq!(&head, b"HTTP/1.1 200", "connection {i}");
    }
}
