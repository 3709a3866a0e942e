//! OpenAPI schemas of the AdmissionReview bodies: documentation only (the handlers parse with
//! kube-core's types and answer with [`crate::review::ReviewAnswer`]), so the document tells a
//! client the shape instead of `{}`.

#![allow(dead_code)]

use serde_json::Value;
use utoipa::ToSchema;

pub use runtime::error::ErrorBody;

/// An AdmissionReview admission.k8s.io/v1 as the API server sends it.
#[derive(ToSchema)]
#[allow(non_snake_case)]
pub struct AdmissionReviewRequest {
    /// `admission.k8s.io/v1` (other versions are answered 400).
    #[schema(example = "admission.k8s.io/v1")]
    apiVersion: String,
    /// `AdmissionReview`.
    #[schema(example = "AdmissionReview")]
    kind: String,
    /// The request.
    request: AdmissionRequestBody,
}

/// `request` of an AdmissionReview.
#[derive(ToSchema)]
#[allow(non_snake_case)]
pub struct AdmissionRequestBody {
    /// Echoed in the answer.
    uid: String,
    /// The object's group, version and kind.
    kind: GroupVersionKind,
    /// The resource's group, version and plural.
    resource: GroupVersionResource,
    /// `status`, `scale`, … (not mutated).
    subResource: Option<String>,
    /// `CREATE`, `UPDATE`, `DELETE` or `CONNECT`.
    #[schema(example = "CREATE")]
    operation: String,
    /// The object's name.
    name: Option<String>,
    /// The object's namespace.
    namespace: Option<String>,
    /// Who asked.
    #[schema(value_type = Object)]
    userInfo: Value,
    /// The object (null on DELETE).
    #[schema(value_type = Option<Object>)]
    object: Option<Value>,
    /// The object before an UPDATE (null on CREATE).
    #[schema(value_type = Option<Object>)]
    oldObject: Option<Value>,
    /// Whether the request is a dry run (no violations are counted).
    dryRun: Option<bool>,
    /// `CreateOptions`, `UpdateOptions`, …
    #[schema(value_type = Option<Object>)]
    options: Option<Value>,
}

/// `request.kind`.
#[derive(ToSchema)]
pub struct GroupVersionKind {
    /// `apps`, or empty for the core group.
    group: String,
    /// `v1`.
    version: String,
    /// `Deployment`.
    kind: String,
}

/// `request.resource`.
#[derive(ToSchema)]
pub struct GroupVersionResource {
    /// `apps`, or empty for the core group.
    group: String,
    /// `v1`.
    version: String,
    /// `deployments`.
    resource: String,
}

/// The answer: an AdmissionReview with `response`.
#[derive(ToSchema)]
#[allow(non_snake_case)]
pub struct AdmissionReviewResponse {
    /// `admission.k8s.io/v1`.
    apiVersion: String,
    /// `AdmissionReview`.
    kind: String,
    /// The verdict.
    response: AdmissionResponseBody,
}

/// `response` of the answer.
#[derive(ToSchema)]
#[allow(non_snake_case)]
pub struct AdmissionResponseBody {
    /// `request.uid`, echoed.
    uid: String,
    /// The verdict.
    allowed: bool,
    /// Set when denied: code 403 (policy), 413 (too many containers), 503 (budget) or 500.
    status: Option<DenialStatus>,
    /// `JSONPatch` exactly when `patch` is set.
    patchType: Option<String>,
    /// The RFC 6902 patch, JSON then standard base64.
    patch: Option<String>,
    /// Warn-mode violations (at most 40, each at most 256 characters).
    warnings: Option<Vec<String>>,
}

/// `response.status` of a denial.
#[derive(ToSchema)]
pub struct DenialStatus {
    /// `Failure`.
    status: String,
    /// The HTTP code the client sees.
    code: u16,
    /// `Forbidden`, `RequestEntityTooLarge`, `ServiceUnavailable` or `InternalError`.
    reason: String,
    /// The first 20 violations, one per line, then a count of the rest.
    message: String,
}
