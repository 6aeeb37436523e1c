//! The health and metrics listener: `/healthz` (the main loop is alive), `/readyz` (the API
//! server serves, the controllers run, the first file sync finished) and `/metrics`
//! (Prometheus text format), over plain HTTP on its own address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// `/healthz` fails when the main loop has not ticked for this long.
pub const HEARTBEAT_STALE_SECS: u64 = 60;

/// What `/readyz` and `/healthz` report; shared between the daemon's parts.
#[derive(Debug, Default)]
pub struct Health {
    api_serving: AtomicBool,
    controllers_running: AtomicBool,
    files_synced: AtomicBool,
    heartbeat_unix_secs: AtomicU64,
}

fn now_unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

impl Health {
    /// A fresh state: nothing ready, heartbeat now.
    pub fn new() -> Arc<Self> {
        let health = Self::default();
        health.beat();
        Arc::new(health)
    }

    /// The API server accepts requests.
    pub fn set_api_serving(&self, yes: bool) {
        self.api_serving.store(yes, Ordering::SeqCst);
    }

    /// The controllers run.
    pub fn set_controllers_running(&self, yes: bool) {
        self.controllers_running.store(yes, Ordering::SeqCst);
    }

    /// The first full file sync finished.
    pub fn set_files_synced(&self, yes: bool) {
        self.files_synced.store(yes, Ordering::SeqCst);
    }

    /// The main loop is alive.
    pub fn beat(&self) {
        self.heartbeat_unix_secs
            .store(now_unix_secs(), Ordering::SeqCst);
    }

    /// What is not ready yet; empty when ready.
    pub fn not_ready(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if !self.api_serving.load(Ordering::SeqCst) {
            missing.push("api server not serving");
        }
        if !self.controllers_running.load(Ordering::SeqCst) {
            missing.push("controllers not running");
        }
        if !self.files_synced.load(Ordering::SeqCst) {
            missing.push("resource files not synced yet");
        }
        missing
    }

    /// Whether the main loop ticked recently.
    pub fn is_alive(&self) -> bool {
        now_unix_secs().saturating_sub(self.heartbeat_unix_secs.load(Ordering::SeqCst))
            < HEARTBEAT_STALE_SECS
    }
}

#[derive(Clone)]
struct AppState {
    health: Arc<Health>,
    metrics: Metrics,
}

/// The routes, for serving and for tests.
pub fn router(health: Arc<Health>, metrics: Metrics) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(AppState { health, metrics })
}

async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    if state.health.is_alive() {
        (StatusCode::OK, "ok\n".to_string())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("main loop stalled for over {HEARTBEAT_STALE_SECS}s\n"),
        )
    }
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let missing = state.health.not_ready();
    if missing.is_empty() {
        (StatusCode::OK, "ok\n".to_string())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", missing.join(", ")),
        )
    }
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

/// Binds `addr` (so a port in use is reported before the daemon says it is ready).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves until `cancel` fires.
pub async fn serve(
    listener: TcpListener,
    health: Arc<Health>,
    metrics: Metrics,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(health, metrics))
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_lists_what_is_missing() {
        let health = Health::new();
        assert_eq!(health.not_ready().len(), 3);
        health.set_api_serving(true);
        health.set_controllers_running(true);
        assert_eq!(health.not_ready(), vec!["resource files not synced yet"]);
        health.set_files_synced(true);
        assert!(health.not_ready().is_empty());
        assert!(health.is_alive());
    }

    #[tokio::test]
    async fn serves_the_three_endpoints() {
        let health = Health::new();
        let metrics = Metrics::new();
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cancel = CancellationToken::new();
        let server = tokio::spawn(serve(listener, health.clone(), metrics, cancel.clone()));
        let get = |path: &'static str| async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream
                .write_all(
                    format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                        .as_bytes(),
                )
                .await
                .unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).await.unwrap();
            response
        };
        assert!(get("/healthz").await.starts_with("HTTP/1.1 200"));
        let not_ready = get("/readyz").await;
        assert!(
            not_ready.starts_with("HTTP/1.1 503") && not_ready.contains("api server not serving"),
            "{not_ready}"
        );
        health.set_api_serving(true);
        health.set_controllers_running(true);
        health.set_files_synced(true);
        assert!(get("/readyz").await.starts_with("HTTP/1.1 200"));
        assert!(get("/metrics").await.contains("arc_sync_objects"));
        cancel.cancel();
        server.await.unwrap().unwrap();
    }
}
