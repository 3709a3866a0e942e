//! `ferrostack up`: every role in one process on localhost, wired so that
//! `/download_external_logs?env=development` works out of the box.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use serde_json::Value;

/// A running `ferrostack up` on 7 free consecutive ports from `base`, working directory
/// `state` as its data dir unless `flags` name another.
struct Up {
    proc: support::Proc,
    base: u16,
}

impl Up {
    fn start(flags: &[&str]) -> Up {
        let base = support::free_port_range(7);
        let mut args = vec!["up".to_owned(), "--base-port".into(), base.to_string()];
        args.extend(flags.iter().map(|s| s.to_string()));
        let up = support::spawn(&args, &[], base);
        up.wait_ready(&format!("http://127.0.0.1:{}/readyz", base + 1));
        up.wait_ready(&format!("http://127.0.0.1:{}/readyz", base + 6));
        Up { proc: up, base }
    }

    /// `up` with a 100 ms work delay and its data in `./state`.
    fn start_in_state_dir() -> Up {
        Up::start(&["--work-delay", "100ms", "--data-dir", "state"])
    }

    /// The status and body of `GET path` on the role at `base + offset`.
    async fn get(&self, offset: u16, path: &str) -> (u16, String) {
        let url = format!("http://127.0.0.1:{}{path}", self.base + offset);
        let r = reqwest::get(url).await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// Ctrl-C, then the exit status with everything printed to stdout and stderr.
    async fn interrupt(mut self) -> (std::process::ExitStatus, String, String) {
        self.proc.signal("INT");
        tokio::task::spawn_blocking(move || {
            let status = self.proc.wait_exit(Duration::from_secs(30));
            (status, self.proc.stdout(), self.proc.stderr())
        })
        .await
        .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn up_wires_download_external_logs_to_its_sample_api_out_of_the_box() {
    let up = Up::start_in_state_dir();
    let (s, body) = up.get(0, "/download_external_logs?env=development").await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("sample-external-logs"), "{body}");
    // The sample API refuses a caller without the generated key.
    let (s, _) = up.get(6, "/logs").await;
    assert_eq!(s, 401);
    let key_file = up.proc.path().join("state/integration-keys/development");
    let key = std::fs::read_to_string(key_file).unwrap();
    assert_eq!(key.len(), 64);
    let (status, stdout, _) = up.interrupt().await;
    assert!(status.success(), "Ctrl-C stops up gracefully: {status:?}");
    assert!(
        !stdout.contains(key.trim()),
        "the generated key is never logged"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn up_serves_every_role_with_its_files_under_the_data_dir() {
    let up = Up::start_in_state_dir();
    let (s, body) = up.get(0, "/").await;
    assert_eq!(s, 200);
    let file: Value = serde_json::from_str(&body).unwrap();
    let written = up
        .proc
        .path()
        .join("state/logs/backend-api")
        .join(file["file"].as_str().unwrap());
    assert!(written.exists(), "backend-api writes under the data dir");
    let (s, body) = up.get(1, "/api?x=1").await;
    assert_eq!((s, body.as_str()), (200, r#"{"params":{"x":"1"}}"#));
    let (s, body) = up.get(1, "/version").await;
    assert_eq!(s, 200);
    assert!(body.contains("data-api"));

    // The URL table names every role, on stderr (stdout stays JSON lines).
    let base = up.base;
    let (status, stdout, table) = up.interrupt().await;
    assert!(status.success(), "Ctrl-C stops up gracefully: {status:?}");
    for needle in [
        "backend-api",
        "data-api",
        "sample external logs",
        &format!("127.0.0.1:{base}"),
    ] {
        assert!(table.contains(needle), "table lacks {needle}:\n{table}");
    }
    assert!(support::json_lines(&stdout).len() == stdout.lines().count());
}

/// One role's errors are that role's: data-api fails to write (its log dir is a file), and
/// only data-api's error-log count rises, though every role shares the process.
#[tokio::test(flavor = "multi_thread")]
async fn one_roles_errors_count_as_that_roles_only() {
    let up = Up::start_in_state_dir();
    let data_logs = up.proc.path().join("state/logs/data-api");
    let _ = std::fs::remove_dir_all(&data_logs);
    std::fs::write(&data_logs, b"not a directory").unwrap();
    let (s, body) = up.get(1, "/").await;
    assert_eq!(s, 500, "{body}");
    let errors = |metrics: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.starts_with(r#"ferrostack_log_events_total{level="error"}"#))
            .map_or(0, |l| l.rsplit(' ').next().unwrap().parse().unwrap())
    };
    let (_, data_metrics) = up.get(1, "/metrics").await;
    let (_, backend_metrics) = up.get(0, "/metrics").await;
    assert!(errors(&data_metrics) >= 1, "{data_metrics}");
    assert_eq!(errors(&backend_metrics), 0, "{backend_metrics}");
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// An integration-keys directory in `dir` with two files others can read: an empty one
/// (staging) and one holding a key (production).
fn keys_readable_by_others(dir: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let keys = dir.join("integration-keys");
    std::fs::create_dir_all(&keys).unwrap();
    let world = std::fs::Permissions::from_mode(0o644);
    std::fs::write(keys.join("staging"), b"").unwrap();
    std::fs::set_permissions(keys.join("staging"), world.clone()).unwrap();
    std::fs::write(keys.join("production"), b"kept-production-key\n").unwrap();
    std::fs::set_permissions(keys.join("production"), world).unwrap();
    keys
}

/// Every key file is 0600, the empty one got a key, the kept one is unchanged, and no
/// temporary file is left behind; returns the generated staging key.
fn assert_keys_private(keys: &std::path::Path) -> String {
    for env in ["development", "staging", "production"] {
        assert_eq!(mode(&keys.join(env)), 0o600, "{env}");
    }
    let staging = std::fs::read_to_string(keys.join("staging")).unwrap();
    assert_eq!(staging.len(), 64, "a key was generated into the empty file");
    assert_eq!(
        std::fs::read_to_string(keys.join("production")).unwrap(),
        "kept-production-key\n"
    );
    let mut names: Vec<_> = std::fs::read_dir(keys)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["development", "production", "staging"]);
    staging
}

/// Key files others can read: an empty one (where up generates a key) and one holding a key
/// (kept) are both 0600 once up runs, and up names them in a warning, never the key.
#[tokio::test(flavor = "multi_thread")]
async fn up_never_leaves_an_integration_key_readable_by_others() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys_readable_by_others(dir.path());
    let up = Up::start(&["--data-dir", dir.path().to_str().unwrap()]);
    let staging = assert_keys_private(&keys);
    // The kept key still works end to end.
    let (s, _) = up.get(0, "/download_external_logs?env=production").await;
    assert_eq!(s, 200);

    let (status, stdout, stderr) = up.interrupt().await;
    assert!(status.success(), "{status:?}");
    let warned = support::json_lines(&stdout)
        .into_iter()
        .filter(|l| {
            l["level"] == "WARN"
                && l["file"]
                    .as_str()
                    .is_some_and(|f| f.contains("integration-keys"))
        })
        .count();
    assert_eq!(warned, 2, "one warning per file fixed: {stdout}");
    for text in [&stdout, &stderr] {
        assert!(
            !text.contains("kept-production-key"),
            "the key is never logged"
        );
        assert!(!text.contains(staging.as_str()), "the key is never logged");
    }
}
