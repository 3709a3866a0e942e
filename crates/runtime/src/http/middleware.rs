//! Request-level middleware. One layer, [`edge`], runs per request after routing (so the
//! route template is known) and does, in order: the `request` span with role and request id,
//! the URI and header size limits, the RED metrics, the conversion of any plain-text error
//! (router, limits, timeout, extractor rejections) into the JSON envelope, and the access
//! log line. It is one layer rather than four because every axum middleware layer costs a
//! boxed future and a cloned service per request: bench/http measured ~1.7 KiB each per
//! waiting connection.

use std::any::Any;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::request_id::{MakeRequestId, RequestId};
use tracing::Instrument;

use crate::ApiError;
use crate::error::code_for_status;
use crate::metrics::HttpMetrics;

/// Makes a request id when the client sent none: 128 random bits in hex.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct MakeId;

impl MakeRequestId for MakeId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let mut id = [0u8; 32];
        hex::encode_to_slice(rand::random::<[u8; 16]>(), &mut id).ok()?;
        HeaderValue::from_bytes(&id).ok().map(RequestId::new)
    }
}

/// What [`edge`] needs.
#[derive(Clone, Debug)]
pub(super) struct Edge {
    pub(super) role: &'static str,
    pub(super) max_uri_bytes: usize,
    pub(super) max_header_bytes: usize,
    pub(super) metrics: HttpMetrics,
}

/// The per-request layer (see the module docs).
pub(super) async fn edge(State(edge): State<Edge>, request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&super::X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let span = tracing::info_span!("request", role = edge.role, request_id = id);
    let route = request.extensions().get::<MatchedPath>().cloned();
    let measurement = edge.metrics.start(request.method(), route);
    let method = request.method().clone();
    // A clone of the parsed URI shares its bytes with the request: no copy of the path.
    let uri = request.uri().clone();

    let response = match check_limits(&edge, &request) {
        Some(rejection) => rejection,
        None => next.run(request).instrument(span.clone()).await,
    };
    let response = json_errors(response).await;
    let status = response.status().as_u16();
    let latency_ms = measurement.elapsed_ms();
    measurement.finish(status);

    let _entered = span.enter();
    // One access line per request, at a level by outcome. A 5xx is our failure: logged as an
    // error, it feeds ferrostack_log_events_total{level="error"}, the error-log rate the
    // alerts watch (case study 004). A 4xx is the client's, worth seeing at info. Successes
    // are traffic, which the RED metrics count: at debug, as podinfo and tower-http do; the
    // line was an eighth of a /api request's instructions (callgrind, BENCHMARKS.md).
    let (method, path) = (method.as_str(), uri.path());
    if status >= 500 {
        tracing::error!(method, path, status, latency_ms, "request failed");
    } else if status >= 400 {
        tracing::info!(method, path, status, latency_ms, "request completed");
    } else {
        tracing::debug!(method, path, status, latency_ms, "request completed");
    }
    response
}

/// 414 for a URI longer than the limit, 431 for headers larger than the limit.
fn check_limits(edge: &Edge, request: &Request) -> Option<Response> {
    let uri_len = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    if uri_len > edge.max_uri_bytes {
        let message = format!(
            "the request URI is {uri_len} bytes; the limit is {} (--max-uri-bytes)",
            edge.max_uri_bytes
        );
        return Some(
            ApiError::new(StatusCode::URI_TOO_LONG, "uri_too_long", message).into_response(),
        );
    }
    let header_len: usize = request
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if header_len > edge.max_header_bytes {
        let message = format!(
            "the request headers are {header_len} bytes; the limit is {} (--max-header-bytes)",
            edge.max_header_bytes
        );
        return Some(
            ApiError::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
                message,
            )
            .into_response(),
        );
    }
    None
}

/// The fallback for paths no route matches.
pub(super) async fn not_found(request: Request) -> Response {
    let message = format!("no route for {}", request.uri().path());
    ApiError::new(StatusCode::NOT_FOUND, "not_found", message).into_response()
}

/// Rewrites a 4xx/5xx answer that is not JSON into the JSON error envelope, keeping the plain
/// text (an extractor's rejection names what was wrong) as the message.
async fn json_errors(response: Response) -> Response {
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
