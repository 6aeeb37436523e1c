//! The ArtifactWorkflow controller: hands every workflow that is not completed to the
//! [`Executor`], writes what it reports into the status (phase `Pending → Running →
//! Succeeded|Failed|Error`, start and completion time, message, bytes and digests) and
//! publishes an Event for each phase change. Its finalizer stops the work and removes the
//! executor's state before a workflow disappears.

use std::sync::Arc;
use std::time::Duration;

use apiserver::types::{ArtifactWorkflow, ArtifactWorkflowStatus, WorkflowPhase};
use futures::{Future, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Config, Controller};
use kube::runtime::finalizer::{self, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};

use crate::events::EventPublisher;
use crate::executor::{Executor, ExecutorError, Report};
use crate::order::plan::{PlannedEvent, Severity};
use crate::patch::status_patch;
use crate::watch::Backoff;

/// The finalizer on every ArtifactWorkflow (set by the Order controller when it creates one).
pub const WORKFLOW_FINALIZER: &str = "arc.opendefense.cloud/executor-cleanup";
/// How soon to look again after a 409 Conflict on the status.
const CONFLICT_RETRY: Duration = Duration::from_millis(200);
/// Look at running workflows at least this often, in case a wake-up was lost.
const RESYNC: Duration = Duration::from_secs(300);

/// What can go wrong while reconciling an ArtifactWorkflow.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// The executor failed.
    #[error("executor: {0}")]
    Executor(#[from] ExecutorError),
    /// Writing the status failed.
    #[error("cannot write the status of ArtifactWorkflow {namespace}/{name}: {source}")]
    Status {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// Cause.
        source: kube::Error,
    },
    /// The workflow has no namespace.
    #[error("ArtifactWorkflow {0} has no namespace")]
    NoNamespace(String),
    /// The finalizer could not be added or removed.
    #[error("ArtifactWorkflow finalizer: {0}")]
    Finalizer(#[source] Box<finalizer::Error<WorkflowError>>),
}

struct WorkflowContext {
    client: Client,
    executor: Arc<dyn Executor>,
    events: EventPublisher,
    errors: Backoff<ObjectRef<ArtifactWorkflow>>,
}

/// The status after taking `report` into account.
pub fn merge_report(old: &ArtifactWorkflowStatus, report: &Report) -> ArtifactWorkflowStatus {
    let mut status = old.clone();
    status.phase = report.phase;
    status.message = report.message.clone();
    if let Some(t) = report.start_time {
        status.start_time = Some(Time(t));
    }
    status.completion_time = report.completion_time.map(Time);
    if report.bytes_transferred.is_some() {
        status.bytes_transferred = report.bytes_transferred;
    }
    if !report.pushed_digests.is_empty() {
        status.pushed_digests = report.pushed_digests.clone();
    }
    if report.executor_ref.is_some() {
        status.executor_ref = report.executor_ref.clone();
    }
    status
}

fn phase_event(status: &ArtifactWorkflowStatus) -> Option<PlannedEvent> {
    let first_line = status.message.lines().next().unwrap_or_default();
    let (severity, reason, note) = match status.phase {
        WorkflowPhase::Unknown => return None,
        WorkflowPhase::Pending => (
            Severity::Normal,
            "Pending",
            format!("Waiting: {first_line}"),
        ),
        WorkflowPhase::Running => (
            Severity::Normal,
            "Started",
            "Moving the artifact".to_string(),
        ),
        WorkflowPhase::Succeeded => (
            Severity::Normal,
            "Succeeded",
            "The artifact was moved".to_string(),
        ),
        WorkflowPhase::Failed => (Severity::Warning, "Failed", status.message.clone()),
        WorkflowPhase::Error => (Severity::Warning, "Error", status.message.clone()),
    };
    let mut note = note;
    if note.len() > 1000 {
        let mut end = 1000;
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
    }
    Some(PlannedEvent {
        severity,
        reason,
        note,
    })
}

async fn apply(aw: &ArtifactWorkflow, ctx: &WorkflowContext) -> Result<Action, WorkflowError> {
    let name = aw.name_any();
    let ns = aw
        .namespace()
        .ok_or_else(|| WorkflowError::NoNamespace(name.clone()))?;
    let old = aw.status.clone().unwrap_or_default();
    if old.phase.is_completed() {
        ctx.executor.release(aw).await;
        return Ok(Action::await_change());
    }
    let report = ctx.executor.sync(aw).await?;
    let new = merge_report(&old, &report);
    let old_json = serde_json::to_value(&aw.status).unwrap_or_default();
    let new_json = serde_json::to_value(&new).unwrap_or_default();
    if let Some(patch) = status_patch(
        aw.resource_version().as_deref(),
        &old_json,
        &new_json,
        false,
    ) {
        let api: Api<ArtifactWorkflow> = Api::namespaced(ctx.client.clone(), &ns);
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {
                return Ok(Action::requeue(CONFLICT_RETRY));
            }
            Err(source) => {
                return Err(WorkflowError::Status {
                    namespace: ns,
                    name,
                    source,
                });
            }
        }
        let changed = new.phase != old.phase
            || (new.phase == WorkflowPhase::Pending && new.message != old.message);
        if changed && let Some(event) = phase_event(&new) {
            ctx.events
                .publish(&aw.object_ref(&()), &event, "Execute")
                .await;
        }
    }
    ctx.errors.reset(&ObjectRef::from_obj(aw));
    if new.phase.is_completed() {
        return Ok(Action::await_change());
    }
    Ok(Action::requeue(
        report.retry_after.unwrap_or(RESYNC).min(RESYNC),
    ))
}

async fn reconcile(
    aw: Arc<ArtifactWorkflow>,
    ctx: Arc<WorkflowContext>,
) -> Result<Action, WorkflowError> {
    crate::stats::workflow_reconciled();
    let name = aw.name_any();
    let ns = aw
        .namespace()
        .ok_or_else(|| WorkflowError::NoNamespace(name.clone()))?;
    let api: Api<ArtifactWorkflow> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, WORKFLOW_FINALIZER, aw, |event| async {
        match event {
            finalizer::Event::Apply(aw) => apply(&aw, &ctx).await,
            finalizer::Event::Cleanup(aw) => {
                ctx.executor.cleanup(&aw).await?;
                Ok(Action::await_change())
            }
        }
    })
    .await
    .map_err(|e| WorkflowError::Finalizer(Box::new(e)))
}

fn error_policy(
    aw: Arc<ArtifactWorkflow>,
    error: &WorkflowError,
    ctx: Arc<WorkflowContext>,
) -> Action {
    crate::stats::workflow_failed();
    let oref = ObjectRef::from_obj(aw.as_ref());
    let delay = ctx.errors.next(oref.clone());
    tracing::warn!(workflow = %oref, %error, retry_in_ms = delay.as_millis() as u64, "reconcile failed");
    Action::requeue(delay)
}

/// Builds the ArtifactWorkflow controller around `executor`; the returned future runs it
/// until `shutdown` resolves.
pub fn workflow_controller(
    client: Client,
    executor: Arc<dyn Executor>,
    concurrency: u16,
    reporting: (&str, Option<String>),
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> impl Future<Output = ()> + Send {
    let ctx = Arc::new(WorkflowContext {
        client: client.clone(),
        executor: executor.clone(),
        events: EventPublisher::new(client.clone(), reporting.0, reporting.1),
        errors: Backoff::new(Duration::from_secs(1), Duration::from_secs(300)),
    });
    let mut controller = Controller::new(
        Api::<ArtifactWorkflow>::all(client),
        watcher::Config::default(),
    )
    .with_config(Config::default().concurrency(concurrency));
    if let Some(triggers) = executor.take_triggers() {
        controller = controller.reconcile_on(triggers);
    }
    controller
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "artifactworkflow controller");
            }
        })
}
