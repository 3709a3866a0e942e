//! AdmissionReview v1 in and out: parse with kube-core's types, decide, answer with the uid
//! echoed, a deny status carrying every violation, warnings, and a base64 JSON Patch.
//!
//! kube-core serialises `AdmissionResponse::patch` as an array of numbers (kube-rs issue 1781);
//! the API server expects Go's `[]byte` encoding, a standard base64 string, so the response is
//! our own [`ReviewResponse`].

use base64::Engine as _;
use kube_core::DynamicObject;
use kube_core::admission::{AdmissionRequest, AdmissionReview, Operation};
use serde::Serialize;
use serde_json::Value;

use std::fmt::Write as _;
use std::time::Instant;

use crate::engine::{OutOfTime, Policies, grandfather};
use crate::mutate::template_mutable_on_update;
use crate::policy::{ALL_GROUPS, Mode, Subject, Violation};
use crate::workload::Workload;

/// The only AdmissionReview version served.
pub const API_VERSION: &str = "admission.k8s.io/v1";
/// Longest warning passed on (the API server truncates long ones).
const MAX_WARNING_CHARS: usize = 256;
/// Most warnings passed on in one response.
const MAX_WARNINGS: usize = 40;
/// Most violations listed in a denial message; the rest are counted.
pub const MAX_DENIAL_LINES: usize = 20;
/// Longest violation line in a denial message.
const MAX_DENIAL_LINE_CHARS: usize = 512;
/// Most containers (all lists) in a pod spec the webhook evaluates or mutates.
pub const MAX_CONTAINERS: usize = 1000;
/// Largest base64 patch `/mutate` answers with; a larger one is skipped with a warning.
pub const MAX_PATCH_BYTES: usize = 1 << 20;

/// Which endpoint is answering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /validate`; `namespace_labelled` on `/validate/labelled-namespace`, registered with
    /// a namespaceSelector on the priority-class label.
    Validate {
        /// The namespace carries the priority-class label.
        namespace_labelled: bool,
    },
    /// `POST /mutate`
    Mutate,
}

/// Why a body is not an AdmissionReview we can evaluate.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// Not JSON at all.
    #[error("body is not an AdmissionReview: {0}")]
    Json(#[from] serde_json::Error),
    /// JSON whose fields do not decode as an AdmissionReview, naming the first that does not.
    #[error("body is not an AdmissionReview: {path}: {message}")]
    Field {
        /// The dotted path of the field (`request.kind.kind`).
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// No `request`.
    #[error("AdmissionReview has no request")]
    NoRequest,
    /// `request.object` or `request.oldObject` is neither null nor a JSON object.
    #[error("request.{0}: not a JSON object")]
    NotAnObject(&'static str),
    /// A version other than admission.k8s.io/v1.
    #[error("unsupported AdmissionReview apiVersion {0:?}: only admission.k8s.io/v1 is served")]
    Version(String),
}

/// A parsed request, with the objects as JSON for the policies.
#[derive(Debug)]
pub struct Request {
    /// uid, operation, kind, namespace, dryRun … as kube-core parsed them.
    pub inner: AdmissionRequest<DynamicObject>,
    /// `request.object` as JSON (null for DELETE).
    pub object: Value,
    /// `request.oldObject` as JSON (null for CREATE).
    pub old_object: Value,
    /// The labels of the request's namespace, when the server knows them (an AdmissionReview
    /// does not carry them; see [`crate::namespaces`]).
    pub namespace_labels: Option<Value>,
}

impl Request {
    /// The operation as the API server spells it.
    pub fn operation(&self) -> &'static str {
        match self.inner.operation {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }

    /// `request.kind.kind`.
    pub fn kind(&self) -> &str {
        &self.inner.kind.kind
    }

    /// The request's namespace, else the object's.
    pub fn namespace(&self) -> Option<&str> {
        self.inner
            .namespace
            .as_deref()
            .filter(|n| !n.is_empty())
            .or_else(|| self.object["metadata"]["namespace"].as_str())
    }
}

/// A body that is not an AdmissionReview we can evaluate, with its `request.uid` when that
/// much could be read: the API server then gets an AdmissionReview answer to that uid (see
/// [`invalid`]) instead of a 400 it would settle by failurePolicy.
#[derive(Debug)]
pub struct Rejected {
    /// What is wrong.
    pub error: ReviewError,
    /// `request.uid` of an admission.k8s.io/v1 review, when it is a non-empty string.
    pub uid: Option<String>,
}

/// Parses a request body.
///
/// The objects are taken out of the JSON before kube-core's types see the rest: converting
/// them through `DynamicObject` and back held two or three copies of each at once (over 100 MB
/// for a 4 MiB review of small containers), where one is all the policies read.
pub fn parse(body: &[u8]) -> Result<Request, Rejected> {
    let review: Value = serde_json::from_slice(body).map_err(|e| Rejected {
        error: e.into(),
        uid: None,
    })?;
    // Only a v1 review is answered as one: an API server sending another version could not
    // read a v1 answer anyway.
    let uid = (review["apiVersion"] == API_VERSION && review["kind"] == "AdmissionReview")
        .then(|| review["request"]["uid"].as_str().filter(|u| !u.is_empty()))
        .flatten()
        .map(str::to_owned);
    parse_value(review).map_err(|error| Rejected { error, uid })
}

fn parse_value(mut review: Value) -> Result<Request, ReviewError> {
    let (object, old_object) = match review.get_mut("request") {
        Some(r) if r.is_object() => (r["object"].take(), r["oldObject"].take()),
        _ => (Value::Null, Value::Null),
    };
    for (field, value) in [("object", &object), ("oldObject", &old_object)] {
        if !value.is_null() && !value.is_object() {
            return Err(ReviewError::NotAnObject(field));
        }
    }
    let review: AdmissionReview<DynamicObject> =
        serde_path_to_error::deserialize(review).map_err(|e| ReviewError::Field {
            path: e.path().to_string(),
            message: e.inner().to_string(),
        })?;
    if review.types.api_version != API_VERSION || review.types.kind != "AdmissionReview" {
        return Err(ReviewError::Version(format!(
            "{}/{}",
            review.types.api_version, review.types.kind
        )));
    }
    let inner: AdmissionRequest<DynamicObject> =
        review.try_into().map_err(|_| ReviewError::NoRequest)?;
    Ok(Request {
        inner,
        object,
        old_object,
        namespace_labels: None,
    })
}

/// The decision, for metrics and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Allowed without comment.
    Allowed,
    /// Allowed with warnings.
    Warned,
    /// Denied.
    Denied,
    /// Allowed with a patch.
    Patched,
    /// Not evaluated within the budget.
    Timeout,
    /// No decision: the body was not an AdmissionReview, or evaluation failed.
    Error,
}

impl Decision {
    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::Warned => "warned",
            Decision::Denied => "denied",
            Decision::Patched => "patched",
            Decision::Timeout => "timeout",
            Decision::Error => "error",
        }
    }
}

/// `response.status` of a denial.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Status {
    /// `Failure`.
    pub status: &'static str,
    /// HTTP code the client sees (403 for policy denials).
    pub code: u16,
    /// `Forbidden` or `ServiceUnavailable`.
    pub reason: &'static str,
    /// Every violation, one per line.
    pub message: String,
}

/// `response` of the answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewResponse {
    /// `request.uid`, echoed.
    pub uid: String,
    /// The verdict.
    pub allowed: bool,
    /// Set when denied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// `JSONPatch` exactly when `patch` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<&'static str>,
    /// The RFC 6902 patch, JSON then standard base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    /// Warn-mode violations.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The whole answer: `{"apiVersion", "kind", "response"}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewAnswer {
    /// Always admission.k8s.io/v1.
    pub api_version: &'static str,
    /// Always AdmissionReview.
    pub kind: &'static str,
    /// The response.
    pub response: ReviewResponse,
}

/// What one review decided, with what the metrics and the log need.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The answer to send.
    pub answer: ReviewAnswer,
    /// The decision.
    pub decision: Decision,
    /// The violations found (warn and enforce).
    pub violations: Vec<Violation>,
}

fn answer(uid: &str, response: impl FnOnce(&mut ReviewResponse)) -> ReviewAnswer {
    let mut r = ReviewResponse {
        uid: uid.to_owned(),
        allowed: true,
        status: None,
        patch_type: None,
        patch: None,
        warnings: Vec::new(),
    };
    response(&mut r);
    ReviewAnswer {
        api_version: API_VERSION,
        kind: "AdmissionReview",
        response: r,
    }
}

/// The answer when evaluation did not finish within the budget: `/validate` denies with 503
/// (as `failurePolicy: Fail` would, but with a reason); `/mutate` allows unchanged with a warning.
pub fn timeout(req: &Request, endpoint: Endpoint) -> Outcome {
    undecided(
        req,
        endpoint,
        Decision::Timeout,
        (503, "ServiceUnavailable"),
        "policy evaluation did not finish within the review budget; retry",
        "ferrostack webhook: mutation skipped, the review budget ran out",
    )
}

/// The answer to a review whose uid could be read but whose rest could not: `/validate` denies
/// with 400 naming the field, `/mutate` allows unchanged with a warning saying why.
pub fn invalid(uid: &str, endpoint: Endpoint, error: &ReviewError) -> ReviewAnswer {
    match endpoint {
        Endpoint::Validate { .. } => answer(uid, |r| {
            r.allowed = false;
            r.status = Some(Status {
                status: "Failure",
                code: 400,
                reason: "BadRequest",
                message: format!("ferrostack webhook cannot evaluate this review: {error}"),
            });
        }),
        Endpoint::Mutate => answer(uid, |r| {
            r.warnings = vec![format!(
                "ferrostack webhook: mutation skipped, the review cannot be read: {error}"
            )];
        }),
    }
}

/// The answer when evaluation failed (a bug, not the request's fault): still an AdmissionReview
/// with the uid, `/validate` denying with 500 and `/mutate` allowing unchanged with a warning.
pub fn failed(req: &Request, endpoint: Endpoint) -> Outcome {
    undecided(
        req,
        endpoint,
        Decision::Error,
        (500, "InternalError"),
        "policy evaluation failed; see the webhook's log",
        "ferrostack webhook: mutation skipped, evaluation failed",
    )
}

fn undecided(
    req: &Request,
    endpoint: Endpoint,
    decision: Decision,
    (code, reason): (u16, &'static str),
    deny: &str,
    warning: &str,
) -> Outcome {
    let uid = &req.inner.uid;
    let answer = match endpoint {
        Endpoint::Validate { .. } => answer(uid, |r| {
            r.allowed = false;
            r.status = Some(Status {
                status: "Failure",
                code,
                reason,
                message: deny.into(),
            });
        }),
        Endpoint::Mutate => answer(uid, |r| r.warnings = vec![warning.into()]),
    };
    Outcome {
        answer,
        decision,
        violations: Vec::new(),
    }
}

/// Decides one request, giving up once `deadline` has passed (the caller has answered with
/// [`timeout`] by then; stopping frees the CPU and memory the review holds).
pub fn review(
    policies: &Policies,
    req: &Request,
    endpoint: Endpoint,
    deadline: Option<Instant>,
) -> Outcome {
    let decided = match endpoint {
        Endpoint::Validate { namespace_labelled } => {
            validate(policies, req, namespace_labelled, deadline)
        }
        Endpoint::Mutate => mutate(policies, req, deadline),
    };
    decided.unwrap_or_else(|OutOfTime| timeout(req, endpoint))
}

/// The answer to a pod spec with more than [`MAX_CONTAINERS`] containers: not evaluated, so
/// the cost of a review stays bounded whatever the body holds. `/validate` denies (no real pod
/// comes near the limit); `/mutate` allows unchanged with a warning.
fn too_many_containers(req: &Request, endpoint: Endpoint, count: usize) -> Outcome {
    let decision = match endpoint {
        Endpoint::Validate { .. } => Decision::Denied,
        Endpoint::Mutate => Decision::Warned,
    };
    undecided(
        req,
        endpoint,
        decision,
        (413, "RequestEntityTooLarge"),
        &format!(
            "the pod spec has {count} containers; the webhook reviews at most {MAX_CONTAINERS}"
        ),
        "ferrostack webhook: mutation skipped, the pod spec has too many containers",
    )
}

/// Containers in every list of the object's pod spec (0 when the kind has none).
fn container_count(kind: &str, object: &Value) -> usize {
    Workload::of(kind, object).map_or(0, |w| {
        let spec = w.pod_spec();
        ALL_GROUPS
            .iter()
            .map(|g| spec[g.key()].as_array().map_or(0, Vec::len))
            .sum()
    })
}

fn validate(
    policies: &Policies,
    req: &Request,
    namespace_labelled: bool,
    deadline: Option<Instant>,
) -> Result<Outcome, OutOfTime> {
    let uid = &req.inner.uid;
    let allowed = || Outcome {
        answer: answer(uid, |_| {}),
        decision: Decision::Allowed,
        violations: Vec::new(),
    };
    if !matches!(req.inner.operation, Operation::Create | Operation::Update) {
        return Ok(allowed());
    }
    let endpoint = Endpoint::Validate { namespace_labelled };
    let count = container_count(req.kind(), &req.object);
    if count > MAX_CONTAINERS {
        return Ok(too_many_containers(req, endpoint, count));
    }
    let Some(new) = subject(req, &req.object, namespace_labelled) else {
        return Ok(allowed());
    };
    let mut violations = policies.evaluate_until(&new, deadline)?;
    if matches!(req.inner.operation, Operation::Update)
        && !req.old_object.is_null()
        && container_count(req.kind(), &req.old_object) <= MAX_CONTAINERS
        && let Some(old) = subject(req, &req.old_object, namespace_labelled)
    {
        let old = policies.evaluate_until(&old, deadline)?;
        violations = grandfather(violations, &req.object, &old, &req.old_object);
    }
    Ok(decide(req, violations))
}

/// What the policies see of `object` (the request's object or old object).
fn subject<'a>(
    req: &'a Request,
    object: &'a Value,
    namespace_labelled: bool,
) -> Option<Subject<'a>> {
    Workload::of(req.kind(), object).map(|workload| Subject {
        workload,
        namespace: req.namespace(),
        namespace_labelled,
        namespace_labels: req.namespace_labels.as_ref(),
    })
}

/// The answer to a request with these violations: denied when one is enforced.
fn decide(req: &Request, violations: Vec<Violation>) -> Outcome {
    let uid = &req.inner.uid;
    let enforced: Vec<&Violation> = violations
        .iter()
        .filter(|v| v.mode == Mode::Enforce)
        .collect();
    let warnings = warnings(violations.iter().filter(|v| v.mode == Mode::Warn));
    let (decision, answer) = if !enforced.is_empty() {
        let message = denial(req, &enforced);
        let a = answer(uid, |r| {
            r.allowed = false;
            r.status = Some(Status {
                status: "Failure",
                code: 403,
                reason: "Forbidden",
                message,
            });
            r.warnings = warnings;
        });
        (Decision::Denied, a)
    } else if !warnings.is_empty() {
        (Decision::Warned, answer(uid, |r| r.warnings = warnings))
    } else {
        (Decision::Allowed, answer(uid, |_| {}))
    };
    Outcome {
        answer,
        decision,
        violations,
    }
}

/// The denial message: a header, then the first [`MAX_DENIAL_LINES`] violations, each at most
/// [`MAX_DENIAL_LINE_CHARS`], and a count of the rest, so its size is bounded whatever the
/// object holds (kubectl prints it whole; etcd's event size is far smaller than a review).
fn denial(req: &Request, enforced: &[&Violation]) -> String {
    let header = format!(
        "{} {} violates {} polic{}:",
        req.kind(),
        object_name(req),
        enforced.len(),
        if enforced.len() == 1 { "y" } else { "ies" }
    );
    let mut message = truncate(header, MAX_DENIAL_LINE_CHARS);
    for v in enforced.iter().take(MAX_DENIAL_LINES) {
        message.push_str("\n- ");
        message.push_str(&truncate(v.to_string(), MAX_DENIAL_LINE_CHARS));
    }
    if let Some(more) = enforced
        .len()
        .checked_sub(MAX_DENIAL_LINES)
        .filter(|m| *m > 0)
    {
        let _ = write!(message, "\n- … and {more} more");
    }
    message
}

fn mutate(
    policies: &Policies,
    req: &Request,
    deadline: Option<Instant>,
) -> Result<Outcome, OutOfTime> {
    let uid = &req.inner.uid;
    let unchanged = || Outcome {
        answer: answer(uid, |_| {}),
        decision: Decision::Allowed,
        violations: Vec::new(),
    };
    let kind = req.kind();
    let eligible = match req.inner.operation {
        Operation::Create => true,
        Operation::Update => template_mutable_on_update(kind),
        Operation::Delete | Operation::Connect => false,
    };
    // Subresources (status, scale, ephemeralcontainers) are not where templates are set.
    let subresource = req
        .inner
        .sub_resource
        .as_deref()
        .is_some_and(|s| !s.is_empty());
    if !eligible
        || subresource
        || !req.object.is_object()
        || !policies.mutations.applies(req.namespace())
    {
        return Ok(unchanged());
    }
    let count = container_count(kind, &req.object);
    if count > MAX_CONTAINERS {
        return Ok(too_many_containers(req, Endpoint::Mutate, count));
    }
    let mut mutated = req.object.clone();
    if policies.mutations.apply(kind, &mut mutated).is_empty() {
        return Ok(unchanged());
    }
    out_of_time(deadline)?;
    let patch = json_patch::diff(&req.object, &mutated);
    out_of_time(deadline)?;
    Ok(patched(uid, &patch).unwrap_or_else(unchanged))
}

/// The answer carrying `patch`; `None` when it is empty or cannot be encoded. A patch over
/// [`MAX_PATCH_BYTES`] is not sent: the object is allowed unchanged with a warning.
fn patched(uid: &str, patch: &json_patch::Patch) -> Option<Outcome> {
    let encoded = encode_patch(patch).ok().filter(|_| !patch.0.is_empty())?;
    let (decision, answer) = if encoded.len() > MAX_PATCH_BYTES {
        let warning = format!(
            "ferrostack webhook: mutation skipped, the patch would exceed {MAX_PATCH_BYTES} bytes"
        );
        (
            Decision::Warned,
            answer(uid, |r| r.warnings = vec![warning]),
        )
    } else {
        let a = answer(uid, |r| {
            r.patch_type = Some("JSONPatch");
            r.patch = Some(encoded);
        });
        (Decision::Patched, a)
    };
    Some(Outcome {
        answer,
        decision,
        violations: Vec::new(),
    })
}

fn out_of_time(deadline: Option<Instant>) -> Result<(), OutOfTime> {
    match deadline {
        Some(d) if Instant::now() >= d => Err(OutOfTime),
        _ => Ok(()),
    }
}

/// A JSON Patch as the API server reads `response.patch` (Go `[]byte`): its JSON in standard
/// base64 with padding. Go's decoder refuses the URL-safe alphabet.
pub fn encode_patch(patch: &json_patch::Patch) -> Result<String, serde_json::Error> {
    Ok(base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(patch)?))
}

fn object_name(req: &Request) -> String {
    let name = req.object["metadata"]["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .or(Some(req.inner.name.as_str()).filter(|n| !n.is_empty()))
        .or_else(|| req.object["metadata"]["generateName"].as_str())
        .unwrap_or("(unnamed)");
    match req.namespace() {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_owned(),
    }
}

/// At most [`MAX_WARNINGS`] warnings of at most [`MAX_WARNING_CHARS`]; only the kept ones
/// are formatted, so 100,000 warn-mode violations cost a count, not 100,000 strings.
fn warnings<'a>(violations: impl Iterator<Item = &'a Violation>) -> Vec<String> {
    let mut kept = Vec::new();
    let mut total = 0usize;
    for v in violations {
        total += 1;
        if kept.len() < MAX_WARNINGS {
            kept.push(truncate(v.to_string(), MAX_WARNING_CHARS));
        }
    }
    if total > MAX_WARNINGS {
        kept.truncate(MAX_WARNINGS - 1);
        let more = total - (MAX_WARNINGS - 1);
        kept.push(format!("… and {more} more policy warnings"));
    }
    kept
}

/// `s` cut to `max` characters, the last one an ellipsis when cut.
fn truncate(mut s: String, max: usize) -> String {
    if let Some((at, _)) = s.char_indices().nth(max) {
        s.truncate(at);
        s.pop();
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_other_versions_and_missing_requests() {
        let v1beta1 =
            br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":null}"#;
        let rejected = |body: &[u8]| parse(body).expect_err("rejected");
        let r = rejected(v1beta1);
        assert!(matches!(r.error, ReviewError::Version(_)) && r.uid.is_none());
        let empty = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#;
        assert!(matches!(rejected(empty).error, ReviewError::NoRequest));
        assert!(matches!(rejected(b"{").error, ReviewError::Json(_)));
        // A v1beta1 review keeps its 400 even with a uid: it could not read a v1 answer.
        let beta_uid = br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u"}}"#;
        assert_eq!(rejected(beta_uid).uid, None);
    }

    #[test]
    fn a_readable_uid_is_kept_and_the_broken_field_named() {
        let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{
            "uid":"u-7","kind":{"group":"","version":"v1","kind":7},
            "resource":{"group":"","version":"v1","resource":"pods"},
            "operation":"CREATE","userInfo":{}}}"#;
        let r = parse(body).expect_err("rejected");
        assert_eq!(r.uid.as_deref(), Some("u-7"));
        assert!(
            r.error.to_string().contains("request.kind.kind"),
            "{}",
            r.error
        );
        let empty_uid = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":""}}"#;
        assert_eq!(parse(empty_uid).expect_err("rejected").uid, None);
    }

    #[test]
    fn budget_overruns_and_failures_deny_validation_and_skip_mutation_with_the_uid() {
        let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{
            "uid":"u-1","kind":{"group":"","version":"v1","kind":"Pod"},
            "resource":{"group":"","version":"v1","resource":"pods"},"operation":"CREATE",
            "userInfo":{},"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"}}}}"#;
        let req = parse(body).unwrap();
        let v = timeout(
            &req,
            Endpoint::Validate {
                namespace_labelled: false,
            },
        );
        assert_eq!(v.decision, Decision::Timeout);
        assert_eq!(v.answer.response.uid, "u-1");
        assert!(!v.answer.response.allowed);
        assert_eq!(v.answer.response.status.as_ref().map(|s| s.code), Some(503));
        let m = timeout(&req, Endpoint::Mutate);
        assert!(m.answer.response.allowed);
        assert!(m.answer.response.patch.is_none() && m.answer.response.patch_type.is_none());
        assert_eq!(m.answer.response.warnings.len(), 1);

        let v = failed(
            &req,
            Endpoint::Validate {
                namespace_labelled: true,
            },
        );
        assert_eq!(v.decision, Decision::Error);
        assert_eq!(v.answer.response.uid, "u-1");
        assert_eq!(
            v.answer
                .response
                .status
                .as_ref()
                .map(|s| (s.code, s.reason)),
            Some((500, "InternalError"))
        );
        let m = failed(&req, Endpoint::Mutate);
        assert_eq!(m.answer.response.uid, "u-1");
        assert!(m.answer.response.allowed && m.answer.response.patch.is_none());
    }

    #[test]
    fn patches_use_the_standard_base64_alphabet() {
        // "??>" encodes to "Pz8+" and "???" to "Pz8/": the two characters where standard and
        // URL-safe base64 differ.
        let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
            {"op": "add", "path": "/metadata/annotations/a~1b", "value": "??>???"}
        ]))
        .unwrap();
        let encoded = encode_patch(&patch).unwrap();
        assert!(encoded.contains('+') && encoded.contains('/'), "{encoded}");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&encoded)
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<json_patch::Patch>(&decoded).unwrap(),
            patch
        );
    }

    #[test]
    fn long_and_many_warnings_are_capped() {
        assert_eq!(
            truncate("x".repeat(300), MAX_WARNING_CHARS).chars().count(),
            MAX_WARNING_CHARS
        );
        assert_eq!(
            truncate("x".repeat(256), MAX_WARNING_CHARS).chars().count(),
            256
        );
        let v = Violation {
            policy: "probes",
            mode: Mode::Warn,
            container: None,
            field: "f".into(),
            message: "m".into(),
            exception: None,
        };
        let many = vec![v; 100];
        let w = warnings(many.iter());
        assert_eq!(w.len(), MAX_WARNINGS);
        assert!(
            w[MAX_WARNINGS - 1].contains("61 more"),
            "{}",
            w[MAX_WARNINGS - 1]
        );
    }
}
