//! `GET /download_external_logs?env=<name>`: calls the external logs API with that
//! environment's integration key and streams its answer back. The key is read per request
//! (from the mounted Secret file, else the env var read at start) so a rotated Secret takes
//! effect without a restart; it never reaches a log line, a metric or a response. Redirects
//! are never followed: the key goes to the configured URL's host only.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};

use crate::config::{ExternalConfig, env_var_for};
use crate::error::Error;
use crate::metrics::ExternalLabels;
use crate::{AppState, params};

/// Downloads the logs of one environment from the external logs API.
#[utoipa::path(get, path = "/download_external_logs", tag = "service",
    params(("env" = String, Query, description = "development, staging or production (configurable)")),
    responses(
        (status = 200, description = "the external API's body, streamed", content_type = "application/octet-stream", body = String),
        (status = 400, description = "env missing or unknown", body = runtime::error::ErrorBody),
        (status = 502, description = "the external API failed, redirected, timed out or is unreachable", body = runtime::error::ErrorBody),
        (status = 503, description = "no key or no URL configured, or the key is not a valid header value", body = runtime::error::ErrorBody),
    ))]
pub(crate) async fn download_external_logs(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(external) = state.inner.config.external.as_ref() else {
        return Error::internal("not_backend", "this role has no external logs API")
            .into_response();
    };
    let params = match params::parse_query(query.as_deref().unwrap_or("")) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let valid = external.environments.join(", ");
    let env = match params.get("env") {
        None => {
            return Error::bad_request(
                "missing_environment",
                format!("the env query parameter is required; valid: {valid}"),
            )
            .into_response();
        }
        Some(serde_json::Value::String(env)) if external.environments.contains(env) => env.clone(),
        Some(other) => {
            let given = other
                .as_str()
                .map_or_else(|| other.to_string(), str::to_owned);
            return Error::bad_request(
                "unknown_environment",
                format!("unknown environment {given:?}; valid: {valid}"),
            )
            .into_response();
        }
    };
    let (outcome, response) = call(&state, external, &env).await;
    state
        .inner
        .metrics
        .external
        .get_or_create(&ExternalLabels { env, outcome })
        .inc();
    response
}

/// One outcome label for the metric and the response that goes with it.
type Outcome = (&'static str, Response);

async fn call(state: &AppState, external: &ExternalConfig, env: &str) -> Outcome {
    let Some(url) = external.url.clone() else {
        let e = Error::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "external_logs_not_configured",
            "no external logs API is configured (--external-logs-url)",
        );
        return ("not_configured", e.into_response());
    };
    let (key, auth) = match authorization(external, env).await {
        Ok(found) => found,
        Err(outcome) => return outcome,
    };
    let sent = state
        .inner
        .http
        .get(url)
        .header(header::AUTHORIZATION, auth)
        .send()
        .await;
    match sent {
        Ok(upstream) if upstream.status().is_success() => ("ok", streamed(upstream)),
        Ok(upstream) if upstream.status().is_redirection() => redirected(&upstream, env, &key),
        Ok(upstream) => upstream_error(upstream.status(), env),
        Err(err) => unanswered(err, external, env),
    }
}

/// The environment's key and the sensitive `Authorization` header carrying it; the key is
/// kept so a redirect's Location can be redacted.
async fn authorization(
    external: &ExternalConfig,
    env: &str,
) -> Result<(SecretString, HeaderValue), Outcome> {
    let Some(key) = key_for(external, env).await else {
        let e = Error::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "integration_key_missing",
            format!(
                "no integration key configured for environment {env}: mount it as {} or set {}",
                external.keys_dir.join(env).display(),
                env_var_for(env)
            ),
        );
        return Err(("key_missing", e.into_response()));
    };
    let Ok(mut auth) = HeaderValue::from_str(&format!("Bearer {}", key.expose_secret())) else {
        let e = Error::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "integration_key_invalid",
            format!("the integration key of environment {env} is not a valid header value"),
        );
        return Err(("key_invalid", e.into_response()));
    };
    auth.set_sensitive(true);
    Ok((key, auth))
}

/// The upstream's body streamed back under its own content type.
fn streamed(upstream: reqwest::Response) -> Response {
    let content_type = upstream
        .headers()
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let body = Body::from_stream(upstream.bytes_stream());
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// Never followed (the client has no redirect policy): the key stays with the configured host.
fn redirected(upstream: &reqwest::Response, env: &str, key: &SecretString) -> Outcome {
    let status = upstream.status();
    let location = upstream
        .headers()
        .get(header::LOCATION)
        .map_or_else(|| "none".to_owned(), |l| printable(l.as_bytes(), key));
    tracing::warn!(
        env,
        upstream_status = status.as_u16(),
        location = location.as_str(),
        "external logs API answered a redirect; not followed"
    );
    let e = Error::new(
        StatusCode::BAD_GATEWAY,
        "upstream_redirect",
        format!(
            "the external logs API answered {status} for environment {env} with \
             Location {location}; redirects are not followed (the integration key \
             goes only to --external-logs-url): set --external-logs-url to the final URL"
        ),
    );
    ("upstream_redirect", e.into_response())
}

fn upstream_error(status: reqwest::StatusCode, env: &str) -> Outcome {
    tracing::warn!(
        env,
        upstream_status = status.as_u16(),
        "external logs API answered an error"
    );
    let e = Error::new(
        StatusCode::BAD_GATEWAY,
        "upstream_error",
        format!("the external logs API answered {status} for environment {env}"),
    );
    ("upstream_error", e.into_response())
}

/// The request got no answer: it timed out or the API is unreachable.
fn unanswered(err: reqwest::Error, external: &ExternalConfig, env: &str) -> Outcome {
    if err.is_timeout() {
        tracing::warn!(env, timeout = ?external.timeout, "external logs API timed out");
        let e = Error::new(
            StatusCode::BAD_GATEWAY,
            "upstream_timeout",
            format!(
                "the external logs API did not answer within {:?}",
                external.timeout
            ),
        );
        return ("upstream_timeout", e.into_response());
    }
    // reqwest's message names the URL without credentials: the key is only in a header.
    let reason = err.without_url().to_string();
    tracing::warn!(env, error = %reason, "external logs API unreachable");
    let e = Error::new(
        StatusCode::BAD_GATEWAY,
        "upstream_unreachable",
        format!("the external logs API is unreachable: {reason}"),
    );
    ("upstream_unreachable", e.into_response())
}

/// A header value for a message: the key (should an upstream echo it) redacted, control
/// characters escaped, at most 512 characters.
fn printable(bytes: &[u8], key: &SecretString) -> String {
    const MAX: usize = 512;
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    let key = key.expose_secret();
    if !key.is_empty() {
        text = text.replace(key, "[integration key]");
    }
    let mut out: String = text
        .chars()
        .take(MAX)
        .flat_map(char::escape_debug)
        .collect();
    if text.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

/// The key: the Secret file first (re-read each time, so rotation needs no restart), then
/// the env var captured at start. Empty files count as absent.
async fn key_for(external: &ExternalConfig, env: &str) -> Option<SecretString> {
    let path = external.keys_dir.join(env);
    match tokio::task::spawn_blocking(move || read_key_file(&path)).await {
        Ok(Ok(Some(text))) if !text.trim().is_empty() => {
            return Some(SecretString::from(text.trim().to_owned()));
        }
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(env, error = %e, "cannot read the integration key file"),
        Err(e) => tracing::warn!(env, error = %e, "integration key read failed"),
    }
    external.env_keys.get(env).cloned()
}

/// A key is a short token: a larger key file is a mistake, and must not cost memory.
const MAX_KEY_FILE_BYTES: u64 = 64 << 10;

/// The key file's text, `None` when it does not exist. Only a regular file (through the
/// kubelet's `..data` symlinks) is read: a FIFO there would block the reading thread forever.
fn read_key_file(path: &std::path::Path) -> Result<Option<String>, runtime::files::ReadError> {
    use runtime::files::{ReadError, read_regular_capped};
    match read_regular_capped(path, MAX_KEY_FILE_BYTES) {
        Err(ReadError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(None)
        }
        Err(e) => Err(e),
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| ReadError::NotUtf8 {
                path: path.to_path_buf(),
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_is_read_only_when_it_is_a_small_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("staging");
        std::fs::write(&key, "k-123\n").unwrap();
        assert_eq!(read_key_file(&key).unwrap().as_deref(), Some("k-123\n"));
        assert!(read_key_file(&dir.path().join("absent")).unwrap().is_none());

        // A FIFO would block the read forever, a device never end: both refused at once.
        let fifo = dir.path().join("production");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let err = read_key_file(&fifo).unwrap_err().to_string();
        assert!(
            err.contains("not a regular file") && err.contains("production"),
            "{err}"
        );
        assert!(read_key_file(std::path::Path::new("/dev/zero")).is_err());

        std::fs::write(&key, vec![b'k'; 65 << 10]).unwrap();
        let err = read_key_file(&key).unwrap_err().to_string();
        assert!(err.contains("larger than"), "{err}");
    }
}
