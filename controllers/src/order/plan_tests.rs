//! Unit tests of the Order planner.

use std::collections::HashMap;

use apiserver::types::{
    ArtifactWorkflowSpec, LocalObjectReference, OrderArtifact, OrderSpec, WorkflowTemplateRef,
};

use super::super::resolve::OrderProblem;
use super::*;

fn order(ttl: Option<i64>) -> Order {
    let mut o = Order::new(
        "nightly",
        OrderSpec {
            artifacts: vec![
                OrderArtifact {
                    type_: "oci".into(),
                    ..Default::default()
                };
                3
            ],
            ttl_seconds_after_completion: ttl,
            ..Default::default()
        },
    );
    o.metadata.namespace = Some("team".into());
    o.metadata.generation = Some(2);
    o
}

fn desired(hashes: &[&str]) -> Vec<DesiredWorkflow> {
    hashes
        .iter()
        .enumerate()
        .map(|(index, hash)| DesiredWorkflow {
            index,
            hash: hash.to_string(),
            name: format!("nightly-{hash}"),
            artifact_type: "oci".into(),
            spec: ArtifactWorkflowSpec {
                workflow_template_ref: WorkflowTemplateRef {
                    name: "arc-oci".into(),
                    cluster_scope: true,
                },
                parameters: vec![],
                src_secret_ref: None,
                dst_secret_ref: Some(LocalObjectReference::new("creds")),
            },
        })
        .collect()
}

fn resolution(hashes: &[&str]) -> Resolution {
    Resolution {
        desired: Ok(desired(hashes)),
        endpoint_generations: [("hub".to_string(), 1)].into(),
        secret_generations: [("creds".to_string(), "sha256:aa".to_string())].into(),
    }
}

const A: &str = "aaaaaaaaaaaaaaaa";
const B: &str = "bbbbbbbbbbbbbbbb";
const C: &str = "cccccccccccccccc";
const D: &str = "dddddddddddddddd";

fn now() -> Timestamp {
    "2030-01-01T00:00:00Z".parse().expect("timestamp")
}

fn aw(phase: WorkflowPhase, message: &str, completed_secs_ago: Option<i64>) -> ExistingWorkflow {
    ExistingWorkflow {
        status: ArtifactWorkflowStatus {
            phase,
            message: message.into(),
            completion_time: completed_secs_ago
                .map(|s| Time(now() - jiff::SignedDuration::from_secs(s))),
            ..Default::default()
        },
        deleting: false,
    }
}

fn run(
    order: &Order,
    resolution: &Resolution,
    force_at: Option<&str>,
    existing: HashMap<String, ExistingWorkflow>,
) -> Plan {
    let owned: BTreeSet<String> = existing.keys().cloned().collect();
    let lookup = move |name: &str| existing.get(name).cloned();
    plan(&PlanInput {
        order,
        resolution,
        force_at,
        existing: &lookup,
        owned: &owned,
        now: now(),
    })
}

fn ready(p: &Plan) -> &Condition {
    p.status
        .conditions
        .iter()
        .find(|c| c.type_ == READY_CONDITION)
        .expect("Ready condition")
}

fn with_status(mut o: Order, p: &Plan) -> Order {
    o.status = Some(p.status.clone());
    o
}

#[test]
fn a_new_order_creates_every_workflow_and_is_in_progress() {
    let o = order(None);
    let p = run(&o, &resolution(&[A, B, C]), None, HashMap::new());
    assert_eq!(
        p.create.iter().map(|d| d.hash.as_str()).collect::<Vec<_>>(),
        vec![A, B, C]
    );
    assert!(p.delete.is_empty());
    assert_eq!(p.status.message, "0/3 succeeded, 3 pending");
    assert_eq!(p.status.observed_generation, Some(2));
    assert_eq!(p.status.endpoint_generations["hub"], 1);
    assert_eq!(p.status.secret_generations["creds"], "sha256:aa");
    let c = ready(&p);
    assert_eq!(
        (c.status.as_str(), c.reason.as_str(), c.observed_generation),
        ("False", "InProgress", Some(2))
    );
    assert_eq!(p.ready, ReadyReason::InProgress);
    assert_eq!(p.events.len(), 1);
    assert_eq!(p.events[0].reason, "Created");
    assert!(
        p.events[0]
            .note
            .contains("nightly-aaaaaaaaaaaaaaaa (artifact 0)"),
        "{}",
        p.events[0].note
    );
}

#[test]
fn phases_are_mirrored_and_summarised() {
    let o = order(None);
    let first = run(&o, &resolution(&[A, B, C]), None, HashMap::new());
    let o = with_status(o, &first);
    let existing = HashMap::from([
        (
            format!("nightly-{A}"),
            aw(WorkflowPhase::Succeeded, "", Some(5)),
        ),
        (format!("nightly-{B}"), aw(WorkflowPhase::Running, "", None)),
        (
            format!("nightly-{C}"),
            aw(WorkflowPhase::Failed, "401 Unauthorized\nmore log", Some(1)),
        ),
    ]);
    let p = run(&o, &resolution(&[A, B, C]), None, existing);
    assert!(p.create.is_empty() && p.delete.is_empty());
    assert_eq!(p.status.message, "1/3 succeeded, 1 running, 1 failed");
    assert_eq!(
        p.status.artifact_workflows[C].message,
        "401 Unauthorized\nmore log"
    );
    assert_eq!(p.status.artifact_workflows[C].artifact_index, 2);
    let c = ready(&p);
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("False", "InProgress")
    );
    let reasons: Vec<&str> = p.events.iter().map(|e| e.reason).collect();
    assert_eq!(
        reasons,
        vec!["ArtifactFailed", "ArtifactRunning", "ArtifactSucceeded"]
    );
    assert_eq!(p.events[0].severity, Severity::Warning);
}

#[test]
fn all_succeeded_is_ready_and_failures_are_named() {
    let o = order(None);
    let o = with_status(
        o.clone(),
        &run(&o, &resolution(&[A, B, C]), None, HashMap::new()),
    );
    let done = |pc: WorkflowPhase| {
        HashMap::from([
            (
                format!("nightly-{A}"),
                aw(WorkflowPhase::Succeeded, "", Some(5)),
            ),
            (
                format!("nightly-{B}"),
                aw(WorkflowPhase::Succeeded, "", Some(5)),
            ),
            (
                format!("nightly-{C}"),
                aw(pc, "\n  manifest unknown  \n", Some(5)),
            ),
        ])
    };
    let p = run(
        &o,
        &resolution(&[A, B, C]),
        None,
        done(WorkflowPhase::Succeeded),
    );
    let c = ready(&p);
    assert_eq!(
        (c.status.as_str(), c.reason.as_str(), c.message.as_str()),
        ("True", "Succeeded", "3/3 succeeded")
    );
    assert!(
        p.events
            .iter()
            .any(|e| e.reason == "Succeeded" && e.severity == Severity::Normal)
    );

    let p = run(
        &o,
        &resolution(&[A, B, C]),
        None,
        done(WorkflowPhase::Failed),
    );
    let c = ready(&p);
    assert_eq!(
        (c.status.as_str(), c.reason.as_str(), c.message.as_str()),
        (
            "False",
            "Failed",
            "2/3 succeeded, 1 failed; artifact 2 Failed: manifest unknown"
        )
    );
}

#[test]
fn an_unchanged_world_plans_nothing_and_keeps_the_transition_time() {
    let o = order(None);
    let existing = || {
        HashMap::from([
            (
                format!("nightly-{A}"),
                aw(WorkflowPhase::Succeeded, "", Some(5)),
            ),
            (
                format!("nightly-{B}"),
                aw(WorkflowPhase::Succeeded, "", Some(5)),
            ),
            (
                format!("nightly-{C}"),
                aw(WorkflowPhase::Succeeded, "", Some(5)),
            ),
        ])
    };
    let first = run(&o, &resolution(&[A, B, C]), None, existing());
    let o = with_status(o, &first);
    let mut later_input = existing();
    later_input.values_mut().for_each(|_| {});
    let second = run(&o, &resolution(&[A, B, C]), None, later_input);
    assert_eq!(second.status, first.status);
    assert!(second.create.is_empty() && second.delete.is_empty() && second.events.is_empty());
    assert_eq!(second.requeue_after, None);
}

#[test]
fn ttl_deletes_completed_workflows_keeps_their_records_and_never_recreates_them() {
    let o = order(Some(60));
    let o = with_status(
        o.clone(),
        &run(&o, &resolution(&[A, B, C]), None, HashMap::new()),
    );
    let existing = HashMap::from([
        (
            format!("nightly-{A}"),
            aw(WorkflowPhase::Succeeded, "", Some(61)),
        ),
        (
            format!("nightly-{B}"),
            aw(WorkflowPhase::Failed, "boom", Some(30)),
        ),
        (format!("nightly-{C}"), aw(WorkflowPhase::Running, "", None)),
    ]);
    let p = run(&o, &resolution(&[A, B, C]), None, existing);
    assert_eq!(
        p.delete,
        vec![(format!("nightly-{A}"), DeleteReason::Expired)]
    );
    assert_eq!(p.requeue_after, Some(Duration::from_millis(30_100)));
    assert!(p.events.iter().any(|e| e.reason == "DeletedExpired"));

    // After the deletion: the record stays, nothing is created again.
    let o = with_status(o, &p);
    let existing = HashMap::from([
        (
            format!("nightly-{B}"),
            aw(WorkflowPhase::Failed, "boom", Some(30)),
        ),
        (format!("nightly-{C}"), aw(WorkflowPhase::Running, "", None)),
    ]);
    let p = run(&o, &resolution(&[A, B, C]), None, existing);
    assert!(p.create.is_empty(), "{:?}", p.create);
    assert_eq!(
        p.status.artifact_workflows[A].phase,
        WorkflowPhase::Succeeded
    );
    assert_eq!(p.status.message, "1/3 succeeded, 1 running, 1 failed");
}

#[test]
fn a_running_workflow_deleted_by_hand_is_created_again() {
    let o = order(None);
    let o = with_status(o.clone(), &run(&o, &resolution(&[A]), None, HashMap::new()));
    let p = run(
        &o,
        &resolution(&[A]),
        None,
        HashMap::from([(format!("nightly-{A}"), aw(WorkflowPhase::Running, "", None))]),
    );
    let o = with_status(o, &p);
    let p = run(&o, &resolution(&[A]), None, HashMap::new());
    assert_eq!(p.create.len(), 1);
    assert_eq!(p.status.artifact_workflows[A].phase, WorkflowPhase::Unknown);
}

#[test]
fn changed_inputs_replace_obsolete_workflows_and_orphans_are_removed() {
    let o = order(None);
    let o = with_status(
        o.clone(),
        &run(&o, &resolution(&[A, B]), None, HashMap::new()),
    );
    let existing = HashMap::from([
        (
            format!("nightly-{A}"),
            aw(WorkflowPhase::Succeeded, "", Some(5)),
        ),
        (format!("nightly-{B}"), aw(WorkflowPhase::Running, "", None)),
        (format!("nightly-{D}"), aw(WorkflowPhase::Pending, "", None)),
    ]);
    // B's inputs changed: C replaces it. D exists, is owned, is in no record.
    let p = run(&o, &resolution(&[A, C]), None, existing);
    assert_eq!(
        p.create.iter().map(|d| d.hash.as_str()).collect::<Vec<_>>(),
        vec![C]
    );
    assert_eq!(
        p.delete,
        vec![
            (format!("nightly-{B}"), DeleteReason::Obsolete),
            (format!("nightly-{D}"), DeleteReason::Orphaned)
        ]
    );
    assert!(!p.status.artifact_workflows.contains_key(B));
    assert_eq!(p.status.artifact_workflows.len(), 2);
}

#[test]
fn force_at_is_recorded_and_announced_once() {
    let o = order(None);
    let p = run(&o, &resolution(&[A]), Some("2030-01-01"), HashMap::new());
    assert_eq!(p.status.last_force_at.as_deref(), Some("2030-01-01"));
    assert!(p.events.iter().any(|e| e.reason == "ForceRerun"));
    let o = with_status(o, &p);
    let p = run(&o, &resolution(&[A]), Some("2030-01-01"), HashMap::new());
    assert!(!p.events.iter().any(|e| e.reason == "ForceRerun"));
}

#[test]
fn invalid_orders_keep_running_workflows_and_report_the_problem() {
    let o = order(None);
    let o = with_status(o.clone(), &run(&o, &resolution(&[A]), None, HashMap::new()));
    let bad = Resolution {
        desired: Err(OrderProblem::NoArtifacts),
        endpoint_generations: BTreeMap::new(),
        secret_generations: BTreeMap::new(),
    };
    let p = run(
        &o,
        &bad,
        None,
        HashMap::from([(format!("nightly-{A}"), aw(WorkflowPhase::Running, "", None))]),
    );
    assert!(p.create.is_empty() && p.delete.is_empty());
    assert_eq!(p.status.artifact_workflows[A].phase, WorkflowPhase::Running);
    assert_eq!(
        p.status.endpoint_generations["hub"], 1,
        "last good generations kept"
    );
    let c = ready(&p);
    assert_eq!(
        (c.status.as_str(), c.reason.as_str(), c.message.as_str()),
        (
            "False",
            "InvalidSpec",
            "spec.artifacts is empty: nothing to move"
        )
    );
    assert_eq!(p.status.message, "spec.artifacts is empty: nothing to move");
    assert!(
        p.events
            .iter()
            .any(|e| e.reason == "InvalidSpec" && e.severity == Severity::Warning)
    );
    // Same problem again: no new event.
    let o = with_status(o, &p);
    let p = run(
        &o,
        &bad,
        None,
        HashMap::from([(format!("nightly-{A}"), aw(WorkflowPhase::Running, "", None))]),
    );
    assert!(p.events.is_empty(), "{:?}", p.events);
}

#[test]
fn identical_artifacts_share_one_workflow() {
    let o = order(None);
    let p = run(&o, &resolution(&[A, A, B]), None, HashMap::new());
    assert_eq!(p.create.len(), 2);
    assert_eq!(p.status.message, "0/3 succeeded, 3 pending");
}
