//! Listening and graceful shutdown, exactly as DESIGN.md: ready once listening; on shutdown
//! flip readiness, wait the drain delay, stop accepting, give in-flight requests the shutdown
//! timeout, return.

use std::io;

use axum::Router;
use axum::serve::Listener;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::ServerConfig;
use crate::Context;

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
    /// The server task ended abnormally.
    #[error("server task failed: {0}")]
    Task(String),
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
    listener: L,
    cfg: &ServerConfig,
    ctx: &Context,
    app: Router,
) -> Result<(), ServeError>
where
    L: Listener,
    L::Addr: std::fmt::Debug,
{
    let local = listener.local_addr().ok();
    let stop = CancellationToken::new();
    let server = axum::serve(listener, app).with_graceful_shutdown(stop.clone().cancelled_owned());
    let task = tokio::spawn(async move { server.await });
    ctx.readiness().set_ready(true);
    tracing::info!(addr = ?local, "listening");

    ctx.shutdown().cancelled().await;
    ctx.readiness().set_ready(false);
    tracing::info!(drain_delay = ?cfg.drain_delay, "shutdown: readiness off, draining");
    tokio::time::sleep(cfg.drain_delay).await;
    stop.cancel();
    tracing::info!(timeout = ?cfg.shutdown_timeout, "shutdown: listener closed, finishing in-flight requests");
    match tokio::time::timeout(cfg.shutdown_timeout, task).await {
        Ok(Ok(Ok(()))) => {
            tracing::info!("shutdown: complete");
            Ok(())
        }
        Ok(Ok(Err(e))) => Err(ServeError::Task(e.to_string())),
        Ok(Err(e)) => Err(ServeError::Task(e.to_string())),
        Err(_) => {
            tracing::warn!(
                "shutdown: timeout reached with requests still in flight; dropping them"
            );
            Ok(())
        }
    }
}
