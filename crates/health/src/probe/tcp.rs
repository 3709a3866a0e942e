//! `tcp://` and `tls://` probes: connect (and handshake TLS), send the target's `body` if it
//! has one, and read the reply into `[BODY]` when there is something to send or a condition
//! reads `[BODY]` (a banner, as SSH and SMTP servers send). The reply ends when the server
//! closes, pauses for `REPLY_IDLE` after its first bytes, or reaches `BODY_LIMIT` bytes.

use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{Attempt, BODY_LIMIT};
use crate::config::Target;
use crate::record::Phases;

/// A pause this long after the first bytes ends the reply: servers that answer a query keep
/// the connection open (Redis' `+PONG`), so waiting for the close would always time out.
const REPLY_IDLE: Duration = Duration::from_millis(100);

/// One attempt on a `tcp://` (`tls` false) or `tls://` target.
pub(super) async fn attempt(target: &Target, tls: bool, a: &mut Attempt) -> Result<(), String> {
    let host = target.url.host().ok_or("URL has no host")?;
    let port = target.url.port_u16().ok_or("URL has no port")?;
    let stream = super::connect(host, port, a).await?;
    if !tls {
        return converse(target, stream, a).await;
    }
    // Not an HTTP client here: offer no application protocol.
    let stream = super::handshake(target, host, stream, Vec::new(), a).await?;
    converse(target, stream, a).await
}

/// Sends the body, if any, and reads the reply when it matters.
async fn converse<S>(target: &Target, mut stream: S, a: &mut Attempt) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let reads_body = target
        .conditions
        .iter()
        .any(|c| c.placeholder() == "[BODY]");
    if !target.body.is_empty() {
        a.stage = "sending";
        stream
            .write_all(&target.body)
            .await
            .map_err(|e| format!("send: {e}"))?;
        stream.flush().await.map_err(|e| format!("send: {e}"))?;
    } else if !reads_body {
        return Ok(());
    }
    a.stage = "reading the reply";
    let t = Instant::now();
    let read = read_reply(&mut stream, a).await;
    Phases::add(&mut a.phases.transfer, t.elapsed().as_secs_f64());
    read
}

/// Reads until close, `BODY_LIMIT`, or `REPLY_IDLE` of silence after the first bytes.
async fn read_reply<S: AsyncRead + Unpin>(stream: &mut S, a: &mut Attempt) -> Result<(), String> {
    let mut buf = Vec::new();
    let mut chunk = vec![0; 16 * 1024];
    loop {
        let read = if buf.is_empty() {
            stream.read(&mut chunk).await
        } else {
            match tokio::time::timeout(REPLY_IDLE, stream.read(&mut chunk)).await {
                Ok(r) => r,
                Err(_) => break,
            }
        };
        let n = match read {
            Ok(n) => n,
            // A reset after the reply still leaves the reply to judge.
            Err(_) if !buf.is_empty() => break,
            Err(e) => return Err(format!("read: {e}")),
        };
        if n == 0 {
            break;
        }
        let room = BODY_LIMIT - buf.len();
        if n > room {
            buf.extend_from_slice(&chunk[..room]);
            a.body_over_limit = true;
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    a.body = buf.into();
    Ok(())
}
