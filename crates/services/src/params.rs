//! `GET /api`: answers the query parameters as JSON and logs them as one JSON line.

use std::borrow::Cow;

use axum::extract::RawQuery;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::Error;

/// The parameters: a name given once maps to its value, a repeated name to an array of its
/// values in order. (The OpenAPI shape of the answer; the handler writes the same JSON.)
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Params {
    #[schema(value_type = Object)]
    params: Map<String, Value>,
}

/// Returns the query parameters and prints them to stdout (one JSON log line).
#[utoipa::path(get, path = "/api", tag = "service", responses(
    (status = 200, body = Params),
    (status = 400, description = "the query is not valid percent-encoded UTF-8", body = runtime::error::ErrorBody),
))]
pub(crate) async fn api(RawQuery(query): RawQuery) -> Result<Response, Error> {
    let params = parse_query(query.as_deref().unwrap_or(""))?;
    // Serialised once, for both the log line and the answer.
    let printed = serde_json::to_string(&params).unwrap_or_default();
    tracing::info!(params = printed.as_str(), "query parameters");
    let body = format!("{{\"params\":{printed}}}");
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// Parses `application/x-www-form-urlencoded` pairs strictly: bad UTF-8 is an error, not
/// replacement characters.
pub(crate) fn parse_query(query: &str) -> Result<Map<String, Value>, Error> {
    let mut params = Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (name, value) = (decode(name)?, decode(value)?);
        match params.get_mut(&name) {
            None => {
                params.insert(name, Value::String(value));
            }
            Some(Value::Array(values)) => values.push(Value::String(value)),
            Some(first) => {
                let first = first.take();
                params.insert(name, Value::Array(vec![first, Value::String(value)]));
            }
        }
    }
    Ok(params)
}

fn decode(raw: &str) -> Result<String, Error> {
    let spaced: Cow<'_, str> = if raw.contains('+') {
        Cow::Owned(raw.replace('+', " "))
    } else {
        Cow::Borrowed(raw)
    };
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(Cow::into_owned)
        .map_err(|_| {
            Error::bad_request(
                "invalid_query",
                format!("{raw:?} is not percent-encoded UTF-8"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_names_become_arrays_in_order() {
        let p = parse_query("a=1&b=x+y&a=2&a=3&c").unwrap();
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"a":["1","2","3"],"b":"x y","c":""}"#
        );
    }

    #[test]
    fn percent_escapes_are_decoded() {
        let p = parse_query("q=%C3%A9t%C3%A9%26more").unwrap();
        assert_eq!(p["q"], "été&more");
    }

    #[test]
    fn invalid_utf8_is_a_bad_request() {
        let err = parse_query("q=%FF").unwrap_err();
        assert_eq!(err.code(), "invalid_query");
    }
}
