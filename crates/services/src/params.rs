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
    (status = 400, description = "invalid_query: a % not followed by two hex digits, or bytes that are not UTF-8, in a name or value", body = runtime::error::ErrorBody),
))]
pub(crate) async fn api(RawQuery(query): RawQuery) -> Result<Response, Error> {
    let params = parse_query(query.as_deref().unwrap_or(""))?;
    // Serialised once, for both the log line and the answer.
    let printed = serde_json::to_string(&params).unwrap_or_default();
    tracing::info!(params = printed.as_str(), "query parameters");
    let body = format!("{{\"params\":{printed}}}");
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// Parses `application/x-www-form-urlencoded` pairs strictly: a `%` not followed by two hex
/// digits, or bytes that are not UTF-8 once decoded, are a `400 invalid_query` naming the
/// parameter, not passed through or replaced.
pub(crate) fn parse_query(query: &str) -> Result<Map<String, Value>, Error> {
    let mut params = Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode(raw_name).map_err(|why| {
            Error::bad_request(
                "invalid_query",
                format!("query parameter name {}: {why}", quoted(raw_name)),
            )
        })?;
        let value = decode(raw_value).map_err(|why| {
            Error::bad_request(
                "invalid_query",
                format!(
                    "query parameter {}: value {}: {why}",
                    quoted(&name),
                    quoted(raw_value)
                ),
            )
        })?;
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

/// Decodes one name or value: `+` is a space, `%XX` a byte; the bytes must be UTF-8.
fn decode(raw: &str) -> Result<String, &'static str> {
    // percent_decode passes a malformed escape through as it is; refuse it instead.
    let mut rest = raw.as_bytes();
    while let Some(pos) = rest.iter().position(|&b| b == b'%') {
        match rest.get(pos + 1..pos + 3) {
            Some([hi, lo]) if hi.is_ascii_hexdigit() && lo.is_ascii_hexdigit() => {
                rest = &rest[pos + 3..];
            }
            _ => return Err("a % must be followed by two hex digits"),
        }
    }
    let spaced: Cow<'_, str> = if raw.contains('+') {
        Cow::Owned(raw.replace('+', " "))
    } else {
        Cow::Borrowed(raw)
    };
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(Cow::into_owned)
        .map_err(|_| "the decoded bytes are not UTF-8")
}

/// A name or value for a message: quoted, escaped, at most 256 characters.
fn quoted(text: &str) -> String {
    const MAX: usize = 256;
    match text.char_indices().nth(MAX) {
        None => format!("{text:?}"),
        Some((end, _)) => format!("{:?}…", &text[..end]),
    }
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
        assert!(err.message().contains("\"q\""), "{}", err.message());
        assert!(err.message().contains("UTF-8"), "{}", err.message());
    }

    #[test]
    fn malformed_percent_escapes_are_a_bad_request_naming_the_parameter() {
        for (query, named) in [
            ("a=%ZZ", "query parameter \"a\""),
            ("a=%", "query parameter \"a\""),
            ("a=%F", "query parameter \"a\""),
            ("a=x%2", "query parameter \"a\""),
            ("ok=1&a=%41%G1", "query parameter \"a\""),
            ("a=%+1", "query parameter \"a\""),
            ("%ZZ=1", "query parameter name \"%ZZ\""),
            ("b%=1", "query parameter name \"b%\""),
            ("%F", "query parameter name \"%F\""),
        ] {
            let err = parse_query(query).unwrap_err();
            assert_eq!(
                (err.status().as_u16(), err.code()),
                (400, "invalid_query"),
                "{query}"
            );
            assert!(
                err.message().starts_with(named),
                "{query}: {}",
                err.message()
            );
            assert!(
                err.message().contains("two hex digits"),
                "{query}: {}",
                err.message()
            );
        }
        // Valid escapes of every case still decode.
        let p = parse_query("%61=%2f%2F%7e&b=100%25").unwrap();
        assert_eq!(
            (p["a"].as_str(), p["b"].as_str()),
            (Some("//~"), Some("100%"))
        );
    }

    #[test]
    fn a_long_bad_value_is_cut_in_the_message() {
        let query = format!("a={}%", "v".repeat(10_000));
        let err = parse_query(&query).unwrap_err();
        assert!(err.message().len() < 400, "{}", err.message());
    }
}
