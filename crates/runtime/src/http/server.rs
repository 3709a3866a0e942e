//! Listening and graceful shutdown, exactly as DESIGN.md: ready once listening; on shutdown
//! flip readiness, wait the drain delay, stop accepting, give in-flight requests the shutdown
//! timeout, return.
//!
//! Connections are served by hyper's HTTP/1.1 server directly rather than `axum::serve`:
//! HTTP/1.1 only (no protocol sniffing buffer per connection), a read buffer capped at what
//! the URI and header limits allow, and a time limit on slow request headers; memory stays
//! flat with thousands of connections each waiting on a request. hyper's own answers to
//! requests it cannot parse carry the JSON envelope too (see `conn`).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::response::Response;
use axum::serve::Listener;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulConnection, GracefulShutdown};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tower::ServiceExt;

use super::{ServerConfig, conn};
use crate::Context;

/// A client must send its request headers within this time (slowloris).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Why serving failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: io::Error,
    },
}

/// Binds `cfg.addr` and serves `app` until the context's shutdown completes.
pub async fn serve(cfg: &ServerConfig, ctx: &Context, app: Router) -> Result<(), ServeError> {
    let listener = TcpListener::bind(cfg.addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: cfg.addr,
            source,
        })?;
    serve_on(listener, cfg, ctx, app).await
}

/// Serves `app` on an already bound listener (a TCP listener, or a TLS one).
pub async fn serve_on<L>(
    mut listener: L,
    cfg: &ServerConfig,
    ctx: &Context,
    app: Router,
) -> Result<(), ServeError>
where
    L: Listener,
    L::Addr: std::fmt::Display,
{
    let limits = conn::Limits::new(cfg, ctx.role());
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(limits.max_buf_size);
    let connection = |io| connection(&http, &app, limits, io);
    let graceful = GracefulShutdown::new();
    let shutdown = ctx.shutdown().clone();

    ctx.readiness().set_ready(true);
    // A field is a plain value or absent: never Rust's `Some(…)`.
    tracing::info!(
        addr = listener.local_addr().ok().map(tracing::field::display),
        "listening"
    );
    loop {
        tokio::select! {
            (io, _peer) = listener.accept() => {
                let connection = graceful.watch(connection(io));
                tokio::spawn(async move {
                    // A client that resets or times out is routine, not an error of ours.
                    if let Err(e) = connection.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            () = shutdown.cancelled() => break,
        }
    }

    ctx.readiness().set_ready(false);
    tracing::info!(drain_delay = ?cfg.drain_delay, "shutdown: readiness off, draining");
    // Keep accepting while draining: load balancers may still send a few requests.
    let drain = tokio::time::sleep(cfg.drain_delay);
    tokio::pin!(drain);
    loop {
        tokio::select! {
            (io, _peer) = listener.accept() => {
                let connection = graceful.watch(connection(io));
                tokio::spawn(async move { let _ = connection.await; });
            }
            () = &mut drain => break,
        }
    }
    drop(listener);
    tracing::info!(timeout = ?cfg.shutdown_timeout, "shutdown: listener closed, finishing in-flight requests");
    if tokio::time::timeout(cfg.shutdown_timeout, graceful.shutdown())
        .await
        .is_ok()
    {
        tracing::info!("shutdown: complete");
    } else {
        tracing::warn!("shutdown: timeout reached with requests still in flight; dropping them");
    }
    Ok(())
}

/// One connection: hyper over `conn::Io`, the app counted so that `conn::Io` knows when hyper
/// writes an answer of its own (see `conn`).
fn connection<I>(
    http: &hyper::server::conn::http1::Builder,
    app: &Router,
    limits: conn::Limits,
    io: I,
) -> impl GracefulConnection<Error = hyper::Error> + Send + 'static
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shared = Arc::new(conn::Shared::default());
    let counted = Arc::clone(&shared);
    let service = app
        .clone()
        .map_request(move |request: hyper::Request<hyper::body::Incoming>| {
            counted.dispatched();
            request
        })
        .map_response({
            let shared = Arc::clone(&shared);
            move |response: Response| {
                let shared = Arc::clone(&shared);
                response.map(|body| conn::CountedBody::new(body, shared))
            }
        });
    let io = TokioIo::new(conn::Io::new(io, shared, limits));
    http.serve_connection(io, TowerToHyperService::new(service))
}
