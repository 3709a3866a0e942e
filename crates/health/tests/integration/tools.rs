//! External tools the `make test-health` tests need (installed by that target).

use std::path::PathBuf;

/// The tool's path; `None` (skip, with a message) when missing, except under `CI=true`,
/// where a missing tool fails the test.
pub(crate) fn tool(name: &str) -> Option<PathBuf> {
    let found = find(name);
    if found.is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{name} is not installed: `make test-health` installs it");
        }
        eprintln!("skipping: {name} is not installed (`make test-health` installs it)");
    }
    found
}

/// The command's path on PATH, if any.
pub(crate) fn find(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A free port on 127.0.0.1.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
