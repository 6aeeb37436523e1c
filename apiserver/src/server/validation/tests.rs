//! Tests of validation: messages are compared with what kube-apiserver prints.

use super::*;
use crate::server::kinds::{arc_kinds, core_kinds};
use serde_json::json;

fn arc(kind: &str) -> ResourceKind {
    arc_kinds().into_iter().find(|k| k.kind == kind).unwrap()
}

fn core(kind: &str) -> ResourceKind {
    core_kinds().into_iter().find(|k| k.kind == kind).unwrap()
}

fn order(spec: Value) -> Value {
    json!({"apiVersion": "arc.opendefense.cloud/v1alpha1", "kind": "Order",
           "metadata": {"name": "o1", "namespace": "default"}, "spec": spec})
}

fn messages(errors: &[FieldError]) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}

#[test]
fn a_valid_order_passes() {
    let o = order(json!({
        "defaults": {"srcRef": {"name": "docker-hub"}, "dstRef": {"name": "internal"}},
        "artifacts": [{"type": "oci", "spec": {"image": "alpine:3.20", "anything": [1, {"x": null}]}}],
        "ttlSecondsAfterCompletion": 60
    }));
    assert_eq!(validate_object(&arc("Order"), &o), vec![]);
    assert!(check_object(&arc("Order"), &o).is_ok());
}

#[test]
fn required_type_enum_and_range_errors_have_upstream_shapes() {
    let o = order(json!({
        "artifacts": [{"srcRef": {"name": "Bad_Ref"}}, {"type": ""}],
        "ttlSecondsAfterCompletion": -1
    }));
    let errors = validate_object(&arc("Order"), &o);
    assert_eq!(
        messages(&errors),
        [
            "spec.artifacts[0].type: Required value",
            "spec.artifacts[0].srcRef.name: Invalid value: \"Bad_Ref\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            "spec.artifacts[1].type: Required value",
            "spec.ttlSecondsAfterCompletion: Invalid value: -1: must be greater than or equal to 0",
        ]
    );
    assert_eq!(errors[0].kind.reason(), "FieldValueRequired");
    assert_eq!(errors[1].kind.reason(), "FieldValueInvalid");

    let ep = json!({"apiVersion": "arc.opendefense.cloud/v1alpha1", "kind": "Endpoint",
        "metadata": {"name": "e", "namespace": "default"},
        "spec": {"type": "oci", "remoteURL": "https://r", "usage": "Sometimes"}});
    let errors = validate_object(&arc("Endpoint"), &ep);
    assert_eq!(
        messages(&errors),
        [
            "spec.usage: Unsupported value: \"Sometimes\": supported values: \"PullOnly\", \"PushOnly\", \"All\""
        ]
    );
    assert_eq!(errors[0].kind.reason(), "FieldValueNotSupported");

    let awf = json!({"metadata": {"name": "w", "namespace": "default"},
        "spec": {"workflowTemplateRef": {"name": "arc-oci"}}, "status": {"phase": "Done"}});
    assert_eq!(
        messages(&validate_object(&arc("ArtifactWorkflow"), &awf)),
        [
            "status.phase: Unsupported value: \"Done\": supported values: \"\", \"Pending\", \"Running\", \"Succeeded\", \"Failed\", \"Error\""
        ]
    );
}

#[test]
fn wrong_json_types_are_type_invalid() {
    let o = order(json!({"artifacts": {"type": "oci"}, "ttlSecondsAfterCompletion": "60"}));
    let errors = validate_object(&arc("Order"), &o);
    assert_eq!(
        messages(&errors),
        [
            "spec.artifacts: Invalid value: \"object\": spec.artifacts in body must be of type array: \"object\"",
            "spec.ttlSecondsAfterCompletion: Invalid value: \"string\": spec.ttlSecondsAfterCompletion in body must be of type integer: \"string\"",
        ]
    );
    assert!(
        errors
            .iter()
            .all(|e| e.kind.reason() == "FieldValueTypeInvalid")
    );
    let missing_spec = json!({"metadata": {"name": "o1", "namespace": "default"}});
    assert_eq!(
        messages(&validate_object(&arc("Order"), &missing_spec)),
        ["spec: Required value"]
    );
    let float = order(json!({"ttlSecondsAfterCompletion": 1.5}));
    assert_eq!(validate_object(&arc("Order"), &float).len(), 1);
    let whole = order(json!({"ttlSecondsAfterCompletion": 2.0}));
    assert!(validate_object(&arc("Order"), &whole).is_empty());
}

#[test]
fn formats_maps_and_list_map_keys() {
    let o = order(json!({}));
    let mut o = o;
    o["status"] = json!({
        "artifactWorkflows": {"abc": {"artifactIndex": "x", "completionTime": "yesterday"}},
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "R", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"},
            {"type": "Ready", "status": "False", "reason": "R", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}
        ]
    });
    assert_eq!(
        messages(&validate_object(&arc("Order"), &o)),
        [
            "status.artifactWorkflows[abc].artifactIndex: Invalid value: \"string\": status.artifactWorkflows[abc].artifactIndex in body must be of type integer: \"string\"",
            "status.artifactWorkflows[abc].completionTime: Invalid value: \"yesterday\": status.artifactWorkflows[abc].completionTime in body must be of type date-time: \"yesterday\"",
            "status.conditions[1]: Duplicate value: {\"type\":\"Ready\"}",
        ]
    );
}

#[test]
fn metadata_rules() {
    let k = arc("Order");
    let with_meta = |meta: Value| json!({"metadata": meta, "spec": {}});
    // C8: no name and no generateName.
    let e = validate_object(&k, &with_meta(json!({"namespace": "default"})));
    assert_eq!(
        messages(&e),
        ["metadata.name: Required value: name or generateName is required"]
    );
    assert_eq!(
        e[0].cause(),
        json!({"reason": "FieldValueRequired", "message": "Required value: name or generateName is required", "field": "metadata.name"})
    );
    // generateName alone is fine (the name is generated before storing); a bad prefix is not.
    assert!(
        validate_object(
            &k,
            &with_meta(json!({"namespace": "default", "generateName": "o-"}))
        )
        .is_empty()
    );
    let e = validate_object(
        &k,
        &with_meta(json!({"namespace": "default", "generateName": "O-"})),
    );
    assert_eq!(e[0].field, "metadata.generateName");
    // C9: a bad name.
    let e = validate_object(
        &k,
        &with_meta(json!({"name": "Bad_Name", "namespace": "default"})),
    );
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].field, "metadata.name");
    // C10: a 64-character label value.
    let long = "a".repeat(64);
    let e = validate_object(
        &k,
        &with_meta(json!({"name": "o1", "namespace": "default", "labels": {"a": long}})),
    );
    assert_eq!(
        messages(&e),
        [format!(
            "metadata.labels: Invalid value: \"{long}\": must be no more than 63 characters"
        )]
    );
    // Label keys, namespaces, scope.
    let e = validate_object(
        &k,
        &with_meta(json!({"name": "o1", "namespace": "Default", "labels": {"-x": "y"}})),
    );
    assert_eq!(
        e.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(),
        ["metadata.namespace", "metadata.labels"]
    );
    let e = validate_object(&k, &with_meta(json!({"name": "o1"})));
    assert_eq!(messages(&e), ["metadata.namespace: Required value"]);
    let e = validate_object(
        &arc("ClusterArtifactType"),
        &json!({"metadata": {"name": "c", "namespace": "x"}, "spec": {"workflowTemplateRef": {"name": "t"}}}),
    );
    assert_eq!(
        messages(&e),
        ["metadata.namespace: Forbidden: not allowed on this type"]
    );
    // Namespaces are DNS labels.
    let e = validate_object(&core("Namespace"), &json!({"metadata": {"name": "a.b"}}));
    assert_eq!(
        messages(&e),
        ["metadata.name: Invalid value: \"a.b\": must not contain dots"]
    );
    // Types inside metadata.
    let e = validate_object(
        &k,
        &with_meta(json!({"name": "o1", "namespace": "default", "labels": {"a": 1}})),
    );
    assert_eq!(
        messages(&e),
        [
            "metadata.labels[a]: Invalid value: \"integer\": metadata.labels[a] in body must be of type string: \"integer\""
        ]
    );
}

#[test]
fn annotations_finalizers_and_owner_references() {
    let k = arc("Order");
    let big = "x".repeat(256 * 1024);
    let meta = json!({"name": "o1", "namespace": "default",
    "annotations": {"a": big, "Example.com/Mixed_Case": "ok"},
    "finalizers": ["arc.opendefense.cloud/cleanup", "bad finalizer", "arc.opendefense.cloud/cleanup"],
    "ownerReferences": [
        {"apiVersion": "arc.opendefense.cloud/v1alpha1", "kind": "Order", "name": "a", "uid": "1", "controller": true},
        {"apiVersion": "", "kind": "", "name": "", "uid": "", "controller": true}
    ]});
    let e = validate_object(&k, &json!({"metadata": meta, "spec": {}}));
    let fields: Vec<&str> = e.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "metadata.annotations",
            "metadata.finalizers[1]",
            "metadata.finalizers[2]",
            "metadata.ownerReferences.apiVersion",
            "metadata.ownerReferences.kind",
            "metadata.ownerReferences.name",
            "metadata.ownerReferences.uid",
            "metadata.ownerReferences",
        ]
    );
    assert_eq!(
        e[0].message(),
        "Too long: may not be more than 262144 bytes"
    );
    assert_eq!(
        e[2].message(),
        "Duplicate value: \"arc.opendefense.cloud/cleanup\""
    );
    assert_eq!(
        e[3].message(),
        "Invalid value: \"\": version must not be empty"
    );
    assert!(e[7].message().ends_with("Only one reference can have Controller set to true. Found \"true\" in references for Order/a and /"));
}

#[test]
fn semantic_hooks() {
    let at = json!({"metadata": {"name": "oci", "namespace": "default"}, "spec": {
        "workflowTemplateRef": {"name": ""}, "rules": {"srcTypes": ["oci", ""]},
        "parameters": [{"name": "a", "value": "1"}, {"name": "a", "value": "2"}, {"name": ""}]}});
    assert_eq!(
        messages(&validate_object(&arc("ArtifactType"), &at)),
        [
            "spec.workflowTemplateRef.name: Required value",
            "spec.parameters[1].name: Duplicate value: \"a\"",
            "spec.parameters[2].name: Required value",
            "spec.rules.srcTypes[1]: Required value",
        ]
    );
    let ep = json!({"metadata": {"name": "e", "namespace": "default"},
        "spec": {"type": "", "remoteURL": "x", "secretRef": {"name": "Creds"}}});
    let e = validate_object(&arc("Endpoint"), &ep);
    assert_eq!(
        e.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(),
        ["spec.type", "spec.secretRef.name"]
    );
    let awf = json!({"metadata": {"name": "w", "namespace": "default"},
        "spec": {"workflowTemplateRef": {"name": "arc-oci"}, "dstSecretRef": {"name": "a/b"}}});
    assert_eq!(
        validate_object(&arc("ArtifactWorkflow"), &awf)[0].field,
        "spec.dstSecretRef.name"
    );
    let secret = json!({"metadata": {"name": "s", "namespace": "default"}, "type": "kubernetes.io/dockerconfigjson",
        "data": {"bad/key": "YQ==", "ok": "not base64!"}});
    assert_eq!(
        validate_object(&core("Secret"), &secret)
            .iter()
            .map(|e| e.field.as_str())
            .collect::<Vec<_>>(),
        ["data[ok]", "data[bad/key]", "data[.dockerconfigjson]"]
    );
}

#[test]
fn invalid_status_body_matches_kube_apiserver() {
    let k = arc("Order");
    let single = InvalidObject::new(
        &k,
        "o1",
        vec![FieldError::required("spec.artifacts[0].type", "")],
    );
    assert_eq!(
        single.status(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "Order.arc.opendefense.cloud \"o1\" is invalid: spec.artifacts[0].type: Required value",
            "reason": "Invalid",
            "details": {"name": "o1", "group": "arc.opendefense.cloud", "kind": "Order",
                "causes": [{"reason": "FieldValueRequired", "message": "Required value", "field": "spec.artifacts[0].type"}]},
            "code": 422})
    );
    let dup = FieldError::invalid("metadata.labels", "x y", "bad");
    let several = InvalidObject::new(
        &k,
        "o1",
        vec![FieldError::required("spec", ""), dup.clone(), dup],
    );
    assert_eq!(
        several.to_string(),
        "Order.arc.opendefense.cloud \"o1\" is invalid: [spec: Required value, metadata.labels: Invalid value: \"x y\": bad]"
    );
    assert_eq!(
        several.status()["details"]["causes"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let secret = InvalidObject::new(&core("Secret"), "s", vec![FieldError::required("data", "")]);
    assert_eq!(
        secret.message(),
        "Secret \"s\" is invalid: data: Required value"
    );
    let obj = json!({"metadata": {"name": "Bad", "namespace": "default"}, "spec": {}});
    assert_eq!(check_object(&k, &obj).unwrap_err().name, "Bad");
}

#[test]
fn unknown_fields_are_found_pruned_and_reported_per_mode() {
    let k = arc("Order");
    let incoming = json!({
        "apiVersion": "arc.opendefense.cloud/v1alpha1", "kind": "Order", "bogusTop": 1,
        "metadata": {"name": "o1", "namespace": "default", "labelz": {}, "labels": {"a": "b"}},
        "spec": {"bogus": true, "defaults": null,
                 "artifacts": [{"type": "oci", "spec": {"free": {"form": 1}}, "extra": "x"}]},
        "status": {"artifactWorkflows": {"h": {"artifactIndex": 0, "junk": 1}}}
    });
    let expected = [
        "bogusTop",
        "metadata.labelz",
        "spec.bogus",
        "spec.artifacts[0].extra",
        "status.artifactWorkflows.h.junk",
    ];
    assert_eq!(unknown_fields(&k, &incoming), expected);

    let mut strict = incoming.clone();
    let err = apply_field_validation(&k, &mut strict, FieldValidation::Strict).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Order in version \"v1alpha1\" cannot be handled as a Order: strict decoding error: unknown field \"bogusTop\", unknown field \"metadata.labelz\", unknown field \"spec.bogus\", unknown field \"spec.artifacts[0].extra\", unknown field \"status.artifactWorkflows.h.junk\""
    );

    let mut warn = incoming.clone();
    let warnings = apply_field_validation(&k, &mut warn, FieldValidation::Warn).unwrap();
    assert_eq!(warnings[2], "unknown field \"spec.bogus\"");
    assert_eq!(warnings.len(), 5);

    let mut ignore = incoming.clone();
    assert!(
        apply_field_validation(&k, &mut ignore, FieldValidation::Ignore)
            .unwrap()
            .is_empty()
    );
    assert_eq!(ignore, warn);
    assert_eq!(
        ignore,
        json!({
            "apiVersion": "arc.opendefense.cloud/v1alpha1", "kind": "Order",
            "metadata": {"name": "o1", "namespace": "default", "labels": {"a": "b"}},
            "spec": {"defaults": null, "artifacts": [{"type": "oci", "spec": {"free": {"form": 1}}}]},
            "status": {"artifactWorkflows": {"h": {"artifactIndex": 0}}}
        }),
        "unknown fields pruned, preserved free-form spec kept, nullable null kept"
    );
    let mut nulls = json!({"metadata": {"name": "e"}, "spec": {"type": "oci", "remoteURL": "u", "usage": null}});
    assert!(prune_unknown_fields(&arc("Endpoint"), &mut nulls).is_empty());
    assert!(
        nulls["spec"].get("usage").is_none(),
        "a null in a non-nullable field is dropped"
    );
}

#[test]
fn field_validation_directive_parsing() {
    assert_eq!(FieldValidation::parse(None).unwrap(), FieldValidation::Warn);
    assert_eq!(
        FieldValidation::parse(Some("")).unwrap(),
        FieldValidation::Warn
    );
    assert_eq!(
        FieldValidation::parse(Some("Strict")).unwrap(),
        FieldValidation::Strict
    );
    assert_eq!(
        FieldValidation::parse(Some("Ignore")).unwrap(),
        FieldValidation::Ignore
    );
    let e = FieldValidation::parse(Some("strict")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "fieldValidation: Unsupported value: \"strict\": supported values: \"\", \"Ignore\", \"Warn\", \"Strict\""
    );
}

#[test]
fn defaults_fill_absent_fields() {
    let k = arc("Endpoint");
    let mut ep = json!({"metadata": {"name": "e"}, "spec": {"type": "oci", "remoteURL": "u"}});
    apply_defaults(&k, &mut ep);
    assert_eq!(ep["spec"]["usage"], "All");
    let mut explicit = json!({"metadata": {"name": "e"}, "spec": {"type": "oci", "remoteURL": "u", "usage": "PullOnly"}});
    apply_defaults(&k, &mut explicit);
    assert_eq!(explicit["spec"]["usage"], "PullOnly");
}

#[test]
fn recorder_events_and_their_core_view_are_valid() {
    use crate::server::kinds::{events::core_from_events_v1, events_k8s_io_kinds};
    // What kube-runtime's Recorder creates (events.k8s.io/v1, no series on the first event).
    let recorded = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "o1.1875a1b2c3d4e5f6", "namespace": "default"},
        "action": "Reconcile", "reason": "Ready", "note": "all 3 artifacts moved", "type": "Normal",
        "eventTime": "2026-01-02T03:04:05.123456Z",
        "regarding": {"apiVersion": "arc.opendefense.cloud/v1alpha1", "kind": "Order", "name": "o1",
                      "namespace": "default", "uid": "6f0c0000-0000-4000-8000-000000000000"},
        "reportingController": "arc-order-controller", "reportingInstance": "arcd"
    });
    let events = events_k8s_io_kinds().remove(0);
    assert_eq!(validate_object(&events, &recorded), vec![]);
    assert!(unknown_fields(&events, &recorded).is_empty());
    let core_view = core_from_events_v1(&recorded);
    let core_kind = core("Event");
    assert_eq!(validate_object(&core_kind, &core_view), vec![]);
    assert!(unknown_fields(&core_kind, &core_view).is_empty());
    let mut bad = recorded.clone();
    bad["eventTime"] = json!("yesterday");
    assert_eq!(validate_object(&events, &bad)[0].field, "eventTime");
}

#[test]
fn managed_fields_and_opaque_metadata_survive_pruning() {
    let k = arc("Order");
    let mut o = order(json!({}));
    o["metadata"]["managedFields"] = json!([{
        "manager": "kubectl", "operation": "Apply", "apiVersion": "arc.opendefense.cloud/v1alpha1",
        "time": "2026-11-23T23:54:08Z", "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:labels": {"f:a": {}}}, "f:spec": {"f:artifacts": {}}}
    }]);
    o["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "X", "name": "x", "uid": "u", "controller": true, "blockOwnerDeletion": true}]);
    let before = o.clone();
    assert_eq!(prune_unknown_fields(&k, &mut o), Vec::<String>::new());
    assert_eq!(o, before);
    assert_eq!(validate_object(&k, &o), vec![]);
}
