//! `ferrostack up`: every role in one process on localhost, wired so that
//! `/download_external_logs?env=development` works out of the box.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn up_runs_every_role_and_download_external_logs_works_out_of_the_box() {
    let base = support::free_port_range(7);
    let args: Vec<String> = [
        "up",
        "--base-port",
        &base.to_string(),
        "--work-delay",
        "100ms",
        "--data-dir",
        "state",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut up = support::spawn(&args, &[], base);
    up.wait_ready(&format!("http://127.0.0.1:{}/readyz", base + 1));
    up.wait_ready(&format!("http://127.0.0.1:{}/readyz", base + 6));
    let client = reqwest::Client::new();
    let get = async |port: u16, path: &str| {
        let r = client
            .get(format!("http://127.0.0.1:{port}{path}"))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };

    let (s, body) = get(base, "/download_external_logs?env=development").await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("sample-external-logs"), "{body}");
    let (s, body) = get(base, "/").await;
    assert_eq!(s, 200);
    let file: Value = serde_json::from_str(&body).unwrap();
    let written = up
        .path()
        .join("state/logs/backend-api")
        .join(file["file"].as_str().unwrap());
    assert!(written.exists(), "backend-api writes under the data dir");
    let (s, body) = get(base + 1, "/api?x=1").await;
    assert_eq!((s, body.as_str()), (200, r#"{"params":{"x":"1"}}"#));
    // One role's errors are that role's: data-api fails to write (its log dir is a file),
    // and only data-api's error-log count rises, though every role shares the process.
    let data_logs = up.path().join("state/logs/data-api");
    let _ = std::fs::remove_dir_all(&data_logs);
    std::fs::write(&data_logs, b"not a directory").unwrap();
    let (s, body) = get(base + 1, "/").await;
    assert_eq!(s, 500, "{body}");
    let errors = |metrics: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.starts_with(r#"ferrostack_log_events_total{level="error"}"#))
            .map_or(0, |l| l.rsplit(' ').next().unwrap().parse().unwrap())
    };
    let (_, data_metrics) = get(base + 1, "/metrics").await;
    let (_, backend_metrics) = get(base, "/metrics").await;
    assert!(errors(&data_metrics) >= 1, "{data_metrics}");
    assert_eq!(errors(&backend_metrics), 0, "{backend_metrics}");

    let (s, body) = get(base + 1, "/version").await;
    assert_eq!(s, 200);
    assert!(body.contains("data-api"));

    // The sample API refuses a caller without the generated key.
    let (s, _) = get(base + 6, "/logs").await;
    assert_eq!(s, 401);
    let key =
        std::fs::read_to_string(up.path().join("state/integration-keys/development")).unwrap();
    assert_eq!(key.len(), 64);

    // The URL table names every role, on stderr (stdout stays JSON lines).
    let table = up.stderr();
    for needle in [
        "backend-api",
        "data-api",
        "sample external logs",
        &format!("127.0.0.1:{base}"),
    ] {
        assert!(table.contains(needle), "table lacks {needle}:\n{table}");
    }
    assert!(support::json_lines(&up.stdout()).len() == up.stdout().lines().count());
    assert!(
        !up.stdout().contains(key.trim()),
        "the generated key is never logged"
    );

    up.signal("INT");
    let status = tokio::task::spawn_blocking(move || up.wait_exit(Duration::from_secs(30)))
        .await
        .unwrap();
    assert!(status.success(), "Ctrl-C stops up gracefully: {status:?}");
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Key files others can read: an empty one (where up generates a key) and one holding a key
/// (kept) are both 0600 once up runs, and up names them in a warning, never the key.
#[tokio::test(flavor = "multi_thread")]
async fn up_never_leaves_an_integration_key_readable_by_others() {
    use std::os::unix::fs::PermissionsExt;
    let base = support::free_port_range(7);
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("integration-keys");
    std::fs::create_dir_all(&keys).unwrap();
    let world = std::fs::Permissions::from_mode(0o644);
    std::fs::write(keys.join("staging"), b"").unwrap();
    std::fs::set_permissions(keys.join("staging"), world.clone()).unwrap();
    std::fs::write(keys.join("production"), b"kept-production-key\n").unwrap();
    std::fs::set_permissions(keys.join("production"), world).unwrap();
    let args: Vec<String> = [
        "up",
        "--base-port",
        &base.to_string(),
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut up = support::spawn(&args, &[], base);
    up.wait_ready(&format!("http://127.0.0.1:{}/readyz", base + 6));

    for env in ["development", "staging", "production"] {
        assert_eq!(mode(&keys.join(env)), 0o600, "{env}");
    }
    let staging = std::fs::read_to_string(keys.join("staging")).unwrap();
    assert_eq!(staging.len(), 64, "a key was generated into the empty file");
    assert_eq!(
        std::fs::read_to_string(keys.join("production")).unwrap(),
        "kept-production-key\n"
    );
    // Only the three key files: no temporary file left behind.
    let mut names: Vec<_> = std::fs::read_dir(&keys)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["development", "production", "staging"]);

    // The kept key still works end to end.
    let r = reqwest::get(format!(
        "http://127.0.0.1:{base}/download_external_logs?env=production"
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 200);

    up.signal("INT");
    let status = tokio::task::spawn_blocking(move || {
        let status = up.wait_exit(Duration::from_secs(30));
        (status, up.stdout(), up.stderr())
    })
    .await
    .unwrap();
    assert!(status.0.success(), "{status:?}");
    let warned: Vec<Value> = support::json_lines(&status.1)
        .into_iter()
        .filter(|l| {
            l["level"] == "WARN"
                && l["file"]
                    .as_str()
                    .is_some_and(|f| f.contains("integration-keys"))
        })
        .collect();
    assert_eq!(warned.len(), 2, "one warning per file fixed: {}", status.1);
    for text in [&status.1, &status.2] {
        assert!(
            !text.contains("kept-production-key"),
            "the key is never logged"
        );
        assert!(!text.contains(staging.as_str()), "the key is never logged");
    }
}
