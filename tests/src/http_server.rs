//! A static HTTP file server for tests, with injectable faults: it serves a directory on
//! 127.0.0.1 (GET and HEAD, `Range: bytes=N-`), records every request, and can answer the next
//! requests for a path with an error status (e.g. 503, or 429 with `Retry-After`) or cut a body
//! short after some bytes (the connection drops mid-transfer).
//!
//! It runs on its own thread and tokio runtime, so sync and async tests can use it alike, and
//! stops when dropped.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A fault to inject into the next request for a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status (and `Retry-After: secs` if given), empty body.
    Status {
        /// The HTTP status code.
        status: u16,
        /// `Retry-After` in seconds.
        retry_after_secs: Option<u64>,
    },
    /// Send the headers of a full answer, then only this many body bytes, then drop the
    /// connection.
    CutAfter {
        /// Body bytes sent before the cut.
        bytes: usize,
    },
}

/// One request the server saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// The request method.
    pub method: String,
    /// The request path.
    pub path: String,
    /// The `Range` header, if any.
    pub range: Option<String>,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The status answered.
    pub status: u16,
}

#[derive(Default)]
struct Shared {
    root: PathBuf,
    faults: Mutex<HashMap<String, VecDeque<Fault>>>,
    log: Mutex<Vec<Logged>>,
}

/// A running file server; stopped on drop.
pub struct HttpFileServer {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for HttpFileServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpFileServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl HttpFileServer {
    /// Serves `root` on a free loopback port.
    pub fn start(root: &Path) -> Self {
        let shared = Arc::new(Shared {
            root: root.to_path_buf(),
            ..Shared::default()
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let state = Arc::clone(&shared);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                let app = axum::Router::new().fallback(serve).with_state(state);
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await
                    .expect("file server");
            });
        });
        Self {
            addr,
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// Queues `fault` for the next request to `path` (e.g. `/files/a.bin`); faults for a path
    /// are used in order, one per request.
    pub fn inject(&self, path: &str, fault: Fault) {
        self.shared
            .faults
            .lock()
            .unwrap()
            .entry(path.to_string())
            .or_default()
            .push_back(fault);
    }

    /// Every request seen so far for `path`.
    pub fn requests(&self, path: &str) -> Vec<Logged> {
        self.shared
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.path == path)
            .cloned()
            .collect()
    }
}

impl Drop for HttpFileServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    let header_text = |h: &HeaderMap, name| {
        h.get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    let range = header_text(request.headers(), header::RANGE);
    let authorization = header_text(request.headers(), header::AUTHORIZATION);
    let fault = shared
        .faults
        .lock()
        .unwrap()
        .get_mut(&path)
        .and_then(VecDeque::pop_front);
    let response = answer(
        &shared.root,
        request.method(),
        &path,
        range.as_deref(),
        fault,
    )
    .await;
    shared.log.lock().unwrap().push(Logged {
        method: request.method().to_string(),
        path,
        range,
        authorization,
        status: response.status().as_u16(),
    });
    response
}

async fn answer(
    root: &Path,
    method: &Method,
    path: &str,
    range: Option<&str>,
    fault: Option<Fault>,
) -> Response {
    if let Some(Fault::Status {
        status,
        retry_after_secs,
    }) = &fault
    {
        let mut response = StatusCode::from_u16(*status)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response();
        if let Some(secs) = retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*secs));
        }
        return response;
    }
    if method != Method::GET && method != Method::HEAD {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let relative = path.trim_start_matches('/');
    if relative.split('/').any(|s| s == "..") {
        return StatusCode::BAD_REQUEST.into_response();
    }
    let Ok(data) = tokio::fs::read(root.join(relative)).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let total = data.len();
    let start = match range
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
    {
        Some(n) => match n.parse::<usize>() {
            Ok(n) if n < total => Some(n),
            _ => return StatusCode::RANGE_NOT_SATISFIABLE.into_response(),
        },
        None => None,
    };
    let body_bytes = data[start.unwrap_or(0)..].to_vec();
    let len = body_bytes.len();
    let mut response = if method == Method::HEAD {
        Response::new(Body::empty())
    } else if let Some(Fault::CutAfter { bytes }) = fault {
        let head = body_bytes[..bytes.min(len)].to_vec();
        Response::new(Body::from_stream(cut_stream(head)))
    } else {
        Response::new(Body::from(body_bytes))
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(start) = start {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        let value = format!("bytes {start}-{}/{total}", total - 1);
        response.headers_mut().insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&value).expect("header"),
        );
    }
    response
}

/// A body stream that yields `head` and then fails, which makes the server drop the connection.
fn cut_stream(head: Vec<u8>) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures::stream::iter([
        Ok(head),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "fault injected: body cut",
        )),
    ])
}
