//! An HTTP proxy in front of a test server (a registry) that counts what passes and injects
//! faults: `429 Too Many Requests` with `Retry-After`, one corrupted byte in a response body,
//! token authentication (a `Bearer` challenge and a `/token` endpoint, as Docker Hub and
//! most registries do), and a log of every request. Upload `Location`s are rewritten so clients keep going through
//! the proxy. Loopback only.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use futures::StreamExt as _;

/// A fault rule: requests whose `METHOD path?query` contains `pattern`.
#[derive(Debug, Clone)]
struct Throttle {
    pattern: String,
    remaining: u32,
    retry_after_secs: u64,
}

/// Token authentication in front of the upstream: the proxy answers `/v2/...` requests without
/// a valid bearer token with a challenge pointing at its own `/token` endpoint, which hands
/// out tokens for the requested scopes to `username`/`password` (HTTP Basic).
#[derive(Debug, Clone)]
struct BearerAuth {
    username: String,
    password: String,
}

#[derive(Debug, Default)]
struct Rules {
    bearer: Option<BearerAuth>,
    /// Issued tokens and the scopes each grants.
    tokens: Vec<(String, Vec<String>)>,
    /// Every scope requested at the token endpoint, in order.
    token_requests: Vec<String>,
    throttles: Vec<Throttle>,
    /// Flip one byte of responses whose path contains this, at this offset.
    corrupt: Option<(String, u64)>,
}

struct Shared {
    upstream: String,
    public: String,
    http: reqwest::Client,
    rules: Mutex<Rules>,
    log: Mutex<Vec<String>>,
    upload_bytes: AtomicU64,
}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    shared: Arc<Shared>,
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("port", &self.port)
            .field("upstream", &self.shared.upstream)
            .finish()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn plain_http_client() -> reqwest::Client {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("tls versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .http1_only()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("proxy client")
}

impl FaultProxy {
    /// Starts a proxy on a free 127.0.0.1 port forwarding to `upstream` (`http://host:port`).
    /// Must be called inside a tokio runtime.
    pub async fn start(upstream: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            public: format!("http://127.0.0.1:{port}"),
            http: plain_http_client(),
            rules: Mutex::default(),
            log: Mutex::default(),
            upload_bytes: AtomicU64::new(0),
        });
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { shared, port, task }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.shared.public.clone()
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Answers the next `count` requests whose `METHOD path?query` contains `pattern` with
    /// `429` and `Retry-After: <retry_after_secs>`.
    pub fn throttle(&self, pattern: &str, count: u32, retry_after_secs: u64) {
        self.shared.rules.lock().unwrap().throttles.push(Throttle {
            pattern: pattern.to_string(),
            remaining: count,
            retry_after_secs,
        });
    }

    /// Puts token authentication in front of the upstream (see the module docs): clients get a
    /// `Bearer` challenge and must fetch a token for the right scope from `/token` with
    /// `username`/`password`.
    pub fn require_bearer(&self, username: &str, password: &str) {
        self.shared.rules.lock().unwrap().bearer = Some(BearerAuth {
            username: username.into(),
            password: password.into(),
        });
    }

    /// The `scope` parameters of every token request so far (space-joined per request).
    pub fn token_requests(&self) -> Vec<String> {
        self.shared.rules.lock().unwrap().token_requests.clone()
    }

    /// Flips the byte at `offset` of every response body whose path contains `pattern`.
    pub fn corrupt(&self, pattern: &str, offset: u64) {
        self.shared.rules.lock().unwrap().corrupt = Some((pattern.to_string(), offset));
    }

    /// Every request so far, as `METHOD path?query -> status`.
    pub fn requests(&self) -> Vec<String> {
        self.shared.log.lock().unwrap().clone()
    }

    /// How many requests so far match `method` and contain `pattern`.
    pub fn count(&self, method: &str, pattern: &str) -> usize {
        self.requests()
            .iter()
            .filter(|l| l.starts_with(&format!("{method} ")) && l.contains(pattern))
            .count()
    }

    /// Bytes received in blob upload (PATCH/PUT `/blobs/uploads/`) request bodies so far.
    pub fn upload_bytes(&self) -> u64 {
        self.shared.upload_bytes.load(Ordering::SeqCst)
    }

    /// Forgets the request log and the byte count.
    pub fn reset_counts(&self) {
        self.shared.log.lock().unwrap().clear();
        self.shared.upload_bytes.store(0, Ordering::SeqCst);
    }
}

/// The `Authorization: Basic` user and password of a request.
fn basic_credentials(request: &Request) -> Option<(String, String)> {
    use base64::Engine as _;
    let value = request
        .headers()
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(value)
            .ok()?,
    )
    .ok()?;
    let (u, p) = decoded.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// The scope a `/v2/<name>/...` request needs (`repository:<name>:pull` or `:push`).
fn needed_scope(method: &str, path: &str) -> Option<(String, &'static str)> {
    let rest = path.strip_prefix("/v2/")?;
    let cut = ["/manifests/", "/blobs/", "/tags/", "/referrers/"]
        .iter()
        .filter_map(|m| rest.find(m))
        .min()?;
    let action = if matches!(method, "GET" | "HEAD") {
        "pull"
    } else {
        "push"
    };
    Some((rest[..cut].to_string(), action))
}

/// Token authentication: the token endpoint, and the check of `/v2` requests. Returns a
/// response when the request is answered here.
fn bearer_gate(
    shared: &Shared,
    request: &Request,
    method: &str,
    path_query: &str,
) -> Option<Response> {
    let mut rules = shared.rules.lock().unwrap();
    let auth = rules.bearer.clone()?;
    let path = path_query.split('?').next().unwrap_or_default();
    if path == "/token" {
        let scopes: Vec<String> = path_query
            .split_once('?')
            .map(|(_, q)| {
                q.split('&')
                    .filter_map(|kv| kv.strip_prefix("scope="))
                    .map(|v| {
                        v.replace("%3A", ":")
                            .replace("%2C", ",")
                            .replace("%2F", "/")
                            .replace('+', " ")
                    })
                    .collect()
            })
            .unwrap_or_default();
        rules.token_requests.push(scopes.join(" "));
        if basic_credentials(request) != Some((auth.username.clone(), auth.password.clone())) {
            return Some(
                Response::builder()
                    .status(StatusCode::UNAUTHORIZED)
                    .body(Body::from(r#"{"details":"bad credentials"}"#))
                    .unwrap(),
            );
        }
        let token = format!("tok-{}", rules.tokens.len() + 1);
        rules.tokens.push((token.clone(), scopes));
        let body = format!(r#"{{"token":"{token}","expires_in":300}}"#);
        return Some(
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap(),
        );
    }
    let (name, action) = needed_scope(method, path)?;
    let presented = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let granted = presented
        .and_then(|t| {
            rules
                .tokens
                .iter()
                .find(|(k, _)| *k == t)
                .map(|(_, s)| s.clone())
        })
        .unwrap_or_default();
    let prefix = format!("repository:{name}:");
    let ok = granted.iter().any(|scope| {
        scope.strip_prefix(&prefix).is_some_and(|actions| {
            actions
                .split(',')
                .any(|a| a == action || (action == "pull" && a == "push"))
        })
    });
    if ok {
        return None;
    }
    let challenge = format!(
        r#"Bearer realm="{}/token",service="arc-test",scope="repository:{name}:{action}""#,
        shared.public
    );
    Some(
        Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header("www-authenticate", challenge)
            .body(Body::from(
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            ))
            .unwrap(),
    )
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let method = request.method().clone();
    let path_query = request
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_else(|| "/".into());
    let line = format!("{method} {path_query}");
    if let Some(response) = bearer_gate(&shared, &request, method.as_str(), &path_query) {
        shared
            .log
            .lock()
            .unwrap()
            .push(format!("{line} -> {}", response.status().as_u16()));
        return response;
    }
    let throttled = {
        let mut rules = shared.rules.lock().unwrap();
        rules
            .throttles
            .iter_mut()
            .find(|t| t.remaining > 0 && line.contains(&t.pattern))
            .map(|t| {
                t.remaining -= 1;
                t.retry_after_secs
            })
    };
    if let Some(secs) = throttled {
        shared.log.lock().unwrap().push(format!("{line} -> 429"));
        return Response::builder()
            .status(StatusCode::TOO_MANY_REQUESTS)
            .header("retry-after", secs.to_string())
            .body(Body::from("slow down"))
            .unwrap();
    }
    let mut builder = shared
        .http
        .request(method.clone(), format!("{}{path_query}", shared.upstream));
    // Behind token authentication the upstream is anonymous: the token stays here.
    let strip_auth = shared.rules.lock().unwrap().bearer.is_some();
    for (name, value) in request.headers() {
        let skip = matches!(
            name.as_str(),
            "host" | "connection" | "transfer-encoding" | "content-length"
        ) || (strip_auth && name.as_str() == "authorization");
        if !skip {
            builder = builder.header(name, value);
        }
    }
    if let Some(len) = request.headers().get("content-length") {
        builder = builder.header("content-length", len);
    }
    let counting = (method == "PATCH" || method == "PUT") && path_query.contains("/blobs/uploads/");
    let shared_body = shared.clone();
    let body = request.into_body().into_data_stream().map(move |chunk| {
        if let Ok(c) = &chunk
            && counting
        {
            shared_body
                .upload_bytes
                .fetch_add(c.len() as u64, Ordering::SeqCst);
        }
        chunk
    });
    let upstream = match builder.body(reqwest::Body::wrap_stream(body)).send().await {
        Ok(r) => r,
        Err(e) => {
            shared.log.lock().unwrap().push(format!("{line} -> 502"));
            return Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(Body::from(e.to_string()))
                .unwrap();
        }
    };
    let status = upstream.status();
    shared
        .log
        .lock()
        .unwrap()
        .push(format!("{line} -> {}", status.as_u16()));
    let mut response = Response::builder().status(status.as_u16());
    for (name, value) in upstream.headers() {
        if matches!(name.as_str(), "connection" | "transfer-encoding") {
            continue;
        }
        if name.as_str() == "location" {
            let rewritten = value
                .to_str()
                .unwrap_or_default()
                .replace(&shared.upstream, &shared.public);
            response = response.header(name, HeaderValue::from_str(&rewritten).unwrap());
        } else {
            response = response.header(name, value);
        }
    }
    let corrupt = shared
        .rules
        .lock()
        .unwrap()
        .corrupt
        .clone()
        .filter(|(p, _)| path_query.contains(p.as_str()) && method == "GET");
    let mut seen: u64 = 0;
    let stream = upstream.bytes_stream().map(move |chunk| {
        let chunk = chunk.map_err(std::io::Error::other)?;
        let out = match &corrupt {
            Some((_, offset)) if *offset >= seen && *offset < seen + chunk.len() as u64 => {
                let mut v = chunk.to_vec();
                v[(*offset - seen) as usize] ^= 0xff;
                bytes::Bytes::from(v)
            }
            _ => chunk,
        };
        seen += out.len() as u64;
        Ok::<_, std::io::Error>(out)
    });
    response.body(Body::from_stream(stream)).unwrap()
}
