//! Shared pieces of the TLS/auth tests: a router shaped like the API server's, a served
//! instance with a fresh PKI, a hyper-over-rustls client, and helpers for kubectl and kube-rs.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use apiserver::server::auth::{self, Auth, Identity};
use apiserver::server::kubeconfig;
use apiserver::server::pki::{CertAndKey, Pki};
use apiserver::server::tls::{self, ConnectionInfo, ServeOptions};
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, Query};
use axum::routing::get;
use axum::{Extension, Json, Router};
use base64::Engine;
use http::{Method, Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ClientConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;

pub const GROUP_PATH: &str = "/apis/arc.opendefense.cloud/v1alpha1";
pub const GENEROUS_TIMEOUT: Duration = Duration::from_secs(20);

pub const UNAUTHORIZED_BODY: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#;
pub const VIEWER_DELETE_MESSAGE: &str = r#"orders.arc.opendefense.cloud "o1" is forbidden: User "viewer" cannot delete resource "orders" in API group "arc.opendefense.cloud" in the namespace "default""#;

pub fn orders_path() -> String {
    format!("{GROUP_PATH}/namespaces/default/orders")
}

/// Signals from handlers to the test.
#[derive(Clone, Default)]
pub struct Signals {
    pub slow_started: Arc<Notify>,
    pub stuck_started: Arc<Notify>,
}

/// A router shaped like the API server's: resource paths, health, version, discovery, and a
/// few test endpoints.
pub fn router(auth: Arc<Auth>, signals: Signals) -> Router {
    let orders = format!("{GROUP_PATH}/namespaces/{{ns}}/orders");
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz/{check}", get(|| async { "ok" }))
        .route("/version", get(version))
        .route(
            "/apis",
            get(|| async {
                Json(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []}))
            }),
        )
        .route(&orders, get(list_or_watch_orders).post(create_order))
        .route(
            &format!("{orders}/{{name}}"),
            get(get_order).delete(delete_order),
        )
        .route(
            "/api/v1/namespaces/{ns}/secrets",
            get(|| async { Json(json!({"kind": "SecretList", "items": []})) }),
        )
        .route("/whoami", get(whoami))
        .route("/slow", get(slow))
        .route("/stuck", get(stuck))
        .layer(Extension(signals))
        .layer(auth::layer(auth))
}

pub async fn version() -> Json<Value> {
    Json(json!({
        "major": "1", "minor": "0", "gitVersion": "v0.1.0-test", "gitCommit": "0", "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z", "goVersion": "n/a", "compiler": "rustc", "platform": "linux/amd64"
    }))
}

pub async fn list_or_watch_orders(
    UrlPath(ns): UrlPath<String>,
    Query(query): Query<HashMap<String, String>>,
) -> axum::response::Response {
    if query.get("watch").is_some_and(|w| w == "true" || w == "1") {
        // An endless watch: one event every 50 ms.
        let events = futures::stream::unfold(0u64, |n| async move {
            if n > 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let event = format!(
                "{{\"type\":\"BOOKMARK\",\"object\":{{\"metadata\":{{\"resourceVersion\":\"{n}\"}}}}}}\n"
            );
            Some((Ok::<_, std::io::Error>(Bytes::from(event)), n + 1))
        });
        return axum::response::Response::new(Body::from_stream(events));
    }
    axum::response::IntoResponse::into_response(Json(json!({
        "kind": "OrderList", "apiVersion": "arc.opendefense.cloud/v1alpha1",
        "metadata": {"resourceVersion": "1"},
        "items": [{"metadata": {"name": "o1", "namespace": ns}}]
    })))
}

pub async fn create_order(
    Extension(identity): Extension<Identity>,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    let mut object: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
    object["metadata"]["annotations"] = json!({"created-by": identity.user});
    (StatusCode::CREATED, Json(object))
}

pub async fn get_order(UrlPath((ns, name)): UrlPath<(String, String)>) -> Json<Value> {
    Json(json!({"kind": "Order", "metadata": {"name": name, "namespace": ns}}))
}

pub async fn delete_order(UrlPath((_, name)): UrlPath<(String, String)>) -> Json<Value> {
    Json(
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
        "details": {"name": name, "group": "arc.opendefense.cloud", "kind": "orders"}}),
    )
}

pub async fn whoami(
    Extension(identity): Extension<Identity>,
    Extension(connection): Extension<Arc<ConnectionInfo>>,
) -> Json<Value> {
    Json(json!({
        "user": identity.user,
        "groups": identity.groups,
        "alpn": connection.alpn_protocol.as_deref().map(String::from_utf8_lossy),
        "certificates": connection.peer_certificates.len(),
    }))
}

pub async fn slow(Extension(signals): Extension<Signals>) -> &'static str {
    signals.slow_started.notify_one();
    tokio::time::sleep(Duration::from_millis(800)).await;
    "done"
}

pub async fn stuck(Extension(signals): Extension<Signals>) -> &'static str {
    signals.stuck_started.notify_one();
    std::future::pending::<()>().await;
    "never"
}

/// A served router with a fresh PKI in a temporary directory.
pub struct TestServer {
    pub addr: SocketAddr,
    pub pki: Pki,
    pub dir: tempfile::TempDir,
    pub signals: Signals,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(ServeOptions::default()).await
    }

    pub async fn start_with(options: ServeOptions) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(&dir.path().join("pki"), &[]).unwrap();
        let auth = Arc::new(Auth::from_pki(&pki).unwrap());
        let signals = Signals::default();
        let app = router(auth, signals.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let tls_config = tls::server_config(&pki).unwrap();
        let task = tokio::spawn(tls::serve_with_options(
            listener,
            tls_config,
            app,
            shutdown.clone(),
            options,
        ));
        TestServer {
            addr,
            pki,
            dir,
            signals,
            shutdown,
            task,
        }
    }

    pub fn url(&self) -> String {
        kubeconfig::server_url(self.addr)
    }

    pub fn client(&self, credentials: Option<&CertAndKey>, alpn: &[&[u8]]) -> Arc<ClientConfig> {
        client_config(self.pki.ca_cert_der(), credentials, alpn)
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(GENEROUS_TIMEOUT, self.task)
            .await
            .expect("the server stops")
            .unwrap()
            .unwrap();
    }
}

pub fn client_config(
    ca: &CertificateDer<'static>,
    credentials: Option<&CertAndKey>,
    alpn: &[&[u8]],
) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
    let mut config = match credentials {
        Some(c) => builder
            .with_client_auth_cert(
                vec![c.cert_der().unwrap()],
                PrivateKeyDer::from_pem_slice(c.key_pem.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

pub const H1: &[&[u8]] = &[b"http/1.1"];
pub const H2: &[&[u8]] = &[b"h2", b"http/1.1"];

/// One client connection, HTTP/1.1 or HTTP/2 as ALPN decided.
pub enum Connection {
    Http1(
        hyper::client::conn::http1::SendRequest<Full<Bytes>>,
        SocketAddr,
    ),
    Http2(
        hyper::client::conn::http2::SendRequest<Full<Bytes>>,
        SocketAddr,
    ),
}

impl Connection {
    pub async fn open(addr: SocketAddr, config: Arc<ClientConfig>) -> std::io::Result<Connection> {
        let tcp = TcpStream::connect(addr).await?;
        let stream = TlsConnector::from(config)
            .connect(ServerName::IpAddress(addr.ip().into()), tcp)
            .await?;
        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
        let io = TokioIo::new(stream);
        if h2 {
            let (send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(std::io::Error::other)?;
            tokio::spawn(conn);
            Ok(Connection::Http2(send, addr))
        } else {
            let (send, conn) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(std::io::Error::other)?;
            tokio::spawn(conn);
            Ok(Connection::Http1(send, addr))
        }
    }

    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> hyper::Result<http::Response<Incoming>> {
        let addr = match self {
            Connection::Http1(_, a) | Connection::Http2(_, a) => *a,
        };
        let mut builder = Request::builder().method(method);
        builder = match self {
            Connection::Http1(..) => builder
                .uri(path)
                .header(http::header::HOST, addr.to_string()),
            Connection::Http2(..) => builder.uri(format!("https://{addr}{path}")),
        };
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap();
        match self {
            Connection::Http1(send, _) => {
                send.ready().await?;
                send.send_request(request).await
            }
            Connection::Http2(send, _) => {
                send.ready().await?;
                send.send_request(request).await
            }
        }
    }

    pub async fn call(&mut self, method: Method, path: &str, headers: &[(&str, &str)]) -> Reply {
        let body = if method == Method::POST {
            r#"{"apiVersion":"arc.opendefense.cloud/v1alpha1","kind":"Order","metadata":{"name":"o2"}}"#
        } else {
            ""
        };
        let response = self
            .send(method, path, headers, body)
            .await
            .expect("a response");
        Reply::read(response).await
    }
}

/// A response read to the end.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub version: Version,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Reply {
    pub async fn read(response: http::Response<Incoming>) -> Reply {
        let status = response.status();
        let version = response.version();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("the whole body")
            .to_bytes();
        Reply {
            status,
            version,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One request on a fresh connection.
pub async fn call(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    method: Method,
    path: &str,
) -> Reply {
    let mut connection = Connection::open(addr, config)
        .await
        .expect("a TLS connection");
    connection.call(method, path, &[]).await
}

pub fn forbidden_body(message: &str, name: Option<&str>, group: &str, kind: &str) -> Value {
    let mut details = serde_json::Map::new();
    if let Some(name) = name {
        details.insert("name".into(), name.into());
    }
    if !group.is_empty() {
        details.insert("group".into(), group.into());
    }
    details.insert("kind".into(), kind.into());
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": "Forbidden", "details": details, "code": 403})
}

pub fn run_kubectl(
    kubectl: &Path,
    home: &Path,
    kubeconfig: &Path,
    args: &[&str],
) -> (bool, String, String) {
    let output = std::process::Command::new(kubectl)
        .env("HOME", home)
        .env_remove("KUBECONFIG")
        .stdin(std::process::Stdio::null())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("kubectl runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A kubeconfig that trusts the CA but has no client certificate. (An empty user would make
/// kubectl prompt for a password; a bearer token is not a credential this server knows.)
pub fn write_anonymous_kubeconfig(path: &Path, server_url: &str, ca_pem: &str) {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    std::fs::write(
        path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: arc\n  cluster:\n    server: {server_url}\n    certificate-authority-data: {ca}\n\
             users:\n- name: anonymous\n  user:\n    token: not-a-credential\ncontexts:\n- name: arc\n  context:\n    cluster: arc\n    user: anonymous\ncurrent-context: arc\n"
        ),
    )
    .unwrap();
}

pub async fn kube_client(kubeconfig: &Path) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    kube::Client::try_from(config).unwrap()
}
