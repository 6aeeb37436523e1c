//! The Argo executor: one `argoproj.io/v1alpha1` Workflow per ArtifactWorkflow, owned by it
//! (so it goes when the ArtifactWorkflow goes), watched through a cache that also wakes the
//! ArtifactWorkflow when Argo updates the Workflow. On failure the logs of the failed pods are
//! read into the message, as the original ARC does.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use apiserver::types::{ArtifactWorkflow, WorkflowPhase};
use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, DynamicObject, LogParams, PostParams};
use kube::discovery::ApiResource;
use kube::runtime::reflector::{ObjectRef, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};

use super::{Executor, ExecutorError, Report, whole_seconds};
use crate::settings::{ArgoExecutorSettings, DEFAULT_POD_LOG_TAIL_LINES};

pub mod workflow;

use workflow::{MANAGED_BY_LABEL, MANAGED_BY_VALUE, build_workflow, read_state, workflow_resource};

/// How soon to look again while an old Workflow of the same name is still being removed.
const REPLACED_RETRY: Duration = Duration::from_secs(5);
/// Longest message written from pod logs.
const MESSAGE_MAX_BYTES: usize = 16 * 1024;

/// Reads the tail of a pod's log. Behind a trait because tests have no kubelet.
#[async_trait::async_trait]
pub trait PodLogs: Send + Sync + 'static {
    /// The last `lines` lines of container `main` of `pod` in `namespace`.
    async fn tail(&self, namespace: &str, pod: &str, lines: i64) -> Result<String, kube::Error>;
}

/// Reads pod logs through the API server (`pods/log`).
pub struct ApiPodLogs {
    client: Client,
}

impl ApiPodLogs {
    /// Pod logs through `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait::async_trait]
impl PodLogs for ApiPodLogs {
    async fn tail(&self, namespace: &str, pod: &str, lines: i64) -> Result<String, kube::Error> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let params = LogParams {
            container: Some("main".into()),
            tail_lines: Some(lines),
            ..LogParams::default()
        };
        pods.logs(pod, &params).await
    }
}

/// Runs ArtifactWorkflows as Argo Workflows.
pub struct ArgoExecutor {
    client: Client,
    settings: ArgoExecutorSettings,
    resource: ApiResource,
    store: Store<DynamicObject>,
    triggers: Mutex<Option<BoxStream<'static, ObjectRef<ArtifactWorkflow>>>>,
    logs: Arc<dyn PodLogs>,
}

impl ArgoExecutor {
    /// An executor reading pod logs through the API server.
    pub fn new(settings: ArgoExecutorSettings, client: Client) -> Self {
        let logs = Arc::new(ApiPodLogs::new(client.clone()));
        Self::with_pod_logs(settings, client, logs)
    }

    /// An executor reading pod logs through `logs`.
    pub fn with_pod_logs(
        settings: ArgoExecutorSettings,
        client: Client,
        logs: Arc<dyn PodLogs>,
    ) -> Self {
        let resource = workflow_resource();
        let writer: Writer<DynamicObject> = Writer::new(resource.clone());
        let store = writer.as_reader();
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        let config =
            watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"));
        let triggers = watcher(api, config)
            .default_backoff()
            .reflect(writer)
            .touched_objects()
            .filter_map(|wf| async move {
                let wf = match wf {
                    Ok(wf) => wf,
                    Err(error) => {
                        tracing::debug!(%error, "watching Argo Workflows");
                        return None;
                    }
                };
                let ns = wf.namespace().unwrap_or_default();
                wf.owner_references()
                    .iter()
                    .find(|r| {
                        r.kind == "ArtifactWorkflow"
                            && r.api_version == apiserver::types::API_VERSION
                    })
                    .map(|r| ObjectRef::new(&r.name).within(&ns))
            })
            .boxed();
        Self {
            client,
            settings,
            resource,
            store,
            triggers: Mutex::new(Some(triggers)),
            logs,
        }
    }

    fn api(&self, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), namespace, &self.resource)
    }

    async fn failure_message(&self, namespace: &str, state: &workflow::ArgoState) -> String {
        let lines = if self.settings.pod_log_tail_lines > 0 {
            self.settings.pod_log_tail_lines
        } else {
            DEFAULT_POD_LOG_TAIL_LINES
        };
        let mut message = state.message.clone();
        for step in &state.failed_steps {
            if !message.is_empty() {
                message.push('\n');
            }
            message.push_str(&format!("Step '{}' failed: {}", step.step, step.message));
            match self.logs.tail(namespace, &step.pod, lines).await {
                Ok(log) if !log.trim().is_empty() => {
                    message.push_str(&format!("\nLogs of pod {}:\n{}", step.pod, log.trim_end()));
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::debug!(pod = %step.pod, %error, "cannot read pod log");
                    message.push_str(&format!("\n(log of pod {} unavailable: {error})", step.pod));
                }
            }
        }
        if message.len() > MESSAGE_MAX_BYTES {
            let mut start = message.len() - MESSAGE_MAX_BYTES;
            while !message.is_char_boundary(start) {
                start += 1;
            }
            message = format!("…{}", &message[start..]);
        }
        message
    }
}

fn owned_by(wf: &DynamicObject, uid: &str) -> bool {
    wf.owner_references().iter().any(|r| r.uid == uid)
}

#[async_trait::async_trait]
impl Executor for ArgoExecutor {
    async fn sync(&self, aw: &ArtifactWorkflow) -> Result<Report, ExecutorError> {
        let name = aw.name_any();
        let ns = aw
            .namespace()
            .ok_or_else(|| ExecutorError::Invalid(format!("{name} has no namespace")))?;
        let uid = aw
            .uid()
            .ok_or_else(|| ExecutorError::Invalid(format!("{name} has no uid")))?;
        let cached = self
            .store
            .get(&ObjectRef::new_with(&name, self.resource.clone()).within(&ns));
        let wf: DynamicObject = match cached {
            Some(wf) => (*wf).clone(),
            None => {
                let body: DynamicObject =
                    serde_json::from_value(build_workflow(aw, &self.settings)).map_err(|e| {
                        ExecutorError::Invalid(format!("{name}: cannot build its Workflow: {e}"))
                    })?;
                match self.api(&ns).create(&PostParams::default(), &body).await {
                    Ok(created) => created,
                    Err(kube::Error::Api(e)) if e.code == 409 => self
                        .api(&ns)
                        .get(&name)
                        .await
                        .map_err(|source| ExecutorError::Api {
                            what: format!("cannot read Workflow {ns}/{name}"),
                            source,
                        })?,
                    Err(source) => {
                        return Err(ExecutorError::Api {
                            what: format!("cannot create Workflow {ns}/{name}"),
                            source,
                        });
                    }
                }
            }
        };
        let executor_ref = Some(format!("argoproj.io/v1alpha1/Workflow/{ns}/{name}"));
        if !owned_by(&wf, &uid) {
            return Ok(Report {
                phase: WorkflowPhase::Pending,
                message: format!(
                    "waiting for the Workflow {ns}/{name} of an earlier ArtifactWorkflow to be removed"
                ),
                executor_ref,
                retry_after: Some(REPLACED_RETRY),
                ..Report::default()
            });
        }
        let value = serde_json::to_value(&wf).unwrap_or_default();
        let state = read_state(&value);
        let message = match state.phase {
            WorkflowPhase::Failed | WorkflowPhase::Error => self.failure_message(&ns, &state).await,
            _ => state.message.clone(),
        };
        Ok(Report {
            phase: state.phase,
            message,
            start_time: state.started_at.map(whole_seconds),
            completion_time: if state.phase.is_completed() {
                state
                    .finished_at
                    .or_else(|| Some(jiff::Timestamp::now()))
                    .map(whole_seconds)
            } else {
                None
            },
            bytes_transferred: None,
            pushed_digests: Vec::new(),
            executor_ref,
            retry_after: None,
        })
    }

    async fn release(&self, _workflow: &ArtifactWorkflow) {}

    async fn cleanup(&self, aw: &ArtifactWorkflow) -> Result<(), ExecutorError> {
        let name = aw.name_any();
        let Some(ns) = aw.namespace() else {
            return Ok(());
        };
        // The Workflow is owned by the ArtifactWorkflow and would be collected anyway; deleting
        // it now stops its pods without waiting for the garbage collector.
        match self
            .api(&ns)
            .delete(&name, &DeleteParams::background())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(source) => Err(ExecutorError::Api {
                what: format!("cannot delete Workflow {ns}/{name}"),
                source,
            }),
        }
    }

    fn take_triggers(&self) -> Option<BoxStream<'static, ObjectRef<ArtifactWorkflow>>> {
        self.triggers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    async fn shutdown(&self) {}
}
