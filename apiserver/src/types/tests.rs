//! Round-trip and schema tests for the API types.

use super::*;
use kube::{CustomResourceExt, Resource};

#[test]
fn order_round_trips_with_original_field_names() {
    let yaml = serde_json::json!({
        "apiVersion": API_VERSION, "kind": "Order",
        "metadata": {"name": "o1", "namespace": "default"},
        "spec": {
            "defaults": {"srcRef": {"name": "docker-hub"}, "dstRef": {"name": "internal"}},
            "artifacts": [{"type": "oci", "spec": {"image": "library/alpine:3.20"}}],
            "ttlSecondsAfterCompletion": 60
        }
    });
    let order: Order = serde_json::from_value(yaml.clone()).unwrap();
    assert_eq!(order.spec.artifacts[0].type_, "oci");
    assert_eq!(
        order
            .spec
            .defaults
            .as_ref()
            .unwrap()
            .src_ref
            .as_ref()
            .unwrap()
            .name,
        "docker-hub"
    );
    assert_eq!(serde_json::to_value(&order).unwrap(), yaml);
}

#[test]
fn kinds_carry_group_version_and_scope() {
    assert_eq!(Order::api_version(&()), API_VERSION);
    assert_eq!(Order::plural(&()), "orders");
    assert_eq!(Endpoint::plural(&()), "endpoints");
    assert_eq!(ClusterArtifactType::crd().spec.scope, "Cluster");
    assert_eq!(ArtifactWorkflow::crd().spec.scope, "Namespaced");
}

#[test]
fn phase_serialises_like_argo() {
    assert_eq!(serde_json::to_value(WorkflowPhase::Unknown).unwrap(), "");
    assert_eq!(
        serde_json::to_value(WorkflowPhase::Succeeded).unwrap(),
        "Succeeded"
    );
    let p: WorkflowPhase = serde_json::from_value(serde_json::json!("")).unwrap();
    assert!(p.is_unknown());
    assert!(WorkflowPhase::Error.is_completed());
}

#[test]
fn cluster_artifact_type_spec_is_flat() {
    let v = serde_json::json!({"rules": {"srcTypes": ["oci"], "dstTypes": ["oci"]},
        "workflowTemplateRef": {"name": "arc-oci", "clusterScope": true}});
    let spec: ClusterArtifactTypeSpec = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(spec.rules.src_types, ["oci"]);
    assert_eq!(serde_json::to_value(&spec).unwrap(), v);
}

#[test]
fn artifact_spec_schema_preserves_unknown_fields() {
    let crd = serde_json::to_value(Order::crd()).unwrap();
    let art = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["artifacts"]["items"];
    assert_eq!(
        art["properties"]["spec"]["x-kubernetes-preserve-unknown-fields"], true,
        "{art}"
    );
    assert_eq!(art["required"], serde_json::json!(["type"]));
}
