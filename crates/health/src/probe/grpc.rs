//! `grpc://host:port[/service]` probes: the standard health checking protocol,
//! `grpc.health.v1.Health/Check`, over HTTP/2 on a connection the probe opens itself (so
//! `resolve` and `connect` are measured as for the other types); `grpcs://` handshakes TLS
//! first (ALPN `h2`, the target's `tls` settings). `[BODY]` is the serving
//! status (`SERVING`, `NOT_SERVING`, `UNKNOWN`); a call that fails (an unknown service is
//! `NOT_FOUND`) is a failed probe naming the gRPC status.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::Attempt;
use crate::config::Target;
use crate::record::Phases;

/// One health check on a `grpc://` or `grpcs://` (`tls`) target.
pub(super) async fn attempt(
    target: &Target,
    service: &str,
    tls: bool,
    a: &mut Attempt,
) -> Result<(), String> {
    let host = target.url.host().ok_or("URL has no host")?;
    let port = target.url.port_u16().ok_or("URL has no port")?;
    let stream = super::connect(host, port, a).await?;
    let channel = if tls {
        let stream = super::handshake(target, host, stream, vec![b"h2".to_vec()], a).await?;
        a.stage = "HTTP/2 handshake";
        channel(host, port, stream).await?
    } else {
        a.stage = "HTTP/2 handshake";
        channel(host, port, stream).await?
    };
    a.stage = "waiting for the health check";
    let t = Instant::now();
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await;
    Phases::add(&mut a.phases.processing, t.elapsed().as_secs_f64());
    match answer {
        Ok(response) => {
            a.detail.grpc_status_code = Some(tonic::Code::Ok as i32);
            let status = ServingStatus::try_from(response.into_inner().status)
                .unwrap_or(ServingStatus::Unknown)
                .as_str_name();
            a.detail.grpc_serving_status = Some(status.to_owned());
            a.body = status.as_bytes().to_vec().into();
            Ok(())
        }
        Err(status) => {
            a.detail.grpc_status_code = Some(status.code() as i32);
            Err(format!(
                "gRPC health check: {:?}: {}",
                status.code(),
                status.message()
            ))
        }
    }
}

/// An HTTP/2 channel over the one connection the probe opened (and timed).
async fn channel<S>(host: &str, port: u16, stream: S) -> Result<Channel, String>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    // The channel asks its connector for a connection once: hand it the one just opened.
    let slot = Arc::new(Mutex::new(Some(stream)));
    let connector = tower::service_fn(move |_| {
        let stream = slot.lock().ok().and_then(|mut s| s.take());
        async move {
            stream
                .map(TokioIo::new)
                .ok_or_else(|| std::io::Error::other("the probe's connection is already used"))
        }
    });
    Endpoint::from_shared(format!("http://{host}:{port}"))
        .map_err(|e| format!("bad gRPC address: {e}"))?
        .connect_with_connector(connector)
        .await
        .map_err(|e| format!("HTTP/2 handshake: {e}"))
}
