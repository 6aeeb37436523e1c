//! `arcd controllers`: the Order and ArtifactWorkflow controllers against the API server of a
//! kubeconfig (cluster mode), until SIGTERM or SIGINT. Workflows run as Argo Workflows by
//! default, or as local worker processes with `--executor local`.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::daemon::client_from_kubeconfig;

/// How long running work may take to stop after SIGTERM.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(30);

/// Which executor runs ArtifactWorkflows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExecutorKind {
    /// One Argo Workflow per ArtifactWorkflow (the shipped ClusterWorkflowTemplates).
    Argo,
    /// One `arcd worker` child process per ArtifactWorkflow on this host.
    Local,
}

/// Arguments of `arcd controllers`.
#[derive(Debug, clap::Args)]
pub struct ControllersArgs {
    /// Kubeconfig of the API server serving the ARC API (directly or aggregated).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: PathBuf,
    /// Which executor runs ArtifactWorkflows.
    #[arg(long, value_enum, default_value_t = ExecutorKind::Argo)]
    pub executor: ExecutorKind,
    /// Kubeconfig of the cluster running Argo, when it is not the one of `--kubeconfig`.
    #[arg(long, value_name = "FILE")]
    pub argo_kubeconfig: Option<PathBuf>,
    /// Kueue LocalQueue for the Argo Workflows (label `kueue.x-k8s.io/queue-name`).
    #[arg(long, value_name = "NAME")]
    pub queue_name: Option<String>,
    /// Service account the Argo Workflows' pods run as.
    #[arg(long, value_name = "NAME")]
    pub service_account_name: Option<String>,
    /// Local executor: worker processes at once.
    #[arg(long, value_name = "N", default_value = "4")]
    pub max_parallel: NonZeroUsize,
    /// Local executor: worker processes at once per namespace (default: --max-parallel).
    #[arg(long, value_name = "N")]
    pub max_parallel_per_namespace: Option<NonZeroUsize>,
    /// Local executor: directory for the workers' private credential directories.
    #[arg(long, value_name = "DIR")]
    pub runtime_dir: Option<PathBuf>,
    /// Do not create the shipped ClusterArtifactTypes (oci, helm, file) when absent.
    #[arg(long)]
    pub no_default_artifact_types: bool,
}

/// Runs the controllers until SIGTERM/SIGINT.
pub fn run(args: ControllersArgs) -> anyhow::Result<ExitCode> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let client = client_from_kubeconfig(&args.kubeconfig).await?;
        let executor = match args.executor {
            ExecutorKind::Argo => {
                controllers::ExecutorSettings::Argo(controllers::ArgoExecutorSettings {
                    queue_name: args.queue_name.clone(),
                    service_account_name: args.service_account_name.clone(),
                    ..Default::default()
                })
            }
            ExecutorKind::Local => {
                let mut local = controllers::LocalExecutorSettings::new()
                    .context("cannot find the arcd executable")?;
                local.max_parallel = args.max_parallel.get();
                local.max_parallel_per_namespace = args
                    .max_parallel_per_namespace
                    .unwrap_or(args.max_parallel)
                    .get();
                local.runtime_dir = args.runtime_dir.clone();
                controllers::ExecutorSettings::Local(local)
            }
        };
        let executor_client = match &args.argo_kubeconfig {
            Some(path) if args.executor == ExecutorKind::Argo => {
                client_from_kubeconfig(path).await?
            }
            Some(_) => anyhow::bail!("--argo-kubeconfig needs --executor argo"),
            None => client.clone(),
        };
        if !args.no_default_artifact_types {
            let created = controllers::ensure_default_artifact_types(client.clone())
                .await
                .context("cannot create the shipped ClusterArtifactTypes")?;
            if !created.is_empty() {
                tracing::info!(?created, "created the shipped ClusterArtifactTypes");
            }
        }
        let settings = controllers::Settings::new(executor);
        let executor = controllers::build_executor(&settings.executor, executor_client)
            .context("cannot start the executor")?;
        let cancel = CancellationToken::new();
        let task = tokio::spawn(controllers::run_with_executor(
            client,
            settings,
            executor,
            cancel.clone(),
        ));
        crate::shutdown::terminated()
            .await
            .context("installing the signal handlers")?;
        tracing::info!("stopping");
        cancel.cancel();
        if tokio::time::timeout(SHUTDOWN_DEADLINE, task).await.is_err() {
            tracing::warn!(
                "controllers did not stop within {}s",
                SHUTDOWN_DEADLINE.as_secs()
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}
