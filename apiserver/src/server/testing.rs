//! A real, in-process API server for tests of other crates: SQLite in a temporary directory,
//! TLS with the generated PKI on a free loopback port, and a kube-rs client from the admin
//! kubeconfig — the same path `arcd run` takes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use super::embedded::{RunningServer, ServerConfig, start};
use super::registry::ResourceKind;

/// A running test server; shut down (and its directory removed) on drop or [`TestServer::shutdown`].
pub struct TestServer {
    running: Option<RunningServer>,
    shutdown: CancellationToken,
    data_dir: PathBuf,
    // Keeps the temporary directory alive while the server runs.
    _dir: Option<tempfile::TempDir>,
}

impl TestServer {
    /// Starts a server with every ARC and core kind.
    pub async fn start() -> Self {
        Self::start_with_kinds(Vec::new()).await
    }

    /// Starts a server that also serves `extra` kinds (e.g. Argo Workflows).
    pub async fn start_with_kinds(extra: Vec<ResourceKind>) -> Self {
        let dir = tempfile::tempdir().expect("create temporary directory");
        let path = dir.path().to_path_buf();
        let mut server = Self::start_in(&path, extra).await;
        server._dir = Some(dir);
        server
    }

    /// Starts (or restarts) a server on an existing data directory, which the caller keeps.
    pub async fn start_in(data_dir: &Path, extra: Vec<ResourceKind>) -> Self {
        let listen: SocketAddr = "127.0.0.1:0".parse().expect("loopback address");
        let mut config = ServerConfig::embedded(data_dir, listen);
        config.extra_kinds = extra;
        let shutdown = CancellationToken::new();
        let running = start(config, shutdown.clone())
            .await
            .expect("start the API server");
        Self {
            running: Some(running),
            shutdown,
            data_dir: data_dir.to_path_buf(),
            _dir: None,
        }
    }

    fn running(&self) -> &RunningServer {
        self.running.as_ref().expect("server running")
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.running().url
    }

    /// The admin kubeconfig (client certificate of group `system:masters`).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.running().admin_kubeconfig
    }

    /// The data directory (to restart a server on it with [`TestServer::start_in`]).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The server's shared state, for white-box assertions.
    pub fn state(&self) -> &std::sync::Arc<super::state::ApiState> {
        &self.running().state
    }

    /// A kube-rs client authenticated as admin.
    pub async fn client(&self) -> kube::Client {
        client_from(self.kubeconfig_path()).await
    }

    /// Stops the server and waits for it to finish (the data directory stays until drop).
    pub async fn shutdown(mut self) {
        self.stop().await;
    }

    /// Stops the server, keeping `self` (and a temporary data directory) alive.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(running) = self.running.take() {
            let _ = running.task.await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A kube-rs client from a kubeconfig file.
pub async fn client_from(kubeconfig: &Path) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(kubeconfig).expect("read kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("kubeconfig to client config");
    kube::Client::try_from(config).expect("build kube client")
}
