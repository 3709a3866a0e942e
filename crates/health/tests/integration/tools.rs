//! The external tools' side of the `make test-health` tests: waiting for a started tool to
//! answer ready, and where screenshots are kept. Finding a tool is test-support's `tool`.

use std::path::PathBuf;
use std::time::Duration;

/// Waits (bounded: 10 s) until `GET url` answers 2xx.
pub(crate) async fn wait_ready(what: &str, url: &str) {
    test_support::poll_async(
        what,
        Duration::from_secs(10),
        Duration::from_millis(100),
        || async move {
            reqwest::get(url)
                .await
                .is_ok_and(|r| r.status().is_success())
                .then_some(())
        },
    )
    .await;
}

/// `target/artifacts` of the workspace.
pub(crate) fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
