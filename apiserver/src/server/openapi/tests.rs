//! Tests that walk the documents: every `$ref` resolves, every operation carries what kubectl
//! needs, and `kubectl explain`'s lookup finds the kinds.

use super::*;
use crate::server::kinds::{arc_kinds, core_kinds, events_k8s_io_kinds};

fn embedded() -> Vec<ResourceKind> {
    arc_kinds()
        .into_iter()
        .chain(core_kinds())
        .chain(events_k8s_io_kinds())
        .collect()
}

/// Every `$ref` string in `doc`.
fn refs(doc: &Value, out: &mut Vec<String>) {
    match doc {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    out.push(v.as_str().expect("$ref is a string").to_string());
                } else {
                    refs(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| refs(i, out)),
        _ => {}
    }
}

/// Every key named `name` anywhere (to find forbidden keywords).
fn count_key(doc: &Value, name: &str) -> usize {
    match doc {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| usize::from(k == name) + count_key(v, name))
            .sum(),
        Value::Array(items) => items.iter().map(|i| count_key(i, name)).sum(),
        _ => 0,
    }
}

fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

const WRITE_VERBS: [&str; 3] = ["post", "put", "patch"];
const VERBS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn param_names(op: &Value) -> Vec<String> {
    op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str().map(String::from))
        .collect()
}

/// The contract's OA6 checks on a document of either flavour.
fn check_document(doc: &Value, flavour: Flavour) {
    let mut all = Vec::new();
    refs(doc, &mut all);
    assert!(!all.is_empty());
    for r in &all {
        assert!(r.starts_with(flavour.ref_prefix()), "{r}");
        assert!(resolve(doc, r).is_some(), "unresolved $ref {r}");
    }
    let text = doc.to_string();
    assert!(
        !text.contains("strategic-merge-patch"),
        "SMP must never be advertised"
    );
    let mut ids = std::collections::HashSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for verb in VERBS {
            let Some(op) = item.get(verb) else { continue };
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{verb} {path} has an operationId"));
            assert!(ids.insert(id.to_string()), "duplicate operationId {id}");
            assert!(op["x-kubernetes-action"].is_string(), "{id}");
            let gvk = &op["x-kubernetes-group-version-kind"];
            assert!(
                gvk.is_object()
                    && gvk["kind"].is_string()
                    && gvk["version"].is_string()
                    && gvk["group"].is_string(),
                "{id}: {gvk}"
            );
            let names = param_names(op);
            if WRITE_VERBS.contains(&verb) {
                for p in ["fieldValidation", "dryRun", "fieldManager"] {
                    assert!(names.iter().any(|n| n == p), "{id} lacks {p}");
                }
            }
            if verb == "patch" {
                assert!(names.iter().any(|n| n == "force"), "{id} lacks force");
                let types: Vec<String> = match flavour {
                    Flavour::V3 => op["requestBody"]["content"]
                        .as_object()
                        .unwrap()
                        .keys()
                        .cloned()
                        .collect(),
                    Flavour::V2 => op["consumes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|t| t.as_str().unwrap().to_string())
                        .collect(),
                };
                assert_eq!(
                    types,
                    [
                        "application/json-patch+json",
                        "application/merge-patch+json",
                        "application/apply-patch+yaml"
                    ],
                    "{id}"
                );
            }
            if op["x-kubernetes-action"] == "list" {
                for p in [
                    "labelSelector",
                    "fieldSelector",
                    "limit",
                    "continue",
                    "resourceVersion",
                    "resourceVersionMatch",
                    "watch",
                    "allowWatchBookmarks",
                    "sendInitialEvents",
                    "timeoutSeconds",
                ] {
                    assert!(names.iter().any(|n| n == p), "{id} lacks {p}");
                }
            }
            // Path parameters are declared on the path item.
            let declared: Vec<String> = param_names(item);
            for segment in path.split('/').filter(|s| s.starts_with('{')) {
                let name = segment.trim_matches(['{', '}']);
                assert!(declared.iter().any(|d| d == name), "{path} declares {name}");
            }
        }
    }
    let schemas = match flavour {
        Flavour::V3 => &doc["components"]["schemas"],
        Flavour::V2 => &doc["definitions"],
    };
    for name in [
        "ObjectMeta",
        "ListMeta",
        "ManagedFieldsEntry",
        "OwnerReference",
        "Time",
        "FieldsV1",
        "Status",
        "StatusDetails",
        "StatusCause",
        "DeleteOptions",
        "Preconditions",
        "Patch",
        "WatchEvent",
    ] {
        assert!(
            schemas
                .get(format!("io.k8s.apimachinery.pkg.apis.meta.v1.{name}"))
                .is_some(),
            "{name} defined"
        );
    }
}

#[test]
fn v3_documents_are_complete_and_self_contained() {
    for kinds in [arc_kinds(), embedded()] {
        let api = OpenApi::new(&kinds);
        for (g, v) in group_versions(&kinds) {
            let doc: Value = serde_json::from_slice(&api.v3(&v3_key(g, v)).unwrap().body).unwrap();
            assert_eq!(doc["openapi"], "3.0.0");
            check_document(&doc, Flavour::V3);
        }
    }
}

#[test]
fn v2_document_is_complete_and_swagger_2() {
    let doc: Value = serde_json::from_slice(&OpenApi::new(&embedded()).v2().body).unwrap();
    assert_eq!(doc["swagger"], "2.0");
    check_document(&doc, Flavour::V2);
    for keyword in ["nullable", "anyOf", "oneOf", "requestBody", "components"] {
        assert_eq!(count_key(&doc, keyword), 0, "{keyword} is not Swagger 2.0");
    }
    for name in [
        "cloud.opendefense.arc.v1alpha1.Order",
        "cloud.opendefense.arc.v1alpha1.OrderList",
        "io.k8s.api.core.v1.Secret",
        "io.k8s.api.events.v1.Event",
    ] {
        assert!(doc["definitions"].get(name).is_some(), "{name}");
    }
}

#[test]
fn kind_definitions_carry_gvk_lists_and_list_map_conditions() {
    let doc = v3_document(&arc_kinds(), "arc.opendefense.cloud", "v1alpha1").unwrap();
    let schemas = &doc["components"]["schemas"];
    let order = &schemas["cloud.opendefense.arc.v1alpha1.Order"];
    assert_eq!(
        order["x-kubernetes-group-version-kind"],
        json!([{"group": "arc.opendefense.cloud", "kind": "Order", "version": "v1alpha1"}])
    );
    let conditions = &order["properties"]["status"]["properties"]["conditions"];
    assert_eq!(conditions["x-kubernetes-list-type"], "map");
    assert_eq!(conditions["x-kubernetes-list-map-keys"], json!(["type"]));
    for p in ["apiVersion", "kind", "metadata", "spec", "status"] {
        assert!(
            order["properties"][p]["description"].is_string(),
            "{p} is described"
        );
    }
    let list = &schemas["cloud.opendefense.arc.v1alpha1.OrderList"];
    assert_eq!(
        list["x-kubernetes-group-version-kind"][0]["kind"],
        "OrderList"
    );
    assert_eq!(
        list["properties"]["items"]["items"]["$ref"],
        "#/components/schemas/cloud.opendefense.arc.v1alpha1.Order"
    );
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    for expected in [
        "/apis/arc.opendefense.cloud/v1alpha1/namespaces/{namespace}/orders",
        "/apis/arc.opendefense.cloud/v1alpha1/namespaces/{namespace}/orders/{name}",
        "/apis/arc.opendefense.cloud/v1alpha1/namespaces/{namespace}/orders/{name}/status",
        "/apis/arc.opendefense.cloud/v1alpha1/orders",
        "/apis/arc.opendefense.cloud/v1alpha1/clusterartifacttypes",
        "/apis/arc.opendefense.cloud/v1alpha1/clusterartifacttypes/{name}",
    ] {
        assert!(paths.iter().any(|p| *p == expected), "{expected}");
    }
    assert!(
        !paths
            .iter()
            .any(|p| p.ends_with("artifacttypes/{name}/status")),
        "ArtifactTypes have no status"
    );
    let ops = &doc["paths"]["/apis/arc.opendefense.cloud/v1alpha1/namespaces/{namespace}/orders"];
    assert_eq!(
        ops["get"]["operationId"],
        "listArcOpendefenseCloudV1alpha1NamespacedOrder"
    );
    assert_eq!(
        ops["delete"]["operationId"],
        "deleteArcOpendefenseCloudV1alpha1CollectionNamespacedOrder"
    );
    assert_eq!(ops["delete"]["x-kubernetes-action"], "deletecollection");
    let cluster = &doc["paths"]["/apis/arc.opendefense.cloud/v1alpha1/clusterartifacttypes/{name}"];
    assert_eq!(
        cluster["patch"]["operationId"],
        "patchArcOpendefenseCloudV1alpha1ClusterArtifactType"
    );
    let core = v3_document(&core_kinds(), "", "v1").unwrap();
    assert_eq!(
        core["paths"]["/api/v1/namespaces/{namespace}/secrets"]["get"]["operationId"],
        "listCoreV1NamespacedSecret"
    );
    assert_eq!(
        core["paths"]["/api/v1/namespaces/{name}/status"]["get"]["operationId"],
        "readCoreV1NamespaceStatus"
    );
}

/// What `kubectl explain` does with a v3 document: path → operation GVK → the schema whose
/// GVK list has it → fields, following `$ref` and `allOf`.
fn explain<'a>(doc: &'a Value, path: &str, fields: &[&str]) -> &'a Value {
    let item = &doc["paths"][path];
    let gvk = VERBS
        .iter()
        .find_map(|v| item.get(*v))
        .map(|op| &op["x-kubernetes-group-version-kind"])
        .expect("an operation");
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut schema = schemas
        .values()
        .find(|s| {
            s["x-kubernetes-group-version-kind"]
                .as_array()
                .is_some_and(|l| l.contains(gvk))
        })
        .unwrap_or_else(|| panic!("no schema for {gvk}"));
    for field in fields {
        let deref = |s: &'a Value| -> &'a Value {
            let target = s.get("$ref").or_else(|| s.pointer("/allOf/0/$ref"));
            target.map_or(s, |r| resolve(doc, r.as_str().unwrap()).expect("resolves"))
        };
        schema = deref(&deref(schema)["properties"][field]);
        assert!(!schema.is_null(), "field {field}");
    }
    schema
}

#[test]
fn kubectl_explain_lookup_finds_fields() {
    let doc = v3_document(&arc_kinds(), "arc.opendefense.cloud", "v1alpha1").unwrap();
    let orders = "/apis/arc.opendefense.cloud/v1alpha1/namespaces/{namespace}/orders";
    assert!(
        explain(&doc, orders, &[])["description"]
            .as_str()
            .unwrap()
            .starts_with("An Order lists artifacts")
    );
    assert_eq!(
        explain(&doc, orders, &["spec", "artifacts"])["type"],
        "array"
    );
    assert_eq!(
        explain(&doc, orders, &["metadata", "labels"])["type"],
        "object"
    );
    assert_eq!(
        explain(&doc, orders, &["metadata", "creationTimestamp"])["format"],
        "date-time"
    );
    let cats = "/apis/arc.opendefense.cloud/v1alpha1/clusterartifacttypes/{name}";
    assert_eq!(
        explain(&doc, cats, &["spec", "workflowTemplateRef", "name"])["type"],
        "string"
    );
}

#[test]
fn v3_root_lists_only_served_group_versions_with_content_hashes() {
    let api = OpenApi::new(&arc_kinds());
    let root = api.v3_root();
    let paths = root["paths"].as_object().unwrap();
    assert_eq!(
        paths.keys().collect::<Vec<_>>(),
        ["apis/arc.opendefense.cloud/v1alpha1"]
    );
    assert_eq!(root.as_object().unwrap().len(), 1, "nothing but paths");
    let url = paths["apis/arc.opendefense.cloud/v1alpha1"]["serverRelativeURL"]
        .as_str()
        .unwrap();
    let hash = url
        .strip_prefix("/openapi/v3/apis/arc.opendefense.cloud/v1alpha1?hash=")
        .unwrap();
    assert_eq!(hash.len(), 128);
    assert!(
        hash.chars()
            .all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c))
    );
    let doc = api.v3("apis/arc.opendefense.cloud/v1alpha1").unwrap();
    assert_eq!(doc.hash, hash);
    assert_eq!(content_hash(&doc.body), hash);
    assert_eq!(doc.etag(), format!("\"{hash}\""));
    assert_eq!(
        api.check_hash("apis/arc.opendefense.cloud/v1alpha1", Some(hash)),
        Some(HashCheck::Current)
    );
    assert_eq!(
        api.check_hash("/apis/arc.opendefense.cloud/v1alpha1", None),
        Some(HashCheck::Unpinned)
    );
    assert_eq!(
        api.check_hash("apis/arc.opendefense.cloud/v1alpha1", Some("WRONG")),
        Some(HashCheck::Redirect(url.to_string()))
    );
    assert_eq!(api.check_hash("apis/apps/v1", None), None);
    // The same registry renders the same bytes; a changed schema changes the hash.
    assert_eq!(
        OpenApi::new(&arc_kinds())
            .v3("apis/arc.opendefense.cloud/v1alpha1")
            .unwrap()
            .hash,
        hash
    );
    let mut changed = arc_kinds();
    changed[0].schema["properties"]["spec"]["description"] = json!("changed");
    assert_ne!(
        OpenApi::new(&changed)
            .v3("apis/arc.opendefense.cloud/v1alpha1")
            .unwrap()
            .hash,
        hash
    );
    // Embedded mode also lists core v1 and events.k8s.io.
    let embedded_root = OpenApi::new(&embedded()).v3_root();
    let keys: Vec<&String> = embedded_root["paths"].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "api/v1",
            "apis/arc.opendefense.cloud/v1alpha1",
            "apis/events.k8s.io/v1"
        ]
    );
}

/// A protobuf message as `(field, payload)` pairs (varints as their value's bytes).
fn decode(mut bytes: &[u8]) -> Vec<(u64, Vec<u8>)> {
    fn varint(bytes: &mut &[u8]) -> u64 {
        let mut value = 0u64;
        for shift in (0..).step_by(7) {
            let b = bytes[0];
            *bytes = &bytes[1..];
            value |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                break;
            }
        }
        value
    }
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let key = varint(&mut bytes);
        let payload = match key & 7 {
            0 => varint(&mut bytes).to_le_bytes().to_vec(),
            1 => {
                let (head, rest) = bytes.split_at(8);
                bytes = rest;
                head.to_vec()
            }
            2 => {
                let len = varint(&mut bytes) as usize;
                let (head, rest) = bytes.split_at(len);
                bytes = rest;
                head.to_vec()
            }
            other => panic!("unexpected wire type {other}"),
        };
        out.push((key >> 3, payload));
    }
    out
}

fn field(msg: &[(u64, Vec<u8>)], number: u64) -> Vec<&[u8]> {
    msg.iter()
        .filter(|(f, _)| *f == number)
        .map(|(_, p)| p.as_slice())
        .collect()
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

/// The `value` (field 2) of the `Named*` entry (field `number`) whose name (field 1) is `name`.
fn named(msg: &[(u64, Vec<u8>)], number: u64, name: &str) -> Vec<(u64, Vec<u8>)> {
    field(msg, number)
        .into_iter()
        .map(decode)
        .find(|entry| field(entry, 1).first().map(|n| text(n)) == Some(name))
        .map(|entry| decode(field(&entry, 2)[0]))
        .unwrap_or_else(|| panic!("no entry {name}"))
}

#[test]
fn v2_protobuf_encodes_the_swagger_document() {
    let api = OpenApi::new(&arc_kinds());
    let doc = decode(&api.v2_as(V2Format::Protobuf).body);
    assert_eq!(text(field(&doc, 1)[0]), "2.0");
    // definitions → Order → vendor extension x-kubernetes-group-version-kind (JSON as Any.yaml)
    let definitions = decode(field(&doc, 9)[0]);
    let order = named(&definitions, 1, "cloud.opendefense.arc.v1alpha1.Order");
    let gvk = named(&order, 31, "x-kubernetes-group-version-kind");
    let yaml: Value = serde_json::from_str(text(field(&gvk, 2)[0])).unwrap();
    assert_eq!(
        yaml,
        json!([{"group": "arc.opendefense.cloud", "kind": "Order", "version": "v1alpha1"}])
    );
    // properties → metadata is a $ref with a description
    let properties = decode(field(&order, 25)[0]);
    let metadata = named(&properties, 1, "metadata");
    assert_eq!(
        text(field(&metadata, 1)[0]),
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert!(text(field(&metadata, 4)[0]).starts_with("Standard object's metadata"));
    // type of spec is TypeItem{"object"}
    let spec = named(&properties, 1, "spec");
    assert_eq!(text(field(&decode(field(&spec, 22)[0]), 1)[0]), "object");
    // paths → the object path → patch → consumes: no strategic merge patch
    let paths = decode(field(&doc, 8)[0]);
    let item = named(
        &paths,
        2,
        "/apis/arc.opendefense.cloud/v1alpha1/namespaces/{namespace}/orders/{name}",
    );
    let patch = decode(field(&item, 8)[0]);
    let consumes: Vec<&str> = field(&patch, 7).into_iter().map(text).collect();
    assert_eq!(
        consumes,
        [
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/apply-patch+yaml"
        ]
    );
    assert_eq!(
        text(field(&patch, 5)[0]),
        "patchArcOpendefenseCloudV1alpha1NamespacedOrder"
    );
    assert_eq!(api.v2_as(V2Format::Json).body, api.v2().body);
}

#[test]
fn v2_accept_negotiation() {
    assert_eq!(V2Format::negotiate(None), Some(V2Format::Json));
    assert_eq!(
        V2Format::negotiate(Some("application/json, */*")),
        Some(V2Format::Json)
    );
    assert_eq!(
        V2Format::negotiate(Some(
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
        )),
        Some(V2Format::Protobuf)
    );
    assert_eq!(
        V2Format::negotiate(Some(
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf;q=1"
        )),
        Some(V2Format::Protobuf)
    );
    assert_eq!(
        V2Format::negotiate(Some("application/vnd.kubernetes.protobuf")),
        None
    );
    assert_eq!(
        V2Format::Protobuf.content_type(),
        "application/octet-stream"
    );
}
