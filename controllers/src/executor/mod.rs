//! Executors run ArtifactWorkflows: the local executor as worker child processes on this host,
//! the Argo executor as Argo Workflows in a cluster. The ArtifactWorkflow controller drives
//! them through [`Executor`] and writes what they report into the workflow's status.

use std::time::Duration;

use apiserver::types::{ArtifactWorkflow, WorkflowPhase};
use futures::stream::BoxStream;
use jiff::Timestamp;
use kube::runtime::reflector::ObjectRef;

pub mod argo;
pub mod local;

/// What an executor knows about one ArtifactWorkflow.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// The phase.
    pub phase: WorkflowPhase,
    /// A human-readable message; on failure the tail of the worker's log.
    pub message: String,
    /// When the work started.
    pub start_time: Option<Timestamp>,
    /// When the work finished.
    pub completion_time: Option<Timestamp>,
    /// Bytes the worker moved, as far as it reported them.
    pub bytes_transferred: Option<i64>,
    /// Digests the worker pushed.
    pub pushed_digests: Vec<String>,
    /// The executor's own record, e.g. the Argo Workflow's name.
    pub executor_ref: Option<String>,
    /// Ask again after this long even if nothing else wakes the workflow (e.g. while a Secret
    /// it needs is missing).
    pub retry_after: Option<Duration>,
}

/// What can go wrong in an executor; the controller retries with backoff.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// A request to the API server failed.
    #[error("{what}: {source}")]
    Api {
        /// What was attempted.
        what: String,
        /// Cause.
        source: kube::Error,
    },
    /// A local file system operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was attempted.
        what: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The workflow lacks something the executor needs (uid, namespace).
    #[error("ArtifactWorkflow {0}")]
    Invalid(String),
}

/// Runs ArtifactWorkflows.
#[async_trait::async_trait]
pub trait Executor: Send + Sync + 'static {
    /// Starts `workflow` unless it already runs here, and reports its state. Called for every
    /// workflow that is not completed; must be idempotent. A workflow recorded as running that
    /// the executor does not know (e.g. after a restart) is started again.
    async fn sync(&self, workflow: &ArtifactWorkflow) -> Result<Report, ExecutorError>;

    /// Forgets what the executor keeps in memory about a completed workflow.
    async fn release(&self, workflow: &ArtifactWorkflow);

    /// Stops `workflow` if it runs and removes everything the executor made for it.
    async fn cleanup(&self, workflow: &ArtifactWorkflow) -> Result<(), ExecutorError>;

    /// The stream of workflows whose state changed inside the executor; the controller
    /// reconciles each. Taken once.
    fn take_triggers(&self) -> Option<BoxStream<'static, ObjectRef<ArtifactWorkflow>>>;

    /// Stops everything running without reporting it; work left running is started again by
    /// the next executor. Resolves once every process or task it started has ended.
    async fn shutdown(&self);
}

/// A timestamp at whole seconds, as Kubernetes serialises them, so a status read back compares
/// equal to the one written.
pub fn whole_seconds(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}
