//! What the server answers itself, before any route, over raw sockets (this needs hyper's
//! connection handling, so a real process): header-count and header-size limits, URI limits,
//! malformed requests and a kept-alive connection, each answer in the JSON error envelope.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use serde_json::Value;
use support::Proc;

/// An answer read off a raw connection: status, lower-cased head, body.
#[derive(Debug)]
struct Raw {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

/// Reads one answer framed by content-length (every answer here has one).
fn read_answer(stream: &mut std::net::TcpStream, pending: &mut Vec<u8>) -> Raw {
    use std::io::Read;
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |n| n.trim().parse().unwrap());
            if pending.len() >= end + 4 + length {
                let body = pending[end + 4..end + 4 + length].to_vec();
                pending.drain(..end + 4 + length);
                let status = head[9..12].parse().unwrap();
                return Raw { status, head, body };
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) => panic!(
                "connection closed before a whole answer: {:?}",
                String::from_utf8_lossy(pending)
            ),
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
            Err(e) => panic!(
                "read failed: {e}; so far {:?}",
                String::from_utf8_lossy(pending)
            ),
        }
    }
}

/// Sends `request` on a new connection (ignoring a reset: the server may close before it has
/// read it all) and reads one answer.
fn raw(port: u16, request: &[u8]) -> Raw {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = stream.write_all(request);
    read_answer(&mut stream, &mut Vec::new())
}

/// Asserts `r` is the JSON envelope with `status` and `code`; returns its message.
fn check(r: &Raw, status: u16, code: &str) -> String {
    assert_eq!(r.status, status, "{r:?}");
    assert!(r.head.contains("content-type: application/json"), "{r:?}");
    let e = r.json();
    assert_eq!(e["error"]["code"], code, "{e}");
    let message = e["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "{e}");
    message.to_owned()
}

/// The process still answers /healthz after the bad requests.
fn assert_unharmed(data: &Proc) {
    let r = raw(
        data.port,
        b"GET /healthz HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{r:?}");
}

fn request_with_headers(n: usize) -> String {
    let mut req = String::from("GET /healthz HTTP/1.1\r\nhost: test\r\nconnection: close\r\n");
    for i in 2..n {
        req.push_str(&format!("x-h-{i}: v\r\n"));
    }
    req + "\r\n"
}

/// A request for /healthz with one header `x-big` of `len` bytes.
fn request_with_big_header(len: usize) -> String {
    format!(
        "GET /healthz HTTP/1.1\r\nhost: test\r\nx-big: {}\r\n\r\n",
        "b".repeat(len)
    )
}

#[test]
fn over_100_header_fields_is_a_431_envelope() {
    let data = support::start(&["data-api"], &[]);
    let r = raw(data.port, request_with_headers(100).as_bytes());
    assert_eq!(r.status, 200, "{r:?}");
    let r = raw(data.port, request_with_headers(101).as_bytes());
    let message = check(&r, 431, "headers_too_large");
    assert!(message.contains("100 header fields"), "{message}");
    assert_unharmed(&data);
}

#[test]
fn headers_over_the_limit_or_the_read_buffer_are_431_envelopes() {
    let data = support::start(&["data-api"], &[]);
    // Over --max-header-bytes but within the read buffer: the middleware's 431.
    let big = request_with_big_header(40 * 1024);
    let message = check(&raw(data.port, big.as_bytes()), 431, "headers_too_large");
    assert!(message.contains("--max-header-bytes"), "{message}");
    // One header line larger than the whole read buffer: 431 too.
    let huge = request_with_big_header(70 * 1024);
    check(&raw(data.port, huge.as_bytes()), 431, "headers_too_large");
    assert_unharmed(&data);
}

#[test]
fn uris_over_the_limit_or_the_read_buffer_are_414_envelopes() {
    let data = support::start(&["data-api"], &[]);
    // Over --max-uri-bytes within the buffer (the middleware), and 70 KB, longer than the
    // read buffer (hyper's 431, answered as the 414 it is), and 200 KB.
    for len in [20 * 1024, 70 * 1024, 200 * 1024] {
        let long = format!(
            "GET /api?x={} HTTP/1.1\r\nhost: test\r\n\r\n",
            "v".repeat(len)
        );
        let message = check(&raw(data.port, long.as_bytes()), 414, "uri_too_long");
        assert!(message.contains("--max-uri-bytes"), "{len}: {message}");
    }
    assert_unharmed(&data);
}

#[test]
fn malformed_requests_are_400_envelopes() {
    let data = support::start(&["data-api"], &[]);
    for bad in [
        &b"GET /\x01 HTTP/1.1\r\nhost: test\r\n\r\n"[..],
        b"GET / HTTP/1.1 extra\r\nhost: test\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        b"GET / HTTP/1.1\r\nhost test\r\n\r\n",
        b"GET / HTTP/1.1\r\nhost: test\r\ncontent-length: abc\r\n\r\n",
    ] {
        let message = check(&raw(data.port, bad), 400, "bad_request");
        assert!(message.contains("not valid HTTP/1.1"), "{message}");
    }
    assert_unharmed(&data);
}

/// Sends `request` on `stream` and reads one answer.
fn exchange(stream: &mut std::net::TcpStream, pending: &mut Vec<u8>, request: &[u8]) -> Raw {
    use std::io::Write;
    stream.write_all(request).unwrap();
    read_answer(stream, pending)
}

/// On a kept-alive connection: answers to good requests are untouched, whether or not they
/// carried a body, and a bad request after them still gets the envelope.
#[test]
fn a_kept_alive_connection_answers_good_requests_untouched_and_a_bad_one_enveloped() {
    let data = support::start(&["data-api"], &[]);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", data.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut pending = Vec::new();
    let r = exchange(
        &mut stream,
        &mut pending,
        b"GET /api?a=1 HTTP/1.1\r\nhost: test\r\n\r\n",
    );
    let param = |r: &Raw, k: &str| r.json()["params"][k].as_str().map(str::to_owned);
    assert_eq!((r.status, param(&r, "a").as_deref()), (200, Some("1")));
    let with_body = b"GET /api?b=2 HTTP/1.1\r\nhost: test\r\ncontent-length: 5\r\n\r\nhello";
    let r = exchange(&mut stream, &mut pending, with_body);
    assert_eq!((r.status, param(&r, "b").as_deref()), (200, Some("2")));
    let r = exchange(
        &mut stream,
        &mut pending,
        b"GET /nowhere HTTP/1.1\r\nhost: test\r\n\r\n",
    );
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let r = exchange(&mut stream, &mut pending, b"NOT HTTP AT ALL\r\n\r\n");
    check(&r, 400, "bad_request");
    assert_unharmed(&data);
}
