//! The census: watches Orders and ArtifactWorkflows and derives from them what the daemon
//! reports — the `STATUS=` line ("12 orders, 3 running") and the metrics `arc_orders`,
//! `arc_artifactworkflows`, `arc_artifactworkflow_completions_total`,
//! `arc_artifactworkflow_duration_seconds` and `arc_bytes_transferred_total`.
//!
//! Completions are counted when the census sees a workflow move into a final phase, so a
//! restart does not count old completions again.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apiserver::types::{ArtifactWorkflow, Order, WorkflowPhase};
use futures::StreamExt;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use tokio_util::sync::CancellationToken;

use crate::metrics::{Labels, Metrics, label};

/// How often changed counts are pushed into the gauges.
pub const REFRESH_MILLIS: u64 = 1000;

/// The summarized phase of an Order, from its `Ready` condition and workflow phases.
pub fn order_phase(order: &Order) -> &'static str {
    let Some(status) = &order.status else {
        return "Pending";
    };
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
    let current = ready.is_some_and(|c| {
        c.observed_generation.is_none() || c.observed_generation == order.metadata.generation
    });
    match ready.map(|c| c.reason.as_str()) {
        Some("Succeeded") if current => "Succeeded",
        Some("Failed") if current => "Failed",
        Some("InvalidSpec") if current => "Invalid",
        _ if status
            .artifact_workflows
            .values()
            .any(|r| r.phase == WorkflowPhase::Running) =>
        {
            "Running"
        }
        _ => "Pending",
    }
}

fn phase_name(phase: WorkflowPhase) -> &'static str {
    match phase {
        WorkflowPhase::Unknown => "Unknown",
        other => other.as_str(),
    }
}

/// Counts shown in the `STATUS=` line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Orders in the API.
    pub orders: usize,
    /// Artifacts whose workflow is running.
    pub running: usize,
    /// Artifacts whose workflow failed or errored.
    pub failed: usize,
}

#[derive(Default)]
struct OrderSummary {
    phase: &'static str,
    /// `(artifact type, phase)` of every recorded workflow.
    artifacts: Vec<(String, &'static str)>,
}

fn summarize(order: &Order) -> OrderSummary {
    let artifacts = order
        .status
        .as_ref()
        .map(|status| {
            status
                .artifact_workflows
                .values()
                .map(|record| {
                    let type_ = usize::try_from(record.artifact_index)
                        .ok()
                        .and_then(|i| order.spec.artifacts.get(i))
                        .map(|a| a.type_.clone())
                        .unwrap_or_default();
                    (type_, phase_name(record.phase))
                })
                .collect()
        })
        .unwrap_or_default();
    OrderSummary {
        phase: order_phase(order),
        artifacts,
    }
}

/// Shared, always-current counts.
#[derive(Clone, Debug)]
pub struct CensusHandle {
    counts: Arc<Mutex<Counts>>,
    listed: tokio::sync::watch::Receiver<bool>,
}

impl CensusHandle {
    /// The latest counts.
    pub fn counts(&self) -> Counts {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Waits until the first complete listing of Orders is counted (or `timeout` passes).
    pub async fn wait_listed(&self, timeout: Duration) {
        let mut listed = self.listed.clone();
        let _ = tokio::time::timeout(timeout, listed.wait_for(|l| *l)).await;
    }
}

/// Runs the census until `cancel` fires.
pub fn spawn(
    client: kube::Client,
    metrics: Metrics,
    cancel: CancellationToken,
) -> (CensusHandle, tokio::task::JoinHandle<()>) {
    let (listed_tx, listed) = tokio::sync::watch::channel(false);
    let handle = CensusHandle {
        counts: Arc::default(),
        listed,
    };
    let counts = handle.counts.clone();
    let task = tokio::spawn(async move {
        tokio::select! {
            () = cancel.cancelled() => {}
            () = run(client, metrics, counts, listed_tx) => {}
        }
    });
    (handle, task)
}

async fn run(
    client: kube::Client,
    metrics: Metrics,
    counts: Arc<Mutex<Counts>>,
    listed: tokio::sync::watch::Sender<bool>,
) {
    let orders = watcher::watcher(
        Api::<Order>::all(client.clone()),
        watcher::Config::default(),
    );
    let workflows = watcher::watcher(
        Api::<ArtifactWorkflow>::all(client),
        watcher::Config::default(),
    );
    let mut orders = std::pin::pin!(orders);
    let mut workflows = std::pin::pin!(workflows);
    let mut order_summaries: HashMap<String, OrderSummary> = HashMap::new();
    let mut pending_orders: Option<HashMap<String, OrderSummary>> = None;
    let mut workflow_phases: HashMap<String, WorkflowPhase> = HashMap::new();
    let mut dirty = true;
    let mut reconcile_errors_seen = controllers::stats::Stats::default();
    let mut refresh = tokio::time::interval(Duration::from_millis(REFRESH_MILLIS));
    loop {
        tokio::select! {
            event = orders.next() => match event {
                Some(Ok(Event::Init)) => pending_orders = Some(HashMap::new()),
                Some(Ok(Event::InitApply(order))) => {
                    if let Some(pending) = pending_orders.as_mut() {
                        pending.insert(order_key(&order), summarize(&order));
                    }
                }
                Some(Ok(Event::InitDone)) => {
                    if let Some(pending) = pending_orders.take() {
                        order_summaries = pending;
                        let new_counts = publish(&metrics, &order_summaries);
                        if let Ok(mut counts) = counts.lock() {
                            *counts = new_counts;
                        }
                        dirty = false;
                        listed.send_replace(true);
                    }
                }
                Some(Ok(Event::Apply(order))) => {
                    order_summaries.insert(order_key(&order), summarize(&order));
                    dirty = true;
                }
                Some(Ok(Event::Delete(order))) => {
                    order_summaries.remove(&order_key(&order));
                    dirty = true;
                }
                Some(Err(error)) => {
                    tracing::debug!(%error, "census: Order watch interrupted; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                None => return,
            },
            event = workflows.next() => match event {
                Some(Ok(Event::InitApply(workflow))) => {
                    workflow_phases.insert(uid(&workflow), current_phase(&workflow));
                }
                Some(Ok(Event::Apply(workflow))) => {
                    let phase = current_phase(&workflow);
                    let before = workflow_phases.insert(uid(&workflow), phase);
                    if phase.is_completed() && before.is_none_or(|b| !b.is_completed()) {
                        record_completion(&metrics, &workflow);
                    }
                }
                Some(Ok(Event::Delete(workflow))) => {
                    workflow_phases.remove(&uid(&workflow));
                }
                Some(Ok(Event::Init | Event::InitDone)) => {}
                Some(Err(error)) => {
                    tracing::debug!(%error, "census: ArtifactWorkflow watch interrupted; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                None => return,
            },
            _ = refresh.tick() => {
                record_reconcile_errors(&metrics, &mut reconcile_errors_seen);
                if dirty {
                    let new_counts = publish(&metrics, &order_summaries);
                    if let Ok(mut counts) = counts.lock() {
                        *counts = new_counts;
                    }
                    dirty = false;
                }
            }
        }
    }
}

/// Moves the controllers' failed-reconcile counts into `arc_reconcile_errors_total`, labelled by
/// the controller that failed (`reason="OrderReconcileFailed"` or `"WorkflowReconcileFailed"`).
fn record_reconcile_errors(metrics: &Metrics, seen: &mut controllers::stats::Stats) {
    let now = controllers::stats::snapshot();
    let orders = now.order_errors.saturating_sub(seen.order_errors);
    let workflows = now.workflow_errors.saturating_sub(seen.workflow_errors);
    if orders > 0 {
        metrics
            .reconcile_errors
            .get_or_create(&label("reason", "OrderReconcileFailed"))
            .inc_by(orders);
    }
    if workflows > 0 {
        metrics
            .reconcile_errors
            .get_or_create(&label("reason", "WorkflowReconcileFailed"))
            .inc_by(workflows);
    }
    *seen = now;
}

fn order_key(order: &Order) -> String {
    format!(
        "{}/{}",
        order.metadata.namespace.as_deref().unwrap_or_default(),
        order.metadata.name.as_deref().unwrap_or_default()
    )
}

fn uid(workflow: &ArtifactWorkflow) -> String {
    workflow
        .metadata
        .uid
        .clone()
        .unwrap_or_else(|| workflow.metadata.name.clone().unwrap_or_default())
}

fn current_phase(workflow: &ArtifactWorkflow) -> WorkflowPhase {
    workflow
        .status
        .as_ref()
        .map(|s| s.phase)
        .unwrap_or_default()
}

fn record_completion(metrics: &Metrics, workflow: &ArtifactWorkflow) {
    let Some(status) = &workflow.status else {
        return;
    };
    metrics
        .completions
        .get_or_create(&label("result", status.phase.as_str()))
        .inc();
    if let (Some(start), Some(end)) = (&status.start_time, &status.completion_time) {
        let seconds = end.0.duration_since(start.0).as_secs_f64();
        if seconds >= 0.0 {
            metrics.duration_seconds.observe(seconds);
        }
    }
    if let Some(bytes) = status.bytes_transferred.and_then(|b| u64::try_from(b).ok()) {
        metrics.bytes_transferred.inc_by(bytes);
    }
}

/// Sets the gauges from the summaries and returns the counts.
fn publish(metrics: &Metrics, orders: &HashMap<String, OrderSummary>) -> Counts {
    let mut by_phase: BTreeMap<&'static str, i64> = BTreeMap::new();
    let mut by_workflow: BTreeMap<(&'static str, String), i64> = BTreeMap::new();
    let mut counts = Counts {
        orders: orders.len(),
        ..Counts::default()
    };
    for summary in orders.values() {
        *by_phase.entry(summary.phase).or_default() += 1;
        for (type_, phase) in &summary.artifacts {
            *by_workflow.entry((phase, type_.clone())).or_default() += 1;
            match *phase {
                "Running" => counts.running += 1,
                "Failed" | "Error" => counts.failed += 1,
                _ => {}
            }
        }
    }
    // Every phase is always present, so dashboards see zeros rather than gaps.
    for phase in ["Pending", "Running", "Succeeded", "Failed", "Invalid"] {
        metrics
            .orders
            .get_or_create(&label("phase", phase))
            .set(by_phase.get(phase).copied().unwrap_or(0));
    }
    metrics.artifact_workflows.clear();
    for ((phase, type_), count) in by_workflow {
        let labels: Labels = vec![
            ("phase".into(), phase.into()),
            ("artifact_type".into(), type_),
        ];
        metrics.artifact_workflows.get_or_create(&labels).set(count);
    }
    counts
}

#[cfg(test)]
mod tests {
    use apiserver::types::{OrderArtifact, OrderArtifactWorkflowStatus, OrderSpec, OrderStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

    use super::*;

    fn order(reason: Option<&str>, phases: &[WorkflowPhase]) -> Order {
        let mut order = Order::new(
            "o",
            OrderSpec {
                artifacts: phases
                    .iter()
                    .map(|_| OrderArtifact {
                        type_: "oci".into(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            },
        );
        order.metadata.generation = Some(1);
        let mut status = OrderStatus::default();
        for (i, phase) in phases.iter().enumerate() {
            status.artifact_workflows.insert(
                format!("{i:016x}"),
                OrderArtifactWorkflowStatus {
                    artifact_index: i as i64,
                    phase: *phase,
                    ..Default::default()
                },
            );
        }
        if let Some(reason) = reason {
            status.conditions.push(Condition {
                type_: "Ready".into(),
                status: if reason == "Succeeded" {
                    "True"
                } else {
                    "False"
                }
                .into(),
                reason: reason.into(),
                observed_generation: Some(1),
                message: String::new(),
                last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    jiff::Timestamp::now(),
                ),
            });
        }
        order.status = Some(status);
        order
    }

    #[test]
    fn order_phases() {
        assert_eq!(
            order_phase(&Order::new("o", OrderSpec::default())),
            "Pending"
        );
        assert_eq!(
            order_phase(&order(Some("Succeeded"), &[WorkflowPhase::Succeeded])),
            "Succeeded"
        );
        assert_eq!(
            order_phase(&order(Some("Failed"), &[WorkflowPhase::Failed])),
            "Failed"
        );
        assert_eq!(order_phase(&order(Some("InvalidSpec"), &[])), "Invalid");
        assert_eq!(
            order_phase(&order(
                Some("InProgress"),
                &[WorkflowPhase::Running, WorkflowPhase::Pending]
            )),
            "Running"
        );
        assert_eq!(
            order_phase(&order(Some("InProgress"), &[WorkflowPhase::Pending])),
            "Pending"
        );
    }

    #[test]
    fn gauges_and_counts() {
        let metrics = Metrics::new();
        let mut orders = HashMap::new();
        orders.insert(
            "a".to_string(),
            summarize(&order(
                Some("InProgress"),
                &[WorkflowPhase::Running, WorkflowPhase::Succeeded],
            )),
        );
        orders.insert(
            "b".to_string(),
            summarize(&order(Some("Failed"), &[WorkflowPhase::Failed])),
        );
        let counts = publish(&metrics, &orders);
        assert_eq!(
            counts,
            Counts {
                orders: 2,
                running: 1,
                failed: 1
            }
        );
        let text = metrics.encode();
        assert!(text.contains("arc_orders{phase=\"Running\"} 1"), "{text}");
        assert!(text.contains("arc_orders{phase=\"Succeeded\"} 0"), "{text}");
        assert!(
            text.contains("arc_artifactworkflows{phase=\"Failed\",artifact_type=\"oci\"} 1"),
            "{text}"
        );
    }
}
