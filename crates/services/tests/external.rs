//! backend-api's `GET /download_external_logs` in process (axum's `oneshot` on the router
//! runtime wraps around the service) against a scripted upstream on loopback: every outcome's
//! status and error code, the bearer token per environment, key rotation, and its metric.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use clap::Parser;
use http_body_util::BodyExt;
use runtime::Context;
use runtime::telemetry::LogEvents;
use serde_json::Value;
use services::{AppState, BackendApiArgs, Config};
use test_support::upstream::{Mode, Upstream, recording_server};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

const DEV_KEY: &str = "dev-key-8f2b6c1d";
const STAGING_KEY: &str = "staging-key-77aa01";

/// backend-api's flags as its subcommand parses them.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: BackendApiArgs,
}

/// The backend-api router for `flags` (after a log dir in `dir`), the environment `env`.
fn backend(dir: &Path, flags: &[&str], env: &[(&str, &str)]) -> axum::Router {
    let log_dir = dir.join("logs");
    let base = ["backend-api", "--log-dir", log_dir.to_str().unwrap()];
    let cli = Cli::try_parse_from(base.iter().chain(flags)).expect("valid flags");
    let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    let config = Config::backend_api(&cli.args, env).unwrap();
    let ctx = Context::new(
        "backend-api",
        CancellationToken::new(),
        LogEvents::default(),
    );
    let mut registry = runtime::metrics::registry(&ctx);
    let server = config.server.clone();
    let state = AppState::new(config, &mut registry).unwrap();
    runtime::http::app(services::app(state), registry, &server, &ctx)
}

/// A backend-api calling `up` with the development key in a file (in `dir/keys`) and the
/// staging key in the environment.
fn backend_for(up: &Upstream, dir: &Path) -> axum::Router {
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::write(keys.join("development"), format!("{DEV_KEY}\n")).unwrap();
    let flags = [
        "--external-logs-url",
        &up.url(),
        "--external-logs-timeout",
        "500ms",
        "--integration-keys-dir",
        keys.to_str().unwrap(),
    ];
    backend(dir, &flags, &[("INTEGRATION_KEY_STAGING", STAGING_KEY)])
}

/// The status and body (JSON when it is JSON, else a JSON string) of `GET uri`.
async fn call(app: &axum::Router, uri: &str) -> (StatusCode, Value) {
    let request = Request::get(uri).body(Body::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// The error envelope's code and message of `GET /download_external_logs<query>`.
async fn error(app: &axum::Router, query: &str) -> (StatusCode, String, String) {
    let (status, e) = call(app, &format!("/download_external_logs{query}")).await;
    let text = |field: &str| e["error"][field].as_str().unwrap_or_default().to_owned();
    (status, text("code"), text("message"))
}

#[tokio::test]
async fn each_environments_key_is_sent_as_a_bearer_token() {
    let (up, dir) = (Upstream::start().await, tempfile::tempdir().unwrap());
    let app = backend_for(&up, dir.path());
    let (status, body) = call(&app, "/download_external_logs?env=development").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, Some("line one\nline two\n"))
    );
    let (status, _) = call(&app, "/download_external_logs?env=staging").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        up.seen(),
        vec![format!("Bearer {DEV_KEY}"), format!("Bearer {STAGING_KEY}")],
        "each environment's key is sent as a bearer token"
    );
}

#[tokio::test]
async fn a_missing_or_unknown_environment_is_a_400_listing_the_valid_ones() {
    let (up, dir) = (Upstream::start().await, tempfile::tempdir().unwrap());
    let app = backend_for(&up, dir.path());
    for (query, code) in [
        ("", "missing_environment"),
        ("?env=qa", "unknown_environment"),
    ] {
        let (status, got, message) = error(&app, query).await;
        assert_eq!((status, got.as_str()), (StatusCode::BAD_REQUEST, code));
        assert!(
            message.contains("development, staging, production"),
            "{message}"
        );
    }
    assert!(up.seen().is_empty(), "nothing was sent upstream");
}

#[tokio::test]
async fn an_environment_without_a_key_is_a_503_naming_its_variable() {
    let (up, dir) = (Upstream::start().await, tempfile::tempdir().unwrap());
    let app = backend_for(&up, dir.path());
    let (status, code, message) = error(&app, "?env=production").await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "integration_key_missing")
    );
    assert!(message.contains("INTEGRATION_KEY_PRODUCTION"), "{message}");
}

#[tokio::test]
async fn an_upstream_error_and_an_upstream_timeout_are_502s_and_counted() {
    let (up, dir) = (Upstream::start().await, tempfile::tempdir().unwrap());
    let app = backend_for(&up, dir.path());
    up.set_mode(Mode::Fail);
    let (status, code, message) = error(&app, "?env=development").await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_GATEWAY, "upstream_error")
    );
    assert!(message.contains("500"), "{message}");
    up.set_mode(Mode::Slow);
    let (status, code, _) = error(&app, "?env=development").await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_GATEWAY, "upstream_timeout")
    );

    let (_, metrics) = call(&app, "/metrics").await;
    let metrics = metrics.as_str().unwrap();
    assert!(
        metrics.contains(
            r#"ferrostack_external_logs_requests_total{env="development",outcome="upstream_timeout"} 1"#
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_rotated_key_file_takes_effect_without_a_restart() {
    let (up, dir) = (Upstream::start().await, tempfile::tempdir().unwrap());
    let app = backend_for(&up, dir.path());
    assert_eq!(
        call(&app, "/download_external_logs?env=development")
            .await
            .0,
        StatusCode::OK
    );
    std::fs::write(dir.path().join("keys/development"), "rotated-key-1").unwrap();
    assert_eq!(
        call(&app, "/download_external_logs?env=development")
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(up.seen().last().unwrap(), "Bearer rotated-key-1");
}

#[tokio::test]
async fn an_upstream_nobody_listens_on_is_a_502_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let closed = format!("http://127.0.0.1:{}/logs", test_support::free_port());
    let app = backend(
        dir.path(),
        &["--external-logs-url", &closed],
        &[("INTEGRATION_KEY_DEVELOPMENT", DEV_KEY)],
    );
    let (status, code, _) = error(&app, "?env=development").await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_GATEWAY, "upstream_unreachable")
    );
}

/// The configured API got `key` once, on /logs.
fn assert_called_once_with(seen: &test_support::upstream::SeenLog, key: &str) {
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].path, "/logs");
    let bearer = format!("Bearer {key}");
    assert_eq!(seen[0].authorization.as_deref(), Some(bearer.as_str()));
}

/// A 3xx is a 502 naming its Location, never followed: a second hop (here to the same origin,
/// where a client re-adding the original headers on every hop would send the key) would
/// carry the key to whatever host the first one named.
#[tokio::test]
async fn a_redirect_is_a_502_naming_its_location_and_is_never_followed() {
    const KEY: &str = "redirect-key-5e9d";
    let (other, other_seen) =
        recording_server(|path| (path == "/hop").then(|| "/final".to_owned())).await;
    let (api, api_seen) = recording_server(move |path| {
        (path == "/logs").then(|| format!("http://localhost:{}/hop?k={KEY}", other.port()))
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{api}/logs");
    let app = backend(
        dir.path(),
        &["--external-logs-url", &url],
        &[("INTEGRATION_KEY_DEVELOPMENT", KEY)],
    );
    let (status, code, message) = error(&app, "?env=development").await;
    // The other host got nothing at all (first: on failure this shows what it received).
    let other_seen = other_seen.lock().unwrap().clone();
    assert!(
        other_seen.is_empty(),
        "the redirect target was called: {other_seen:?}"
    );
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_GATEWAY, "upstream_redirect")
    );
    assert!(message.contains("302"), "{message}");
    let location = format!("http://localhost:{}/hop", other.port());
    assert!(
        message.contains(&location),
        "the Location is named: {message}"
    );
    assert!(
        !message.contains(KEY),
        "a key echoed in Location is not shown: {message}"
    );
    assert_called_once_with(&api_seen, KEY);

    let (_, metrics) = call(&app, "/metrics").await;
    let metrics = metrics.as_str().unwrap();
    let counted = r#"ferrostack_external_logs_requests_total{env="development",outcome="upstream_redirect"} 1"#;
    assert!(metrics.contains(counted), "{metrics}");
}
