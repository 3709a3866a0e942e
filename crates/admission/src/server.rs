//! The webhook's HTTP API, served over TLS:
//!
//! - `POST /validate`: validating webhook (deny with every enforce violation, warn otherwise);
//! - `POST /validate/labelled-namespace`: the same, for a webhook entry whose
//!   namespaceSelector matches the priority-class label (the request does not carry
//!   namespace labels, so the webhook configuration tells us through the path);
//! - `POST /mutate`: mutating webhook (JSON Patch, base64).
//!
//! A body that is not an AdmissionReview v1 gets 400 with the reason; one whose `request.uid`
//! can be read gets an AdmissionReview answer to that uid even when the rest cannot be read
//! (`/validate` denies naming the field, `/mutate` allows unchanged), as everything that parses
//! does, within the review budget (the lesser of `--review-timeout`
//! and the API server's `?timeout=`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest as _, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::engine::Policies;
use crate::metrics::Metrics;
use crate::namespaces::NamespaceLabels;
use crate::review::{self, Decision, Endpoint, ReviewAnswer};
use crate::schema::{AdmissionReviewRequest, AdmissionReviewResponse, ErrorBody};
use crate::workload::metric_kind;

/// What the handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The validated policies.
    pub policies: Arc<Policies>,
    /// Metric handles.
    pub metrics: Metrics,
    /// Namespace labels from the API server, when it is reachable.
    pub namespaces: Option<NamespaceLabels>,
    /// The longest a review may take (`--review-timeout`).
    pub review_timeout: Duration,
    /// The request-body budget shared by the reviews in flight.
    pub inflight: Inflight,
}

/// Request-body bytes the reviews in flight may hold together by default: one review of the
/// largest default body, or hundreds of ordinary ones (a few KiB each). A parsed review holds
/// many times its body (a 3.8 MB review of 100,000 small containers peaked the process at
/// 114 MiB), and the chart's memory limit is 128 MiB: an OOM kill would fail every admission.
pub const INFLIGHT_BODY_BYTES: usize = 4 << 20;

/// A budget of request-body bytes, in KiB permits, shared by the reviews in flight. A review
/// takes its `Content-Length` (or, without one, the largest body allowed) before its body is
/// read and gives it back when its evaluation ends, so concurrent bodies cannot outgrow the
/// budget; one that does not fit is answered 503 at once.
#[derive(Clone, Debug)]
pub struct Inflight {
    permits: Arc<Semaphore>,
    total: u32,
    max_body_bytes: usize,
}

impl Inflight {
    /// A budget of `budget_bytes` for bodies of at most `max_body_bytes` each.
    pub fn new(budget_bytes: usize, max_body_bytes: usize) -> Self {
        let total = u32::try_from(budget_bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
        Inflight {
            permits: Arc::new(Semaphore::new(total as usize)),
            total,
            max_body_bytes,
        }
    }

    /// Reserves the body's share of the budget, or a 503 when the budget is spent.
    fn admit(&self, headers: &HeaderMap) -> Result<OwnedSemaphorePermit, WebhookError> {
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(self.max_body_bytes)
            .min(self.max_body_bytes);
        // Clamped to the whole budget: a body larger than it still runs, alone.
        let kib = u32::try_from(declared.div_ceil(1024).max(1))
            .unwrap_or(u32::MAX)
            .min(self.total);
        Arc::clone(&self.permits)
            .try_acquire_many_owned(kib)
            .map_err(|_| WebhookError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "webhook_busy",
                message: format!(
                    "the reviews in flight hold the webhook's {} KiB body budget; retry",
                    self.total
                ),
            })
    }
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

/// The answers of every review endpoint other than an AdmissionReview (for the OpenAPI
/// document only: `WebhookError` builds them).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
enum ReviewErrors {
    /// not an AdmissionReview v1
    #[response(status = 400)]
    NotAReview(ErrorBody),
    /// body too large
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// not JSON
    #[response(status = 415)]
    NotJson(ErrorBody),
    /// the in-flight body budget is spent; retry
    #[response(status = 503)]
    Busy(ErrorBody),
}

/// A review endpoint: the same request body, answers and handling, its own path, 200
/// description and [`Endpoint`].
macro_rules! review_endpoint {
    ($(#[doc = $doc:literal])* $name:ident, $path:literal, $ok:literal, $endpoint:expr) => {
        $(#[doc = $doc])*
        #[utoipa::path(post, path = $path, tag = "webhook",
            request_body(content = AdmissionReviewRequest, content_type = "application/json"),
            responses(
                (status = 200, description = $ok, body = AdmissionReviewResponse),
                ReviewErrors,
            ))]
        async fn $name(
            State(s): State<AppState>,
            RawQuery(query): RawQuery,
            request: axum::extract::Request,
        ) -> Result<Json<ReviewAnswer>, WebhookError> {
            handle(s, $endpoint, query.as_deref(), request).await
        }
    };
}

review_endpoint!(
    /// Validate an AdmissionReview.
    validate,
    "/validate",
    "AdmissionReview with response (uid echoed; denied with status 403 and the first violations; warnings)",
    Endpoint::Validate { namespace_labelled: false }
);

review_endpoint!(
    /// Validate an AdmissionReview from a namespace that carries the priority-class label.
    validate_labelled_namespace,
    "/validate/labelled-namespace",
    "AdmissionReview with response; priorityClassName required",
    Endpoint::Validate { namespace_labelled: true }
);

review_endpoint!(
    /// Mutate an AdmissionReview: a base64 JSON Patch setting safe defaults.
    mutate,
    "/mutate",
    "AdmissionReview with response (patchType JSONPatch and a base64 patch when something changes)",
    Endpoint::Mutate
);

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
    query: Option<&str>,
    request: axum::extract::Request,
) -> Result<Json<ReviewAnswer>, WebhookError> {
    let start = Instant::now();
    // The budget runs from here, so a slow parse leaves less time for the policies.
    let deadline = start + budget(s.review_timeout, query);
    let counted = |e: WebhookError| {
        // Counted: an API server configured for another AdmissionReview version gets
        // nothing but 400s, and that must show in the error ratio.
        s.metrics
            .count_review(UNKNOWN, UNKNOWN, Decision::Error, start.elapsed());
        e
    };
    let permit = s.inflight.admit(request.headers()).map_err(counted)?;
    let mut req = match read_review(request).await {
        Ok(req) => req,
        Err(Unreadable::Answer(uid, error)) => {
            counted(WebhookError::bad_review(&error));
            tracing::warn!(uid, error = %error, "admission review cannot be evaluated; answered");
            return Ok(Json(review::invalid(&uid, endpoint, &error)));
        }
        Err(Unreadable::Refuse(e)) => return Err(counted(e)),
    };
    if let (Some(namespaces), Some(ns)) = (&s.namespaces, req.namespace()) {
        req.namespace_labels = namespaces.get(ns);
    }
    let req = Arc::new(req);
    let outcome = evaluate(&s, &req, endpoint, deadline, permit).await;
    let kind = metric_kind(req.kind());
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

/// Runs the policies on a blocking thread, answering at `deadline` whether they are done or
/// not (they stop at their next check). The body budget's `permit` goes with the evaluation:
/// the parsed review is freed when it ends, which is after the answer when time runs out.
async fn evaluate(
    s: &AppState,
    req: &Arc<review::Request>,
    endpoint: Endpoint,
    deadline: Instant,
    permit: OwnedSemaphorePermit,
) -> review::Outcome {
    let policies = Arc::clone(&s.policies);
    let task_req = Arc::clone(req);
    let evaluation = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        review::review(&policies, &task_req, endpoint, Some(deadline))
    });
    match tokio::time::timeout_at(deadline.into(), evaluation).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => {
            // A panic in a policy: answered like any review, the uid echoed.
            tracing::error!(uid = %req.inner.uid, error = %e, "policy evaluation failed");
            review::failed(req, endpoint)
        }
        Err(_) => review::timeout(req, endpoint),
    }
}

/// A body [`read_review`] could not turn into a request.
enum Unreadable {
    /// Its uid was readable: answered as an AdmissionReview to that uid.
    Answer(String, review::ReviewError),
    /// 415, 413 or 400 with the reason.
    Refuse(WebhookError),
}

impl From<WebhookError> for Unreadable {
    fn from(e: WebhookError) -> Self {
        Self::Refuse(e)
    }
}

impl WebhookError {
    fn bad_review(e: &review::ReviewError) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_admission_review",
            message: e.to_string(),
        }
    }
}

/// Checks the content type, reads the body and parses it. The body is dropped once parsed:
/// only the parsed review lives on through evaluation.
async fn read_review(request: axum::extract::Request) -> Result<review::Request, Unreadable> {
    if let Some(ct) = request.headers().get(header::CONTENT_TYPE) {
        let json = ct.to_str().is_ok_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
        if !json {
            return Err(Unreadable::Refuse(WebhookError {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code: "unsupported_media_type",
                message: "an AdmissionReview is sent as application/json".into(),
            }));
        }
    }
    let body = Bytes::from_request(request, &())
        .await
        .map_err(|rejection| WebhookError {
            status: rejection.status(),
            code: if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                "payload_too_large"
            } else {
                "invalid_body"
            },
            message: rejection.body_text(),
        })?;
    review::parse(&body).map_err(|rejected| match rejected.uid {
        Some(uid) => Unreadable::Answer(uid, rejected.error),
        None => Unreadable::Refuse(WebhookError::bad_review(&rejected.error)),
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
