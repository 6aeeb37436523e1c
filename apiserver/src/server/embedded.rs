//! Running the API server: open the store, create or load the PKI, bind the listener, write the
//! admin kubeconfig, then serve TLS until the shutdown token is cancelled. Used by `arcd
//! apiserver`, `arcd run` and the test harness.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::kinds;
use super::registry::ResourceKind;
use super::state::{ApiState, ServerOptions};
use super::{auth, background, kubeconfig, pki, tls};
use crate::storage::etcd::EtcdStore;
use crate::storage::sqlite::SqliteStore;
use crate::storage::{StorageError, Store};

/// Where the server keeps its objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageBackend {
    /// SQLite file `arc.db` in the data directory (embedded default).
    Sqlite,
    /// An etcd cluster (never the Kubernetes cluster's own).
    Etcd {
        /// Client URLs, e.g. `http://127.0.0.1:2379`.
        endpoints: Vec<String>,
    },
}

/// How to run the server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Data directory: store, PKI and the admin kubeconfig live here.
    pub data_dir: PathBuf,
    /// Address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Storage backend.
    pub storage: StorageBackend,
    /// Extra host names or IPs for the serving certificate.
    pub hostnames: Vec<String>,
    /// Behaviour switches.
    pub options: ServerOptions,
    /// Extra served kinds (tests add `argoproj.io/v1alpha1` Workflows).
    pub extra_kinds: Vec<ResourceKind>,
}

impl ServerConfig {
    /// Embedded defaults: SQLite in `data_dir`, all ARC and core kinds.
    pub fn embedded(data_dir: impl Into<PathBuf>, listen: SocketAddr) -> Self {
        Self {
            data_dir: data_dir.into(),
            listen,
            storage: StorageBackend::Sqlite,
            hostnames: Vec::new(),
            options: ServerOptions::default(),
            extra_kinds: Vec::new(),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The store could not be opened or reached.
    #[error("cannot open storage: {0}")]
    Storage(#[from] StorageError),
    /// The PKI could not be created or loaded.
    #[error("PKI: {0}")]
    Pki(#[from] pki::PkiError),
    /// TLS setup failed.
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
    /// Authentication setup failed.
    #[error("authentication: {0}")]
    Auth(#[from] auth::AuthError),
    /// The listen address could not be bound (e.g. the port is in use).
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The admin kubeconfig could not be written.
    #[error("cannot write {path}: {message}")]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// The cause.
        message: String,
    },
}

/// A running server.
pub struct RunningServer {
    /// The bound address.
    pub addr: SocketAddr,
    /// `https://ADDR`.
    pub url: String,
    /// The admin kubeconfig written before the first connection was accepted.
    pub admin_kubeconfig: PathBuf,
    /// The shared state (tests and the daemon read the store through it).
    pub state: Arc<ApiState>,
    /// The serving task; finishes after the shutdown token is cancelled.
    pub task: JoinHandle<std::io::Result<()>>,
}

/// Opens the configured store.
pub async fn open_store(
    data_dir: &Path,
    backend: &StorageBackend,
) -> Result<Arc<dyn Store>, StartError> {
    Ok(match backend {
        StorageBackend::Sqlite => Arc::new(SqliteStore::open(data_dir.join("arc.db"))?),
        StorageBackend::Etcd { endpoints } => Arc::new(EtcdStore::connect(endpoints).await?),
    })
}

/// Starts the server; returns once it accepts connections and the admin kubeconfig exists.
pub async fn start(
    config: ServerConfig,
    shutdown: CancellationToken,
) -> Result<RunningServer, StartError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let store = open_store(&config.data_dir, &config.storage).await?;
    let mut served = kinds::arc_kinds();
    if config.options.embedded {
        served.extend(kinds::core_kinds());
        served.extend(kinds::events_k8s_io_kinds());
    }
    served.extend(config.extra_kinds.iter().cloned());
    let state = ApiState::new(store, served, config.options.clone(), shutdown.clone());
    if config.options.embedded {
        background::bootstrap_namespaces(&state).await?;
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: config.listen,
        source,
    })?;
    let mut hostnames = config.hostnames.clone();
    if !addr.ip().is_unspecified() {
        hostnames.push(addr.ip().to_string());
    }
    let pki = pki::Pki::load_or_create(&config.data_dir.join("pki"), &hostnames)?;
    let tls_config = tls::server_config(&pki)?;
    let authn = Arc::new(auth::Auth::from_pki(&pki)?);
    let url = kubeconfig::server_url(addr);
    let admin_kubeconfig = config.data_dir.join("admin.kubeconfig");
    kubeconfig::write_admin(&admin_kubeconfig, &pki, &url).map_err(|e| StartError::Kubeconfig {
        path: admin_kubeconfig.clone(),
        message: e.to_string(),
    })?;
    let router = super::app(state.clone()).layer(auth::layer(authn));
    background::spawn(&state);
    let task = tokio::spawn(tls::serve(listener, tls_config, router, shutdown));
    Ok(RunningServer {
        addr,
        url,
        admin_kubeconfig,
        state,
        task,
    })
}
