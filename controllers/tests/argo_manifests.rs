//! Everything ARC hands to Argo validates against Argo's own JSON schema: the shipped
//! ClusterWorkflowTemplates (as the install script renders them) and the Workflows the Argo
//! executor builds.

mod common;

use std::path::PathBuf;
use std::process::Command;

use apiserver::types::{
    ArtifactWorkflow, ArtifactWorkflowParameter, ArtifactWorkflowSpec, LocalObjectReference,
    WorkflowTemplateRef,
};
use common::argo_schema::ArgoSchema;
use controllers::ArgoExecutorSettings;
use controllers::executor::argo::workflow::build_workflow;
use serde_json::{Value, json};

fn packaging() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../packaging/argo"))
}

fn rendered_templates(image: &str) -> Vec<Value> {
    let out = Command::new("sh")
        .arg(packaging().join("install.sh"))
        .args(["--print", image])
        .output()
        .expect("run install.sh");
    assert!(
        out.status.success(),
        "install.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    serde_saphyr::from_multiple::<Value>(&text).expect("rendered YAML parses")
}

#[test]
fn shipped_cluster_workflow_templates_validate_against_argo_schema() {
    let Some(schema) = ArgoSchema::load() else {
        return;
    };
    let docs = rendered_templates("registry.example.com/arc/arcd:1.2.3");
    let names: Vec<&str> = docs
        .iter()
        .map(|d| d["metadata"]["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, vec!["arc-oci", "arc-helm", "arc-file"]);
    for doc in &docs {
        let errors = schema.validate("ClusterWorkflowTemplate", doc);
        assert!(
            errors.is_empty(),
            "{}: {errors:#?}",
            doc["metadata"]["name"]
        );
        let container = &doc["spec"]["templates"][0]["container"];
        assert_eq!(container["image"], "registry.example.com/arc/arcd:1.2.3");
        let args: Vec<&str> = container["args"]
            .as_array()
            .expect("args")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(args[0], "worker");
        assert_eq!(args[1], doc["metadata"]["name"].as_str().expect("name"));
        // Every declared parameter reaches the worker, and nothing else is templated.
        let declared: Vec<&str> = doc["spec"]["arguments"]["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        for p in &declared {
            assert!(
                args.contains(&format!("{p}={{{{workflow.parameters.{p}}}}}").as_str()),
                "{p} not passed"
            );
        }
        assert_eq!(
            args.iter().filter(|a| a.contains("{{")).count(),
            declared.len()
        );
        for p in [
            "srcType",
            "srcRemoteURL",
            "srcSecret",
            "dstType",
            "dstRemoteURL",
            "dstSecret",
        ] {
            assert!(declared.contains(&p), "{p} not declared");
        }
        let mounts: Vec<(&str, &str)> = container["volumeMounts"]
            .as_array()
            .expect("mounts")
            .iter()
            .map(|m| {
                (
                    m["name"].as_str().unwrap_or_default(),
                    m["mountPath"].as_str().unwrap_or_default(),
                )
            })
            .collect();
        assert!(mounts.contains(&("src-secret-vol", "/secrets/src")));
        assert!(mounts.contains(&("dst-secret-vol", "/secrets/dst")));
        assert!(
            !serde_json::to_string(doc)
                .expect("json")
                .contains("@ARC_IMAGE@")
        );
    }
}

#[test]
fn install_script_refuses_bad_image_references() {
    for bad in ["", "a b", "x;rm -rf /", "x|y"] {
        let out = Command::new("sh")
            .arg(packaging().join("install.sh"))
            .args(["--print", bad])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{bad:?} accepted");
    }
}

#[test]
fn the_validator_catches_mistakes() {
    let Some(schema) = ArgoSchema::load() else {
        return;
    };
    let bad = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "x"},
        "spec": {
            "workflowTemplateRef": {"name": "arc-oci", "clusterScope": "yes"},
            "arguments": {"parameters": [{"nmae": "a"}]},
            "volumes": [{"name": "v", "emptyDir": {}, "secrt": {}}]
        }
    });
    let errors = schema.validate("Workflow", &bad);
    let joined = errors.join("\n");
    assert!(
        joined.contains("$.spec.workflowTemplateRef.clusterScope: expected boolean"),
        "{joined}"
    );
    assert!(
        joined.contains("$.spec.arguments.parameters[0].nmae: unknown field"),
        "{joined}"
    );
    assert!(
        joined.contains("$.spec.arguments.parameters[0]: required field `name` is missing"),
        "{joined}"
    );
    assert!(
        joined.contains("$.spec.volumes[0].secrt: unknown field"),
        "{joined}"
    );
    let missing_spec =
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {}});
    assert!(
        schema
            .validate("Workflow", &missing_spec)
            .join("\n")
            .contains("required field `spec`")
    );
    let wrong_kind =
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Pod", "metadata": {}, "spec": {}});
    assert!(
        schema
            .validate("Workflow", &wrong_kind)
            .join("\n")
            .contains("$.kind: expected \"Workflow\"")
    );
}

fn artifact_workflow(
    src_secret: Option<&str>,
    dst_secret: Option<&str>,
    cluster_scope: bool,
) -> ArtifactWorkflow {
    let mut aw = ArtifactWorkflow::new(
        "nightly-0123456789abcdef",
        ArtifactWorkflowSpec {
            workflow_template_ref: WorkflowTemplateRef {
                name: "arc-oci".into(),
                cluster_scope,
            },
            parameters: vec![
                ArtifactWorkflowParameter {
                    name: "srcType".into(),
                    value: "oci".into(),
                },
                ArtifactWorkflowParameter {
                    name: "specImage".into(),
                    value: "library/alpine:3.20".into(),
                },
            ],
            src_secret_ref: src_secret.map(LocalObjectReference::new),
            dst_secret_ref: dst_secret.map(LocalObjectReference::new),
        },
    );
    aw.metadata.namespace = Some("team".into());
    aw.metadata.uid = Some("11111111-2222-3333-4444-555555555555".into());
    aw
}

#[test]
fn produced_workflows_validate_and_carry_template_parameters_volumes_and_owner() {
    let Some(schema) = ArgoSchema::load() else {
        return;
    };
    let variants = [
        (
            artifact_workflow(None, None, true),
            ArgoExecutorSettings::default(),
        ),
        (
            artifact_workflow(Some("src-creds"), Some("dst-creds"), false),
            ArgoExecutorSettings {
                queue_name: Some("arc-queue".into()),
                service_account_name: Some("arc-worker".into()),
                pod_log_tail_lines: 10,
            },
        ),
    ];
    for (aw, settings) in &variants {
        let wf = build_workflow(aw, settings);
        let errors = schema.validate("Workflow", &wf);
        assert!(errors.is_empty(), "{errors:#?}\n{wf:#}");
        assert_eq!(wf["metadata"]["name"], "nightly-0123456789abcdef");
        assert_eq!(wf["metadata"]["namespace"], "team");
        assert_eq!(
            wf["metadata"]["ownerReferences"][0]["kind"],
            "ArtifactWorkflow"
        );
        assert_eq!(
            wf["metadata"]["ownerReferences"][0]["uid"],
            "11111111-2222-3333-4444-555555555555"
        );
        assert_eq!(wf["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(wf["spec"]["workflowTemplateRef"]["name"], "arc-oci");
        assert_eq!(
            wf["spec"]["arguments"]["parameters"],
            json!([{"name": "srcType", "value": "oci"}, {"name": "specImage", "value": "library/alpine:3.20"}])
        );
    }
    let plain = build_workflow(&variants[0].0, &variants[0].1);
    assert_eq!(plain["spec"]["workflowTemplateRef"]["clusterScope"], true);
    assert_eq!(
        plain["spec"]["volumes"],
        json!([{"name": "src-secret-vol", "emptyDir": {}}, {"name": "dst-secret-vol", "emptyDir": {}}])
    );
    assert!(
        plain["metadata"]["labels"]
            .get("kueue.x-k8s.io/queue-name")
            .is_none()
    );
    let full = build_workflow(&variants[1].0, &variants[1].1);
    assert!(
        full["spec"]["workflowTemplateRef"]
            .get("clusterScope")
            .is_none()
    );
    assert_eq!(
        full["spec"]["volumes"],
        json!([
            {"name": "src-secret-vol", "secret": {"secretName": "src-creds"}},
            {"name": "dst-secret-vol", "secret": {"secretName": "dst-creds"}}
        ])
    );
    assert_eq!(
        full["metadata"]["labels"]["kueue.x-k8s.io/queue-name"],
        "arc-queue"
    );
    assert_eq!(
        full["spec"]["podMetadata"]["labels"]["kueue.x-k8s.io/queue-name"],
        "arc-queue"
    );
    assert_eq!(full["spec"]["serviceAccountName"], "arc-worker");
}
