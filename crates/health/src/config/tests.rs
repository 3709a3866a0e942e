use super::*;
use std::sync::Arc;

const GOOD: &str = r#"
defaults:
  timeout: 5s
targets:
  - name: backend-api
    url: http://backend-api.backend/
    conditions:
      - "[STATUS] == 200"
      - "[RESPONSE_TIME] < 4s"
  - name: data-api
    url: https://data-api.data/health
    method: post
    headers: {Accept: application/json}
    body: '{"ping":1}'
    timeout: 2s
    retries: 2
    retry-backoff: 250ms
    interval: 30s
    follow-redirects: false
    tls: {insecure-skip-verify: true}
"#;

fn error(text: &str) -> ConfigError {
    parse_targets("targets.yaml", text).expect_err("must be rejected")
}

#[test]
fn parses_targets_with_defaults_applied() {
    let t = parse_targets("targets.yaml", GOOD).unwrap();
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].name, "backend-api");
    assert_eq!(t[0].timeout, Duration::from_secs(5));
    assert_eq!(t[0].conditions.len(), 2);
    assert_eq!(t[0].method, Method::GET);
    assert!(t[0].follow_redirects);
    assert_eq!(t[1].timeout, Duration::from_secs(2));
    assert_eq!(t[1].method, Method::POST);
    assert_eq!(t[1].headers["accept"], "application/json");
    assert_eq!(&t[1].body[..], br#"{"ping":1}"#);
    assert_eq!(
        (t[1].retries, t[1].retry_backoff),
        (2, Duration::from_millis(250))
    );
    assert_eq!(t[1].interval, Duration::from_secs(30));
    assert!(!t[1].follow_redirects);
    assert_eq!(t[1].conditions[0].to_string(), "[STATUS] == 200");
}

#[test]
fn accepts_gatus_endpoints_key() {
    let t = parse_targets("g.yaml", "endpoints:\n  - name: a\n    url: http://a/\n").unwrap();
    assert_eq!(t[0].name, "a");
}

/// Each `(yaml, target, field, message)` is rejected in one line naming the file, that
/// target and that field.
fn assert_rejected(cases: &[(&str, Option<&str>, Option<&str>, &str)]) {
    for (text, target, field, msg) in cases {
        let e = error(text);
        assert_eq!(
            (e.file(), e.target(), e.field()),
            ("targets.yaml", *target, *field),
            "{text}: {e}"
        );
        let line = e.to_string();
        assert!(line.contains(msg), "{text}: {line}");
        assert!(!line.contains('\n'), "one line: {line}");
    }
}

#[test]
fn bad_field_values_name_file_target_and_field() {
    assert_rejected(&[
        (
            "targets:\n  - name: api\n    url: http://a/\n    timeout: 5x\n",
            Some("api"),
            Some("timeout"),
            "not a duration",
        ),
        (
            "targets:\n  - name: api\n    url: ftp://a/\n",
            Some("api"),
            Some("url"),
            "http://",
        ),
        (
            "targets:\n  - name: api\n    url: http://a/\n    conditions: ['[STATUS]==200']\n",
            Some("api"),
            Some("conditions"),
            "invalid condition",
        ),
        (
            "targets:\n  - name: api\n    url: http://a/\n    retries: lots\n",
            Some("api"),
            Some("retries"),
            "invalid type",
        ),
        (
            "targets:\n  - name: api\n    url: http://a/\n    method: 'G T'\n",
            Some("api"),
            Some("method"),
            "not an HTTP method",
        ),
        (
            "targets:\n  - name: api\n    url: http://a/\n    headers: {'a b': x}\n",
            Some("api"),
            Some("headers"),
            "header name",
        ),
        (
            "targets:\n  - name: a\n    url: http://a/\n    interval: 10ms\n",
            Some("a"),
            Some("interval"),
            "at least 1s",
        ),
    ]);
}

#[test]
fn bad_keys_tls_and_names_name_file_target_and_field() {
    assert_rejected(&[
        (
            "targets:\n  - name: api\n    url: http://a/\n    timout: 1s\n",
            Some("api"),
            Some("timout"),
            "unknown field `timout`",
        ),
        (
            "targets:\n  - name: api\n    url: http://a/\n    tls: {ca-file: /nonexistent.pem}\n",
            Some("api"),
            Some("tls.ca-file"),
            "cannot read",
        ),
        (
            "targets:\n  - name: api\n    url: http://a/\n    tls: {ca: x}\n",
            Some("api"),
            Some("tls.ca"),
            "unknown field `ca`",
        ),
        (
            "targets:\n  - name: api\n    url: http://a/\n  - name: api\n    url: http://b/\n",
            Some("api"),
            Some("name"),
            "duplicate",
        ),
        (
            "targets:\n  - url: http://a/\n",
            Some("#1"),
            None,
            "missing field `name`",
        ),
    ]);
}

#[test]
fn bad_files_name_file_and_field() {
    assert_rejected(&[
        ("targets: []\n", None, Some("targets"), "no targets"),
        (
            "targetz: []\n",
            None,
            Some("targetz"),
            "unknown field `targetz`",
        ),
        ("targets: [\n", None, Some("targets"), "line"),
    ]);
}

#[test]
fn error_line_reads_file_target_field_reason() {
    let e = error("targets:\n  - name: api\n    url: http://a/\n    timeout: 5x\n");
    assert!(
        e.to_string()
            .starts_with(r#"targets.yaml: target "api": field "timeout": "5x" is not a duration"#),
        "{e}"
    );
}

#[test]
fn default_targets_are_the_case_study_checks() {
    let t = default_targets("http://backend:8080/", "http://data:8081", "staging").unwrap();
    let urls: Vec<_> = t
        .iter()
        .map(|t| (t.name.as_str(), t.url.to_string()))
        .collect();
    assert_eq!(
        urls,
        [
            ("backend-api", "http://backend:8080/".to_owned()),
            ("data-api", "http://data:8081/".to_owned()),
            (
                "download-external-logs",
                "http://backend:8080/download_external_logs?env=staging".to_owned()
            ),
        ]
    );
    assert!(
        t.iter()
            .all(|t| t.conditions[0].to_string() == "[STATUS] == 200")
    );
    let e = default_targets("nope", "http://d/", "x").unwrap_err();
    assert_eq!((e.file(), e.field()), ("flags", Some("--backend-url")));
}

#[test]
fn targets_share_one_tls_config_per_setting() {
    let t = parse_targets("t.yaml", GOOD).unwrap();
    let u = parse_targets(
        "t.yaml",
        "targets:\n  - {name: a, url: 'http://a/'}\n  - {name: b, url: 'http://b/'}\n",
    )
    .unwrap();
    assert!(Arc::ptr_eq(&u[0].tls.config, &u[1].tls.config));
    assert!(!Arc::ptr_eq(&t[0].tls.config, &t[1].tls.config));
}
