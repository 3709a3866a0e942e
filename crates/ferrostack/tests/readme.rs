//! The README's command-line reference is generated from clap (`ferrostack cli-reference`)
//! and must match the binary: this test fails when a flag changes without `make readme`.

#![allow(clippy::unwrap_used)]

mod support;

#[test]
fn the_readme_cli_reference_matches_the_binary() {
    let out = std::process::Command::new(support::BIN)
        .arg("cli-reference")
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).unwrap();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme
        .find("<!-- cli-reference:start -->")
        .expect("README has the cli-reference markers");
    let end = readme
        .find("<!-- cli-reference:end -->")
        .expect("README has the cli-reference end marker");
    let section = readme[start..end]
        .trim_start_matches("<!-- cli-reference:start -->")
        .trim();
    assert!(
        section == generated.trim(),
        "README.md's CLI reference is stale: run `make readme`"
    );
}

#[test]
fn every_flag_documents_its_environment_variable() {
    let out = std::process::Command::new(support::BIN)
        .arg("cli-reference")
        .env_clear()
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for line in text.lines().map(str::trim).filter(|l| l.starts_with("--")) {
        let flag = line.split([' ', '=', ',']).next().unwrap();
        if ["--help", "--version"].contains(&flag) {
            continue;
        }
        let var = format!(
            "FERROSTACK_{}",
            flag.trim_start_matches("--")
                .to_uppercase()
                .replace('-', "_")
        );
        assert!(
            text.contains(&format!("[env: {var}=")),
            "{flag} lacks [env: {var}]"
        );
    }
}

use up::ports;

/// README's `up` table (the session's banner, at `up`'s default base port and data dir) is the
/// binary's port table rendered, so a port, URL, description or the probe interval cannot drift.
#[test]
fn the_readme_up_table_matches_the_port_table() {
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("\nferrostack up — all roles")
        .expect("README's session shows up's table");
    let end = start
        + readme[start..]
            .find("\n```")
            .expect("the table's block ends");
    let host = "127.0.0.1".parse().unwrap();
    let ports = ports::Ports::new(host, 8080).unwrap();
    let banner = ports.banner(ports::PROBE_INTERVAL, std::path::Path::new("./.ferrostack"));
    assert_eq!(
        &readme[start..=end],
        banner,
        "README.md's up table differs from crates/up/src/ports.rs"
    );
}
