//! Tests of tables, ages and partial object metadata.

use super::*;
use crate::server::kinds::{arc_kinds, core_kinds};

fn kind(name: &str) -> ResourceKind {
    arc_kinds()
        .into_iter()
        .chain(core_kinds())
        .find(|k| k.kind == name)
        .unwrap()
}

fn secs(s: i64) -> SignedDuration {
    SignedDuration::from_secs(s)
}

#[test]
fn human_duration_boundaries_match_apimachinery() {
    const M: i64 = 60;
    const H: i64 = 3600;
    const D: i64 = 24 * H;
    const Y: i64 = 365 * D;
    let cases: &[(SignedDuration, &str)] = &[
        (SignedDuration::from_millis(-2000), "<invalid>"),
        (SignedDuration::from_millis(-1999), "0s"),
        (SignedDuration::from_millis(-1), "0s"),
        (secs(0), "0s"),
        (SignedDuration::from_millis(1999), "1s"),
        (secs(119), "119s"),
        (secs(120), "2m"),
        (secs(121), "2m1s"),
        (secs(5 * M + 12), "5m12s"),
        (secs(10 * M - 1), "9m59s"),
        (secs(10 * M), "10m"),
        (secs(10 * M + 59), "10m"),
        (secs(3 * H - 1), "179m"),
        (secs(3 * H), "3h"),
        (secs(3 * H + 5 * M), "3h5m"),
        (secs(8 * H - 1), "7h59m"),
        (secs(8 * H), "8h"),
        (secs(48 * H - 1), "47h"),
        (secs(48 * H), "2d"),
        (secs(2 * D + 5 * H), "2d5h"),
        (secs(8 * D - 1), "7d23h"),
        (secs(8 * D), "8d"),
        (secs(2 * Y - 1), "729d"),
        (secs(2 * Y), "2y"),
        (secs(2 * Y + 15 * D), "2y15d"),
        (secs(8 * Y - 1), "7y364d"),
        (secs(8 * Y), "8y"),
        (secs(30 * Y), "30y"),
    ];
    for (d, want) in cases {
        assert_eq!(human_duration(*d), *want, "{d:?}");
    }
}

#[test]
fn ages_of_timestamps() {
    let now: Timestamp = "2026-01-01T12:00:00Z".parse().unwrap();
    assert_eq!(age(Some("2026-01-01T11:54:48Z"), now), "5m12s");
    assert_eq!(age(Some("2026-01-01T12:00:05Z"), now), "<invalid>");
    assert_eq!(age(None, now), "<unknown>");
    assert_eq!(age(Some("not a time"), now), "<unknown>");
}

fn fixture() -> (Vec<Value>, TableOptions) {
    let now: Timestamp = "2026-01-01T12:00:00Z".parse().unwrap();
    let items = vec![
        json!({"apiVersion": "arc.opendefense.cloud/v1alpha1", "kind": "Order",
            "metadata": {"name": "o1", "namespace": "default", "uid": "u1", "resourceVersion": "105",
                         "creationTimestamp": "2026-01-01T11:54:48Z", "labels": {"tier": "a"}},
            "spec": {"artifacts": [{"type": "oci"}]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "artifactWorkflows": {"h": {"artifactIndex": 0, "phase": "Succeeded"}}}}),
        json!({"apiVersion": "arc.opendefense.cloud/v1alpha1", "kind": "Order",
            "metadata": {"name": "o2", "namespace": "default", "resourceVersion": "106"}, "spec": {}}),
    ];
    (
        items,
        TableOptions {
            now,
            ..TableOptions::default()
        },
    )
}

#[test]
fn list_table_has_name_columns_age_and_metadata_objects() {
    let (items, options) = fixture();
    let t = list_table(
        &kind("Order"),
        &items,
        &json!({"resourceVersion": "107", "continue": "abc"}),
        &options,
    );
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(
        t["metadata"],
        json!({"resourceVersion": "107", "continue": "abc"})
    );
    let defs = t["columnDefinitions"].as_array().unwrap();
    let names: Vec<&str> = defs.iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["Name", "Artifacts", "Succeeded", "Failed", "Ready", "Age"]
    );
    assert_eq!(defs[0]["format"], "name");
    assert_eq!(defs[5]["type"], "date");
    assert_eq!(defs[1]["type"], "integer");
    assert!(defs.iter().all(|d| d["priority"] == 0 && d["description"].as_str().is_some_and(|s| !s.is_empty())));
    assert_eq!(
        t["rows"][0]["cells"],
        json!(["o1", 1, 1, 0, "True", "5m12s"])
    );
    assert_eq!(
        t["rows"][1]["cells"],
        json!(["o2", 0, 0, 0, null, "<unknown>"])
    );
    assert_eq!(
        t["rows"][0]["object"],
        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": items[0]["metadata"]})
    );
}

#[test]
fn include_object_and_headers_options() {
    let (items, options) = fixture();
    let k = kind("Order");
    let full = list_table(
        &k,
        &items,
        &json!({"resourceVersion": "1"}),
        &TableOptions {
            include_object: IncludeObject::Object,
            ..options
        },
    );
    assert_eq!(full["rows"][1]["object"], items[1]);
    let none = list_table(
        &k,
        &items,
        &json!({"resourceVersion": "1"}),
        &TableOptions {
            include_object: IncludeObject::None,
            ..options
        },
    );
    assert!(none["rows"][0].get("object").is_none());
    let event = object_table(
        &k,
        &items[0],
        &TableOptions {
            include_column_definitions: false,
            ..options
        },
    );
    assert_eq!(event["columnDefinitions"], json!([]));
    assert_eq!(event["metadata"], json!({"resourceVersion": "105"}));
    assert_eq!(event["rows"].as_array().unwrap().len(), 1);
    let beta = object_table(
        &k,
        &items[0],
        &TableOptions {
            version: MetaVersion::V1beta1,
            ..options
        },
    );
    assert_eq!(beta["apiVersion"], "meta.k8s.io/v1beta1");
    assert_eq!(
        beta["rows"][0]["object"]["apiVersion"],
        "meta.k8s.io/v1beta1"
    );
    assert_eq!(IncludeObject::parse(None).unwrap(), IncludeObject::Metadata);
    assert_eq!(
        IncludeObject::parse(Some("None")).unwrap(),
        IncludeObject::None
    );
    assert_eq!(
        IncludeObject::parse(Some("Bogus")).unwrap_err().to_string(),
        "includeObject: Invalid value: \"Bogus\": must be 'Metadata', 'Object', 'None', or empty"
    );
    assert_eq!(MetaVersion::parse("v2"), None);
}

#[test]
fn wide_columns_and_event_layout() {
    let (_, options) = fixture();
    let awf = column_definitions(&kind("ArtifactWorkflow"));
    let names: Vec<(&str, i64)> = awf
        .iter()
        .map(|d| (d["name"].as_str().unwrap(), d["priority"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        names,
        [("Name", 0), ("Phase", 0), ("Message", 1), ("Age", 0)]
    );
    let ev = json!({"metadata": {"name": "e1", "namespace": "default", "creationTimestamp": "2026-01-01T11:00:00Z"},
        "involvedObject": {"kind": "Order", "name": "o1"}, "type": "Warning", "reason": "Failed",
        "message": "boom", "lastTimestamp": "2026-01-01T11:59:00Z", "firstTimestamp": "2026-01-01T11:00:00Z", "count": 3});
    let t = object_table(&kind("Event"), &ev, &options);
    let names: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Last Seen",
            "Type",
            "Reason",
            "Object",
            "Subobject",
            "Source",
            "Message",
            "First Seen",
            "Count",
            "Name"
        ]
    );
    assert_eq!(
        t["rows"][0]["cells"],
        json!([
            "60s", "Warning", "Failed", "order/o1", "", "", "boom", "60m", 3, "e1"
        ])
    );
}

#[test]
fn partial_object_metadata_lists() {
    let (items, _) = fixture();
    let list = partial_object_metadata_list(
        &items,
        &json!({"resourceVersion": "9", "continue": "", "remainingItemCount": 3}),
        MetaVersion::V1,
    );
    assert_eq!(list["kind"], "PartialObjectMetadataList");
    assert_eq!(
        list["metadata"],
        json!({"resourceVersion": "9", "continue": "", "remainingItemCount": 3})
    );
    assert_eq!(
        list["items"][1],
        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": items[1]["metadata"]})
    );
    let empty = partial_object_metadata_list(&[], &json!({}), MetaVersion::V1);
    assert_eq!(empty["items"], json!([]));
    assert_eq!(empty["metadata"]["resourceVersion"], "");
}
