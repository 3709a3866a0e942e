use super::*;

#[test]
fn the_query_form_wins_and_the_body_names_the_bad_field() {
    let p = parse(Some("success=false&error=disk%20full&duration=2s"), b"").unwrap();
    assert!(!p.success);
    assert_eq!(p.error.as_deref(), Some("disk full"));
    assert_eq!(p.duration.as_deref(), Some("2s"));
    let p = parse(None, br#"{"success": true, "duration": "1.5s"}"#).unwrap();
    assert!(p.success);
    for (query, body, message) in [
        (
            Some("success=yes"),
            &b""[..],
            r#"field "success": "yes" is not true or false"#,
        ),
        (None, b"", "field \"success\": missing"),
        (
            None,
            br#"{"success": "yes"}"#,
            "field \"success\": invalid type",
        ),
        (
            None,
            br#"{"error": "x"}"#,
            "field \"success\": missing field `success`",
        ),
        (
            None,
            br#"{"success": true, "colour": 1}"#,
            "field \"colour\": unknown field",
        ),
        (None, b"{", "field \"body\": EOF"),
    ] {
        let e = parse(query, body).unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert!(
            e.message().starts_with(message),
            "{} for {body:?}",
            e.message()
        );
    }
}

#[test]
fn the_flag_token_serves_push_targets_without_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let (own, global) = (dir.path().join("own"), dir.path().join("global"));
    std::fs::write(&own, "own-token").unwrap();
    std::fs::write(&global, "global-token\n").unwrap();
    let yaml = format!(
        "external-endpoints: [{{name: a}}, {{name: b, token-file: '{}'}}]",
        own.display()
    );
    let mut targets = crate::config::parse_targets("t.yaml", &yaml).unwrap();
    let token = |t: &Target, s: &str| t.push.as_ref().unwrap().token.as_ref().unwrap().matches(s);
    apply_token_file(&mut targets, Some(&global)).unwrap();
    assert!(token(&targets[0], "global-token"));
    assert!(token(&targets[1], "own-token") && !token(&targets[1], "global-token"));
    let e = apply_token_file(&mut targets, Some(&dir.path().join("none"))).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("flags: field \"--push-token-file\": cannot read"),
        "{e}"
    );
    let e = crate::config::parse_targets("t.yaml", "external-endpoints: [{name: 'a b'}]");
    assert_eq!(
        e.unwrap_err().to_string(),
        "t.yaml: target \"a b\": field \"name\": must be letters, digits, '.', '_' or '-' (it is a URL path segment)"
    );
}

#[test]
fn tokens_match_only_themselves_and_never_print() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "s3cret\n").unwrap();
    let token = Token::read(&path).unwrap();
    assert!(token.matches("s3cret"));
    assert!(!token.matches("s3cre"));
    assert!(!token.matches("s3cret2"));
    assert!(!format!("{token:?}").contains("s3cret"));
    std::fs::write(&path, " \n").unwrap();
    assert!(Token::read(&path).unwrap_err().ends_with("is empty"));
}

#[tokio::test]
async fn a_follower_refuses_pushes_it_could_not_record() {
    use tower::ServiceExt;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "t0ken").unwrap();
    let yaml = format!(
        "external-endpoints: [{{name: job, token-file: '{}'}}]",
        token.display()
    );
    let targets = crate::config::parse_targets("t.yaml", &yaml).unwrap();
    let push = |lead: Arc<Leadership>| {
        let (router, _) = routes(Arc::new(Inbox::new(&targets)), lead).split_for_parts();
        let request = axum::http::Request::post("/api/push/job?success=true")
            .header(header::AUTHORIZATION, "Bearer t0ken")
            .body(axum::body::Body::empty())
            .unwrap();
        async move { router.oneshot(request).await.unwrap().status() }
    };
    let mut registry = prometheus_client::registry::Registry::default();
    let lead = Arc::new(Leadership::register(&mut registry));
    // Alone (no election): it records.
    assert_eq!(push(lead.clone()).await, StatusCode::OK);
    // Elected and following: refused, so the pusher retries and may reach the leader.
    lead.elected_for_test();
    assert_eq!(push(lead.clone()).await, StatusCode::SERVICE_UNAVAILABLE);
    lead.set_leading(true);
    assert_eq!(push(lead).await, StatusCode::OK);
}
