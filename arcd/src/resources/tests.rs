//! Tests of resource-file parsing and checks.

use std::path::Path;

use super::*;

fn parse(text: &str) -> ParsedFile {
    parse_resource_file(Path::new("orders/a.yaml"), text, "default")
}

fn errors(text: &str) -> Vec<String> {
    parse(text)
        .objects
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect()
}

const ENDPOINT_AND_ORDER: &str = "\
apiVersion: arc.opendefense.cloud/v1alpha1
kind: Endpoint
metadata:
  name: src
  resourceVersion: \"42\"
spec:
  type: oci
  remoteURL: http://127.0.0.1:5000
---
apiVersion: arc.opendefense.cloud/v1alpha1
kind: Order
metadata:
  name: o1
  namespace: team-a
spec:
  defaults:
    srcRef: {name: src}
  artifacts:
    - type: oci
      spec: {image: library/alpine:3.20}
status:
  message: not ours
";

#[test]
fn reads_many_documents_into_keyed_manifests() {
    let parsed = parse(ENDPOINT_AND_ORDER);
    assert!(!parsed.holds_secret);
    let objects = parsed.objects.unwrap();
    assert_eq!(objects.len(), 2);
    assert_eq!(objects[0].key.to_string(), "Endpoint default/src");
    assert_eq!(objects[1].key.to_string(), "Order team-a/o1");
    // Namespace defaulted, server-owned fields and status dropped.
    assert_eq!(objects[0].manifest["metadata"]["namespace"], "default");
    assert!(
        objects[0].manifest["metadata"]
            .get("resourceVersion")
            .is_none()
    );
    assert!(objects[1].manifest.get("status").is_none());
    assert_eq!(objects[1].start, Position::new(10, 1));
    // Field positions come from the file, read again when needed.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.yaml");
    std::fs::write(&file, ENDPOINT_AND_ORDER).unwrap();
    assert_eq!(
        objects[1].position_of(&file, "spec.artifacts[0].spec.image"),
        Position::new(20, 14)
    );
    // A file that changed meanwhile gives the document's start.
    std::fs::write(&file, "kind: Other\n").unwrap();
    assert_eq!(
        objects[1].position_of(&file, "spec.artifacts[0].spec.image"),
        Position::new(10, 1)
    );
}

#[test]
fn unknown_kinds_and_versions_are_named() {
    let e = errors("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n");
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("orders/a.yaml:2:1: unknown kind `Deployment`"),
        "{e:?}"
    );
    assert!(
        e[0].contains("Order (arc.opendefense.cloud/v1alpha1)"),
        "{e:?}"
    );
    let e = errors("apiVersion: arc.opendefense.cloud/v1\nkind: Order\nmetadata: {name: o}\n");
    assert!(
        e[0].starts_with(
            "orders/a.yaml:1:1: unknown apiVersion `arc.opendefense.cloud/v1` for kind Order"
        ),
        "{e:?}"
    );
}

#[test]
fn every_problem_of_every_document_is_reported() {
    let e = errors(
        "kind: Order\nmetadata: {name: o}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: Bad_Name}\n---\n\
         apiVersion: arc.opendefense.cloud/v1alpha1\nkind: ClusterArtifactType\nmetadata: {name: c, namespace: x}\n\
         spec: {workflowTemplateRef: {name: arc-oci}}\n---\n\
         apiVersion: arc.opendefense.cloud/v1alpha1\nkind: Endpoint\nmetadata: {name: e}\nspec: {type: oci}\n",
    );
    assert_eq!(e.len(), 4, "{e:#?}");
    assert!(
        e[0].starts_with("orders/a.yaml:1:1: apiVersion is missing"),
        "{e:#?}"
    );
    assert!(
        e[1].starts_with("orders/a.yaml:6:12: metadata.name: Invalid value: \"Bad_Name\""),
        "{e:#?}"
    );
    assert!(
        e[2].starts_with("orders/a.yaml:10:21: ClusterArtifactType is cluster-scoped"),
        "{e:#?}"
    );
    assert_eq!(e[3], "orders/a.yaml:16:1: spec.remoteURL: Required value");
}

#[test]
fn the_same_object_twice_in_a_file_is_an_error() {
    let text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n";
    let e = errors(text);
    assert_eq!(
        e,
        vec![
            "orders/a.yaml:5:1: Namespace a is defined twice in this file (first at line 1)"
                .to_string()
        ]
    );
}

#[test]
fn yaml_errors_are_positioned() {
    let e = errors("apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n stringData: {a: b\n");
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("orders/a.yaml:"), "{e:?}");
}

#[test]
fn secrets_fold_string_data_and_are_flagged() {
    let parsed = parse(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData: {username: bob}\ndata: {password: cGFzcw==}\n",
    );
    assert!(parsed.holds_secret);
    let objects = parsed.objects.unwrap();
    let data = &objects[0].manifest["data"];
    assert_eq!(data["username"], "Ym9i");
    assert_eq!(data["password"], "cGFzcw==");
    assert!(objects[0].manifest.get("stringData").is_none());
    let bad = parse(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\ndata:\n  password: not base64!\n",
    );
    assert!(bad.holds_secret, "known even when the file is invalid");
    let e: Vec<String> = bad
        .objects
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        e[0].starts_with("orders/a.yaml:5:3: data.password is not valid base64"),
        "{e:?}"
    );
}

#[test]
fn secret_file_modes() {
    assert!(secret_file_mode_problem(0o100600).is_none());
    assert!(secret_file_mode_problem(0o400).is_none());
    let problem = secret_file_mode_problem(0o100644).unwrap();
    assert!(
        problem.contains("0644")
            && problem.contains("group or others")
            && problem.contains("chmod 600"),
        "{problem}"
    );
    assert!(secret_file_mode_problem(0o640).is_some());
    assert!(secret_file_mode_problem(0o602).is_some());
}

#[test]
fn unknown_fields_and_semantic_errors_point_at_the_field() {
    let e = errors(
        "apiVersion: arc.opendefense.cloud/v1alpha1\nkind: Endpoint\nmetadata: {name: e}\nspec:\n  type: oci\n  remoteURL: http://x\n  remoteUrl: typo\n  usage: Sometimes\n",
    );
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(
        e.iter()
            .any(|m| m.starts_with("orders/a.yaml:7:3: unknown field `spec.remoteUrl`")),
        "{e:#?}"
    );
    assert!(
        e.iter()
            .any(|m| m
                .starts_with("orders/a.yaml:8:3: spec.usage: Unsupported value: \"Sometimes\"")),
        "{e:#?}"
    );
}
