//! A scripted upstream HTTP server on loopback (the external logs API of backend-api's
//! tests): `GET /logs` answers as its mode says and records each request's Authorization;
//! and a recording server that redirects where told.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;

/// How the upstream answers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// 200 `line one\nline two\n`.
    Ok,
    /// 500 `boom`.
    Fail,
    /// 200 after 5 s (longer than any test's client timeout).
    Slow,
}

/// A running upstream; serves until the test's runtime ends.
#[derive(Clone)]
pub struct Upstream {
    /// Where it listens.
    pub addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Upstream {
    /// Starts answering [`Mode::Ok`] on a free loopback port.
    pub async fn start() -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the upstream");
        let up = Upstream {
            addr: listener.local_addr().expect("local address"),
            mode: Arc::new(Mutex::new(Mode::Ok)),
            seen: Arc::default(),
        };
        let app = axum::Router::new()
            .route("/logs", get(logs))
            .with_state(up.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        up
    }

    /// `http://<addr>/logs`.
    pub fn url(&self) -> String {
        format!("http://{}/logs", self.addr)
    }

    /// Answers as `mode` from now on.
    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().expect("mode") = mode;
    }

    /// The Authorization header of every request so far (empty when absent).
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().expect("seen").clone()
    }
}

async fn logs(State(up): State<Upstream>, headers: HeaderMap) -> (StatusCode, String) {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    up.seen.lock().expect("seen").push(auth);
    let mode = *up.mode.lock().expect("mode");
    match mode {
        Mode::Ok => (StatusCode::OK, "line one\nline two\n".into()),
        Mode::Fail => (StatusCode::INTERNAL_SERVER_ERROR, "boom".into()),
        Mode::Slow => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            (StatusCode::OK, "late".into())
        }
    }
}

/// One request as a [`recording_server`] saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// The request's path.
    pub path: String,
    /// Its Authorization header, if any.
    pub authorization: Option<String>,
}

/// The requests a [`recording_server`] saw, in order.
pub type SeenLog = Arc<Mutex<Vec<Seen>>>;

/// A server on its own loopback port that records every request and answers each path as
/// `answer` says: a 302 to the URL given, or 200 `logs`.
pub async fn recording_server(
    answer: impl Fn(&str) -> Option<String> + Clone + Send + Sync + 'static,
) -> (SocketAddr, SeenLog) {
    let seen: SeenLog = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the recording server");
    let addr = listener.local_addr().expect("local address");
    let record = seen.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap| {
        let (record, answer) = (record.clone(), answer.clone());
        async move {
            record.lock().expect("seen").push(Seen {
                path: uri.path().to_owned(),
                authorization: headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            });
            match answer(uri.path()) {
                Some(to) => (StatusCode::FOUND, [("location", to)], String::new()),
                None => (
                    StatusCode::OK,
                    [("x-final", "yes".to_owned())],
                    "logs".into(),
                ),
            }
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}
