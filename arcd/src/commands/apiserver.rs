//! `arcd apiserver`: the API server on its own — embedded storage (SQLite) or etcd — serving
//! until SIGTERM or SIGINT. The admin kubeconfig is written before connections are accepted.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use apiserver::server::ServerOptions;
use apiserver::server::embedded::{ServerConfig, StorageBackend, start};
use tokio_util::sync::CancellationToken;

/// Which storage backend to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StorageKind {
    /// SQLite file in the data directory (embedded default).
    Sqlite,
    /// A dedicated etcd cluster (`--etcd-endpoints`).
    Etcd,
}

/// Arguments of `arcd apiserver`.
#[derive(Debug, clap::Args)]
pub struct ApiserverArgs {
    /// Directory for the store, the PKI and `admin.kubeconfig`.
    #[arg(long, default_value = "/var/lib/arc")]
    pub data_dir: PathBuf,
    /// Address to serve HTTPS on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub listen: SocketAddr,
    /// Storage backend.
    #[arg(long, value_enum, default_value_t = StorageKind::Sqlite)]
    pub storage: StorageKind,
    /// etcd client URLs, comma-separated (with `--storage etcd`).
    #[arg(long, value_delimiter = ',')]
    pub etcd_endpoints: Vec<String>,
    /// Extra host names or IP addresses for the serving certificate, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub tls_san: Vec<String>,
    /// Cluster mode: serve only ARC kinds, no core Namespaces/Secrets and no garbage collection
    /// (a real kube-apiserver and kube-controller-manager provide them).
    #[arg(long)]
    pub no_embedded_core: bool,
}

/// Runs the API server until SIGTERM/SIGINT.
pub fn run(args: ApiserverArgs) -> anyhow::Result<ExitCode> {
    let storage = match args.storage {
        StorageKind::Sqlite => StorageBackend::Sqlite,
        StorageKind::Etcd if args.etcd_endpoints.is_empty() => {
            anyhow::bail!("--storage etcd needs --etcd-endpoints URL[,URL...]")
        }
        StorageKind::Etcd => StorageBackend::Etcd {
            endpoints: args.etcd_endpoints.clone(),
        },
    };
    let config = ServerConfig {
        data_dir: args.data_dir.clone(),
        listen: args.listen,
        storage,
        hostnames: args.tls_san.clone(),
        options: ServerOptions {
            embedded: !args.no_embedded_core,
            ..ServerOptions::default()
        },
        extra_kinds: Vec::new(),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let server = start(config, shutdown.clone()).await?;
        tracing::info!(url = %server.url, kubeconfig = %server.admin_kubeconfig.display(), "serving the ARC API");
        crate::shutdown::terminated().await.context("installing the signal handlers")?;
        tracing::info!("stopping");
        shutdown.cancel();
        server.task.await.context("server task")?.context("serving")?;
        Ok(ExitCode::SUCCESS)
    })
}
