//! runtime's HTTP stack in process: the router [`runtime::http::app`] builds around a small
//! API, called with `tower::ServiceExt::oneshot` (no sockets): request ids, the JSON error
//! envelope (404, 405, 413, 414, 431, timeout, panic, extractor rejection), the probes,
//! /version, /metrics, /openapi.json and the fault-injection switch.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Request, Response, StatusCode, header};
use axum::routing::{get, post};
use clap::Parser;
use http_body_util::BodyExt;
use runtime::Context;
use runtime::http::{ServerArgs, ServerConfig};
use runtime::telemetry::LogEvents;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use utoipa_axum::router::OpenApiRouter;

/// The server flags as a role parses them.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
}

/// The server settings `flags` give, as on the command line.
fn config(flags: &[&str]) -> ServerConfig {
    let cli = Cli::try_parse_from(std::iter::once("test").chain(flags.iter().copied()))
        .expect("valid flags");
    ServerConfig::new(&cli.server, 0).expect("valid settings")
}

/// A small API: `/echo` (body back), `/slow` (1 s), `/panic`, `/json` (a JSON extractor).
fn api() -> OpenApiRouter {
    OpenApiRouter::new()
        .route("/echo", post(|body: Bytes| async move { body }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                "late"
            }),
        )
        .route("/panic", get(panics))
        .route(
            "/json",
            post(|axum::Json(v): axum::Json<Value>| async move { axum::Json(v) }),
        )
}

async fn panics() -> &'static str {
    panic!("a handler bug")
}

/// The whole router of role `test` with `flags`, and its context (not yet ready).
fn app_with(flags: &[&str]) -> (Router, Context) {
    let ctx = Context::new("test", CancellationToken::new(), LogEvents::default());
    let registry = runtime::metrics::registry(&ctx);
    let router = runtime::http::app(api(), registry, &config(flags), &ctx);
    (router, ctx)
}

fn app() -> Router {
    app_with(&[]).0
}

async fn send(app: &Router, request: Request<Body>) -> Response<Body> {
    app.clone().oneshot(request).await.expect("infallible")
}

async fn get_uri(app: &Router, uri: &str) -> Response<Body> {
    send(app, Request::get(uri).body(Body::empty()).unwrap()).await
}

async fn body_text(response: Response<Body>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

async fn body_json(response: Response<Body>) -> Value {
    serde_json::from_str(&body_text(response).await).expect("a JSON body")
}

/// Asserts the JSON error envelope with `status` and `code`; returns its message.
async fn envelope(response: Response<Body>, status: StatusCode, code: &str) -> String {
    assert_eq!(response.status(), status);
    let content_type = response.headers()[header::CONTENT_TYPE].to_str().unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let v = body_json(response).await;
    assert_eq!(v["error"]["code"], code, "{v}");
    let message = v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!message.is_empty(), "{v}");
    message
}

#[tokio::test]
async fn a_request_without_an_id_gets_a_fresh_one_and_a_given_id_is_echoed() {
    let app = app();
    let made = get_uri(&app, "/healthz").await;
    let id = made.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 32, "{id}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    let again = get_uri(&app, "/healthz").await;
    assert_ne!(again.headers()["x-request-id"], id.as_str());

    let given = Request::get("/healthz")
        .header("x-request-id", "abc-123")
        .body(Body::empty())
        .unwrap();
    let echoed = send(&app, given).await;
    assert_eq!(echoed.headers()["x-request-id"], "abc-123");
}

#[tokio::test]
async fn an_unknown_path_is_a_404_envelope_naming_it() {
    let response = get_uri(&app(), "/nowhere").await;
    assert!(response.headers().contains_key("x-request-id"));
    let message = envelope(response, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(message, "no route for /nowhere");
}

#[tokio::test]
async fn a_wrong_method_is_a_405_envelope() {
    let request = Request::post("/healthz").body(Body::empty()).unwrap();
    let response = send(&app(), request).await;
    envelope(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
}

#[tokio::test]
async fn a_body_over_max_body_bytes_is_a_413_envelope() {
    let app = app_with(&["--max-body-bytes", "16"]).0;
    let within = Request::post("/echo")
        .body(Body::from("0123456789abcdef"))
        .unwrap();
    let response = send(&app, within).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_text(response).await, "0123456789abcdef");
    let over = Request::post("/echo")
        .body(Body::from("x".repeat(17)))
        .unwrap();
    let response = send(&app, over).await;
    envelope(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
}

#[tokio::test]
async fn a_request_over_request_timeout_is_a_503_envelope() {
    let app = app_with(&["--request-timeout", "50ms"]).0;
    let response = get_uri(&app, "/slow").await;
    envelope(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "service_unavailable",
    )
    .await;
}

#[tokio::test]
async fn a_uri_over_max_uri_bytes_is_a_414_envelope_naming_the_flag() {
    let app = app_with(&["--max-uri-bytes", "256"]).0;
    assert_eq!(get_uri(&app, "/healthz?x=1").await.status(), StatusCode::OK);
    let long = format!("/healthz?x={}", "v".repeat(300));
    let message = envelope(
        get_uri(&app, &long).await,
        StatusCode::URI_TOO_LONG,
        "uri_too_long",
    )
    .await;
    assert!(message.contains("--max-uri-bytes"), "{message}");
}

#[tokio::test]
async fn headers_over_max_header_bytes_are_a_431_envelope_naming_the_flag() {
    let app = app_with(&["--max-header-bytes", "1024"]).0;
    let request = Request::get("/healthz")
        .header("x-big", "b".repeat(2048))
        .body(Body::empty())
        .unwrap();
    let response = send(&app, request).await;
    let message = envelope(
        response,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "headers_too_large",
    )
    .await;
    assert!(message.contains("--max-header-bytes"), "{message}");
}

#[tokio::test]
async fn a_panicking_handler_is_a_500_envelope_and_the_router_keeps_serving() {
    let app = app();
    let response = get_uri(&app, "/panic").await;
    envelope(
        response,
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
    )
    .await;
    assert_eq!(get_uri(&app, "/healthz").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_extractor_rejection_keeps_its_text_inside_the_envelope() {
    let request = Request::post("/json")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    let response = send(&app(), request).await;
    let message = envelope(response, StatusCode::BAD_REQUEST, "bad_request").await;
    assert!(message.to_lowercase().contains("json"), "{message}");
}

#[tokio::test]
async fn healthz_is_ok_and_readyz_follows_the_readiness() {
    let (app, ctx) = app_with(&[]);
    let healthz = get_uri(&app, "/healthz").await;
    assert_eq!(healthz.status(), StatusCode::OK);
    assert_eq!(
        body_json(healthz).await,
        serde_json::json!({"status": "ok"})
    );

    let not_ready = get_uri(&app, "/readyz").await;
    envelope(not_ready, StatusCode::SERVICE_UNAVAILABLE, "not_ready").await;
    ctx.readiness().set_ready(true);
    let ready = get_uri(&app, "/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(body_json(ready).await["status"], "ok");
    ctx.readiness().set_ready(false);
    assert_eq!(
        get_uri(&app, "/readyz").await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn version_names_the_version_commit_and_role() {
    let v = body_json(get_uri(&app(), "/version").await).await;
    assert_eq!(v["version"], runtime::VERSION);
    assert_eq!(v["commit"], runtime::COMMIT);
    assert_eq!(v["role"], "test");
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_status() {
    let app = app();
    let echo = Request::post("/echo").body(Body::from("hi")).unwrap();
    assert_eq!(send(&app, echo).await.status(), StatusCode::OK);
    assert_eq!(
        get_uri(&app, "/nowhere").await.status(),
        StatusCode::NOT_FOUND
    );
    let response = get_uri(&app, "/metrics").await;
    let content_type = response.headers()[header::CONTENT_TYPE].to_str().unwrap();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = body_text(response).await;
    let counted = |route: &str, status: u16| {
        text.lines().any(|l| {
            l.starts_with("http_requests_total{")
                && l.contains(&format!("route=\"{route}\""))
                && l.contains(&format!("status=\"{status}\""))
        })
    };
    assert!(counted("/echo", 200), "{text}");
    assert!(counted("unmatched", 404), "{text}");
    assert!(text.contains("http_request_duration_seconds"), "{text}");
    assert!(text.ends_with("# EOF\n"), "{text}");
}

#[tokio::test]
async fn openapi_documents_the_probes_under_the_roles_title() {
    let response = get_uri(&app(), "/openapi.json").await;
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    let doc = body_json(response).await;
    assert_eq!(doc["info"]["title"], "ferrostack test");
    assert_eq!(doc["info"]["version"], runtime::VERSION);
    for path in [
        "/healthz",
        "/readyz",
        "/version",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} in {doc}");
    }
}

#[tokio::test]
async fn the_fault_switch_fails_api_routes_but_never_probes() {
    let app = app_with(&["--fault-injection"]).0;
    let post_to = |uri: &str| Request::post(uri).body(Body::empty()).unwrap();
    let enabled = send(&app, post_to("/fault_injection/enable")).await;
    assert_eq!(enabled.status(), StatusCode::ACCEPTED);
    assert_eq!(body_json(enabled).await["fault_injection"], "enabled");

    let echo = send(&app, post_to("/echo")).await;
    envelope(echo, StatusCode::INTERNAL_SERVER_ERROR, "fault_injected").await;
    assert_eq!(get_uri(&app, "/healthz").await.status(), StatusCode::OK);
    assert_eq!(get_uri(&app, "/metrics").await.status(), StatusCode::OK);
    let status = body_json(get_uri(&app, "/fault_injection/status").await).await;
    assert_eq!(status["fault_injection"], "enabled");

    let disabled = send(&app, post_to("/fault_injection/disable")).await;
    assert_eq!(disabled.status(), StatusCode::ACCEPTED);
    assert_eq!(send(&app, post_to("/echo")).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn without_the_flag_there_is_no_fault_switch() {
    let request = Request::post("/fault_injection/enable")
        .body(Body::empty())
        .unwrap();
    let response = send(&app(), request).await;
    envelope(response, StatusCode::NOT_FOUND, "not_found").await;
}
