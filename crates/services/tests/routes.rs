//! The routes of data-api and backend-api in process (axum's `oneshot` on the router runtime
//! wraps around the service, configs parsed from flags): /api's parameters and its 400s and
//! 414, the probes, /version, /openapi.json, JSON errors, request ids and /metrics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use clap::Parser;
use http_body_util::BodyExt;
use runtime::Context;
use runtime::telemetry::LogEvents;
use serde_json::Value;
use services::{AppState, BackendApiArgs, Config, DataApiArgs};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

#[derive(Parser)]
enum Cli {
    DataApi(DataApiArgs),
    BackendApi(BackendApiArgs),
}

/// The router of the role `args` (its subcommand and flags) starts, and the temporary
/// directory it logs to.
fn role(args: &[&str]) -> (axum::Router, tempfile::TempDir) {
    let logs = tempfile::tempdir().unwrap();
    let log_flags = ["--log-dir", logs.path().to_str().unwrap()];
    let argv = ["ferrostack"].iter().chain(args).chain(&log_flags);
    let (config, name) = match Cli::try_parse_from(argv).expect("valid flags") {
        Cli::DataApi(a) => (Config::data_api(&a).unwrap(), "data-api"),
        Cli::BackendApi(a) => (Config::backend_api(&a, Vec::new()).unwrap(), "backend-api"),
    };
    let ctx = Context::new(name, CancellationToken::new(), LogEvents::default());
    let mut registry = runtime::metrics::registry(&ctx);
    let server = config.server.clone();
    let state = AppState::new(config, &mut registry).unwrap();
    let app = runtime::http::app(services::app(state), registry, &server, &ctx);
    (app, logs)
}

async fn send(app: &axum::Router, request: Request<Body>) -> Response<Body> {
    app.clone().oneshot(request).await.unwrap()
}

/// The status and body (JSON when it is JSON, else a JSON string) of `GET uri`.
async fn get(app: &axum::Router, uri: &str) -> (StatusCode, Value) {
    let response = send(app, Request::get(uri).body(Body::empty()).unwrap()).await;
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

#[tokio::test]
async fn api_answers_the_query_parameters() {
    let (data, _logs) = role(&["data-api"]);
    let (status, body) = get(&data, "/api?name=ferro&tag=a&tag=b&tag=c&empty=&sp=x+y%21").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["params"]["name"], "ferro");
    assert_eq!(body["params"]["tag"], serde_json::json!(["a", "b", "c"]));
    assert_eq!(body["params"]["empty"], "");
    assert_eq!(body["params"]["sp"], "x y!");

    // A 10 KB query is answered whole.
    let long = "v".repeat(10 * 1024);
    let (status, body) = get(&data, &format!("/api?long={long}&long=2")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["params"]["long"][0].as_str().unwrap().len(), 10 * 1024);
}

/// Bad percent-encoding, in a value or a name, is a 400 naming the parameter: invalid UTF-8
/// and a % not followed by two hex digits alike.
#[tokio::test]
async fn bad_percent_encoding_is_a_400_naming_the_parameter() {
    let (data, _logs) = role(&["data-api"]);
    for (query, named) in [
        ("bad=%FF", r#"query parameter "bad""#),
        ("a=%ZZ", r#"query parameter "a""#),
        ("a=x%", r#"query parameter "a""#),
        ("a=%F", r#"query parameter "a""#),
        ("ok=1&a=%4", r#"query parameter "a""#),
        ("%ZZ=1", r#"query parameter name "%ZZ""#),
        ("a%=1", r#"query parameter name "a%""#),
        ("%F=1", r#"query parameter name "%F""#),
        ("%FF=1", r#"query parameter name "%FF""#),
    ] {
        let (status, body) = get(&data, &format!("/api?{query}")).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_query")),
            "{query}: {body}"
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(named), "{query}: {message}");
    }
}

#[tokio::test]
async fn a_query_over_the_uri_limit_is_a_414_envelope() {
    let huge = "v".repeat(20 * 1024);
    let (status, body) = get(&role(&["data-api"]).0, &format!("/api?x={huge}")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::URI_TOO_LONG, Some("uri_too_long"))
    );
}

#[tokio::test]
async fn healthz_and_version_name_the_role() {
    let (backend, _logs) = role(&["backend-api"]);
    let (s, b) = get(&backend, "/healthz").await;
    assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (s, v) = get(&backend, "/version").await;
    assert_eq!(
        (s, v["role"].as_str()),
        (StatusCode::OK, Some("backend-api"))
    );
    assert!(v["version"].as_str().is_some());
}

#[tokio::test]
async fn openapi_documents_every_route_of_backend_api() {
    let (s, doc) = get(&role(&["backend-api"]).0, "/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/",
        "/api",
        "/download_external_logs",
        "/healthz",
        "/readyz",
        "/version",
        "/metrics",
    ] {
        assert!(doc["paths"][path].is_object(), "openapi lacks {path}");
    }
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods_are_json_errors() {
    let (backend, _logs) = role(&["backend-api"]);
    let (s, e) = get(&backend, "/no/such/path").await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let post = Request::post("/api").body(Body::empty()).unwrap();
    let response = send(&backend, post).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let e: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(e["error"]["code"], "method_not_allowed");
}

/// A client's request id is echoed; one is made when absent.
#[tokio::test]
async fn a_request_id_is_echoed_or_made() {
    let (backend, _logs) = role(&["backend-api"]);
    let given = Request::get("/api")
        .header("x-request-id", "req-42")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        send(&backend, given).await.headers()["x-request-id"],
        "req-42"
    );
    let made = send(&backend, Request::get("/api").body(Body::empty()).unwrap()).await;
    assert_eq!(made.headers()["x-request-id"].len(), 32);
}

#[tokio::test]
async fn metrics_carry_red_build_and_process_families_and_no_raw_path() {
    let (backend, _logs) = role(&["backend-api"]);
    assert_eq!(get(&backend, "/api").await.0, StatusCode::OK);
    assert_eq!(
        get(&backend, "/no/such/path").await.0,
        StatusCode::NOT_FOUND
    );
    let (_, text) = get(&backend, "/metrics").await;
    let text = text.as_str().unwrap();
    for needle in [
        r#"http_requests_total{method="GET",route="/api",status="200"}"#,
        r#"http_requests_total{method="GET",route="unmatched",status="404"}"#,
        r#"http_request_duration_seconds_bucket{le="3.0",method="GET",route="/api"}"#,
        "http_requests_in_flight",
        r#"ferrostack_build_info{version=""#,
        r#"role="backend-api"} 1"#,
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        assert!(text.contains(needle), "metrics lack {needle}:\n{text}");
    }
    assert!(
        !text.contains("no/such/path"),
        "raw paths must never become labels"
    );
}
