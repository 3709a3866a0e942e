//! README's "webhook" section runs as shown: each console block's `$ cat FILE` writes FILE
//! with the lines under it, and every other `$` line runs in bash with the built binary as
//! `ferrostack`, its stdout and stderr compared line by line with what README prints.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

mod support;

/// The `$` lines of the section's console blocks, each with the lines README shows under it.
fn steps() -> Vec<(String, Vec<String>)> {
    let readme = include_str!("../../../README.md");
    let start = readme.find("\n## webhook").expect("README has ## webhook");
    let section = &readme[start + 1..];
    let section = &section[..section[1..].find("\n## ").map_or(section.len(), |i| i + 1)];
    let mut steps: Vec<(String, Vec<String>)> = Vec::new();
    let mut console = false;
    for line in section.lines() {
        match line {
            "```console" => console = true,
            "```" => console = false,
            l if console && l.starts_with("$ ") => steps.push((l[2..].to_owned(), Vec::new())),
            l if console => steps
                .last_mut()
                .expect("output follows a command")
                .1
                .push(l.to_owned()),
            _ => {}
        }
    }
    steps
}

fn run(command: &str, dir: &Path) -> Vec<String> {
    let bin = Path::new(support::BIN);
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .args(["-c", &format!("{{ {command}; }} 2>&1")])
        .current_dir(dir)
        .env("PATH", path)
        .env_remove("FERROSTACK_LOG_LEVEL")
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_readme_webhook_examples_run_as_shown() {
    let steps = steps();
    assert!(
        steps.iter().any(|(c, _)| c.contains("webhook audit")),
        "{steps:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    for (command, expected) in steps {
        if let Some(file) = command.strip_prefix("cat ") {
            std::fs::write(dir.path().join(file), expected.join("\n") + "\n").unwrap();
            continue;
        }
        assert_eq!(run(&command, dir.path()), expected, "$ {command}");
    }
}
