//! Tests of the registry rows.

use super::*;
use serde_json::json;

/// Short names and plurals kubectl knows for built-in resources (kubectl 1.33 `api-resources`).
const BUILTIN_NAMES: &[&str] = &[
    "cs",
    "cm",
    "ep",
    "ev",
    "limits",
    "ns",
    "no",
    "pvc",
    "pv",
    "po",
    "podtemplates",
    "rc",
    "quota",
    "secret",
    "sa",
    "svc",
    "mutatingwebhookconfigurations",
    "validatingwebhookconfigurations",
    "crd",
    "crds",
    "apiservices",
    "controllerrevisions",
    "ds",
    "deploy",
    "rs",
    "sts",
    "hpa",
    "cj",
    "job",
    "csr",
    "leases",
    "endpointslices",
    "flowschemas",
    "prioritylevelconfigurations",
    "ing",
    "ingclass",
    "netpol",
    "pdb",
    "pc",
    "sc",
    "csidrivers",
    "csinodes",
    "csistoragecapacities",
    "va",
    "volumeattachments",
    "all",
    "events",
    "pods",
    "services",
];

fn kind<'a>(kinds: &'a [ResourceKind], name: &str) -> &'a ResourceKind {
    kinds
        .iter()
        .find(|k| k.kind == name)
        .unwrap_or_else(|| panic!("kind {name} missing"))
}

#[test]
fn arc_kinds_have_the_designed_names_scopes_and_subresources() {
    let kinds = arc_kinds();
    let summary: Vec<_> = kinds
        .iter()
        .map(|k| {
            (
                k.kind,
                k.plural,
                k.singular,
                k.namespaced,
                k.short_names,
                k.has_status,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("Order", "orders", "order", true, &["ord"][..], true),
            (
                "Endpoint",
                "endpoints",
                "endpoint",
                true,
                &["aep"][..],
                true
            ),
            (
                "ArtifactType",
                "artifacttypes",
                "artifacttype",
                true,
                &["atype"][..],
                false
            ),
            (
                "ClusterArtifactType",
                "clusterartifacttypes",
                "clusterartifacttype",
                false,
                &["catype"][..],
                false
            ),
            (
                "ArtifactWorkflow",
                "artifactworkflows",
                "artifactworkflow",
                true,
                &["awf"][..],
                true
            ),
        ]
    );
    for k in &kinds {
        assert_eq!(k.api_version(), "arc.opendefense.cloud/v1alpha1");
        assert_eq!(k.list_kind, format!("{}List", k.kind));
        assert_eq!(k.categories, &["arc"]);
        assert!(!k.description.is_empty(), "{} has a description", k.kind);
        for short in k.short_names {
            assert!(
                !BUILTIN_NAMES.contains(short),
                "short name {short} collides with a built-in name"
            );
        }
    }
}

#[test]
fn arc_schemas_are_the_crd_schemas_of_the_types() {
    fn spec_of<K: CustomResourceExt>() -> Value {
        let crd = serde_json::to_value(K::crd()).unwrap();
        let mut spec =
            crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"].clone();
        unwrap_descriptions(&mut spec);
        spec
    }
    let kinds = arc_kinds();
    assert_eq!(
        kind(&kinds, "Order").schema["properties"]["spec"],
        spec_of::<Order>()
    );
    assert_eq!(
        kind(&kinds, "Endpoint").schema["properties"]["spec"],
        spec_of::<Endpoint>()
    );
    assert_eq!(
        kind(&kinds, "ArtifactWorkflow").schema["properties"]["spec"],
        spec_of::<ArtifactWorkflow>()
    );
    let order = &kind(&kinds, "Order").schema;
    let keys: Vec<&String> = order["properties"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["apiVersion", "kind", "metadata", "spec", "status"]);
    assert_eq!(
        order["properties"]["status"]["properties"]["conditions"]["x-kubernetes-list-type"],
        "map"
    );
    assert_eq!(
        order["properties"]["status"]["properties"]["conditions"]["x-kubernetes-list-map-keys"],
        json!(["type"])
    );
    assert!(order.get("$schema").is_none());
    assert!(
        kind(&kinds, "ArtifactType").schema["properties"]
            .get("status")
            .is_none()
    );
    let ttl =
        &order["properties"]["spec"]["properties"]["ttlSecondsAfterCompletion"]["description"];
    assert!(
        ttl.as_str()
            .unwrap()
            .contains("stays recorded in the Order's status"),
        "{ttl}"
    );
    assert_eq!(unwrap_lines("a\n b\n\nc\nd"), "a b\n\nc d");
}

#[test]
fn core_kinds_come_from_k8s_openapi() {
    let kinds = core_kinds();
    let ns = kind(&kinds, "Namespace");
    assert!(!ns.namespaced && ns.has_status && ns.group.is_empty() && ns.version == "v1");
    let secret = kind(&kinds, "Secret");
    assert_eq!(
        secret.schema["properties"]["data"]["additionalProperties"]["format"],
        "byte"
    );
    assert!(
        secret.schema.get("required").is_none(),
        "metadata is not listed as required"
    );
    let event = kind(&kinds, "Event");
    assert_eq!(
        event.schema["properties"]["involvedObject"]["properties"]["uid"]["type"],
        "string"
    );
    let recorder = &events_k8s_io_kinds()[0];
    assert_eq!(recorder.api_version(), "events.k8s.io/v1");
    assert_eq!(recorder.schema["properties"]["regarding"]["type"], "object");
}

fn cells(kind: &ResourceKind, object: &Value) -> Vec<Value> {
    kind.columns.iter().map(|c| (c.cell)(object)).collect()
}

#[test]
fn order_columns_count_artifacts_and_phases() {
    let kinds = arc_kinds();
    let order = json!({
        "spec": {"artifacts": [{"type": "oci"}, {"type": "oci"}, {"type": "helm"}]},
        "status": {
            "artifactWorkflows": {
                "a": {"artifactIndex": 0, "phase": "Succeeded"},
                "b": {"artifactIndex": 1, "phase": "Failed"},
                "c": {"artifactIndex": 2, "phase": "Error"},
                "d": {"artifactIndex": 2, "phase": "Running"}
            },
            "conditions": [{"type": "Other", "status": "True"}, {"type": "Ready", "status": "False"}]
        }
    });
    let o = kind(&kinds, "Order");
    let names: Vec<_> = o.columns.iter().map(|c| c.name).collect();
    assert_eq!(names, ["Artifacts", "Succeeded", "Failed", "Ready"]);
    assert_eq!(
        cells(o, &order),
        vec![json!(3), json!(1), json!(2), json!("False")]
    );
    assert_eq!(
        cells(o, &json!({"spec": {}})),
        vec![json!(0), json!(0), json!(0), Value::Null]
    );
}

#[test]
fn other_arc_columns() {
    let kinds = arc_kinds();
    let ep =
        json!({"spec": {"type": "oci", "remoteURL": "https://r.example", "usage": "PullOnly"}});
    assert_eq!(
        cells(kind(&kinds, "Endpoint"), &ep),
        vec![json!("oci"), json!("https://r.example"), json!("PullOnly")]
    );
    let at = json!({"spec": {"rules": {"srcTypes": ["oci", "dir"]}, "workflowTemplateRef": {"name": "arc-oci"}}});
    assert_eq!(
        cells(kind(&kinds, "ClusterArtifactType"), &at),
        vec![json!("arc-oci"), json!("oci,dir"), Value::Null]
    );
    let awf = kind(&kinds, "ArtifactWorkflow");
    assert_eq!(
        awf.columns
            .iter()
            .map(|c| (c.name, c.priority))
            .collect::<Vec<_>>(),
        [("Phase", 0), ("Message", 1)]
    );
    assert_eq!(
        cells(awf, &json!({"status": {"phase": "Running"}})),
        vec![json!("Running"), Value::Null]
    );
}

#[test]
fn secret_and_namespace_columns() {
    let kinds = core_kinds();
    let s = json!({"type": "Opaque", "data": {"a": "YQ==", "b": "Yg=="}});
    assert_eq!(
        cells(kind(&kinds, "Secret"), &s),
        vec![json!("Opaque"), json!(2)]
    );
    assert_eq!(
        cells(
            kind(&kinds, "Namespace"),
            &json!({"status": {"phase": "Active"}})
        ),
        vec![json!("Active")]
    );
}

#[test]
fn event_columns_follow_the_kubectl_event_printer() {
    let kinds = core_kinds();
    let ev = kind(&kinds, "Event");
    assert!(!has_standard_columns(ev));
    let names: Vec<_> = ev
        .columns
        .iter()
        .filter(|c| c.priority == 0)
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["Last Seen", "Type", "Reason", "Object", "Message"]);
    let event = json!({
        "metadata": {"name": "o1.1"},
        "involvedObject": {"kind": "Order", "name": "o1"},
        "type": "Normal", "reason": "Ready", "message": " done \n",
        "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:05:00Z", "count": 0,
        "reportingComponent": "arcd", "reportingInstance": "host1"
    });
    let all = cells(ev, &event);
    assert_eq!(all[0], "2026-01-01T00:05:00Z");
    assert_eq!(all[3], "order/o1");
    assert_eq!(all[5], "arcd, host1");
    assert_eq!(all[6], "done");
    assert_eq!(all[8], 1, "a zero count prints as 1");
    assert_eq!(all[9], "o1.1");
    // events.k8s.io: the series wins for Last Seen and Count; eventTime is First Seen.
    let recorded = json!({"regarding": {"kind": "Order"}, "eventTime": "2026-01-01T00:00:00.000001Z",
        "series": {"count": 4, "lastObservedTime": "2026-01-01T01:00:00.000000Z"}, "note": "x"});
    let rk = &events_k8s_io_kinds()[0];
    let rc = cells(rk, &recorded);
    assert_eq!(rc[0], "2026-01-01T01:00:00.000000Z");
    assert_eq!(rc[3], "order");
    assert_eq!(rc[7], "2026-01-01T00:00:00.000001Z");
    assert_eq!(rc[8], 4);
}

#[test]
fn per_kind_hooks_and_selectable_fields() {
    let arc = arc_kinds();
    assert!(
        arc.iter()
            .all(|k| semantic_validation(k).is_some() && has_standard_columns(k))
    );
    let core = core_kinds();
    assert!(
        selectable_fields(kind(&core, "Event"))
            .iter()
            .any(|(l, _)| *l == "involvedObject.uid")
    );
    assert_eq!(
        selectable_fields(kind(&core, "Secret")),
        &[("type", "type")]
    );
    assert!(selectable_fields(kind(&arc, "Order")).is_empty());
}
