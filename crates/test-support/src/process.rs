//! The spawned-process harness: start a binary in a fresh directory with a clean
//! environment, wait until it answers ready, capture its stdout and stderr, signal it and
//! read its exit status.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, http1};

/// How long a process may take to answer ready.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A running process, killed on drop if still running.
pub struct Proc {
    /// The process, until it has been waited for on drop.
    pub child: Option<Child>,
    /// Its working directory; `stdout` and `stderr` are captured there.
    pub dir: tempfile::TempDir,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The port it was told to serve on.
    pub port: u16,
}

impl Proc {
    /// Starts `bin <args> --port <free> --host 127.0.0.1` and waits for `/readyz`.
    pub fn start(bin: &str, args: &[&str], env: &[(&str, &str)]) -> Proc {
        let port = free_port();
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend([
            "--port".into(),
            port.to_string(),
            "--host".into(),
            "127.0.0.1".into(),
        ]);
        Self::spawn(bin, &all, env, port)
    }

    /// Starts `bin <args>` as given and waits until `/readyz` on `port` answers 200.
    pub fn spawn(bin: &str, args: &[String], env: &[(&str, &str)], port: u16) -> Proc {
        let dir = tempfile::tempdir().expect("a working directory");
        let stdout = std::fs::File::create(dir.path().join("stdout")).expect("stdout file");
        let stderr = std::fs::File::create(dir.path().join("stderr")).expect("stderr file");
        let mut cmd = Command::new(bin);
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
        let child = cmd.spawn().unwrap_or_else(|e| panic!("start {bin}: {e}"));
        let proc = Proc {
            child: Some(child),
            dir,
            base: format!("http://127.0.0.1:{port}"),
            port,
        };
        proc.wait_ready(&format!("{}/readyz", proc.base));
        proc
    }

    /// Polls `url` until it answers 200; panics with the process's stderr after 20 s.
    pub fn wait_ready(&self, url: &str) {
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if matches!(http1::get_status(url), Ok(200)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("{url} never became ready; stderr:\n{}", self.stderr());
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The working directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Everything written to stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout")).unwrap_or_default()
    }

    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    /// Sends signal `name` (`TERM`, `INT`, `HUP`, ...) with kill(1).
    pub fn signal(&self, name: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill -{name} {pid} failed");
    }

    /// The exit status; panics when the process still runs after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("running");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the process did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then the exit status (within 40 s).
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

/// The JSON lines of a process's output (other lines skipped).
pub fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
