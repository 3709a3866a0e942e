//! hyper's own answers in the JSON envelope.
//!
//! A request head that hyper cannot parse never reaches a service: hyper writes a bare
//! `400`, `414` or `431` with an empty body and closes the connection (`Conn::on_parse_error`
//! in hyper 1.x: the answer is a `MessageHead` only, and no builder option supplies a body).
//! That happens for a malformed request line or header field, more than 100 header fields
//! (hyper's `max_headers`), a head larger than the read buffer (`max_buf_size`) and a URI
//! over 65,534 bytes (the most `http::Uri` holds). [`Io`] wraps the connection and, when
//! hyper writes such an answer, sends the JSON envelope instead, with the same status (414
//! rather than 431 when the read buffer filled up inside the request line).
//!
//! How it knows: [`Shared`] counts the requests hyper dispatched to the service and the
//! response bodies hyper has finished with (a [`CountedBody`] dropped). hyper writes a
//! response's bytes only while its body is alive or before its next flush; it calls the
//! transport's flush only with its own write buffer empty. So once every dispatched
//! response is finished and a flush has followed, the only bytes hyper can still write are
//! its automatic answer to a head it could not parse. A parse error pipelined behind a
//! response that is still being flushed keeps hyper's bare answer (never a mangled one).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};

use axum::body::Body;
use axum::http::StatusCode;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::{ErrorBody, ErrorDetail, code_for_status};

/// hyper's limit on request header fields (its default `max_headers`).
pub(super) const MAX_HEADERS: usize = 100;

/// What the automatic answers say: the limits in force.
#[derive(Clone, Copy, Debug)]
pub(super) struct Limits {
    pub(super) role: &'static str,
    /// hyper's read buffer: the largest request head it can hold.
    pub(super) max_buf_size: usize,
    pub(super) max_uri_bytes: usize,
    pub(super) max_header_bytes: usize,
}

impl Limits {
    pub(super) fn new(cfg: &super::ServerConfig, role: &'static str) -> Self {
        Self {
            role,
            // Room for the largest request head the limits admit, so that the middleware
            // answers 414/431 naming their flags; beyond it hyper's own 431, answered here.
            // ServerConfig bounds both limits, so the sum cannot overflow.
            max_buf_size: (cfg.max_uri_bytes + cfg.max_header_bytes + 1024).max(8192),
            max_uri_bytes: cfg.max_uri_bytes,
            max_header_bytes: cfg.max_header_bytes,
        }
    }
}

/// One connection's bookkeeping, shared by its [`Io`] and its service's bodies.
#[derive(Debug, Default)]
pub(super) struct Shared {
    dispatched: AtomicUsize,
    finished: AtomicUsize,
    /// A body finished and hyper has not flushed since: its last bytes may still come.
    unflushed: AtomicBool,
}

impl Shared {
    /// A request reached the service.
    pub(super) fn dispatched(&self) {
        self.dispatched.fetch_add(1, Ordering::Relaxed);
    }

    fn idle(&self) -> bool {
        self.dispatched.load(Ordering::Relaxed) == self.finished.load(Ordering::Relaxed)
            && !self.unflushed.load(Ordering::Relaxed)
    }
}

/// A response body that tells [`Shared`] when hyper is done with it.
pub(super) struct CountedBody {
    inner: Body,
    shared: Arc<Shared>,
}

impl CountedBody {
    pub(super) fn new(inner: Body, shared: Arc<Shared>) -> Self {
        Self { inner, shared }
    }
}

impl Drop for CountedBody {
    fn drop(&mut self) {
        self.shared.unflushed.store(true, Ordering::Relaxed);
        self.shared.finished.fetch_add(1, Ordering::Relaxed);
    }
}

impl http_body::Body for CountedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The connection as hyper sees it (see the module docs).
pub(super) struct Io<T> {
    inner: T,
    shared: Arc<Shared>,
    limits: Limits,
    /// Bytes read since the last `\n`: at least the read buffer means the buffer held one line.
    since_newline: usize,
    /// Our answer, replacing hyper's, and how much of it is written.
    answer: Option<(Vec<u8>, usize)>,
}

impl<T> Io<T> {
    pub(super) fn new(inner: T, shared: Arc<Shared>, limits: Limits) -> Self {
        Self {
            inner,
            shared,
            limits,
            since_newline: 0,
            answer: None,
        }
    }
}

impl<T: AsyncWrite + Unpin> Io<T> {
    /// Takes over `head` when it is hyper's automatic answer; false leaves it to hyper.
    fn replace(&mut self, head: &[u8]) -> bool {
        if !self.shared.idle() {
            return false;
        }
        let Some((version, status)) = status_line(head) else {
            return false;
        };
        let answer = self.answer_for(version, status, date_line(head));
        self.answer = Some((answer, 0));
        true
    }

    fn answer_for(&self, version: &[u8], status: StatusCode, date: &[u8]) -> Vec<u8> {
        let (status, message) = self.explain(status);
        // Like the access line of a 4xx (middleware::edge), which this request never gets.
        tracing::info!(
            role = self.limits.role,
            status = status.as_u16(),
            reason = message.as_str(),
            "request refused before routing"
        );
        let body = serde_json::to_vec(&ErrorBody {
            error: ErrorDetail {
                code: code_for_status(status).to_owned(),
                message,
            },
        })
        .unwrap_or_default();
        let mut out = Vec::with_capacity(body.len() + 160);
        out.extend_from_slice(version);
        out.extend_from_slice(
            format!(
                " {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                status.as_str(),
                status.canonical_reason().unwrap_or(""),
                body.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(date);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&body);
        out
    }

    /// The status to answer and why, from hyper's status and the limits.
    fn explain(&self, status: StatusCode) -> (StatusCode, String) {
        let Limits {
            max_buf_size,
            max_uri_bytes,
            max_header_bytes,
            ..
        } = self.limits;
        // The buffer filled up without a line end: the request line alone is that long.
        let uri_filled_buffer = self.since_newline >= max_buf_size;
        match status {
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE if uri_filled_buffer => (
                StatusCode::URI_TOO_LONG,
                format!(
                    "the request line is longer than {max_buf_size} bytes; the URI limit is \
                     {max_uri_bytes} (--max-uri-bytes)"
                ),
            ),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (
                status,
                format!(
                    "the request head is over the limits: more than {MAX_HEADERS} header fields, \
                     or more than {max_buf_size} bytes of request line and headers (--max-uri-bytes \
                     {max_uri_bytes}, --max-header-bytes {max_header_bytes})"
                ),
            ),
            StatusCode::URI_TOO_LONG => (
                status,
                format!(
                    "the request URI is longer than 65534 bytes; the limit is {max_uri_bytes} \
                     (--max-uri-bytes)"
                ),
            ),
            _ => (
                status,
                "the request is not valid HTTP/1.1: malformed request line or header field"
                    .to_owned(),
            ),
        }
    }

    /// Writes what is left of our answer.
    fn poll_answer(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some((answer, written)) = &mut self.answer else {
            return Poll::Ready(Ok(()));
        };
        while *written < answer.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &answer[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }
}

/// `HTTP/1.x NNN` at the start of `head`.
fn status_line(head: &[u8]) -> Option<(&[u8], StatusCode)> {
    let version = head.get(..8).filter(|v| v.starts_with(b"HTTP/1."))?;
    if head.get(8) != Some(&b' ') {
        return None;
    }
    let status = StatusCode::from_bytes(head.get(9..12)?).ok()?;
    (status.is_client_error() || status.is_server_error()).then_some((version, status))
}

/// hyper's `date: …\r\n` line, to keep it in our answer.
fn date_line(head: &[u8]) -> &[u8] {
    const NAME: &[u8] = b"\r\ndate: ";
    head.windows(NAME.len())
        .position(|w| w.eq_ignore_ascii_case(NAME))
        .and_then(|at| {
            let line = &head[at + 2..];
            let end = line.windows(2).position(|w| w == b"\r\n")?;
            Some(&line[..end + 2])
        })
        .unwrap_or_default()
}

impl<T: AsyncRead + Unpin> AsyncRead for Io<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        let read = &buf.filled()[before..];
        // memrchr: a 2.5 MB request body without a line end (compact JSON) is scanned at
        // SIMD speed, not byte by byte.
        self.since_newline = match memchr::memrchr(b'\n', read) {
            Some(at) => read.len() - at - 1,
            None => self.since_newline.saturating_add(read.len()),
        };
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Io<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.answer.is_some() || self.replace(buf) {
            // hyper's bytes are dropped; ours go out here or on its flush and shutdown.
            if let Poll::Ready(Err(e)) = self.poll_answer(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let first = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map_or(&[][..], |b| &b[..]);
        if self.answer.is_some() || self.replace(first) {
            if let Poll::Ready(Err(e)) = self.poll_answer(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // hyper flushes the transport only once its own write buffer is empty.
        self.shared.unflushed.store(false, Ordering::Relaxed);
        ready!(self.poll_answer(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_answer(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyper_status_lines_are_recognised() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\n\
                     content-length: 0\r\ndate: Sun, 06 Dec 2026 04:00:00 GMT\r\n\r\n";
        let (version, status) = status_line(head).unwrap();
        assert_eq!((version, status.as_u16()), (&b"HTTP/1.1"[..], 431));
        assert_eq!(
            date_line(head),
            &b"date: Sun, 06 Dec 2026 04:00:00 GMT\r\n"[..]
        );
        assert!(status_line(b"HTTP/1.1 200 OK\r\n").is_none());
        assert!(status_line(b"line one\n").is_none());
        assert_eq!(date_line(b"HTTP/1.1 400 Bad Request\r\n\r\n"), b"");
    }
}
