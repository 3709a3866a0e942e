//! Test support: start the real `ferrostack` binary on a free loopback port, wait until it is
//! ready, capture its stdout and stderr, and stop it with a real signal.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_ferrostack");

/// A free loopback port (bound then released; the binary binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `n` consecutive free ports starting at a free one (for `up`).
pub fn free_port_range(n: u16) -> u16 {
    'search: for _ in 0..200 {
        let base = free_port();
        if base.checked_add(n).is_none() {
            continue;
        }
        for offset in 0..n {
            if TcpListener::bind(("127.0.0.1", base + offset)).is_err() {
                continue 'search;
            }
        }
        return base;
    }
    panic!("no free range of {n} ports");
}

pub struct Proc {
    pub child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub base: String,
    pub port: u16,
}

impl Proc {
    /// Starts `ferrostack <args>` with `--port <free>` appended and waits for `/readyz`.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Proc {
        let port = free_port();
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend([
            "--port".into(),
            port.to_string(),
            "--host".into(),
            "127.0.0.1".into(),
        ]);
        Self::spawn(&all, env, port)
    }

    pub fn spawn(args: &[String], env: &[(&str, &str)], port: u16) -> Proc {
        let dir = tempfile::tempdir().unwrap();
        let stdout = std::fs::File::create(dir.path().join("stdout")).unwrap();
        let stderr = std::fs::File::create(dir.path().join("stderr")).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(dir.path())
            .stdout(stdout)
            .stderr(stderr)
            .stdin(Stdio::null());
        // A clean environment: nothing of the developer's FERROSTACK_* leaks in.
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start ferrostack");
        let proc = Proc {
            child: Some(child),
            dir,
            base: format!("http://127.0.0.1:{port}"),
            port,
        };
        proc.wait_ready(&format!("{}/readyz", proc.base));
        proc
    }

    pub fn wait_ready(&self, url: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if matches!(reqwest::blocking_get(url), Ok(200)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("{url} never became ready; stderr:\n{}", self.stderr());
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout")).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    pub fn signal(&self, name: &str) {
        let pid = self.child.as_ref().unwrap().id();
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(ok.success());
    }

    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let child = self.child.as_mut().unwrap();
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "ferrostack did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) -> ExitStatus {
        self.signal("TERM");
        self.wait_exit(Duration::from_secs(40))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The body of a plain GET (metrics, OpenAPI, pages), failing the test on any error.
pub async fn get_text(url: &str) -> String {
    ::reqwest::get(url).await.unwrap().text().await.unwrap()
}

/// The JSON log lines a process printed.
pub fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

pub fn log_dir_files(dir: &PathBuf) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

mod reqwest {
    //! A tiny blocking GET on std only, for readiness polls outside any runtime.
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    pub fn blocking_get(url: &str) -> std::io::Result<u16> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| std::io::Error::other("http only"))?;
        let (host, path) = rest
            .split_once('/')
            .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
        let mut s = TcpStream::connect(host)?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf)?;
        let head = String::from_utf8_lossy(&buf);
        head.split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other("bad answer"))
    }
}
