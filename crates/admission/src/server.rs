//! The webhook's HTTP API, served over TLS:
//!
//! - `POST /validate`: validating webhook (deny with every enforce violation, warn otherwise);
//! - `POST /validate/labelled-namespace`: the same, for a webhook entry whose
//!   namespaceSelector matches the priority-class label (the request does not carry
//!   namespace labels, so the webhook configuration tells us through the path);
//! - `POST /mutate`: mutating webhook (JSON Patch, base64).
//!
//! A body that is not an AdmissionReview v1 gets 400 with the reason; everything that parses
//! gets 200 with the uid echoed, within the review budget (the lesser of `--review-timeout`
//! and the API server's `?timeout=`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::engine::Policies;
use crate::metrics::Metrics;
use crate::review::{self, Decision, Endpoint, ReviewAnswer};
use crate::workload::metric_kind;

/// What the handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The validated policies.
    pub policies: Arc<Policies>,
    /// Metric handles.
    pub metrics: Metrics,
    /// The longest a review may take (`--review-timeout`).
    pub review_timeout: Duration,
}

/// An error answer, `{"error": {"code", "message"}}`.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct WebhookError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl IntoResponse for WebhookError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

/// The API routes with their OpenAPI description (probes and metrics come from the runtime).
pub fn api(state: AppState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(validate))
        .routes(routes!(validate_labelled_namespace))
        .routes(routes!(mutate))
        .with_state(state)
}

/// The API as a plain router (for in-process tests and benchmarks).
pub fn app(state: AppState) -> Router {
    api(state).split_for_parts().0
}

/// Validate an AdmissionReview.
#[utoipa::path(post, path = "/validate", tag = "webhook",
    request_body(content = Object, content_type = "application/json", description = "AdmissionReview admission.k8s.io/v1"),
    responses(
        (status = 200, description = "AdmissionReview with response (uid echoed; denied with status 403 and every violation; warnings)", body = Object),
        (status = 400, description = "not an AdmissionReview v1"),
        (status = 413, description = "body too large"),
        (status = 415, description = "not JSON"),
    ))]
async fn validate(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Json<ReviewAnswer>, WebhookError> {
    let endpoint = Endpoint::Validate {
        namespace_labelled: false,
    };
    handle(s, endpoint, &headers, query.as_deref(), body).await
}

/// Validate an AdmissionReview from a namespace that carries the priority-class label.
#[utoipa::path(post, path = "/validate/labelled-namespace", tag = "webhook",
    request_body(content = Object, content_type = "application/json", description = "AdmissionReview admission.k8s.io/v1"),
    responses(
        (status = 200, description = "AdmissionReview with response; priorityClassName required", body = Object),
        (status = 400, description = "not an AdmissionReview v1"),
    ))]
async fn validate_labelled_namespace(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Json<ReviewAnswer>, WebhookError> {
    let endpoint = Endpoint::Validate {
        namespace_labelled: true,
    };
    handle(s, endpoint, &headers, query.as_deref(), body).await
}

/// Mutate an AdmissionReview: a base64 JSON Patch setting safe defaults.
#[utoipa::path(post, path = "/mutate", tag = "webhook",
    request_body(content = Object, content_type = "application/json", description = "AdmissionReview admission.k8s.io/v1"),
    responses(
        (status = 200, description = "AdmissionReview with response (patchType JSONPatch and a base64 patch when something changes)", body = Object),
        (status = 400, description = "not an AdmissionReview v1"),
    ))]
async fn mutate(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Json<ReviewAnswer>, WebhookError> {
    handle(s, Endpoint::Mutate, &headers, query.as_deref(), body).await
}

/// The lesser of the configured budget and 90 % of the API server's `?timeout=Ns`.
pub fn budget(configured: Duration, query: Option<&str>) -> Duration {
    let from_api_server = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|kv| kv.strip_prefix("timeout="))
        .and_then(|t| humantime::parse_duration(t).ok())
        .map(|t| t - t / 10);
    match from_api_server {
        Some(t) if t < configured => t,
        _ => configured,
    }
}

/// Labels of a body that never became a request.
const UNKNOWN: &str = "unknown";

async fn handle(
    s: AppState,
    endpoint: Endpoint,
    headers: &HeaderMap,
    query: Option<&str>,
    body: Bytes,
) -> Result<Json<ReviewAnswer>, WebhookError> {
    let start = Instant::now();
    // The budget runs from here, so a slow parse leaves less time for the policies.
    let deadline = tokio::time::Instant::from_std(start) + budget(s.review_timeout, query);
    let req = match parse_body(headers, &body) {
        Ok(req) => Arc::new(req),
        Err(e) => {
            // Counted: an API server configured for another AdmissionReview version gets
            // nothing but 400s, and that must show in the error ratio.
            s.metrics
                .count_review(UNKNOWN, UNKNOWN, Decision::Error, start.elapsed());
            return Err(e);
        }
    };
    let policies = Arc::clone(&s.policies);
    let task_req = Arc::clone(&req);
    let evaluation =
        tokio::task::spawn_blocking(move || review::review(&policies, &task_req, endpoint));
    let kind = metric_kind(req.kind());
    let outcome = match tokio::time::timeout_at(deadline, evaluation).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => {
            // A panic in a policy: answered like any review, the uid echoed.
            tracing::error!(uid = %req.inner.uid, error = %e, "policy evaluation failed");
            review::failed(&req, endpoint)
        }
        Err(_) => review::timeout(&req, endpoint),
    };
    let elapsed = start.elapsed();
    s.metrics
        .count_review(req.operation(), kind, outcome.decision, elapsed);
    if !req.inner.dry_run {
        s.metrics.record_violations(&outcome.violations);
    }
    // One line per review; tracing takes its level as a constant, hence the macro.
    macro_rules! review_line {
        ($level:expr $(, $key:ident = $value:expr)*) => {
            tracing::event!(
                $level,
                uid = req.inner.uid.as_str(),
                operation = req.operation(),
                kind = req.kind(),
                namespace = req.namespace().unwrap_or(""),
                dry_run = req.inner.dry_run,
                decision = outcome.decision.as_str(),
                $($key = $value,)*
                duration_ms = elapsed.as_secs_f64() * 1e3,
                "admission review"
            )
        };
    }
    match outcome.decision {
        Decision::Denied | Decision::Warned | Decision::Timeout | Decision::Error => {
            review_line!(tracing::Level::INFO, violations = outcome.violations.len());
        }
        Decision::Allowed | Decision::Patched => review_line!(tracing::Level::DEBUG),
    }
    Ok(Json(outcome.answer))
}

/// Checks the content type and parses the body: 415 or 400 with the reason.
fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<review::Request, WebhookError> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let json = ct.to_str().is_ok_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
        if !json {
            return Err(WebhookError {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code: "unsupported_media_type",
                message: "an AdmissionReview is sent as application/json".into(),
            });
        }
    }
    review::parse(body).map_err(|e| WebhookError {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_admission_review",
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_takes_the_api_servers_timeout_when_shorter() {
        let five = Duration::from_secs(5);
        assert_eq!(budget(five, None), five);
        assert_eq!(budget(five, Some("timeout=10s")), five);
        assert_eq!(
            budget(five, Some("x=1&timeout=1s")),
            Duration::from_millis(900)
        );
        assert_eq!(budget(five, Some("timeout=garbage")), five);
    }
}
