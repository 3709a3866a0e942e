//! Pushed results over a real socket: accepted in JSON and in Gatus' query form, every refusal
//! as a JSON error, and a push target silent past its heartbeat fails and alerts a real
//! receiver, then resolves on the next push.

use std::time::Duration;

use ferrostack_health::Config;
use ferrostack_health::history::History;
use reqwest::StatusCode;

use crate::serve::{Running, start, target, wait_for};
use crate::support::{Receiver, config, history_in, webhook_alerts};

const TOKEN: &str = "push-s3cret";

struct Pushing {
    running: Running,
    dir: tempfile::TempDir,
    client: reqwest::Client,
}

impl Pushing {
    async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> (StatusCode, serde_json::Value) {
        let mut req = self
            .client
            .post(format!("{}{path}", self.running.base))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(!text.contains(TOKEN), "the token is echoed: {text}");
        (
            status,
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
        )
    }
}

/// Serve with push targets `job` (token file, heartbeat 1h), `silent` (heartbeat 1s) and
/// `nokey` (no token), an HTTP target `web`, alerts to `receiver` after 2 failures.
async fn pushing(receiver: &Receiver) -> Pushing {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let yaml = format!(
        "targets:\n  - {{name: web, url: 'http://127.0.0.1:9/', interval: 1h, timeout: 1s}}\n\
         external-endpoints:\n  - {{name: job, heartbeat: 1h, token-file: '{0}'}}\n  - {{name: silent, heartbeat: {{interval: 1s}}, token-file: '{0}'}}\n  - {{name: nokey}}\n",
        token.display()
    );
    let running = start(Config {
        history: history_in(dir.path()),
        alerts: webhook_alerts(receiver, 2, 1),
        ..config(&yaml)
    })
    .await;
    Pushing {
        running,
        dir,
        client: reqwest::Client::new(),
    }
}

#[tokio::test]
async fn pushes_are_recorded_in_json_and_query_form_and_refused_with_reasons() {
    let receiver = Receiver::start().await;
    let p = pushing(&receiver).await;
    // Up once: a failure of a target never yet up is degraded, not down.
    let (status, _) = p.post("/api/push/job?success=true", Some(TOKEN), "").await;
    assert_eq!(status, StatusCode::OK);
    wait_for(&p.running.base, |v| target(v, "job")["state"] == "up").await;
    let (status, v) = p
        .post(
            "/api/push/job",
            Some(TOKEN),
            r#"{"success": false, "error": "disk full", "duration": "2.5s"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        (v["target"].as_str(), v["success"].as_bool()),
        (Some("job"), Some(false))
    );
    let s = wait_for(&p.running.base, |v| target(v, "job")["state"] == "down").await;
    let last = &target(&s, "job")["last"];
    assert_eq!(last["error"], "disk full");
    assert_eq!(last["response_time_seconds"], 2.5);
    assert_eq!(target(&s, "job")["url"], "/api/push/job");

    let (status, _) = p
        .post("/api/push/job?success=true&duration=10ms", Some(TOKEN), "")
        .await;
    assert_eq!(status, StatusCode::OK);
    wait_for(&p.running.base, |v| target(v, "job")["state"] == "up").await;

    // Both accepted pushes went to the history, nothing else of `job` did.
    let history = History::new(p.dir.path().join("h.jsonl"))
        .read_all()
        .unwrap();
    let job: Vec<bool> = history
        .iter()
        .filter(|r| r.target == "job")
        .map(|r| r.success)
        .collect();
    assert_eq!(job, [true, false, true]);
}

/// `(path, token, body, status, code, message prefix)` of each refusal.
type Refusal = (
    &'static str,
    Option<&'static str>,
    &'static str,
    u16,
    &'static str,
    &'static str,
);

const REFUSALS: &[Refusal] = &[
    (
        "/api/push/job",
        None,
        r#"{"success":true}"#,
        401,
        "unauthorized",
        "missing `Authorization: Bearer <token>`",
    ),
    (
        "/api/push/job",
        Some("wrong"),
        r#"{"success":true}"#,
        401,
        "unauthorized",
        "the bearer token is not the one configured",
    ),
    (
        "/api/push/nope",
        Some(TOKEN),
        r#"{"success":true}"#,
        404,
        "unknown_target",
        "no push target named \"nope\"",
    ),
    (
        "/api/push/web",
        Some(TOKEN),
        r#"{"success":true}"#,
        404,
        "unknown_target",
        "no push target named \"web\"",
    ),
    (
        "/api/push/nokey",
        Some(TOKEN),
        r#"{"success":true}"#,
        403,
        "push_disabled",
        "push to \"nokey\" is disabled",
    ),
    (
        "/api/push/job",
        Some(TOKEN),
        r#"{"success":"yes"}"#,
        400,
        "invalid_push",
        "field \"success\": invalid type",
    ),
    (
        "/api/push/job",
        Some(TOKEN),
        r#"{"success":true,"duration":"soon"}"#,
        400,
        "invalid_push",
        "field \"duration\": \"soon\" is not a duration",
    ),
    (
        "/api/push/job?success=maybe",
        Some(TOKEN),
        "",
        400,
        "invalid_push",
        "field \"success\": \"maybe\" is not true or false",
    ),
    (
        "/api/push/job",
        Some(TOKEN),
        "",
        400,
        "invalid_push",
        "field \"success\": missing",
    ),
];

#[tokio::test]
async fn refused_pushes_are_json_errors_naming_the_reason() {
    let receiver = Receiver::start().await;
    let p = pushing(&receiver).await;
    for &(path, token, body, want, code, message) in REFUSALS {
        let (status, v) = p.post(path, token, body).await;
        assert_eq!(status.as_u16(), want, "{path} {body}: {v}");
        assert_eq!(v["error"]["code"], code, "{path} {body}: {v}");
        let got = v["error"]["message"].as_str().unwrap();
        assert!(got.starts_with(message), "{path} {body}: {got}");
    }

    let s = wait_for(&p.running.base, |_| true).await;
    assert_eq!(
        target(&s, "job")["state"],
        "unknown",
        "nothing refused was recorded"
    );
}

#[tokio::test]
async fn a_push_target_silent_past_its_heartbeat_fails_alerts_and_resolves_on_a_push() {
    let receiver = Receiver::start().await;
    let p = pushing(&receiver).await;
    let mut seen: Vec<serde_json::Value> = Vec::new();
    let mut wait_for_message = async |status: &str| {
        test_support::poll_async(
            "the webhook message",
            Duration::from_secs(20),
            Duration::from_millis(100),
            || {
                seen.extend(
                    receiver
                        .take()
                        .into_iter()
                        .map(|(_, b)| serde_json::from_str::<serde_json::Value>(&b).unwrap()),
                );
                let hit = seen
                    .iter()
                    .find(|m| m["target"] == "silent" && m["status"] == status)
                    .cloned();
                async move { hit }
            },
        )
        .await
    };
    // Up once (a target never yet up is degraded and never pages), then silent.
    let (status, _) = p
        .post("/api/push/silent", Some(TOKEN), r#"{"success":true}"#)
        .await;
    assert_eq!(status, StatusCode::OK);
    let fired = wait_for_message("firing").await;
    assert_eq!(fired["reason"], "no push within heartbeat 1s");
    assert_eq!(fired["consecutive_failures"], 2);
    let (status, _) = p
        .post("/api/push/silent", Some(TOKEN), r#"{"success":true}"#)
        .await;
    assert_eq!(status, StatusCode::OK);
    let resolved = wait_for_message("resolved").await;
    assert_eq!(resolved["target"], "silent");
    // `job` (heartbeat 1h) and `nokey` (no heartbeat) never failed.
    let s = wait_for(&p.running.base, |_| true).await;
    for name in ["job", "nokey"] {
        assert_eq!(target(&s, name)["state"], "unknown", "{name}");
    }
}

/// Each push starts a new heartbeat: a target pushed to more often than its heartbeat never
/// fails.
#[tokio::test]
async fn pushes_within_the_heartbeat_keep_the_target_up() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN).unwrap();
    let yaml = format!(
        "external-endpoints: [{{name: beat, heartbeat: 2s, token-file: '{}'}}]",
        token.display()
    );
    let running = start(config(&yaml)).await;
    let client = reqwest::Client::new();
    for _ in 0..10 {
        let r = client
            .post(format!("{}/api/push/beat?success=true", running.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let v = wait_for(&running.base, |v| {
        target(v, "beat")["recent"].as_array().unwrap().len() >= 10
    })
    .await;
    let recent = target(&v, "beat")["recent"].as_array().unwrap().clone();
    assert!(
        recent.iter().all(|r| r["success"] == true),
        "a heartbeat expired between pushes: {recent:?}"
    );
}

/// `healthcheck run` has nothing to probe for push targets: it leaves them out.
#[test]
fn a_run_leaves_push_targets_out() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: ferrostack_health::RunArgs,
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets.yaml");
    std::fs::write(
        &file,
        "targets: [{name: web, url: 'http://web/'}]\nexternal-endpoints: [{name: job}]\n",
    )
    .unwrap();
    let cli = Cli::parse_from(["run", "--config", file.to_str().unwrap()]);
    let config = Config::from_run_args(&cli.run).unwrap();
    let names: Vec<&str> = config.targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["web"]);
}
