//! The local executor: each ArtifactWorkflow runs as one worker child process of this daemon
//! (`arcd worker …` by default), at most `max_parallel` at once and `max_parallel_per_namespace`
//! per namespace. Credentials are fetched when the run starts and handed over in a private
//! directory. Runs live in memory: after a restart, a workflow still recorded as running is
//! started again, which is safe because every push is idempotent by digest.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use apiserver::types::{ArtifactWorkflow, LocalObjectReference, WorkflowPhase};
use futures::StreamExt;
use futures::channel::mpsc;
use futures::stream::BoxStream;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Client, ResourceExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Executor, ExecutorError, Report, whole_seconds};
use crate::settings::LocalExecutorSettings;

pub mod process;
pub mod progress;
pub mod secrets;

use process::{WorkerRun, run_worker};
use progress::Progress;
use secrets::SecretData;

/// How soon to look again while a Secret a workflow needs is missing.
const SECRET_RETRY: Duration = Duration::from_secs(10);
/// How long `sync` waits for a just-started worker to finish before reporting it running.
const QUICK_FINISH_WAIT: Duration = Duration::from_millis(100);
/// How long a cleanup waits for a killed worker to be reaped.
const CLEANUP_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Default)]
struct JobState {
    phase: WorkflowPhase,
    message: String,
    start: Option<Timestamp>,
    end: Option<Timestamp>,
}

struct Job {
    state: Mutex<JobState>,
    progress: Arc<Mutex<Progress>>,
    cancel: CancellationToken,
    handle: Mutex<Option<JoinHandle<()>>>,
    finished: tokio::sync::watch::Sender<bool>,
}

impl Job {
    fn state(&self) -> MutexGuard<'_, JobState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn report(&self) -> Report {
        let state = self.state().clone();
        let progress = self
            .progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Report {
            phase: state.phase,
            message: state.message,
            start_time: state.start,
            completion_time: state.end,
            bytes_transferred: progress.bytes.and_then(|b| i64::try_from(b).ok()),
            pushed_digests: progress.pushed_digests,
            executor_ref: None,
            retry_after: None,
        }
    }
}

/// Runs ArtifactWorkflows as worker processes on this host.
pub struct LocalExecutor {
    settings: LocalExecutorSettings,
    runtime_dir: PathBuf,
    client: Client,
    jobs: Mutex<HashMap<String, Arc<Job>>>,
    global: Arc<Semaphore>,
    namespaces: Mutex<HashMap<String, Arc<Semaphore>>>,
    wake: mpsc::UnboundedSender<ObjectRef<ArtifactWorkflow>>,
    triggers: Mutex<Option<mpsc::UnboundedReceiver<ObjectRef<ArtifactWorkflow>>>>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

enum Fetched {
    Data(Option<SecretData>),
    Missing(String),
}

impl LocalExecutor {
    /// An executor with `settings`, reading Secrets through `client`. When a runtime
    /// directory is configured, secret directories left by an earlier run are removed.
    pub fn new(settings: LocalExecutorSettings, client: Client) -> Self {
        let runtime_dir = match &settings.runtime_dir {
            Some(dir) => {
                let removed = secrets::remove_leftovers(dir);
                if removed > 0 {
                    tracing::info!(dir = %dir.display(), removed, "removed credentials directories of interrupted runs");
                }
                dir.clone()
            }
            None => std::env::temp_dir(),
        };
        let (wake, triggers) = mpsc::unbounded();
        Self {
            global: Arc::new(Semaphore::new(settings.max_parallel.max(1))),
            settings,
            runtime_dir,
            client,
            jobs: Mutex::new(HashMap::new()),
            namespaces: Mutex::new(HashMap::new()),
            wake,
            triggers: Mutex::new(Some(triggers)),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        }
    }

    fn jobs(&self) -> MutexGuard<'_, HashMap<String, Arc<Job>>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn namespace_slots(&self, namespace: &str) -> Arc<Semaphore> {
        let mut map = self.namespaces.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(namespace.to_string())
            .or_insert_with(|| {
                Arc::new(Semaphore::new(
                    self.settings.max_parallel_per_namespace.max(1),
                ))
            })
            .clone()
    }

    /// Number of workflows this executor currently tracks (running, waiting or finished but
    /// not yet released).
    pub fn tracked(&self) -> usize {
        self.jobs().len()
    }

    async fn fetch(
        &self,
        namespace: &str,
        reference: Option<&LocalObjectReference>,
    ) -> Result<Fetched, ExecutorError> {
        let Some(name) = reference.filter(|r| r.is_set()).map(|r| r.name.clone()) else {
            return Ok(Fetched::Data(None));
        };
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let secret = api
            .get_opt(&name)
            .await
            .map_err(|source| ExecutorError::Api {
                what: format!("cannot read Secret {namespace}/{name}"),
                source,
            })?;
        let Some(secret) = secret else {
            return Ok(Fetched::Missing(name));
        };
        let mut data: SecretData = secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect();
        for (k, v) in secret.string_data.unwrap_or_default() {
            data.insert(k, v.into_bytes());
        }
        Ok(Fetched::Data(Some(data)))
    }

    fn wake_ref(workflow: &ArtifactWorkflow) -> ObjectRef<ArtifactWorkflow> {
        ObjectRef::new(&workflow.name_any()).within(&workflow.namespace().unwrap_or_default())
    }
}

fn take_permits(
    ns: &Arc<Semaphore>,
    global: &Arc<Semaphore>,
) -> Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)> {
    let n = ns.clone().try_acquire_owned().ok()?;
    let g = global.clone().try_acquire_owned().ok()?;
    Some((n, g))
}

#[async_trait::async_trait]
impl Executor for LocalExecutor {
    async fn sync(&self, workflow: &ArtifactWorkflow) -> Result<Report, ExecutorError> {
        let uid = workflow
            .uid()
            .ok_or_else(|| ExecutorError::Invalid(format!("{} has no uid", workflow.name_any())))?;
        if let Some(job) = self.jobs().get(&uid).cloned() {
            return Ok(job.report());
        }
        let namespace = workflow.namespace().ok_or_else(|| {
            ExecutorError::Invalid(format!("{} has no namespace", workflow.name_any()))
        })?;
        let mut secrets = Vec::new();
        for (side, reference) in [
            ("source", &workflow.spec.src_secret_ref),
            ("destination", &workflow.spec.dst_secret_ref),
        ] {
            match self.fetch(&namespace, reference.as_ref()).await? {
                Fetched::Data(data) => secrets.push(data),
                Fetched::Missing(name) => {
                    return Ok(Report {
                        phase: WorkflowPhase::Pending,
                        message: format!(
                            "waiting for Secret \"{name}\" with the {side} credentials"
                        ),
                        retry_after: Some(SECRET_RETRY),
                        ..Report::default()
                    });
                }
            }
        }
        let dst_secret = secrets.pop().flatten();
        let src_secret = secrets.pop().flatten();
        let previous = workflow
            .status
            .as_ref()
            .map(|s| s.phase)
            .unwrap_or_default();
        let restarted = previous.is_in_progress()
            && workflow
                .status
                .as_ref()
                .is_some_and(|s| s.start_time.is_some());

        let ns_slots = self.namespace_slots(&namespace);
        let permits = take_permits(&ns_slots, &self.global);
        let now = whole_seconds(Timestamp::now());
        let state = if permits.is_some() {
            JobState {
                phase: WorkflowPhase::Running,
                message: if restarted {
                    "started again after the executor restarted".into()
                } else {
                    String::new()
                },
                start: Some(now),
                end: None,
            }
        } else {
            JobState {
                phase: WorkflowPhase::Pending,
                message: "waiting for a free worker slot".into(),
                start: None,
                end: None,
            }
        };
        let job = Arc::new(Job {
            state: Mutex::new(state),
            progress: Arc::new(Mutex::new(Progress::default())),
            cancel: self.shutdown.child_token(),
            handle: Mutex::new(None),
            finished: tokio::sync::watch::Sender::new(false),
        });
        let run = WorkerRun {
            exe: self.settings.worker_exe.clone(),
            template: workflow.spec.workflow_template_ref.name.clone(),
            parameters: workflow.spec.parameters.clone(),
            src_secret,
            dst_secret,
            runtime_dir: self.runtime_dir.clone(),
            timeout: self.settings.timeout,
            log_tail_bytes: self.settings.log_tail_bytes,
            workflow: format!("{namespace}/{}", workflow.name_any()),
            env: self.settings.worker_env.clone(),
        };
        let task_job = job.clone();
        let global = self.global.clone();
        let wake = self.wake.clone();
        let wake_ref = Self::wake_ref(workflow);
        let handle = self.tasks.spawn(async move {
            let permits = match permits {
                Some(p) => p,
                None => {
                    let acquired = tokio::select! {
                        n = ns_slots.acquire_owned() => match n {
                            Ok(n) => tokio::select! {
                                g = global.acquire_owned() => g.ok().map(|g| (n, g)),
                                () = task_job.cancel.cancelled() => None,
                            },
                            Err(_) => None,
                        },
                        () = task_job.cancel.cancelled() => None,
                    };
                    let Some(p) = acquired else { return };
                    {
                        let mut s = task_job.state();
                        s.phase = WorkflowPhase::Running;
                        s.message.clear();
                        s.start = Some(whole_seconds(Timestamp::now()));
                    }
                    let _ = wake.unbounded_send(wake_ref.clone());
                    p
                }
            };
            let outcome = run_worker(run, task_job.progress.clone(), task_job.cancel.clone()).await;
            drop(permits);
            if let Some(outcome) = outcome {
                {
                    let mut s = task_job.state();
                    s.phase = outcome.phase;
                    s.message = outcome.message;
                    s.end = Some(whole_seconds(Timestamp::now()));
                }
                task_job.finished.send_replace(true);
                let _ = wake.unbounded_send(wake_ref);
            }
        });
        *job.handle.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        let started_now = job.state().phase == WorkflowPhase::Running;
        self.jobs().insert(uid, job.clone());
        if started_now {
            // A worker that is done at once is reported once, as finished, instead of a
            // `Running` write followed by the final one.
            let mut finished = job.finished.subscribe();
            let _ = tokio::time::timeout(QUICK_FINISH_WAIT, finished.wait_for(|done| *done)).await;
        }
        Ok(job.report())
    }

    async fn release(&self, workflow: &ArtifactWorkflow) {
        if let Some(uid) = workflow.uid() {
            self.jobs().remove(&uid);
        }
    }

    async fn cleanup(&self, workflow: &ArtifactWorkflow) -> Result<(), ExecutorError> {
        let Some(uid) = workflow.uid() else {
            return Ok(());
        };
        let job = self.jobs().remove(&uid);
        if let Some(job) = job {
            job.cancel.cancel();
            let handle = job.handle.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(handle) = handle
                && tokio::time::timeout(CLEANUP_WAIT, handle).await.is_err()
            {
                tracing::warn!(workflow = %workflow.name_any(), "worker did not stop within {}s", CLEANUP_WAIT.as_secs());
            }
        }
        Ok(())
    }

    fn take_triggers(&self) -> Option<BoxStream<'static, ObjectRef<ArtifactWorkflow>>> {
        self.triggers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .map(|rx| rx.boxed())
    }

    async fn shutdown(&self) {
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}
