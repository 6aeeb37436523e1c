//! ARC controllers: Order and ArtifactWorkflow reconcilers and their executors.
//!
//! - [`order`]: turns each artifact of an Order into an ArtifactWorkflow (resolving Endpoints,
//!   artifact types, Secrets, parameters and idempotent names) and reports progress in the
//!   Order's status;
//! - [`workflow`]: hands ArtifactWorkflows to an [`executor::Executor`] and reports their phase;
//! - [`executor::local`]: worker child processes on this host;
//! - [`executor::argo`]: Argo Workflows in a cluster;
//! - [`artifact_types`]: the ClusterArtifactTypes ARC ships.
//!
//! [`run`] runs everything against an API server until cancelled; it is all `arcd run` and
//! `arcd controllers` need.

use std::sync::Arc;

use futures::{Future, FutureExt};
use kube::Client;
use tokio_util::sync::CancellationToken;

pub mod artifact_types;
pub mod events;
pub mod executor;
pub mod order;
pub mod patch;
pub mod request_counter;
pub mod settings;
pub mod stats;
pub mod watch;
pub mod workflow;

pub use artifact_types::{default_cluster_artifact_types, ensure_default_artifact_types};
pub use settings::{ArgoExecutorSettings, ExecutorSettings, LocalExecutorSettings, Settings};

use executor::Executor;
use executor::argo::ArgoExecutor;
use executor::local::LocalExecutor;

/// What can stop the controllers from starting.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The local executor's worker program does not exist.
    #[error("worker program {0} not found")]
    WorkerMissing(std::path::PathBuf),
    /// The local executor's runtime directory cannot be created.
    #[error("cannot create the runtime directory {path}: {source}")]
    RuntimeDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// A future that resolves when `cancel` fires; `Sync`, as kube-runtime's graceful shutdown
/// wants.
fn on_cancel(cancel: &CancellationToken) -> impl Future<Output = ()> + Send + Sync + 'static {
    let (tx, rx) = futures::channel::oneshot::channel::<()>();
    let cancel = cancel.clone();
    tokio::spawn(async move {
        cancel.cancelled().await;
        let _ = tx.send(());
    });
    rx.map(|_| ())
}

/// Builds the executor `settings` asks for.
pub fn build_executor(
    settings: &ExecutorSettings,
    client: Client,
) -> Result<Arc<dyn Executor>, RunError> {
    Ok(match settings {
        ExecutorSettings::Local(local) => {
            if !local.worker_exe.is_file() {
                return Err(RunError::WorkerMissing(local.worker_exe.clone()));
            }
            if let Some(dir) = &local.runtime_dir {
                std::fs::create_dir_all(dir).map_err(|source| RunError::RuntimeDir {
                    path: dir.clone(),
                    source,
                })?;
            }
            Arc::new(LocalExecutor::new(local.clone(), client))
        }
        ExecutorSettings::Argo(argo) => Arc::new(ArgoExecutor::new(argo.clone(), client)),
    })
}

/// Runs the Order and ArtifactWorkflow controllers with the executor of `settings` against the
/// API server behind `client`, until `cancel` fires. Returns once both controllers have
/// stopped and every worker process the local executor started has ended (work still running
/// is recorded as such and started again by the next run).
pub async fn run(
    client: Client,
    settings: Settings,
    cancel: CancellationToken,
) -> Result<(), RunError> {
    let executor = build_executor(&settings.executor, client.clone())?;
    run_with_executor(client, settings, executor, cancel).await;
    Ok(())
}

/// [`run`] with a ready-made executor (tests use it to stub what cannot run here).
pub async fn run_with_executor(
    client: Client,
    settings: Settings,
    executor: Arc<dyn Executor>,
    cancel: CancellationToken,
) {
    let orders = order::controller::order_controller(client.clone(), &settings, on_cancel(&cancel));
    let workflows = workflow::workflow_controller(
        client,
        executor.clone(),
        settings.workflow_concurrency,
        (
            &settings.reporting_controller,
            settings.reporting_instance.clone(),
        ),
        on_cancel(&cancel),
    );
    tracing::info!("controllers started");
    futures::join!(orders, workflows);
    executor.shutdown().await;
    tracing::info!("controllers stopped");
}
