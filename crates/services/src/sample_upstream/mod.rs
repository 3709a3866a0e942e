//! A sample external logs API, served by `ferrostack up` so `/download_external_logs` works
//! out of the box: `GET /logs` answers a few JSON log lines to a caller presenting the
//! generated key as `Authorization: Bearer <key>`, and 401 to anyone else.

pub mod keys;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use runtime::Context;
use runtime::http::{ServeError, ServerConfig};
use secrecy::{ExposeSecret, SecretString};
use tracing::Instrument;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::Error;

#[derive(Clone)]
struct Keys(Arc<Vec<SecretString>>);

/// The sample API accepting any of `keys`.
pub fn app(keys: Vec<SecretString>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(logs))
        .with_state(Keys(Arc::new(keys)))
}

/// Serves the sample API, accepting any of `keys`, until the context's shutdown completes.
pub async fn run(
    config: ServerConfig,
    keys: Vec<SecretString>,
    ctx: Context,
) -> Result<(), ServeError> {
    let span = ctx.span();
    async move {
        let registry = runtime::metrics::registry(&ctx);
        let router = runtime::http::app(app(keys), registry, &config, &ctx);
        runtime::http::serve(&config, &ctx, router).await
    }
    .instrument(span)
    .await
}

/// Sample log lines for an authorised caller.
#[utoipa::path(get, path = "/logs", tag = "sample", responses(
    (status = 200, description = "JSON lines", content_type = "application/x-ndjson", body = String),
    (status = 401, body = runtime::error::ErrorBody),
))]
async fn logs(State(keys): State<Keys>, headers: HeaderMap) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let authorised = presented.is_some_and(|p| keys.0.iter().any(|k| k.expose_secret() == p));
    if !authorised {
        return Error::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid integration key is required",
        )
        .into_response();
    }
    let body = concat!(
        "{\"level\":\"info\",\"message\":\"nightly export finished\",\"source\":\"sample-external-logs\"}\n",
        "{\"level\":\"warning\",\"message\":\"export took longer than usual\",\"source\":\"sample-external-logs\"}\n",
        "{\"level\":\"info\",\"message\":\"3 archives available\",\"source\":\"sample-external-logs\"}\n",
    );
    ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
}
