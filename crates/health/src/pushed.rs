//! Pushed results (Gatus' external endpoints, Uptime Kuma's push monitors):
//! `POST /api/push/<target>` with `Authorization: Bearer <token>` records a result for a push
//! target, from a JSON body `{"success": true, "error": "...", "duration": "1.5s"}` or Gatus'
//! query form `?success=true&error=...&duration=1.5s`. A push target silent for longer than its
//! `heartbeat` gets a failed result. Both go through the writer task like probe results
//! (history, board, metrics, alerts).
//!
//! Tokens come from files (mounted Secrets) and are kept only as SHA-256 digests, compared in
//! constant time; they are never logged or echoed.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use runtime::error::ApiError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::{ConfigError, Target};
use crate::leader::Leadership;
use crate::record::{Phases, Record};

mod forward;

/// Results waiting for the writer task, pushed and probed alike.
const QUEUE: usize = 1024;
/// The longest token file read (a token, not a document).
const MAX_TOKEN_BYTES: u64 = 4096;

/// What makes a target a push target.
#[derive(Debug, Clone)]
pub struct PushSpec {
    /// Longest silence before a failed result is recorded (none: silence never fails).
    pub heartbeat: Option<Duration>,
    /// The token pushes must bear (none: push refused until one is configured).
    pub token: Option<Token>,
}

/// A bearer token, kept as its SHA-256 digest: equal-length digests make the comparison
/// constant-time whatever the presented token's length.
#[derive(Clone)]
pub struct Token([u8; 32]);

/// The channel into the writer task and the push targets' heartbeats; shared by the
/// handler and the service.
#[derive(Debug)]
pub(crate) struct Inbox {
    tx: mpsc::Sender<Record>,
    rx: Mutex<Option<mpsc::Receiver<Record>>>,
    targets: HashMap<String, (Target, Arc<Notify>)>,
}

// === impl Token ===

impl Token {
    /// Reads a token file; surrounding whitespace (a Secret's trailing newline) is dropped.
    pub(crate) fn read(path: &Path) -> Result<Self, String> {
        let text =
            runtime::files::read_capped_string(path, MAX_TOKEN_BYTES).map_err(|e| e.to_string())?;
        let token = text.trim();
        if token.is_empty() {
            return Err(format!("{} is empty", path.display()));
        }
        Ok(Self(Sha256::digest(token.as_bytes()).into()))
    }

    fn matches(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        digest.ct_eq(&self.0).into()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Gives push targets without a `token-file` the token of `--push-token-file`.
pub(crate) fn apply_token_file(
    targets: &mut [Target],
    file: Option<&Path>,
) -> Result<(), ConfigError> {
    let Some(file) = file else { return Ok(()) };
    let token = Token::read(file).map_err(|e| ConfigError::flag("--push-token-file", e))?;
    for spec in targets.iter_mut().filter_map(|t| t.push.as_mut()) {
        spec.token.get_or_insert_with(|| token.clone());
    }
    Ok(())
}

// === impl Inbox ===

impl Inbox {
    pub(crate) fn new(targets: &[Target]) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let targets = targets
            .iter()
            .filter(|t| t.push.is_some())
            .map(|t| (t.name.clone(), (t.clone(), Arc::new(Notify::new()))))
            .collect();
        Self {
            tx,
            rx: Mutex::new(Some(rx)),
            targets,
        }
    }

    /// The writer's end (once) and a sender for the probes.
    pub(crate) fn channel(&self) -> (mpsc::Sender<Record>, Option<mpsc::Receiver<Record>>) {
        let rx = self
            .rx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        (self.tx.clone(), rx)
    }

    /// For a push target with a heartbeat: the task that records a failure after each
    /// heartbeat without a push. `None` for other targets.
    pub(crate) fn watcher(
        &self,
        target: &Target,
        shutdown: CancellationToken,
    ) -> Option<impl Future<Output = ()> + Send + 'static> {
        let (target, beat) = self.targets.get(&target.name)?.clone();
        let heartbeat = target.push.as_ref()?.heartbeat?;
        let tx = self.tx.clone();
        Some(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = beat.notified() => {}
                    () = tokio::time::sleep(heartbeat) => {
                        let reason = format!(
                            "no push within heartbeat {}",
                            humantime::format_duration(heartbeat)
                        );
                        if tx.send(result(&target, false, Some(reason), 0.0)).await.is_err() {
                            return;
                        }
                    }
                }
            }
        })
    }
}

/// A pushed (or missed) result, marked if taken in a maintenance window.
fn result(target: &Target, success: bool, error: Option<String>, seconds: f64) -> Record {
    let mut record = Record {
        time: OffsetDateTime::now_utc(),
        target: target.name.clone(),
        url: target.url.to_string(),
        success,
        status: None,
        response_time_seconds: seconds,
        duration_seconds: seconds,
        attempts: 1,
        error,
        failed: Vec::new(),
        phases: Phases::default(),
        certificate_not_after: None,
        detail: crate::record::Detail::default(),
        maintenance: false,
    };
    target.maintenance.mark(&mut record);
    record
}

/// `POST /api/push/{target}`.
pub(crate) fn routes(inbox: Arc<Inbox>, lead: Arc<Leadership>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(push_post))
        .with_state(PushState {
            inbox,
            lead,
            client: forward::client(),
        })
}

/// What the push handler needs: the writer's channel, whether this replica leads, and the
/// client a follower forwards to the leader with.
#[derive(Clone)]
struct PushState {
    inbox: Arc<Inbox>,
    lead: Arc<Leadership>,
    client: Option<reqwest::Client>,
}

/// A push: the result in JSON (or, with `success` in the query, in Gatus' query form).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Push {
    /// Whether the job succeeded.
    pub success: bool,
    /// Why it failed (kept for failures only).
    #[serde(default)]
    pub error: Option<String>,
    /// How long it took, e.g. `1.5s`.
    #[serde(default)]
    pub duration: Option<String>,
}

/// What a push recorded.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Pushed {
    /// The target.
    pub target: String,
    /// The result's success.
    pub success: bool,
    /// When it was recorded (RFC3339).
    pub time: String,
    /// Taken inside a maintenance window (no alert).
    pub maintenance: bool,
}

/// Records a result for a push target.
#[utoipa::path(post, path = "/api/push/{target}", tag = "healthcheck",
    params(("target" = String, Path, description = "push target name (external-endpoints)"),
           ("Authorization" = String, Header, description = "`Bearer <token>`, the token of --push-token-file or the target's token-file"),
           ("success" = Option<bool>, Query, description = "Gatus' query form: the result"),
           ("error" = Option<String>, Query, description = "Gatus' query form: why it failed"),
           ("duration" = Option<String>, Query, description = "Gatus' query form: how long it took, e.g. 1.5s")),
    request_body(content = Option<Push>, content_type = "application/json"),
    responses(
        (status = 200, description = "recorded", body = Pushed),
        (status = 400, description = "bad body or query; the message names the field", body = runtime::error::ErrorBody),
        (status = 401, description = "missing or wrong bearer token", body = runtime::error::ErrorBody),
        (status = 403, description = "no token configured for this target: push disabled", body = runtime::error::ErrorBody),
        (status = 404, description = "no push target of that name", body = runtime::error::ErrorBody),
        (status = 503, description = "results queue full, or this replica is not the leader and could not forward the push to it (`not_leader`, `leader_unreachable`); a follower that knows the leader's --advertise-url answers with the leader's answer", body = runtime::error::ErrorBody),
))]
async fn push_post(
    State(PushState {
        inbox,
        lead,
        client,
    }): State<PushState>,
    UrlPath(name): UrlPath<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let (target, beat) = inbox.targets.get(&name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_target",
            format!(
                "no push target named {name:?} (push targets are the config's external-endpoints)"
            ),
        )
    })?;
    authorize(target, &headers)?;
    // Only the leader writes the history: a follower forwards to the leader it read in the
    // Lease, once; without one (none advertised, or mid-failover) it says so and the pusher
    // retries.
    if lead.follower() {
        if !headers.contains_key(forward::FORWARDED)
            && let (Some(leader), Some(client)) = (lead.leader_url(), client.as_ref())
        {
            return forward::to_leader(client, &leader, &name, query.as_deref(), &headers, body)
                .await;
        }
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_leader",
            "this replica is not the leader (healthcheck serve replicas elect one); retry",
        ));
    }
    let push = parse(query.as_deref(), &body)?;
    let seconds = match push.duration.as_deref() {
        None => 0.0,
        Some(d) => humantime::parse_duration(d)
            .map_err(|e| {
                invalid(
                    "duration",
                    format!("{d:?} is not a duration ({e}); write e.g. 1.5s"),
                )
            })?
            .as_secs_f64(),
    };
    let error = (!push.success).then(|| push.error.unwrap_or_else(|| "pushed a failure".into()));
    let record = result(target, push.success, error, seconds);
    let answer = Pushed {
        target: record.target.clone(),
        success: record.success,
        time: record
            .time
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        maintenance: record.maintenance,
    };
    inbox.tx.try_send(record).map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "queue_full",
            "the results queue is full; retry shortly",
        )
    })?;
    beat.notify_one();
    Ok(axum::Json(answer).into_response())
}

fn authorize(target: &Target, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = target.push.as_ref().and_then(|p| p.token.as_ref()) else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "push_disabled",
            format!(
                "push to {:?} is disabled: no token configured (--push-token-file, or token-file on the target)",
                target.name
            ),
        ));
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(p) if token.matches(p.trim()) => Ok(()),
        Some(_) => Err(unauthorized("the bearer token is not the one configured")),
        None => Err(unauthorized("missing `Authorization: Bearer <token>`")),
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

fn invalid(field: &str, message: String) -> ApiError {
    ApiError::bad_request("invalid_push", format!("field {field:?}: {message}"))
}

/// Gatus' query form when the query has `success`, else the JSON body.
fn parse(query: Option<&str>, body: &[u8]) -> Result<Push, ApiError> {
    let pairs: Vec<(String, String)> = query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    if let Some((_, success)) = pairs.iter().find(|(k, _)| k == "success") {
        let mut push = Push {
            success: match success.as_str() {
                "true" => true,
                "false" => false,
                other => {
                    return Err(invalid(
                        "success",
                        format!("{other:?} is not true or false"),
                    ));
                }
            },
            ..Push::default()
        };
        for (k, v) in pairs {
            match k.as_str() {
                "error" => push.error = Some(v),
                "duration" => push.duration = Some(v),
                _ => {}
            }
        }
        return Ok(push);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid(
            "success",
            "missing: send {\"success\": true} or ?success=true".into(),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let field = match path.as_str() {
            "." | "?" => "body",
            p => p,
        };
        let field = if inner.to_string().contains("missing field `success`") {
            "success"
        } else {
            field
        };
        invalid(field, inner.to_string())
    })
}

#[cfg(test)]
mod tests;
