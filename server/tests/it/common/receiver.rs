//! A real HTTP receiver on 127.0.0.1:0 that answers as a test tells it: 200, any status (with
//! `Retry-After`), a redirect, a sleep past the timeout, a hang until released, a switch between
//! up and down, a large body; and a second port that closes every connection without answering.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use axum::{
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Router,
};
use tokio::{io::AsyncReadExt, sync::watch};

#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }
}

#[derive(Default)]
struct Inner {
    received: Mutex<Vec<Received>>,
    down: AtomicBool,
    /// What `/switch` answers while down instead of a bare 503: a status and `Retry-After`.
    down_answer: Mutex<Option<(u16, Option<String>)>>,
    hanging: AtomicUsize,
    max_hanging: AtomicUsize,
    /// `/flaky`: per payload `n`, how many more requests to answer 500.
    failures: Mutex<HashMap<i64, usize>>,
    /// `/flaky`: every request's payload `n` and the status answered, in arrival order.
    flaky: Mutex<Vec<(i64, u16)>>,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Inner>,
    release: watch::Receiver<bool>,
}

pub struct Receiver {
    pub addr: SocketAddr,
    /// Accepts, reads the request and closes the connection without answering.
    pub hangup_addr: SocketAddr,
    inner: Arc<Inner>,
    release: watch::Sender<bool>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let (release, release_rx) = watch::channel(false);
        let inner = Arc::new(Inner::default());
        let shared = Shared { inner: inner.clone(), release: release_rx };
        let app = Router::new()
            .route("/ok", post(ok))
            .route("/status/{code}", post(status))
            .route("/redirect", post(redirect))
            .route("/sleep/{ms}", post(sleep))
            .route("/hang", post(hang))
            .route("/switch", post(switch))
            .route("/big/{bytes}", post(big))
            .route("/flaky/{ms}", post(flaky))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
        let addr = listener.local_addr().expect("receiver addr");
        tokio::spawn(async move { axum::serve(listener, app).await });

        let hangup = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind hangup");
        let hangup_addr = hangup.local_addr().expect("hangup addr");
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = hangup.accept().await {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                drop(socket);
            }
        });
        Receiver { addr, hangup_addr, inner, release }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.received.lock().unwrap().clone()
    }

    pub fn received_at(&self, path: &str) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.path == path).collect()
    }

    /// `/switch` answers 503 while down, 200 while up.
    pub fn set_down(&self, down: bool) {
        self.inner.down.store(down, Ordering::SeqCst);
    }

    /// While down, `/switch` answers `status` (with `Retry-After: retry_after` when given).
    pub fn set_down_answer(&self, status: u16, retry_after: Option<&str>) {
        *self.inner.down_answer.lock().unwrap() = Some((status, retry_after.map(str::to_owned)));
    }

    /// Requests to `/hang` waiting right now, and the most ever waiting at once.
    pub fn hanging(&self) -> (usize, usize) {
        (self.inner.hanging.load(Ordering::SeqCst), self.inner.max_hanging.load(Ordering::SeqCst))
    }

    /// `/flaky` answers the event whose payload has `"n": n` with 500, `times` times.
    pub fn fail(&self, n: i64, times: usize) {
        self.inner.failures.lock().unwrap().insert(n, times);
    }

    /// `/flaky`'s requests in arrival order: each payload's `n` and the status answered.
    pub fn flaky_log(&self) -> Vec<(i64, u16)> {
        self.inner.flaky.lock().unwrap().clone()
    }

    /// Lets every `/hang` request (now and later) answer 200.
    pub fn release_hung(&self) {
        let _ = self.release.send(true);
    }
}

fn record(shared: &Shared, path: String, headers: HeaderMap, body: Bytes) {
    shared.inner.received.lock().unwrap().push(Received { path, headers, body, at: Instant::now() });
}

async fn ok(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> &'static str {
    record(&s, "/ok".into(), headers, body);
    "ok"
}

async fn status(
    State(s): State<Shared>,
    Path(code): Path<u16>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&s, format!("/status/{code}"), headers, body);
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut res = (status, format!("{{\"error\":\"answered {code} on purpose\"}}")).into_response();
    res.headers_mut().insert("content-type", "application/json".parse().unwrap());
    if let Some(after) = q.get("retry_after") {
        res.headers_mut().insert("retry-after", after.parse().unwrap());
    }
    res
}

/// Sleeps `ms`, then answers 500 while the payload's `n` has failures left (see `fail`), else 200.
async fn flaky(State(s): State<Shared>, Path(ms): Path<u64>, headers: HeaderMap, body: Bytes) -> StatusCode {
    record(&s, format!("/flaky/{ms}"), headers, body.clone());
    tokio::time::sleep(Duration::from_millis(ms)).await;
    let n =
        serde_json::from_slice::<serde_json::Value>(&body).ok().and_then(|v| v["n"].as_i64()).unwrap_or(-1);
    let status = match s.inner.failures.lock().unwrap().get_mut(&n) {
        Some(left) if *left > 0 => {
            *left -= 1;
            StatusCode::INTERNAL_SERVER_ERROR
        }
        _ => StatusCode::OK,
    };
    s.inner.flaky.lock().unwrap().push((n, status.as_u16()));
    status
}

async fn redirect(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    record(&s, "/redirect".into(), headers, body);
    (StatusCode::FOUND, [("location", "/ok")], "moved").into_response()
}

async fn sleep(
    State(s): State<Shared>,
    Path(ms): Path<u64>,
    headers: HeaderMap,
    body: Bytes,
) -> &'static str {
    record(&s, format!("/sleep/{ms}"), headers, body);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    "slept"
}

async fn hang(State(mut s): State<Shared>, headers: HeaderMap, body: Bytes) -> &'static str {
    record(&s, "/hang".into(), headers, body);
    let now = s.inner.hanging.fetch_add(1, Ordering::SeqCst) + 1;
    s.inner.max_hanging.fetch_max(now, Ordering::SeqCst);
    // Herald may give up (its timeout) and drop this request: count it out either way.
    let _waiting = Waiting(s.inner.clone());
    let _ = s.release.wait_for(|released| *released).await;
    "released"
}

struct Waiting(Arc<Inner>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.hanging.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn switch(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    record(&s, "/switch".into(), headers, body);
    if s.inner.down.load(Ordering::SeqCst) {
        match s.inner.down_answer.lock().unwrap().clone() {
            Some((code, retry_after)) => {
                let mut res = (StatusCode::from_u16(code).unwrap(), "slow down").into_response();
                if let Some(after) = retry_after {
                    res.headers_mut().insert("retry-after", after.parse().unwrap());
                }
                res
            }
            None => (StatusCode::SERVICE_UNAVAILABLE, "down for maintenance").into_response(),
        }
    } else {
        (StatusCode::OK, "up").into_response()
    }
}

async fn big(State(s): State<Shared>, Path(bytes): Path<usize>, headers: HeaderMap, body: Bytes) -> String {
    record(&s, format!("/big/{bytes}"), headers, body);
    "x".repeat(bytes)
}
