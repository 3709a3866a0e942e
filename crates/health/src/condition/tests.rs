use super::*;

fn obs(status: u16, ms: u64, body: &'static str) -> Observation<'static> {
    Observation {
        status: Some(status),
        response_time: Duration::from_millis(ms),
        body: body.as_bytes(),
        connected: true,
        ..Observation::default()
    }
}

fn eval(cond: &str, o: &Observation<'_>) -> Outcome {
    Condition::parse(cond)
        .unwrap_or_else(|e| panic!("{cond}: {e}"))
        .evaluate(o)
}

/// The observation the Gatus table is evaluated against: 200 in 120 ms with a JSON body.
const TABLE_BODY: &str = r#"{"status":"UP","n":3,"data":[{"id":7}],"ok":true,"name":"a b"}"#;

/// Each `(condition, success, shown)` of a slice of the Gatus table.
fn assert_table(cases: &[(&str, bool, &str)]) {
    let o = obs(200, 120, TABLE_BODY);
    for (cond, success, shown) in cases {
        let out = eval(cond, &o);
        assert_eq!(
            (out.success, out.shown.as_str()),
            (*success, *shown),
            "{cond}"
        );
    }
}

#[test]
fn evaluates_the_gatus_table_for_status() {
    assert_table(&[
        ("[STATUS] == 200", true, "[STATUS] == 200"),
        ("[STATUS] == 201", false, "[STATUS] (200) == 201"),
        ("[STATUS] != 500", true, "[STATUS] != 500"),
        ("[STATUS] < 300", true, "[STATUS] < 300"),
        ("[STATUS] >= 400", false, "[STATUS] (200) >= 400"),
        // Boundaries: each operator is strict or not exactly as written.
        ("[STATUS] > 200", false, "[STATUS] (200) > 200"),
        ("[STATUS] >= 200", true, "[STATUS] >= 200"),
        ("[STATUS] < 200", false, "[STATUS] (200) < 200"),
        ("[STATUS] <= 200", true, "[STATUS] <= 200"),
        ("[STATUS] != 200", false, "[STATUS] (200) != 200"),
        ("[STATUS] == pat(2*)", true, "[STATUS] == pat(2*)"),
        (
            "[STATUS] == any(200, 204)",
            true,
            "[STATUS] == any(200, 204)",
        ),
        (
            "[STATUS] != any(200, 204)",
            false,
            "[STATUS] (200) != any(200, 204)",
        ),
    ]);
}

#[test]
fn evaluates_the_gatus_table_for_response_time() {
    assert_table(&[
        (
            "[RESPONSE_TIME] < 120ms",
            false,
            "[RESPONSE_TIME] (120ms) < 120ms",
        ),
        ("[RESPONSE_TIME] <= 120", true, "[RESPONSE_TIME] <= 120"),
        ("[RESPONSE_TIME] > 119ms", true, "[RESPONSE_TIME] > 119ms"),
        ("[RESPONSE_TIME] < 500ms", true, "[RESPONSE_TIME] < 500ms"),
        ("[RESPONSE_TIME] < 300", true, "[RESPONSE_TIME] < 300"),
        (
            "[RESPONSE_TIME] < 100",
            false,
            "[RESPONSE_TIME] (120ms) < 100",
        ),
        ("[RESPONSE_TIME] <= 1s", true, "[RESPONSE_TIME] <= 1s"),
    ]);
}

#[test]
fn evaluates_the_gatus_table_for_body() {
    assert_table(&[
        ("[BODY].n >= 3", true, "[BODY].n >= 3"),
        ("[BODY].n > 3", false, "[BODY].n (3) > 3"),
        ("[BODY].status == UP", true, "[BODY].status == UP"),
        ("[BODY].status == DOWN", false, "[BODY].status (UP) == DOWN"),
        ("[BODY].status == \"UP\"", true, "[BODY].status == \"UP\""),
        ("[BODY].n > 2", true, "[BODY].n > 2"),
        ("[BODY].n == 3.0", true, "[BODY].n == 3.0"),
        ("[BODY].n < 2", false, "[BODY].n (3) < 2"),
        ("[BODY].data[0].id == 7", true, "[BODY].data[0].id == 7"),
        (
            "[BODY].data[1].id == 7",
            false,
            "[BODY].data[1].id (missing) == 7",
        ),
        ("[BODY].ok == true", true, "[BODY].ok == true"),
        ("[BODY].name == \"a b\"", true, "[BODY].name == \"a b\""),
        (
            "[BODY].missing == x",
            false,
            "[BODY].missing (missing) == x",
        ),
        ("[BODY] contains \"UP\"", true, "[BODY] contains \"UP\""),
        (
            "[BODY] contains \"DOWN\"",
            false,
            "[BODY] ({\"status\":\"UP\",\"n\":3,\"data\":[{\"id\":7}],\"ok\":true,\"name\":\"a b\"}) contains \"DOWN\"",
        ),
        ("[BODY].status contains U", true, "[BODY].status contains U"),
        ("[BODY] == pat(*\"UP\"*)", true, "[BODY] == pat(*\"UP\"*)"),
    ]);
}

#[test]
fn evaluates_the_gatus_table_for_len_has_connected_and_certificate() {
    assert_table(&[
        ("len([BODY].data) == 1", true, "len([BODY].data) == 1"),
        (
            "len([BODY].status) == 3",
            false,
            "len([BODY].status) (2) == 3",
        ),
        ("has([BODY].n) == true", true, "has([BODY].n) == true"),
        (
            "has([BODY].zzz) == true",
            false,
            "has([BODY].zzz) (false) == true",
        ),
        ("[CONNECTED] == true", true, "[CONNECTED] == true"),
        (
            "[CERTIFICATE_EXPIRATION] > 72h",
            false,
            "[CERTIFICATE_EXPIRATION] (no certificate) > 72h",
        ),
    ]);
}

#[test]
fn failed_status_shows_the_actual_value() {
    let out = eval("[STATUS] == 200", &obs(500, 1, ""));
    assert_eq!(
        out,
        Outcome {
            success: false,
            shown: "[STATUS] (500) == 200".into()
        }
    );
}

#[test]
fn missing_response_fails_every_status_condition() {
    let o = Observation::default();
    assert_eq!(
        eval("[STATUS] != 200", &o).shown,
        "[STATUS] (no response) != 200"
    );
    assert!(!eval("[CONNECTED] == true", &o).success);
    assert!(eval("[CONNECTED] == false", &o).success);
}

#[test]
fn certificate_expiration_compares_seconds_left() {
    let mut o = obs(200, 1, "");
    o.certificate_expiration = Some(48 * 3600);
    let out = eval("[CERTIFICATE_EXPIRATION] > 72h", &o);
    assert_eq!(out.shown, "[CERTIFICATE_EXPIRATION] (2days) > 72h");
    assert!(eval("[CERTIFICATE_EXPIRATION] > 24h", &o).success);
    // 72h exactly is not more than 72h.
    o.certificate_expiration = Some(72 * 3600);
    assert!(!eval("[CERTIFICATE_EXPIRATION] > 72h", &o).success);
    assert!(eval("[CERTIFICATE_EXPIRATION] >= 72h", &o).success);
    o.certificate_expiration = Some(-3600);
    assert_eq!(
        eval("[CERTIFICATE_EXPIRATION] > 0", &o).shown,
        "[CERTIFICATE_EXPIRATION] (expired 1h ago) > 0"
    );
}

#[test]
fn non_json_body_paths_fail_without_panicking() {
    let out = eval("[BODY].a == 1", &obs(200, 1, "<html>"));
    assert_eq!(out.shown, "[BODY].a (body is not JSON) == 1");
}

#[test]
fn long_bodies_are_truncated_in_the_shown_value() {
    let body: &'static str = Box::leak("x".repeat(500).into_boxed_str());
    let out = eval("[BODY] == y", &obs(200, 1, body));
    assert!(out.shown.len() < 120, "{}", out.shown);
    assert!(out.shown.contains('…'));
}

#[test]
fn rejects_malformed_conditions_with_a_reason() {
    let cases = [
        ("[STATUS]==200", "expected"),
        ("[STATUS] ? 200", "expected"),
        ("[STATUS] == abc", "not a number"),
        ("[RESPONSE_TIME] < soon", "not a duration"),
        ("[FOO] == 1", "unknown placeholder"),
        ("[BODY]x == 1", "unexpected"),
        ("[BODY].a[x] == 1", "not a number"),
        ("[STATUS] > pat(2*)", "pat(...)"),
        ("[CONNECTED] == yes", "true or false"),
        ("[STATUS] contains 2", "contains only"),
        ("len([STATUS]) == 1", "only applies to [BODY]"),
        ("[BODY].a < x", "not a number"),
        ("[STATUS] == ", "missing value"),
    ];
    for (text, reason) in cases {
        let err = Condition::parse(text).expect_err(text).to_string();
        assert!(err.contains(reason), "{text}: {err}");
        assert!(err.contains(&format!("{text:?}")), "{text}: {err}");
    }
}

#[test]
fn glob_matches_stars_and_question_marks() {
    assert!(glob("2*", "204"));
    assert!(glob("*ok*", "is ok here"));
    assert!(glob("a?c", "abc"));
    assert!(!glob("a?c", "ac"));
    assert!(glob("*", ""));
    assert!(!glob("x*", "yx"));
}

#[test]
fn display_returns_the_original_text() {
    let c = Condition::parse("  [STATUS] == 200 ").unwrap();
    assert_eq!(c.to_string(), "[STATUS] == 200");
}
