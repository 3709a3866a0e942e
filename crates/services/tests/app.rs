//! The services' router in process (axum's `oneshot`), wrapped by the runtime exactly as in
//! production: fast checks of the handlers' contracts without sockets.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use runtime::Context;
use runtime::http::ServerConfig;
use runtime::telemetry::LogEvents;
use serde_json::Value;
use services::{AppState, BackendApiArgs, Config, ServiceArgs};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

fn backend(log_dir: &std::path::Path) -> axum::Router {
    let args = BackendApiArgs {
        port: 0,
        service: ServiceArgs {
            log_dir: Some(log_dir.to_owned()),
            work_delay: Duration::from_millis(1),
        },
        external_logs_url: None,
        external_logs_timeout: Duration::from_secs(1),
        integration_keys_dir: log_dir.join("no-keys"),
        environments: vec!["development".into(), "staging".into()],
        server: runtime::args::defaults().unwrap(),
    };
    let config = Config::backend_api(&args, Vec::new()).unwrap();
    let ctx = Context::new(
        "backend-api",
        CancellationToken::new(),
        LogEvents::default(),
    );
    let mut registry = runtime::metrics::registry(&ctx);
    let server = ServerConfig::new(&args.server, 0).unwrap();
    let state = AppState::new(config, &mut registry).unwrap();
    runtime::http::app(services::app(state), registry, &server, &ctx)
}

async fn call(app: &axum::Router, uri: &str) -> (StatusCode, Value) {
    let response = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn generate_writes_the_file_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let app = backend(dir.path());
    let (status, body) = call(&app, "/").await;
    assert_eq!(status, StatusCode::OK);
    let written = std::fs::read_to_string(dir.path().join(body["file"].as_str().unwrap())).unwrap();
    let doc: Value = serde_json::from_str(&written).unwrap();
    assert_eq!(doc["service"], "backend-api");
    assert_eq!(doc["message"], body["message"]);
}

#[tokio::test]
async fn readiness_is_off_until_served() {
    let dir = tempfile::tempdir().unwrap();
    let (status, body) = call(&backend(dir.path()), "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "not_ready");
}

#[tokio::test]
async fn environments_are_the_configured_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (status, body) = call(
        &backend(dir.path()),
        "/download_external_logs?env=production",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"]["message"],
        "unknown environment \"production\"; valid: development, staging"
    );
    let (status, body) = call(&backend(dir.path()), "/download_external_logs?env=staging").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "external_logs_not_configured");
}

#[tokio::test]
async fn repeated_env_is_refused_rather_than_guessed() {
    let dir = tempfile::tempdir().unwrap();
    let (status, body) = call(
        &backend(dir.path()),
        "/download_external_logs?env=staging&env=development",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "unknown_environment");
}
