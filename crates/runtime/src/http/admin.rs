//! The routes every role serves besides its API:
//! `GET /healthz` (liveness: the process serves; never checks dependencies),
//! `GET /readyz` (503 until listening and from the moment shutdown begins),
//! `GET /version`, `GET /metrics` (Prometheus text), `GET /openapi.json`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::registry::Registry;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{ApiError, Readiness};

#[derive(Clone)]
pub(super) struct AdminState {
    pub(super) role: &'static str,
    pub(super) readiness: Readiness,
    pub(super) registry: Arc<Registry>,
    pub(super) openapi: Arc<str>,
}

pub(super) fn router() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(version))
        .routes(routes!(metrics))
        .routes(routes!(openapi))
}

/// A probe answer.
#[derive(Serialize, utoipa::ToSchema)]
struct Probe {
    /// `ok`, or `not_ready`.
    status: &'static str,
}

/// Liveness: the process is serving.
#[utoipa::path(get, path = "/healthz", tag = "probes", responses((status = 200, body = Probe)))]
async fn healthz() -> Json<Probe> {
    Json(Probe { status: "ok" })
}

/// Readiness: 200 while the role should receive traffic, 503 before it listens and from the
/// moment shutdown begins.
#[utoipa::path(get, path = "/readyz", tag = "probes", responses(
    (status = 200, body = Probe),
    (status = 503, body = crate::error::ErrorBody),
))]
async fn readyz(State(state): State<AdminState>) -> Response {
    if state.readiness.is_ready() {
        Json(Probe { status: "ok" }).into_response()
    } else {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "not ready: starting or shutting down",
        )
        .into_response()
    }
}

/// Build information.
#[derive(Serialize, utoipa::ToSchema)]
struct Version {
    version: &'static str,
    commit: &'static str,
    role: &'static str,
}

/// The running version, commit and role.
#[utoipa::path(get, path = "/version", tag = "probes", responses((status = 200, body = Version)))]
async fn version(State(state): State<AdminState>) -> Json<Version> {
    Json(Version {
        version: crate::VERSION,
        commit: crate::COMMIT,
        role: state.role,
    })
}

/// Prometheus metrics in the OpenMetrics text format.
#[utoipa::path(get, path = "/metrics", tag = "probes", responses((status = 200, content_type = "application/openmetrics-text", body = String)))]
async fn metrics(State(state): State<AdminState>) -> Response {
    match crate::metrics::encode(&state.registry) {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => {
            ApiError::internal("metrics_encoding", "could not encode the metrics").into_response()
        }
    }
}

/// This OpenAPI 3 document, generated from the handlers.
#[utoipa::path(get, path = "/openapi.json", tag = "probes", responses((status = 200, content_type = "application/json", body = Object)))]
async fn openapi(State(state): State<AdminState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi.to_string(),
    )
        .into_response()
}
