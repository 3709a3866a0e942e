//! External tools a test needs (moto_server, azurite-blob, chromium, alertmanager, ...), with
//! one policy: missing locally, the test is skipped with a line naming the tool; missing under
//! `CI=true` (the Makefile's test targets, after installing every tool), the test fails.

use std::path::{Path, PathBuf};

/// The tool's path, or `None` after printing `SKIP <test>: <tool> not found ...` to stderr;
/// under `CI=true` a missing tool panics instead.
///
/// Looked up, in order: the environment variable named after the tool in upper case with
/// `-` as `_` (`MOTO_SERVER`, `AZURITE_BLOB`), the workspace's `.tools/bin` and
/// `.tools/venv/bin`, then `PATH`.
pub fn tool(name: &str) -> Option<PathBuf> {
    tool_any(&[name])
}

/// [`tool`] for a tool installed under one of several names (the first found wins).
pub fn tool_any(names: &[&str]) -> Option<PathBuf> {
    let found = names.iter().find_map(|name| find(name));
    if found.is_none() {
        missing(&names.join(" or "), ci());
    }
    found
}

/// Something a test needs other than a tool (root, a device) is missing: the skip line
/// locally, a failure under `CI=true`.
pub fn unavailable(what: &str) {
    missing(what, ci());
}

/// [`find`] without a skip line: for probing several prerequisites.
pub(crate) fn find_quiet(name: &str) -> Option<PathBuf> {
    find(name)
}

/// Fails under CI, else prints the skip line.
fn missing(name: &str, ci: bool) {
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_owned();
    assert!(
        !ci,
        "{test}: {name} not found (CI=true: `make tools` installs it)"
    );
    eprintln!("SKIP {test}: {name} not found (set CI=true to fail instead)");
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Where `name` is installed, if anywhere.
fn find(name: &str) -> Option<PathBuf> {
    let var = name.to_uppercase().replace('-', "_");
    if let Some(path) = std::env::var_os(var).map(PathBuf::from) {
        return path.is_file().then_some(path);
    }
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools");
    let mut dirs = vec![tools.join("bin"), tools.join("venv/bin")];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter()
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_is_a_skip_locally() {
        missing("no-such-tool", false);
        assert!(find("no-such-tool-anywhere").is_none());
    }

    #[test]
    #[should_panic(expected = "no-such-tool not found (CI=true")]
    fn a_missing_tool_fails_under_ci() {
        missing("no-such-tool", true);
    }

    #[test]
    fn a_tool_on_path_is_found() {
        assert!(find("sh").is_some());
    }
}
