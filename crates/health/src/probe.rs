//! The HTTP prober. Each attempt resolves, connects, (for https) does the TLS handshake and
//! speaks HTTP/1.1 on a fresh connection it owns, so every phase blackbox_exporter reports
//! (`resolve`, `connect`, `tls`, `processing`, `transfer`) is actually measured, and the
//! peer certificate is at hand for `[CERTIFICATE_EXPIRATION]`. Retries back off exponentially.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, HOST, LOCATION, USER_AGENT};
use http::{HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::condition::{Observation, format_duration};
use crate::config::Target;
use crate::record::{Phases, Record};

/// Bodies are read up to this size; conditions see that prefix, and a JSON path on a longer
/// body says so instead of calling it not JSON.
pub const BODY_LIMIT: usize = 1024 * 1024;
const MAX_REDIRECTS: usize = 10;
/// Configured headers still sent after a redirect to another origin: they shape the answer
/// and carry no secret. Every other configured header is dropped there.
const CROSS_ORIGIN_HEADERS: [HeaderName; 4] = [
    http::header::ACCEPT,
    http::header::ACCEPT_LANGUAGE,
    http::header::CACHE_CONTROL,
    http::header::CONTENT_TYPE,
];
const USER_AGENT_VALUE: &str = concat!("ferrostack-healthcheck/", env!("CARGO_PKG_VERSION"));

/// What one attempt saw.
#[derive(Debug, Default)]
struct Attempt {
    status: Option<u16>,
    body: Bytes,
    /// The body went on past `BODY_LIMIT`.
    body_over_limit: bool,
    phases: Phases,
    certificate_not_after: Option<i64>,
    ip: Option<IpAddr>,
    connected: bool,
    error: Option<String>,
    /// Where the attempt is; named in a timeout error.
    stage: &'static str,
}

/// Probes a target: attempts with retries and backoff, then the conditions.
pub async fn probe(target: &Target) -> Record {
    let time = OffsetDateTime::now_utc();
    let start = Instant::now();
    let mut attempts = 0;
    let mut backoff = target.retry_backoff;
    loop {
        attempts += 1;
        let attempt_start = Instant::now();
        let attempt = attempt(target).await;
        let response_time = attempt_start.elapsed();
        let obs = Observation {
            status: attempt.status,
            response_time,
            body: &attempt.body,
            body_over_limit: attempt.body_over_limit,
            certificate_expiration: attempt
                .certificate_not_after
                .map(|t| t - OffsetDateTime::now_utc().unix_timestamp()),
            connected: attempt.connected,
            ip: attempt.ip,
            ..Observation::default()
        };
        let failed: Vec<String> = target
            .conditions
            .iter()
            .map(|c| c.evaluate(&obs))
            .filter(|o| !o.success)
            .map(|o| o.shown)
            .collect();
        let success = attempt.error.is_none() && failed.is_empty();
        if success || attempts > target.retries {
            return Record {
                time,
                target: target.name.clone(),
                url: target.url.to_string(),
                success,
                status: attempt.status,
                response_time_seconds: response_time.as_secs_f64(),
                duration_seconds: start.elapsed().as_secs_f64(),
                attempts,
                error: attempt.error,
                failed,
                phases: attempt.phases,
                certificate_not_after: attempt.certificate_not_after,
                // Marked by the caller, which knows the windows (see `maintenance`).
                maintenance: false,
            };
        }
        tokio::time::sleep(backoff).await;
        backoff = backoff.saturating_mul(2);
    }
}

async fn attempt(target: &Target) -> Attempt {
    let mut a = Attempt {
        stage: "resolving",
        ..Attempt::default()
    };
    let outcome = tokio::time::timeout(target.timeout, exchange_following(target, &mut a)).await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => a.error = Some(e),
        Err(_) => {
            a.error = Some(format!(
                "timeout after {} ({})",
                format_duration(target.timeout),
                a.stage
            ));
        }
    }
    a
}

/// Runs the exchange, following redirects when the target allows it.
async fn exchange_following(target: &Target, a: &mut Attempt) -> Result<(), String> {
    let mut uri = target.url.clone();
    let mut method = target.method.clone();
    let mut body = target.body.clone();
    let home = origin(&target.url);
    for _ in 0..=MAX_REDIRECTS {
        // The configured headers are meant for the configured origin only.
        let trusted = origin(&uri) == home;
        let request = build_request(target, &uri, &method, body.clone(), trusted)?;
        let location = exchange(target, &uri, request, a).await?;
        let (Some(location), true) = (location, target.follow_redirects) else {
            return Ok(());
        };
        let status = a.status.unwrap_or(0);
        if status == 303 || (matches!(status, 301 | 302) && method == Method::POST) {
            method = Method::GET;
            body = Bytes::new();
        }
        uri = resolve_location(&uri, &location)
            .ok_or_else(|| format!("bad redirect location {location:?}"))?;
        match uri.scheme_str() {
            Some("http" | "https") => {}
            other => {
                let scheme = other.unwrap_or("");
                return Err(format!(
                    "redirect to {location:?}: scheme {scheme:?} is not http or https"
                ));
            }
        }
    }
    Err(format!("more than {MAX_REDIRECTS} redirects"))
}

/// One request on a fresh connection. Returns the `Location` of a redirect response.
async fn exchange(
    target: &Target,
    uri: &Uri,
    request: Request<Full<Bytes>>,
    a: &mut Attempt,
) -> Result<Option<String>, String> {
    let https = uri.scheme_str() == Some("https");
    let host = uri.host().ok_or("URL has no host")?;
    let bare_host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });

    a.stage = "resolving";
    let t = Instant::now();
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare_host, port))
        .await
        .map_err(|e| format!("resolve {bare_host}: {e}"))?
        .collect();
    Phases::add(&mut a.phases.resolve, t.elapsed().as_secs_f64());

    a.stage = "connecting";
    let t = Instant::now();
    let mut last_err = format!("resolve {bare_host}: no addresses");
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                a.ip = Some(addr.ip());
                stream = Some(s);
                break;
            }
            Err(e) => last_err = format!("connect {addr}: {e}"),
        }
    }
    Phases::add(&mut a.phases.connect, t.elapsed().as_secs_f64());
    let stream = stream.ok_or(last_err)?;
    a.connected = true;
    let _ = stream.set_nodelay(true);

    if !https {
        return http1(stream, request, a).await;
    }
    a.stage = "TLS handshake";
    let t = Instant::now();
    let name = ServerName::try_from(bare_host.to_owned())
        .map_err(|e| format!("TLS server name {bare_host:?}: {e}"))?;
    let (config, seen) = target.tls.for_handshake();
    let handshake = tokio_rustls::TlsConnector::from(config)
        .connect(name, stream)
        .await;
    Phases::add(&mut a.phases.tls, t.elapsed().as_secs_f64());
    // Known even when verification rejected the certificate (expired, unknown issuer).
    a.certificate_not_after = seen.get();
    let tls_stream = handshake.map_err(|e| format!("TLS handshake: {e}"))?;
    http1(tls_stream, request, a).await
}

/// The request for one hop. `trusted` (the hop stays on the configured origin) sends the
/// configured headers; on another origin only content-negotiation headers go along, so a
/// credential (`Authorization`, `Cookie`, an API-key header) never leaves its origin.
fn build_request(
    target: &Target,
    uri: &Uri,
    method: &Method,
    body: Bytes,
    trusted: bool,
) -> Result<Request<Full<Bytes>>, String> {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let authority = uri.authority().map_or("", |a| a.as_str());
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let mut request = Request::builder()
        .method(method.clone())
        .uri(path)
        .body(Full::new(body))
        .map_err(|e| format!("bad request: {e}"))?;
    let headers = request.headers_mut();
    headers.insert(
        HOST,
        HeaderValue::from_str(authority).map_err(|e| format!("bad host: {e}"))?,
    );
    headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
    for (k, v) in &target.headers {
        if trusted || CROSS_ORIGIN_HEADERS.contains(k) {
            headers.insert(k.clone(), v.clone());
        }
    }
    headers.insert(CONNECTION, HeaderValue::from_static("close"));
    Ok(request)
}

async fn http1<S>(
    stream: S,
    request: Request<Full<Bytes>>,
    a: &mut Attempt,
) -> Result<Option<String>, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    a.stage = "HTTP handshake";
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP handshake: {e}"))?;
    let mut conn = std::pin::pin!(conn);
    let work = async {
        a.stage = "waiting for the response";
        let t = Instant::now();
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("request: {e}"))?;
        Phases::add(&mut a.phases.processing, t.elapsed().as_secs_f64());
        a.status = Some(response.status().as_u16());
        let location = redirect_location(response.status(), response.headers());
        a.stage = "reading the body";
        let t = Instant::now();
        let read = read_body(response.into_body(), a).await;
        Phases::add(&mut a.phases.transfer, t.elapsed().as_secs_f64());
        read.map(|()| location)
    };
    let mut work = std::pin::pin!(work);
    tokio::select! {
        result = &mut work => result,
        closed = &mut conn => match closed {
            Ok(()) => work.await,
            Err(e) => Err(format!("connection: {e}")),
        },
    }
}

/// Reads the body into `a.body`, at most `BODY_LIMIT` bytes; a longer one sets
/// `a.body_over_limit` and is not read further.
async fn read_body(mut body: hyper::body::Incoming, a: &mut Attempt) -> Result<(), String> {
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("reading body: {e}"))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let room = BODY_LIMIT - buf.len();
        if data.len() > room {
            // Keep the prefix; one byte past the limit is enough to know.
            buf.extend_from_slice(&data[..room]);
            a.body_over_limit = true;
            break;
        }
        buf.extend_from_slice(&data);
    }
    a.body = buf.freeze();
    Ok(())
}

/// Scheme, host and port (the scheme's default when absent): curl's rule since 7.83 for when
/// credentials stop being sent.
fn origin(uri: &Uri) -> (String, String, u16) {
    let scheme = uri.scheme_str().unwrap_or("").to_ascii_lowercase();
    let default = if scheme == "https" { 443 } else { 80 };
    let host = uri.host().unwrap_or("").to_ascii_lowercase();
    (scheme, host, uri.port_u16().unwrap_or(default))
}

fn redirect_location(status: StatusCode, headers: &http::HeaderMap) -> Option<String> {
    if !status.is_redirection() || status == StatusCode::NOT_MODIFIED {
        return None;
    }
    headers.get(LOCATION)?.to_str().ok().map(str::to_owned)
}

/// Resolves a `Location` against the URL that returned it.
fn resolve_location(base: &Uri, location: &str) -> Option<Uri> {
    if let Ok(uri) = location.parse::<Uri>()
        && uri.scheme().is_some()
    {
        return Some(uri);
    }
    let scheme = base.scheme_str()?;
    let authority = base.authority()?.as_str();
    if let Some(rest) = location.strip_prefix("//") {
        return format!("{scheme}://{rest}").parse().ok();
    }
    let path = if location.starts_with('/') {
        location.to_owned()
    } else {
        let dir = base.path().rsplit_once('/').map_or("", |(d, _)| d);
        format!("{dir}/{location}")
    };
    format!("{scheme}://{authority}{path}").parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_redirect_locations() {
        let base: Uri = "http://h:1/a/b?q=1".parse().unwrap();
        let cases = [
            ("https://x/y", "https://x/y"),
            ("/z", "http://h:1/z"),
            ("c", "http://h:1/a/c"),
            ("//o:2/p", "http://o:2/p"),
        ];
        for (loc, want) in cases {
            assert_eq!(
                resolve_location(&base, loc).unwrap().to_string(),
                want,
                "{loc}"
            );
        }
    }

    #[test]
    fn host_header_drops_user_info() {
        let t =
            crate::config::parse_targets("t", "targets: [{name: a, url: 'http://u:p@h:81/x?y'}]")
                .unwrap();
        let r = build_request(&t[0], &t[0].url, &Method::GET, Bytes::new(), true).unwrap();
        assert_eq!(r.headers()[HOST], "h:81");
        assert_eq!(r.uri(), "/x?y");
    }
}
