//! `GET /`: simulate the work, then write a random log message to its own file.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use rand::seq::IndexedRandom;
use serde::Serialize;

use crate::AppState;
use crate::error::Error;
use crate::metrics::LevelLabel;

const MESSAGES: &[(&str, &[&str])] = &[
    (
        "info",
        &[
            "User logged in",
            "Data processed successfully",
            "Cache refreshed",
            "Report generated",
        ],
    ),
    (
        "warning",
        &[
            "Slow response from the database",
            "Retrying a failed job",
            "Disk usage above 80%",
        ],
    ),
    (
        "error",
        &[
            "Failed to connect to the payment service",
            "Unexpected end of input",
            "Job crashed",
        ],
    ),
    (
        "debug",
        &["Entering the processing loop", "Configuration reloaded"],
    ),
];

/// The message written.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Generated {
    /// Name of the new file in the log directory.
    file: String,
    /// `info`, `warning`, `error` or `debug`.
    level: &'static str,
    /// The message.
    message: &'static str,
}

#[derive(Serialize)]
struct Document<'a> {
    timestamp: String,
    level: &'a str,
    message: &'a str,
    service: &'a str,
    request_id: &'a str,
}

/// Waits `--work-delay` (a timer), then writes one random log message as a JSON document to
/// a new file in `--log-dir`.
#[utoipa::path(get, path = "/", tag = "service", responses(
    (status = 200, body = Generated),
    (status = 500, description = "the log file could not be written", body = runtime::error::ErrorBody),
))]
pub(crate) async fn generate(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Generated>, Error> {
    let inner = &state.inner;
    tokio::time::sleep(inner.config.work_delay).await;
    let (level, message) = {
        let mut rng = rand::rng();
        let (level, messages) = MESSAGES
            .choose(&mut rng)
            .copied()
            .unwrap_or(("info", &["ok"]));
        (level, messages.choose(&mut rng).copied().unwrap_or("ok"))
    };
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let document = Document {
        timestamp: now_rfc3339(),
        level,
        message,
        service: inner.config.role.name(),
        request_id,
    };
    let mut bytes = serde_json::to_vec(&document)
        .map_err(|e| Error::internal("encode_failed", e.to_string()))?;
    bytes.push(b'\n');
    match inner.logs.write(bytes).await {
        Ok(file) => {
            inner
                .metrics
                .generated
                .get_or_create(&LevelLabel { level })
                .inc();
            Ok(Json(Generated {
                file,
                level,
                message,
            }))
        }
        Err(e) => {
            inner.metrics.write_errors.inc();
            let reason = format!(
                "cannot write a log file in {}: {e}",
                inner.logs.path().display()
            );
            tracing::error!(error = %reason, "log write failed");
            Err(Error::internal("log_write_failed", reason))
        }
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
