//! A push that reached a follower, forwarded to the leader (found through the Lease, see
//! `Leadership::leader_url`): only the leader writes the history, and a pusher behind the
//! chart's Service reaches any replica. One hop only: a request that was already forwarded is
//! refused by a follower (a leader that just lost its term), never forwarded again.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use runtime::error::ApiError;
use url::Url;

/// Set on a forwarded push.
pub(super) const FORWARDED: &str = "x-ferrostack-forwarded";
/// How long the leader may take to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The client followers forward with; `None` when it cannot be built (then they refuse).
pub(super) fn client() -> Option<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .inspect_err(
            |e| tracing::warn!(error = %e, "no HTTP client: pushes to followers are refused"),
        )
        .ok()
}

/// Sends the push to `leader` as it came (query, body, `Authorization`, `Content-Type`) and
/// answers with the leader's answer.
pub(super) async fn to_leader(
    client: &reqwest::Client,
    leader: &Url,
    target: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let url = push_url(leader, target, query);
    let mut request = client
        .post(url)
        .header(FORWARDED, HeaderValue::from_static("1"))
        .body(body);
    for name in [header::AUTHORIZATION, header::CONTENT_TYPE] {
        if let Some(v) = headers.get(&name) {
            request = request.header(name, v);
        }
    }
    let unreachable = |e: reqwest::Error| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "leader_unreachable",
            format!("this replica is not the leader and could not forward to it ({e}); retry"),
        )
    };
    let answer = request.send().await.map_err(unreachable)?;
    let status = answer.status();
    let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
    let bytes = answer.bytes().await.map_err(unreachable)?;
    let mut response = (status, bytes).into_response();
    if let Some(v) = content_type {
        response.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    Ok(response)
}

/// `<leader>/api/push/<target>?<query>`, the target name as one path segment.
fn push_url(leader: &Url, target: &str, query: Option<&str>) -> Url {
    let mut url = leader.clone();
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().extend(["api", "push", target]);
    }
    url.set_query(query);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_push_url_keeps_the_leaders_base_and_query_and_escapes_the_name() {
        let leader: Url = "http://10.0.0.7:8082/".parse().unwrap();
        assert_eq!(
            push_url(&leader, "backup job", Some("success=true")).as_str(),
            "http://10.0.0.7:8082/api/push/backup%20job?success=true"
        );
        let behind: Url = "https://hc.example/base".parse().unwrap();
        assert_eq!(
            push_url(&behind, "a/b", None).as_str(),
            "https://hc.example/base/api/push/a%2Fb"
        );
    }
}
