//! The Argo Workflow made for an ArtifactWorkflow, and Argo's status read back: phase, times,
//! message and the pods of failed steps. Pure functions over JSON, so every Workflow the
//! executor can produce is checked against Argo's own schema in the tests.

use apiserver::types::{ArtifactWorkflow, WorkflowPhase};
use jiff::Timestamp;
use kube::ResourceExt;
use kube::discovery::ApiResource;
use serde_json::{Value, json};

use crate::settings::ArgoExecutorSettings;

/// API group of Argo Workflows.
pub const ARGO_GROUP: &str = "argoproj.io";
/// API version of Argo Workflows.
pub const ARGO_VERSION: &str = "v1alpha1";
/// Label selecting the Workflows this executor made.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY_VALUE: &str = "arc-controllers";
/// Label with the ArtifactWorkflow's name.
pub const ARTIFACT_WORKFLOW_LABEL: &str = "arc.opendefense.cloud/artifactworkflow";
/// Kueue's queue label.
pub const KUEUE_QUEUE_LABEL: &str = "kueue.x-k8s.io/queue-name";
/// Volume with the source credentials, mounted at `/secrets/src` by the templates.
pub const SRC_SECRET_VOLUME: &str = "src-secret-vol";
/// Volume with the destination credentials, mounted at `/secrets/dst` by the templates.
pub const DST_SECRET_VOLUME: &str = "dst-secret-vol";

/// The `argoproj.io/v1alpha1` `Workflow` resource.
pub fn workflow_resource() -> ApiResource {
    ApiResource {
        group: ARGO_GROUP.into(),
        version: ARGO_VERSION.into(),
        api_version: format!("{ARGO_GROUP}/{ARGO_VERSION}"),
        kind: "Workflow".into(),
        plural: "workflows".into(),
    }
}

fn secret_volume(name: &str, secret: Option<&str>) -> Value {
    match secret {
        Some(secret) => json!({ "name": name, "secret": { "secretName": secret } }),
        None => json!({ "name": name, "emptyDir": {} }),
    }
}

fn label_value_ok(v: &str) -> bool {
    v.len() <= 63
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The Workflow that runs `aw`: its template by reference, its parameters as arguments, its
/// Secrets as volumes (empty directories when there is none), owned by `aw`.
pub fn build_workflow(aw: &ArtifactWorkflow, settings: &ArgoExecutorSettings) -> Value {
    let name = aw.name_any();
    let mut labels = serde_json::Map::new();
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY_VALUE.into());
    if label_value_ok(&name) {
        labels.insert(ARTIFACT_WORKFLOW_LABEL.into(), Value::from(name.clone()));
    }
    let mut pod_labels = serde_json::Map::new();
    if let Some(queue) = settings.queue_name.as_deref().filter(|q| !q.is_empty()) {
        labels.insert(KUEUE_QUEUE_LABEL.into(), Value::from(queue));
        pod_labels.insert(KUEUE_QUEUE_LABEL.into(), Value::from(queue));
    }
    let secret = |r: &Option<apiserver::types::LocalObjectReference>| {
        r.as_ref().filter(|r| r.is_set()).map(|r| r.name.clone())
    };
    let template = &aw.spec.workflow_template_ref;
    let mut template_ref = json!({ "name": template.name });
    if template.cluster_scope {
        template_ref["clusterScope"] = Value::Bool(true);
    }
    let parameters: Vec<Value> = aw
        .spec
        .parameters
        .iter()
        .map(|p| json!({ "name": p.name, "value": p.value }))
        .collect();
    let mut spec = json!({
        "workflowTemplateRef": template_ref,
        "arguments": { "parameters": parameters },
        "volumes": [
            secret_volume(SRC_SECRET_VOLUME, secret(&aw.spec.src_secret_ref).as_deref()),
            secret_volume(DST_SECRET_VOLUME, secret(&aw.spec.dst_secret_ref).as_deref()),
        ],
    });
    if !pod_labels.is_empty() {
        spec["podMetadata"] = json!({ "labels": pod_labels });
    }
    if let Some(sa) = settings
        .service_account_name
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        spec["serviceAccountName"] = Value::from(sa);
    }
    let mut metadata = json!({
        "name": name,
        "namespace": aw.namespace().unwrap_or_default(),
        "labels": labels,
    });
    if let Some(uid) = aw.uid() {
        metadata["ownerReferences"] = json!([{
            "apiVersion": apiserver::types::API_VERSION,
            "kind": "ArtifactWorkflow",
            "name": name,
            "uid": uid,
            "controller": true,
            "blockOwnerDeletion": true,
        }]);
    }
    json!({
        "apiVersion": format!("{ARGO_GROUP}/{ARGO_VERSION}"),
        "kind": "Workflow",
        "metadata": metadata,
        "spec": spec,
    })
}

/// A step of a Workflow that failed and ran in a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedStep {
    /// The step's display name.
    pub step: String,
    /// The pod it ran in.
    pub pod: String,
    /// Argo's message for it.
    pub message: String,
}

/// What Argo reports about a Workflow.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ArgoState {
    /// The phase, in ARC's terms.
    pub phase: WorkflowPhase,
    /// Argo's message.
    pub message: String,
    /// `status.startedAt`.
    pub started_at: Option<Timestamp>,
    /// `status.finishedAt`.
    pub finished_at: Option<Timestamp>,
    /// Failed pod steps, in node order.
    pub failed_steps: Vec<FailedStep>,
}

/// Argo's phase in ARC's words (the same words; unknown ones count as pending).
pub fn map_phase(phase: &str) -> WorkflowPhase {
    match phase {
        "Running" => WorkflowPhase::Running,
        "Succeeded" => WorkflowPhase::Succeeded,
        "Failed" => WorkflowPhase::Failed,
        "Error" => WorkflowPhase::Error,
        _ => WorkflowPhase::Pending,
    }
}

/// The pod a node ran in, as Argo names pods (`POD_NAMES=v2`): the Workflow's name, the
/// template's name and the hash that ends the node's ID; a Workflow whose only node is a pod
/// uses the Workflow's name.
pub fn pod_name(workflow: &str, node_id: &str, template: &str) -> String {
    if node_id == workflow {
        return workflow.to_string();
    }
    let hash = node_id.rsplit('-').next().unwrap_or(node_id);
    if template.is_empty() {
        format!("{workflow}-{hash}")
    } else {
        format!("{workflow}-{template}-{hash}")
    }
}

fn timestamp(v: Option<&Value>) -> Option<Timestamp> {
    v.and_then(Value::as_str).and_then(|s| s.parse().ok())
}

/// Reads a Workflow's status.
pub fn read_state(workflow: &Value) -> ArgoState {
    let name = workflow
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let status = workflow.get("status").cloned().unwrap_or(Value::Null);
    let mut failed_steps = Vec::new();
    if let Some(nodes) = status.get("nodes").and_then(Value::as_object) {
        for (key, node) in nodes {
            let field = |f: &str| {
                node.get(f)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let phase = field("phase");
            if field("type") == "Pod" && (phase == "Failed" || phase == "Error") {
                let id = node.get("id").and_then(Value::as_str).unwrap_or(key);
                let display = field("displayName");
                failed_steps.push(FailedStep {
                    step: if display.is_empty() {
                        field("name")
                    } else {
                        display
                    },
                    pod: pod_name(name, id, &field("templateName")),
                    message: field("message"),
                });
            }
        }
    }
    ArgoState {
        phase: map_phase(
            status
                .get("phase")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        ),
        message: status
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        started_at: timestamp(status.get("startedAt")),
        finished_at: timestamp(status.get("finishedAt")),
        failed_steps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_map_one_to_one() {
        for (argo, arc) in [
            ("", WorkflowPhase::Pending),
            ("Pending", WorkflowPhase::Pending),
            ("Running", WorkflowPhase::Running),
            ("Succeeded", WorkflowPhase::Succeeded),
            ("Failed", WorkflowPhase::Failed),
            ("Error", WorkflowPhase::Error),
        ] {
            assert_eq!(map_phase(argo), arc, "{argo}");
        }
    }

    #[test]
    fn pod_names_follow_argo_v2_naming() {
        assert_eq!(
            pod_name("wf-abc", "wf-abc-123456", "push"),
            "wf-abc-push-123456"
        );
        assert_eq!(pod_name("wf-abc", "wf-abc", "main"), "wf-abc");
    }

    #[test]
    fn reads_failed_steps_and_times() {
        let wf = json!({
            "metadata": {"name": "o-1"},
            "status": {
                "phase": "Failed",
                "message": "child 'o-1-2' failed",
                "startedAt": "2030-01-01T00:00:00Z",
                "finishedAt": "2030-01-01T00:01:00Z",
                "nodes": {
                    "o-1": {"id": "o-1", "name": "o-1", "type": "Steps", "phase": "Failed"},
                    "o-1-2": {"id": "o-1-2", "name": "o-1[0].copy", "displayName": "copy", "type": "Pod",
                               "phase": "Failed", "templateName": "copy", "message": "Error (exit code 1)"},
                    "o-1-3": {"id": "o-1-3", "name": "o-1[0].scan", "type": "Pod", "phase": "Succeeded"}
                }
            }
        });
        let s = read_state(&wf);
        assert_eq!(s.phase, WorkflowPhase::Failed);
        assert_eq!(s.message, "child 'o-1-2' failed");
        assert_eq!(
            s.started_at,
            Some("2030-01-01T00:00:00Z".parse().expect("ts"))
        );
        assert_eq!(
            s.finished_at,
            Some("2030-01-01T00:01:00Z".parse().expect("ts"))
        );
        assert_eq!(
            s.failed_steps,
            vec![FailedStep {
                step: "copy".into(),
                pod: "o-1-copy-2".into(),
                message: "Error (exit code 1)".into()
            }]
        );
        assert_eq!(
            read_state(&json!({"metadata": {"name": "x"}})).phase,
            WorkflowPhase::Pending
        );
    }
}
