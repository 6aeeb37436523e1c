//! Typed settings of the controllers and their executors, with documented defaults. The
//! daemon's configuration file is parsed and validated in `arcd`; this crate takes the result.

use std::path::PathBuf;
use std::time::Duration;

/// Default number of worker processes running at once (local executor).
pub const DEFAULT_MAX_PARALLEL_WORKERS: usize = 4;
/// Default number of worker processes running at once per namespace (local executor).
pub const DEFAULT_MAX_PARALLEL_WORKERS_PER_NAMESPACE: usize = 4;
/// Default bytes of a failed worker's stderr kept for `status.message`.
pub const DEFAULT_LOG_TAIL_BYTES: usize = 4096;
/// Default lines of a failed Argo pod's log copied into `status.message`.
pub const DEFAULT_POD_LOG_TAIL_LINES: i64 = 30;
/// Default delay that batches bursts of changes to one Order into one reconcile.
pub const DEFAULT_ORDER_DEBOUNCE: Duration = Duration::from_millis(200);

/// Settings of [`crate::run`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// Which executor runs ArtifactWorkflows.
    pub executor: ExecutorSettings,
    /// Orders reconciled at once (0: unbounded). Default 16.
    pub order_concurrency: u16,
    /// ArtifactWorkflows reconciled at once (0: unbounded). Default 16. Worker processes are
    /// limited separately by the local executor.
    pub workflow_concurrency: u16,
    /// Batches bursts of changes to one Order (e.g. several workflows finishing together) into
    /// one reconcile. Default [`DEFAULT_ORDER_DEBOUNCE`].
    pub order_debounce: Duration,
    /// The name Events are reported under (`reportingController`). Default `arcd`.
    pub reporting_controller: String,
    /// The instance Events are reported from (`reportingInstance`), e.g. the host name.
    pub reporting_instance: Option<String>,
}

impl Settings {
    /// Settings with every default and the given executor.
    pub fn new(executor: ExecutorSettings) -> Self {
        Self {
            executor,
            order_concurrency: 16,
            workflow_concurrency: 16,
            order_debounce: DEFAULT_ORDER_DEBOUNCE,
            reporting_controller: "arcd".into(),
            reporting_instance: None,
        }
    }
}

/// The executor and its settings.
#[derive(Debug, Clone)]
pub enum ExecutorSettings {
    /// One worker child process per ArtifactWorkflow on this host.
    Local(LocalExecutorSettings),
    /// One Argo Workflow per ArtifactWorkflow in the cluster.
    Argo(ArgoExecutorSettings),
}

/// Settings of the local executor.
#[derive(Debug, Clone)]
pub struct LocalExecutorSettings {
    /// The program run as `<worker_exe> worker <template> --param … --secrets-src DIR
    /// --secrets-dst DIR`. Default: this process's own executable (`arcd`).
    pub worker_exe: PathBuf,
    /// Where the private per-run secret directories are created. `None`: the system's
    /// temporary directory. When set, the directory belongs to the executor: leftovers of an
    /// interrupted run are removed at start.
    pub runtime_dir: Option<PathBuf>,
    /// Worker processes running at once. Default [`DEFAULT_MAX_PARALLEL_WORKERS`].
    pub max_parallel: usize,
    /// Worker processes running at once in one namespace. Default
    /// [`DEFAULT_MAX_PARALLEL_WORKERS_PER_NAMESPACE`].
    pub max_parallel_per_namespace: usize,
    /// How long one worker may run before it is killed and the workflow fails. Default: no limit.
    pub timeout: Option<Duration>,
    /// Bytes of a failed worker's stderr kept for `status.message`. Default [`DEFAULT_LOG_TAIL_BYTES`].
    pub log_tail_bytes: usize,
    /// Extra environment for every worker, e.g. the scanner (`ARC_SCANNER_COMMAND`). Never
    /// credentials: those go into the private secret directories.
    pub worker_env: Vec<(String, String)>,
}

impl LocalExecutorSettings {
    /// Defaults, with the current executable as the worker.
    pub fn new() -> std::io::Result<Self> {
        Ok(Self::with_worker(std::env::current_exe()?))
    }

    /// Defaults, with `worker_exe` as the worker.
    pub fn with_worker(worker_exe: impl Into<PathBuf>) -> Self {
        Self {
            worker_exe: worker_exe.into(),
            runtime_dir: None,
            max_parallel: DEFAULT_MAX_PARALLEL_WORKERS,
            max_parallel_per_namespace: DEFAULT_MAX_PARALLEL_WORKERS_PER_NAMESPACE,
            timeout: None,
            log_tail_bytes: DEFAULT_LOG_TAIL_BYTES,
            worker_env: Vec::new(),
        }
    }
}

/// Settings of the Argo executor.
#[derive(Debug, Clone, Default)]
pub struct ArgoExecutorSettings {
    /// The Kueue LocalQueue Workflows are submitted to (label `kueue.x-k8s.io/queue-name`).
    pub queue_name: Option<String>,
    /// The service account the Workflows' pods run as. Default: the namespace's default.
    pub service_account_name: Option<String>,
    /// Lines of a failed pod's log copied into `status.message`. Default
    /// [`DEFAULT_POD_LOG_TAIL_LINES`] (0 also means the default).
    pub pod_log_tail_lines: i64,
}
