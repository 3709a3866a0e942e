//! The prober against real sockets: statuses, bodies, slowness, retries, redirects, TLS.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::response::IntoResponse;

use ferrostack_health::probe::probe;

use crate::support::{OK_BODY, target_server, targets, tls_server};

#[tokio::test]
async fn passing_target_records_status_and_measured_phases() {
    let s = target_server().await;
    let t = targets(&format!(
        "targets:\n  - name: ok\n    url: {}\n    conditions: ['[STATUS] == 200', '[BODY].status == UP', 'len([BODY].items) == 3', '[RESPONSE_TIME] < 5s']\n",
        s.url("/ok")
    ));
    let r = probe(&t[0]).await;
    assert!(r.success, "{r:?}");
    assert_eq!(
        (r.status, r.attempts, r.error.as_deref()),
        (Some(200), 1, None)
    );
    let p = &r.phases;
    assert!(
        p.resolve.is_some()
            && p.connect.is_some()
            && p.processing.is_some()
            && p.transfer.is_some(),
        "{p:?}"
    );
    assert_eq!(p.tls, None, "plain http has no TLS phase");
}

#[tokio::test]
async fn failing_target_shows_the_actual_status() {
    let s = target_server().await;
    s.fail_with(500);
    let t = targets(&format!(
        "targets: [{{name: api, url: '{}'}}]",
        s.url("/status")
    ));
    let r = probe(&t[0]).await;
    assert!(!r.success);
    assert_eq!(r.status, Some(500));
    assert_eq!(r.failed, ["[STATUS] (500) == 200"]);
    assert_eq!(r.reason(), "[STATUS] (500) == 200");
}

#[tokio::test]
async fn body_conditions_show_the_actual_value() {
    let s = target_server().await;
    let t = targets(&format!(
        "targets:\n  - name: b\n    url: {}\n    conditions: ['[BODY].status == DOWN', '[BODY] contains \"UP\"', '[BODY] contains \"nope\"']\n",
        s.url("/ok")
    ));
    let r = probe(&t[0]).await;
    assert_eq!(r.failed.len(), 2, "{:?}", r.failed);
    assert_eq!(r.failed[0], "[BODY].status (UP) == DOWN");
    assert_eq!(r.failed[1], format!("[BODY] ({OK_BODY}) contains \"nope\""));
}

#[tokio::test]
async fn slow_target_fails_on_response_time_or_times_out() {
    let s = target_server().await;
    s.set_delay(Duration::from_millis(1500));
    let t = targets(&format!(
        "targets:\n  - {{name: slow, url: '{0}', conditions: ['[RESPONSE_TIME] < 100ms']}}\n  - {{name: timeout, url: '{0}', timeout: 500ms}}\n",
        s.url("/slow")
    ));
    let r = probe(&t[0]).await;
    assert!(!r.success);
    assert_eq!(r.status, Some(200));
    assert!(
        r.failed[0].starts_with("[RESPONSE_TIME] ("),
        "{:?}",
        r.failed
    );
    assert!(
        r.response_time_seconds >= 1.5,
        "{}",
        r.response_time_seconds
    );
    let r = probe(&t[1]).await;
    assert!(!r.success);
    assert_eq!(
        r.error.as_deref(),
        Some("timeout after 500ms (waiting for the response)")
    );
    assert_eq!(r.status, None);
    assert_eq!(r.failed, ["[STATUS] (no response) == 200"]);
}

#[tokio::test]
async fn refused_connection_is_an_error_not_a_panic() {
    let port = test_support::free_port();
    let t = targets(&format!(
        "targets: [{{name: gone, url: 'http://127.0.0.1:{port}/', conditions: ['[CONNECTED] == true']}}]"
    ));
    let r = probe(&t[0]).await;
    assert!(!r.success);
    let e = r.error.unwrap();
    assert!(e.starts_with(&format!("connect 127.0.0.1:{port}: ")), "{e}");
    assert_eq!(r.failed, ["[CONNECTED] (false) == true"]);
}

#[tokio::test]
async fn retries_with_backoff_until_the_target_recovers() {
    let s = target_server().await;
    s.fail_with(503);
    let t = targets(&format!(
        "targets: [{{name: r, url: '{}', retries: 6, retry-backoff: 200ms}}]",
        s.url("/status")
    ));
    let knobs = s.knobs.clone();
    let fixer = tokio::spawn(async move {
        while knobs.hits.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        knobs.status.store(200, Ordering::SeqCst);
    });
    let r = probe(&t[0]).await;
    fixer.await.unwrap();
    assert!(r.success, "{r:?}");
    assert!(r.attempts >= 2, "{}", r.attempts);
    assert!(r.duration_seconds > r.response_time_seconds);
    // The backoff doubles: the gaps between attempts are at least 200 ms, then 400 ms (lower
    // bounds only: a sleep never ends early, so these cannot fail on a slow machine).
    let arrivals = std::mem::take(&mut *s.knobs.arrivals.lock().unwrap());
    assert_eq!(arrivals.len() as u32, r.attempts);
    for (i, pair) in arrivals.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        let backoff = Duration::from_millis(200) * 2u32.pow(i as u32);
        assert!(gap >= backoff, "retry {}: {gap:?} < {backoff:?}", i + 1);
    }
    // All attempts used up: the last failure is reported.
    s.fail_with(500);
    let t = targets(&format!(
        "targets: [{{name: r, url: '{}', retries: 2, retry-backoff: 10ms}}]",
        s.url("/status")
    ));
    let before = s.knobs.hits.load(Ordering::SeqCst);
    let r = probe(&t[0]).await;
    assert_eq!((r.success, r.attempts, r.status), (false, 3, Some(500)));
    assert_eq!(s.knobs.hits.load(Ordering::SeqCst) - before, 3);
}

#[tokio::test]
async fn follows_redirects_unless_told_not_to() {
    let s = target_server().await;
    let t = targets(&format!(
        "targets:\n  - {{name: f, url: '{0}'}}\n  - {{name: n, url: '{0}', follow-redirects: false, conditions: ['[STATUS] == 307']}}\n  - {{name: l, url: '{1}'}}\n",
        s.url("/redirect"),
        s.url("/loop")
    ));
    let r = probe(&t[0]).await;
    assert_eq!((r.success, r.status), (true, Some(200)), "{r:?}");
    let r = probe(&t[1]).await;
    assert_eq!((r.success, r.status), (true, Some(307)), "{r:?}");
    let r = probe(&t[2]).await;
    assert_eq!(r.error.as_deref(), Some("more than 10 redirects"));
}

#[tokio::test]
async fn sends_method_headers_and_body() {
    let s = target_server().await;
    let t = targets(&format!(
        "targets:\n  - name: e\n    url: {}\n    method: PUT\n    headers: {{X-Test: hello}}\n    body: payload\n    conditions: ['[BODY].method == PUT', '[BODY].header == hello', '[BODY].body == payload']\n",
        s.url("/echo")
    ));
    let r = probe(&t[0]).await;
    assert!(r.success, "{r:?}");
}

#[tokio::test]
async fn untrusted_certificate_fails_the_handshake() {
    let s = tls_server(time::Duration::days(30)).await;
    let t = targets(&format!(
        "targets: [{{name: tls, url: '{}', conditions: ['[STATUS] == 200', '[CERTIFICATE_EXPIRATION] > 72h']}}]",
        s.url("/ok")
    ));
    let r = probe(&t[0]).await;
    assert!(!r.success);
    let e = r.error.clone().unwrap();
    assert!(
        e.starts_with("TLS handshake: invalid peer certificate: UnknownIssuer"),
        "{e}"
    );
    assert!(
        r.phases.tls.is_some(),
        "the failed handshake was still timed"
    );
    // The rejected certificate was still read: 30 days left is more than 72 h.
    assert!(r.certificate_not_after.is_some(), "{r:?}");
    assert_eq!(r.failed, ["[STATUS] (no response) == 200"]);
}

#[tokio::test]
async fn every_probe_does_a_full_handshake_and_reads_the_certificate() {
    let s = tls_server(time::Duration::days(30)).await;
    let ca = s.ca_file.as_ref().unwrap().display();
    let t = targets(&format!(
        "targets: [{{name: tls, url: '{}', tls: {{ca-file: '{ca}'}}, conditions: ['[CERTIFICATE_EXPIRATION] > 72h']}}]",
        s.url("/ok")
    ));
    for _ in 0..3 {
        let r = probe(&t[0]).await;
        assert!(r.success, "{r:?}");
        assert!(r.certificate_not_after.is_some());
    }
    // A resumed session would skip the certificate (a renewed or expired one would go
    // unseen) and would not time a real handshake.
    assert_eq!(s.knobs.handshakes.load(Ordering::SeqCst), 3);
    assert_eq!(s.knobs.resumed.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn certificate_expiring_soon_fails_the_expiration_condition() {
    let s = tls_server(time::Duration::minutes(47 * 60 + 30)).await;
    let ca = s.ca_file.as_ref().unwrap().display();
    let t = targets(&format!(
        "targets:\n  - name: tls\n    url: {}\n    tls: {{ca-file: {ca}}}\n    conditions: ['[STATUS] == 200', '[CERTIFICATE_EXPIRATION] > 72h']\n  - name: fine\n    url: {}\n    tls: {{ca-file: {ca}}}\n    conditions: ['[CERTIFICATE_EXPIRATION] > 24h']\n",
        s.url("/ok"),
        s.url("/ok")
    ));
    let r = probe(&t[0]).await;
    assert_eq!(r.status, Some(200), "{r:?}");
    assert!(!r.success);
    assert_eq!(r.failed.len(), 1);
    let shown = &r.failed[0];
    assert!(
        shown.starts_with("[CERTIFICATE_EXPIRATION] (1day 23h 29m")
            || shown.starts_with("[CERTIFICATE_EXPIRATION] (1day 23h 30m)"),
        "{shown}"
    );
    assert!(r.failed[0].ends_with(") > 72h"), "{}", r.failed[0]);
    assert!(r.phases.tls.is_some());
    assert!(r.certificate_not_after.is_some());
    assert!(probe(&t[1]).await.success);
}

#[tokio::test]
async fn expired_certificate_is_rejected_unless_verification_is_off() {
    let s = tls_server(-time::Duration::hours(2)).await;
    let ca = s.ca_file.as_ref().unwrap().display();
    let t = targets(&format!(
        "targets:\n  - {{name: v, url: '{0}', tls: {{ca-file: '{ca}'}}, conditions: ['[CERTIFICATE_EXPIRATION] > 72h']}}\n  - {{name: i, url: '{0}', tls: {{insecure-skip-verify: true}}, conditions: ['[STATUS] == 200', '[CERTIFICATE_EXPIRATION] > 0']}}\n",
        s.url("/ok")
    ));
    let r = probe(&t[0]).await;
    assert!(
        r.error
            .as_deref()
            .unwrap_or("")
            .starts_with("TLS handshake: invalid peer certificate: certificate expired"),
        "{r:?}"
    );
    // Verification refused it, yet the condition shows how long ago it expired.
    assert_eq!(r.failed.len(), 1, "{:?}", r.failed);
    assert!(
        r.failed[0] == "[CERTIFICATE_EXPIRATION] (expired 2h ago) > 72h"
            || r.failed[0].starts_with("[CERTIFICATE_EXPIRATION] (expired 2h 1s ago)"),
        "{}",
        r.failed[0]
    );
    let r = probe(&t[1]).await;
    assert_eq!(r.status, Some(200));
    assert_eq!(r.failed.len(), 1, "{:?}", r.failed);
    let shown = &r.failed[0];
    assert!(
        shown == "[CERTIFICATE_EXPIRATION] (expired 2h ago) > 0"
            || shown.starts_with("[CERTIFICATE_EXPIRATION] (expired 2h 1s ago)"),
        "{shown}"
    );
}

/// A server on 127.0.0.1 that records the headers of every request to `/headers` and serves
/// `routes` besides; returns its base URL and the recorded headers.
async fn recording_server(
    routes: axum::Router<()>,
) -> (String, Arc<Mutex<Vec<axum::http::HeaderMap>>>) {
    let seen: Arc<Mutex<Vec<axum::http::HeaderMap>>> = Arc::default();
    let record = seen.clone();
    let app = routes.route(
        "/headers",
        axum::routing::get(move |headers: axum::http::HeaderMap| async move {
            record.lock().unwrap().push(headers);
            "ok"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, seen)
}

fn redirect_to(location: String) -> axum::routing::MethodRouter<()> {
    axum::routing::get(move || async move {
        axum::response::Redirect::temporary(&location).into_response()
    })
}

#[tokio::test]
async fn redirects_keep_credentials_on_their_origin_and_follow_only_http() {
    let (other, other_seen) = recording_server(axum::Router::new()).await;
    let routes = axum::Router::new()
        .route("/cross", redirect_to(format!("{other}/headers")))
        .route("/same", redirect_to("/headers".into()))
        .route("/ftp", redirect_to("ftp://127.0.0.1/file".into()));
    let (home, home_seen) = recording_server(routes).await;
    let t = targets(&format!(
        "defaults:\n  headers: {{Authorization: Bearer s3cret, Cookie: session=1, X-Api-Key: k1, Accept: application/json}}\ntargets:\n  - {{name: cross, url: '{home}/cross'}}\n  - {{name: same, url: '{home}/same'}}\n  - {{name: ftp, url: '{home}/ftp'}}\n"
    ));

    let r = probe(&t[0]).await;
    assert_eq!((r.success, r.status), (true, Some(200)), "{r:?}");
    let seen = other_seen.lock().unwrap().pop().unwrap();
    for secret in ["authorization", "cookie", "x-api-key"] {
        assert!(
            seen.get(secret).is_none(),
            "{secret} crossed origins: {seen:?}"
        );
    }
    assert_eq!(
        seen["accept"], "application/json",
        "harmless headers go along"
    );

    let r = probe(&t[1]).await;
    assert!(r.success, "{r:?}");
    let seen = home_seen.lock().unwrap().pop().unwrap();
    assert_eq!(seen["authorization"], "Bearer s3cret", "same origin: kept");
    assert_eq!(seen["x-api-key"], "k1");

    let r = probe(&t[2]).await;
    assert!(!r.success);
    assert_eq!(
        r.error.as_deref(),
        Some(r#"redirect to "ftp://127.0.0.1/file": scheme "ftp" is not http or https"#)
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_reported_as_such_not_as_not_json() {
    let limit = ferrostack_health::probe::BODY_LIMIT;
    // JSON of exactly the limit, and one byte more.
    let json = |len: usize| {
        let pad = "x".repeat(len - r#"{"status":"UP","pad":""}"#.len());
        format!(r#"{{"status":"UP","pad":"{pad}"}}"#)
    };
    let (at, over) = (json(limit), json(limit + 1));
    let routes = axum::Router::new()
        .route("/at", axum::routing::get(move || async move { at }))
        .route("/over", axum::routing::get(move || async move { over }));
    let (base, _) = recording_server(routes).await;
    let t = targets(&format!(
        "defaults: {{conditions: ['[BODY].status == UP']}}\ntargets:\n  - {{name: at, url: '{base}/at'}}\n  - {{name: over, url: '{base}/over'}}\n"
    ));
    let r = probe(&t[0]).await;
    assert!(
        r.success,
        "a body of exactly the limit is read whole: {r:?}"
    );
    let r = probe(&t[1]).await;
    assert!(!r.success);
    assert_eq!(
        r.failed,
        ["[BODY].status (body over the 1 MiB limit) == UP"]
    );
}
