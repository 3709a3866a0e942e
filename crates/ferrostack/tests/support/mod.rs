//! Test support: the real `ferrostack` binary started through test-support's process harness
//! (free loopback port, readiness, captured output, real signals), plus small readers.

#![allow(
    dead_code,
    unused_imports,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::path::{Path, PathBuf};

pub use test_support::{Proc, free_port, free_port_range, json_lines};

pub const BIN: &str = env!("CARGO_BIN_EXE_ferrostack");

/// Starts `ferrostack <args>` with `--port <free> --host 127.0.0.1` appended and waits for
/// `/readyz`.
pub fn start(args: &[&str], env: &[(&str, &str)]) -> Proc {
    Proc::start(BIN, args, env)
}

/// Starts `ferrostack <args>` as given and waits for `/readyz` on `port`.
pub fn spawn(args: &[String], env: &[(&str, &str)], port: u16) -> Proc {
    Proc::spawn(BIN, args, env, port)
}

/// The body of a plain GET (metrics, OpenAPI, pages), failing the test on any error.
pub async fn get_text(url: &str) -> String {
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

pub fn log_dir_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}
