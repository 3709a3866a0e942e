//! Shared fixtures: a moto S3 server on loopback, a TCP proxy that can cut the connection to it
//! (a storage outage), a sequence-numbered line producer, shipper options for tests, and a
//! shipper run in process.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use logfile::{RotatingWriter, WriterConfig};
use logship::{Config, Metrics, Options};
use tokio::task::JoinHandle as TaskHandle;
use tokio_util::sync::CancellationToken;

// The polls of every test, under the names these tests use.
pub(crate) use test_support::{wait_until as wait_for, wait_until_async as wait_for_async};

/// A moto S3 server on loopback; killed on drop.
pub(crate) struct Moto {
    child: Child,
    pub(crate) endpoint: String,
}

impl Moto {
    /// Starts moto (`MOTO_SERVER`, else `.tools`, else `PATH`). Without it the test is
    /// skipped with a line naming moto_server, except under `CI=true`, where it fails.
    pub(crate) fn start() -> Option<Self> {
        let bin = test_support::tool("moto_server")?;
        let port = test_support::free_port();
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let moto = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        wait_for("moto_server to listen", Duration::from_secs(30), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Some(moto)
    }

    /// Creates a bucket (moto does not check credentials unless told to).
    pub(crate) fn create_bucket(&self, bucket: &str) {
        let resp = http(&self.endpoint, "PUT", &format!("/{bucket}"), &[], b"");
        assert!(resp.starts_with("HTTP/1.1 200"), "create bucket: {resp}");
    }

    /// A handle for other threads (the endpoint only).
    pub(crate) fn clone_handle(&self) -> MotoHandle {
        MotoHandle {
            endpoint: self.endpoint.clone(),
        }
    }
}

/// The endpoint of a running moto, usable from any thread.
pub(crate) struct MotoHandle {
    pub(crate) endpoint: String,
}

impl MotoHandle {
    /// Writes `bucket/key` with a plain unsigned PUT (another writer).
    pub(crate) fn put_object(&self, object: &str, body: &[u8]) {
        let resp = http(&self.endpoint, "PUT", &format!("/{object}"), &[], body);
        assert!(resp.starts_with("HTTP/1.1 200"), "put {object}: {resp}");
    }
}

/// One HTTP/1.1 request over a fresh connection; returns the whole response.
pub(crate) fn http(
    endpoint: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> String {
    let addr = endpoint.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    String::from_utf8_lossy(&resp).into_owned()
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// object_store options for moto.
pub(crate) fn moto_store_options() -> Vec<(String, String)> {
    [
        ("aws_access_key_id", "test"),
        ("aws_secret_access_key", "test"),
        ("aws_region", "us-east-1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Options for a test shipper: quick batching and retries.
pub(crate) fn test_options(sources: Vec<String>, to: String, state: &Path) -> Options {
    let mut o = Options::new(sources, to);
    o.state_dir = state.to_path_buf();
    o.batch_max_age = Duration::from_millis(200);
    o.quiet_period = Duration::from_millis(100);
    o.scan_interval = Duration::from_millis(50);
    o.retry_initial = Duration::from_millis(50);
    o.retry_max = Duration::from_millis(500);
    o.request_timeout = Duration::from_secs(5);
    o.host = Some("testhost".into());
    o
}

/// A shipper running in this process (`run_until`) with its own metrics, until `stop`.
pub(crate) struct InProcess {
    pub(crate) metrics: Metrics,
    token: CancellationToken,
    run: TaskHandle<Result<(), logship::Error>>,
}

impl InProcess {
    /// Starts shipping `config` on the current runtime.
    pub(crate) fn start(config: &Config) -> Self {
        let metrics = Metrics::default();
        let token = CancellationToken::new();
        let run = tokio::spawn(logship::run_until(
            config.clone(),
            metrics.clone(),
            token.clone(),
        ));
        Self {
            metrics,
            token,
            run,
        }
    }

    /// Cancels the run, requires a clean exit and hands back the metrics for final checks.
    pub(crate) async fn stop(self) -> Metrics {
        self.token.cancel();
        self.run.await.unwrap().unwrap();
        self.metrics
    }
}

/// Upload errors counted under any of `kinds` (which kinds a failure maps to depends on the
/// store, so each test names the ones its outage can produce).
pub(crate) fn upload_errors(metrics: &Metrics, kinds: &[&str]) -> u64 {
    kinds
        .iter()
        .map(|k| {
            metrics
                .upload_errors
                .get_or_create(&logship::metrics::ErrorLabels { kind: (*k).into() })
                .get()
        })
        .sum()
}

/// A loopback TCP proxy whose link can be cut (refuses and drops connections while down).
pub(crate) struct Proxy {
    pub(crate) endpoint: String,
    down: Arc<AtomicBool>,
    generation: Arc<AtomicU64>,
}

impl Proxy {
    /// Starts forwarding a new loopback port to `target` (`host:port`).
    pub(crate) fn start(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let down = Arc::new(AtomicBool::new(false));
        let generation = Arc::new(AtomicU64::new(0));
        let (d, g, target) = (down.clone(), generation.clone(), target.to_string());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if d.load(Ordering::SeqCst) {
                    continue; // dropped: connection reset
                }
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                let gen_at_start = g.load(Ordering::SeqCst);
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let g = g.clone();
                    std::thread::spawn(move || {
                        let _ = from.set_read_timeout(Some(Duration::from_millis(100)));
                        let mut buf = [0u8; 64 * 1024];
                        loop {
                            if g.load(Ordering::SeqCst) != gen_at_start {
                                break;
                            }
                            match from.read(&mut buf) {
                                Ok(0) => break,
                                Ok(n) => {
                                    if to.write_all(&buf[..n]).is_err() {
                                        break;
                                    }
                                }
                                Err(e)
                                    if matches!(
                                        e.kind(),
                                        std::io::ErrorKind::WouldBlock
                                            | std::io::ErrorKind::TimedOut
                                    ) => {}
                                Err(_) => break,
                            }
                        }
                        let _ = from.shutdown(std::net::Shutdown::Both);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Self {
            endpoint,
            down,
            generation,
        }
    }

    /// Cuts (true) or restores (false) the link; cutting also closes open connections.
    pub(crate) fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
        if down {
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Writes `{"producer": ID, "seq": N}` lines through a rotating writer on a thread.
pub(crate) struct Producer {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<u64>>,
    pub(crate) writer: RotatingWriter,
}

impl Producer {
    /// Starts writing through a writer with `config`, pausing `pause` between lines.
    pub(crate) fn start(config: WriterConfig, id: &str, pause: Duration) -> Self {
        let writer = RotatingWriter::open(config).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (w, s, id) = (writer.clone(), stop.clone(), id.to_string());
        let handle = std::thread::spawn(move || {
            let mut seq = 0u64;
            while !s.load(Ordering::SeqCst) {
                let line = format!(
                    "{{\"level\":\"INFO\",\"message\":\"test line\",\"producer\":\"{id}\",\"seq\":{seq}}}\n"
                );
                (&w).write_all(line.as_bytes()).unwrap();
                seq += 1;
                if !pause.is_zero() {
                    std::thread::sleep(pause);
                }
            }
            seq
        });
        Self {
            stop,
            handle: Some(handle),
            writer,
        }
    }

    /// Stops, seals the open segment and returns how many lines were written.
    pub(crate) fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        let n = self.handle.take().unwrap().join().unwrap();
        self.writer.seal().unwrap();
        n
    }

    /// [`Producer::stop`], requiring that the writer dropped no line.
    pub(crate) fn stop_lossless(self) -> u64 {
        let writer = self.writer.clone();
        let written = self.stop();
        assert_eq!(
            writer.stats().dropped_lines.get(),
            0,
            "the writer dropped lines"
        );
        written
    }
}

/// Writer settings for tests: `max_bytes` segments, sealed at least every 100 ms.
pub(crate) fn writer_config(dir: &Path, max_bytes: u64) -> WriterConfig {
    WriterConfig {
        max_bytes,
        max_age: Duration::from_millis(100),
        flush_interval: Duration::from_millis(20),
        ..WriterConfig::new(dir)
    }
}

/// Number of non-dot files in a directory.
pub(crate) fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .count()
        })
        .unwrap_or(0)
}
