//! The Order reconciler's decisions, as a pure function of the Order, its resolution and the
//! ArtifactWorkflows that exist: the new status (records, summary, `Ready` condition), which
//! workflows to create and delete (missing, obsolete, orphaned, expired by TTL), when to look
//! again, and the Events that describe what changed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use apiserver::types::{
    ArtifactWorkflowStatus, Order, OrderArtifactWorkflowStatus, OrderStatus, WorkflowPhase,
};
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::naming::workflow_name;
use super::resolve::{DesiredWorkflow, Resolution};

/// The condition type every Order carries.
pub const READY_CONDITION: &str = "Ready";
/// Longest workflow message copied into an Order's record.
pub const RECORD_MESSAGE_MAX_BYTES: usize = 1024;
/// Longest Event note (the API's limit is 1 kB).
const EVENT_NOTE_MAX_BYTES: usize = 1000;
/// How soon to look again when a workflow to create is still being deleted.
const RECREATE_RETRY: Duration = Duration::from_secs(2);

/// Reasons of the `Ready` condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadyReason {
    /// Every artifact was moved.
    Succeeded,
    /// Some artifacts are still waiting or moving.
    InProgress,
    /// Every workflow finished and some failed.
    Failed,
    /// The Order cannot run as written (or something it refers to is missing or refuses).
    InvalidSpec,
}

impl ReadyReason {
    /// The reason as it appears in the condition.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "Succeeded",
            Self::InProgress => "InProgress",
            Self::Failed => "Failed",
            Self::InvalidSpec => "InvalidSpec",
        }
    }
}

/// What the controller knows about an existing ArtifactWorkflow.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExistingWorkflow {
    /// Its status.
    pub status: ArtifactWorkflowStatus,
    /// Whether it is being deleted.
    pub deleting: bool,
}

/// Why a workflow is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteReason {
    /// Its inputs changed (or `force-at` asked for a re-run): another name replaces it.
    Obsolete,
    /// Owned by the Order but in no record and not wanted (left by an interrupted run).
    Orphaned,
    /// Completed longer than `ttlSecondsAfterCompletion` ago.
    Expired,
}

/// The severity of a planned Event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Normal.
    Normal,
    /// Warning.
    Warning,
}

/// An Event to publish about the Order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedEvent {
    /// Normal or Warning.
    pub severity: Severity,
    /// PascalCase reason.
    pub reason: &'static str,
    /// What happened.
    pub note: String,
}

/// Everything the reconciler has to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The status the Order should have.
    pub status: OrderStatus,
    /// Workflows to create.
    pub create: Vec<DesiredWorkflow>,
    /// Workflows to delete, by name.
    pub delete: Vec<(String, DeleteReason)>,
    /// When to reconcile again at the latest (TTL expiry, a blocked re-creation).
    pub requeue_after: Option<Duration>,
    /// Events to publish.
    pub events: Vec<PlannedEvent>,
    /// The `Ready` reason.
    pub ready: ReadyReason,
}

/// The inputs of [`plan`].
pub struct PlanInput<'a> {
    /// The Order.
    pub order: &'a Order,
    /// Its resolution.
    pub resolution: &'a Resolution,
    /// The `force-at` value in effect.
    pub force_at: Option<&'a str>,
    /// The ArtifactWorkflows that exist, by name.
    pub existing: &'a dyn Fn(&str) -> Option<ExistingWorkflow>,
    /// Names of the ArtifactWorkflows owned by the Order.
    pub owned: &'a BTreeSet<String>,
    /// The current time.
    pub now: Timestamp,
}

fn truncate_utf8(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn first_line(s: &str) -> &str {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .map(str::trim)
        .unwrap_or("")
}

fn mirror(record: &mut OrderArtifactWorkflowStatus, status: &ArtifactWorkflowStatus) {
    record.phase = status.phase;
    record.message = truncate_utf8(&status.message, RECORD_MESSAGE_MAX_BYTES);
    record.completion_time = status.completion_time.clone();
}

/// Counts of artifacts by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Artifacts in the Order.
    pub total: usize,
    /// Moved.
    pub succeeded: usize,
    /// Moving.
    pub running: usize,
    /// Waiting for an executor or a slot.
    pub pending: usize,
    /// Failed or errored.
    pub failed: usize,
}

impl Counts {
    /// `3/5 succeeded, 1 running, 1 failed` (zero counts left out).
    pub fn summary(&self) -> String {
        let mut s = format!("{}/{} succeeded", self.succeeded, self.total);
        for (n, word) in [
            (self.running, "running"),
            (self.pending, "pending"),
            (self.failed, "failed"),
        ] {
            if n > 0 {
                s.push_str(&format!(", {n} {word}"));
            }
        }
        s
    }
}

fn ready_condition(
    old: Option<&Condition>,
    ready: bool,
    reason: ReadyReason,
    message: &str,
    observed_generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let status = if ready { "True" } else { "False" };
    let last_transition_time = match old {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => Time(now),
    };
    Condition {
        type_: READY_CONDITION.into(),
        status: status.into(),
        reason: reason.as_str().into(),
        message: truncate_utf8(message, 32 * 1024),
        observed_generation,
        last_transition_time,
    }
}

fn list_note(prefix: &str, items: &[String]) -> String {
    truncate_utf8(
        &format!("{prefix}{}", items.join(", ")),
        EVENT_NOTE_MAX_BYTES,
    )
}

/// Decides what to do for one Order.
pub fn plan(input: &PlanInput<'_>) -> Plan {
    let order = input.order;
    let old = order.status.clone().unwrap_or_default();
    let order_name = order.metadata.name.as_deref().unwrap_or_default();
    let generation = order.metadata.generation;
    let mut status = old.clone();
    status.observed_generation = generation;
    status.last_force_at = input.force_at.map(str::to_string);
    let mut create = Vec::new();
    let mut delete = Vec::new();
    let mut requeue_after: Option<Duration> = None;
    let mut events = Vec::new();
    let mut requeue = |d: Duration| requeue_after = Some(requeue_after.map_or(d, |r| r.min(d)));

    if input.force_at.is_some() && old.last_force_at.as_deref() != input.force_at {
        events.push(PlannedEvent {
            severity: Severity::Normal,
            reason: "ForceRerun",
            note: format!(
                "force-at {} asks to move every artifact again",
                input.force_at.unwrap_or_default()
            ),
        });
    }

    let (ready, reason, message) = match &input.resolution.desired {
        Err(problem) => {
            // Keep what runs, start nothing, delete nothing: mirror phases only.
            for (hash, record) in status.artifact_workflows.iter_mut() {
                if let Some(e) = (input.existing)(&workflow_name(order_name, hash)) {
                    mirror(record, &e.status);
                }
            }
            let text = problem.to_string();
            (false, ReadyReason::InvalidSpec, text)
        }
        Ok(desired) => {
            status.endpoint_generations = input.resolution.endpoint_generations.clone();
            status.secret_generations = input.resolution.secret_generations.clone();
            let ttl = order.spec.ttl_seconds_after_completion.filter(|t| *t >= 0);
            let mut records: BTreeMap<String, OrderArtifactWorkflowStatus> = BTreeMap::new();
            let mut counts = Counts {
                total: desired.len(),
                ..Counts::default()
            };
            let mut failures = Vec::new();
            for d in desired {
                if let Some(record) = records.get(&d.hash) {
                    // The same artifact listed twice shares one workflow.
                    count(&mut counts, record.phase);
                    continue;
                }
                let mut record = old
                    .artifact_workflows
                    .get(&d.hash)
                    .cloned()
                    .unwrap_or_default();
                record.artifact_index = d.index as i64;
                match (input.existing)(&d.name) {
                    Some(existing) => {
                        mirror(&mut record, &existing.status);
                        if existing.deleting && !record.phase.is_completed() {
                            requeue(RECREATE_RETRY);
                        }
                        if let (Some(ttl), true, false) =
                            (ttl, record.phase.is_completed(), existing.deleting)
                        {
                            let done = record.completion_time.as_ref().map_or(input.now, |t| t.0);
                            let expiry = done + jiff::SignedDuration::from_secs(ttl);
                            if input.now >= expiry {
                                delete.push((d.name.clone(), DeleteReason::Expired));
                            } else {
                                let left =
                                    u64::try_from(expiry.duration_since(input.now).as_millis())
                                        .unwrap_or(0);
                                requeue(Duration::from_millis(left) + Duration::from_millis(100));
                            }
                        }
                    }
                    None if record.phase.is_completed() => {
                        // Removed after its TTL (or by hand): its result stands.
                    }
                    None => {
                        record.phase = WorkflowPhase::Unknown;
                        record.message.clear();
                        record.completion_time = None;
                        create.push(d.clone());
                    }
                }
                if matches!(record.phase, WorkflowPhase::Failed | WorkflowPhase::Error) {
                    let why = first_line(&record.message);
                    failures.push(if why.is_empty() {
                        format!("artifact {} {}", d.index, record.phase.as_str())
                    } else {
                        format!(
                            "artifact {} {}: {}",
                            d.index,
                            record.phase.as_str(),
                            truncate_utf8(why, 200)
                        )
                    });
                }
                count(&mut counts, record.phase);
                records.insert(d.hash.clone(), record);
            }
            // Obsolete records and orphans.
            let wanted: BTreeSet<&str> = desired.iter().map(|d| d.name.as_str()).collect();
            for hash in old
                .artifact_workflows
                .keys()
                .filter(|h| !records.contains_key(*h))
            {
                let name = workflow_name(order_name, hash);
                if (input.existing)(&name).is_some_and(|e| !e.deleting) {
                    delete.push((name, DeleteReason::Obsolete));
                }
            }
            for name in input.owned.iter().filter(|n| !wanted.contains(n.as_str())) {
                if delete.iter().any(|(d, _)| d == name) {
                    continue;
                }
                if (input.existing)(name).is_some_and(|e| !e.deleting) {
                    delete.push((name.clone(), DeleteReason::Orphaned));
                }
            }
            status.artifact_workflows = records;
            let summary = counts.summary();
            let (ready, reason) = if counts.succeeded == counts.total {
                (true, ReadyReason::Succeeded)
            } else if counts.running + counts.pending > 0 {
                (false, ReadyReason::InProgress)
            } else {
                (false, ReadyReason::Failed)
            };
            let message = if failures.is_empty() {
                summary.clone()
            } else {
                format!("{summary}; {}", failures.join("; "))
            };
            status.message = summary;
            (ready, reason, message)
        }
    };
    if reason == ReadyReason::InvalidSpec {
        status.message = message.clone();
    }
    let old_ready = old.conditions.iter().find(|c| c.type_ == READY_CONDITION);
    let condition = ready_condition(old_ready, ready, reason, &message, generation, input.now);
    status.conditions.retain(|c| c.type_ != READY_CONDITION);
    status.conditions.push(condition);

    // Events: creations, deletions, phase changes, and the Ready verdict.
    if !create.is_empty() {
        let names: Vec<String> = create
            .iter()
            .map(|d| format!("{} (artifact {})", d.name, d.index))
            .collect();
        events.push(PlannedEvent {
            severity: Severity::Normal,
            reason: "Created",
            note: list_note("Created ArtifactWorkflows ", &names),
        });
    }
    for (why, reason, prefix) in [
        (
            DeleteReason::Obsolete,
            "DeletedObsolete",
            "Deleted ArtifactWorkflows whose inputs changed: ",
        ),
        (
            DeleteReason::Orphaned,
            "DeletedOrphaned",
            "Deleted ArtifactWorkflows no artifact wants: ",
        ),
        (
            DeleteReason::Expired,
            "DeletedExpired",
            "Deleted ArtifactWorkflows past ttlSecondsAfterCompletion (results kept): ",
        ),
    ] {
        let names: Vec<String> = delete
            .iter()
            .filter(|(_, r)| *r == why)
            .map(|(n, _)| n.clone())
            .collect();
        if !names.is_empty() {
            events.push(PlannedEvent {
                severity: Severity::Normal,
                reason,
                note: list_note(prefix, &names),
            });
        }
    }
    let mut changes: BTreeMap<&'static str, (WorkflowPhase, Vec<String>)> = BTreeMap::new();
    for (hash, record) in &status.artifact_workflows {
        let before = old.artifact_workflows.get(hash).map(|r| r.phase);
        if before.is_some_and(|b| b != record.phase) && !record.phase.is_unknown() {
            let entry = changes
                .entry(record.phase.as_str())
                .or_insert_with(|| (record.phase, Vec::new()));
            entry.1.push(format!("artifact {}", record.artifact_index));
        }
    }
    for (_, (phase, items)) in changes {
        let severity = if matches!(phase, WorkflowPhase::Failed | WorkflowPhase::Error) {
            Severity::Warning
        } else {
            Severity::Normal
        };
        let reason = match phase {
            WorkflowPhase::Pending => "ArtifactPending",
            WorkflowPhase::Running => "ArtifactRunning",
            WorkflowPhase::Succeeded => "ArtifactSucceeded",
            WorkflowPhase::Failed => "ArtifactFailed",
            WorkflowPhase::Error | WorkflowPhase::Unknown => "ArtifactError",
        };
        events.push(PlannedEvent {
            severity,
            reason,
            note: list_note(&format!("{}: ", phase.as_str()), &items),
        });
    }
    let old_reason = old_ready.map(|c| c.reason.as_str());
    let old_message = old_ready.map(|c| c.message.as_str());
    let verdict_changed = old_reason != Some(reason.as_str())
        || (reason == ReadyReason::InvalidSpec && old_message != Some(message.as_str()));
    if verdict_changed && reason != ReadyReason::InProgress {
        let severity = if ready {
            Severity::Normal
        } else {
            Severity::Warning
        };
        events.push(PlannedEvent {
            severity,
            reason: reason.as_str(),
            note: truncate_utf8(&message, EVENT_NOTE_MAX_BYTES),
        });
    }
    Plan {
        status,
        create,
        delete,
        requeue_after,
        events,
        ready: reason,
    }
}

fn count(counts: &mut Counts, phase: WorkflowPhase) {
    match phase {
        WorkflowPhase::Succeeded => counts.succeeded += 1,
        WorkflowPhase::Running => counts.running += 1,
        WorkflowPhase::Unknown | WorkflowPhase::Pending => counts.pending += 1,
        WorkflowPhase::Failed | WorkflowPhase::Error => counts.failed += 1,
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
