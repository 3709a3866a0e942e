//! Request-level middleware: request ids, access logs in the request's span, URI and header
//! size limits, and the conversion of every plain-text error (router, limits, timeout,
//! extractor rejections) into the JSON error envelope.

use std::any::Any;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::request_id::{MakeRequestId, RequestId};
use tracing::Instrument;

use crate::ApiError;
use crate::error::code_for_status;

/// Makes a request id when the client sent none: 128 random bits in hex.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct MakeId;

impl MakeRequestId for MakeId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let id = format!("{:032x}", rand::random::<u128>());
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

/// Runs the request in a `request` span carrying the role and the request id (connection
/// tasks do not inherit the role's span, so the role is named again here) and logs one line
/// when it is answered. Probe and metrics requests log at debug so they do not drown the rest.
pub(super) async fn access_log(
    State(role): State<&'static str>,
    request: Request,
    next: Next,
) -> Response {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let quiet = matches!(path.as_str(), "/healthz" | "/readyz" | "/metrics");
    let span = tracing::info_span!("request", role, request_id = %id);
    let start = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
    let _entered = span.enter();
    // A 5xx is our failure: logged as an error, it feeds ferrostack_log_events_total{level="error"},
    // the error-log rate the alerts watch (case study 004).
    if status >= 500 {
        tracing::error!(%method, %path, status, latency_ms, "request failed");
    } else if quiet {
        tracing::debug!(%method, %path, status, latency_ms, "request completed");
    } else {
        tracing::info!(%method, %path, status, latency_ms, "request completed");
    }
    response
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Limits {
    pub(super) max_uri_bytes: usize,
    pub(super) max_header_bytes: usize,
}

/// 414 for a URI longer than the limit, 431 for headers larger than the limit.
pub(super) async fn limits(State(limits): State<Limits>, request: Request, next: Next) -> Response {
    let uri_len = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    if uri_len > limits.max_uri_bytes {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!(
                "the request URI is {uri_len} bytes; the limit is {} (--max-uri-bytes)",
                limits.max_uri_bytes
            ),
        )
        .into_response();
    }
    let header_len: usize = request
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if header_len > limits.max_header_bytes {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "the request headers are {header_len} bytes; the limit is {} (--max-header-bytes)",
                limits.max_header_bytes
            ),
        )
        .into_response();
    }
    next.run(request).await
}

/// The fallback for paths no route matches.
pub(super) async fn not_found(request: Request) -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {}", request.uri().path()),
    )
    .into_response()
}

/// Rewrites any 4xx/5xx answer that is not JSON into the JSON error envelope, keeping the
/// plain text (an extractor's rejection names what was wrong) as the message.
pub(super) async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, 4096).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    let rewritten = ApiError::new(status, code_for_status(status), message).into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    let (new_parts, new_body) = rewritten.into_parts();
    parts.headers.extend(new_parts.headers);
    Response::from_parts(parts, new_body)
}

/// A handler panic becomes a 500 with the JSON envelope; the process keeps serving.
pub(super) fn panic_response(_err: Box<dyn Any + Send + 'static>) -> Response<Body> {
    tracing::error!("a request handler panicked");
    ApiError::internal("internal_error", "the request failed unexpectedly").into_response()
}
