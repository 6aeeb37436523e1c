//! Object plumbing shared by every handler: storage keys, the stored form (no
//! `resourceVersion`), Go-style omission of empty metadata, timestamps and generation rules.

use serde_json::{Map, Value, json};

use super::errors::Subject;
use super::registry::ResourceKind;
use crate::storage::KeyValue;

/// Root of every storage key.
pub const KEY_ROOT: &str = "/registry";

/// The storage key of one object.
pub fn storage_key(kind: &ResourceKind, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) if kind.namespaced => format!("{}{ns}/{name}", collection_prefix(kind, None)),
        _ => format!("{}{name}", collection_prefix(kind, None)),
    }
}

/// The key prefix of a collection: all objects of a kind, or those of one namespace.
pub fn collection_prefix(kind: &ResourceKind, namespace: Option<&str>) -> String {
    let (group, plural) = storage_location(kind);
    match namespace {
        Some(ns) if kind.namespaced => format!("{KEY_ROOT}/{group}/{plural}/{ns}/"),
        _ => format!("{KEY_ROOT}/{group}/{plural}/"),
    }
}

/// Where a kind's objects are stored: `(group or "core", plural)`. `events.k8s.io/v1` Events
/// are stored as core `v1` Events (one object, two views, as upstream).
fn storage_location(kind: &ResourceKind) -> (&'static str, &'static str) {
    match (kind.group, kind.plural) {
        ("events.k8s.io", "events") => ("core", "events"),
        ("", plural) => ("core", plural),
        (group, plural) => (group, plural),
    }
}

/// Whether `kind` is a second view of objects stored as another kind.
pub fn is_storage_alias(kind: &ResourceKind) -> bool {
    kind.group == "events.k8s.io"
}

/// Decodes a stored object as `kind` presents it (converting shared-storage views).
pub fn decode(kind: &ResourceKind, kv: &KeyValue) -> Result<Value, String> {
    let object = from_stored(kv)?;
    Ok(if is_storage_alias(kind) {
        super::kinds::events::events_v1_from_core(&object)
    } else {
        object
    })
}

/// Encodes an object of `kind` for storage (converting shared-storage views).
pub fn encode(kind: &ResourceKind, object: &Value) -> Vec<u8> {
    if is_storage_alias(kind) {
        to_stored(&super::kinds::events::core_from_events_v1(object))
    } else {
        to_stored(object)
    }
}

/// Decodes a stored object and sets `metadata.resourceVersion` from the key's mod revision.
pub fn from_stored(kv: &KeyValue) -> Result<Value, String> {
    let mut object: Value = serde_json::from_slice(&kv.value)
        .map_err(|e| format!("stored object {} is not valid JSON: {e}", kv.key))?;
    set_resource_version(&mut object, kv.mod_revision);
    Ok(object)
}

/// The stored JSON of `kv` with `"resourceVersion":"<mod revision>"` spliced into its top-level
/// `metadata` object, without decoding it (the fast path of plain JSON lists). `None` when the
/// bytes have no top-level `metadata` object (the caller then decodes).
pub fn stored_with_resource_version(kv: &KeyValue) -> Option<Vec<u8>> {
    let bytes = &kv.value;
    let at = top_level_metadata_start(bytes)?;
    let field = format!("\"resourceVersion\":\"{}\"", kv.mod_revision);
    let empty = bytes[at..].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'}');
    let mut out = Vec::with_capacity(bytes.len() + field.len() + 1);
    out.extend_from_slice(&bytes[..at]);
    out.extend_from_slice(field.as_bytes());
    if !empty {
        out.push(b',');
    }
    out.extend_from_slice(&bytes[at..]);
    Some(out)
}

/// The offset just after the `{` that opens the value of the top-level key `metadata`.
/// Strings (and their escapes) are skipped, so a `"metadata"` inside a value never matches.
fn top_level_metadata_start(bytes: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                let end = i;
                i += 1;
                if depth == 1 && &bytes[start..end.min(bytes.len())] == b"metadata" {
                    let mut j = i;
                    while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                        j += 1;
                    }
                    if bytes.get(j) == Some(&b':') {
                        j += 1;
                        while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                            j += 1;
                        }
                        return (bytes.get(j) == Some(&b'{')).then_some(j + 1);
                    }
                }
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

/// The bytes stored for an object: compact JSON without `metadata.resourceVersion`.
pub fn to_stored(object: &Value) -> Vec<u8> {
    let mut copy = object.clone();
    if let Some(meta) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    serde_json::to_vec(&copy).unwrap_or_default()
}

/// Sets `metadata.resourceVersion` (a string, as Kubernetes sends it).
pub fn set_resource_version(object: &mut Value, revision: i64) {
    if let Some(meta) = metadata_mut(object) {
        meta.insert(
            "resourceVersion".into(),
            Value::String(revision.to_string()),
        );
    }
}

/// `metadata` as a mutable map, created if missing.
pub fn metadata_mut(object: &mut Value) -> Option<&mut Map<String, Value>> {
    let map = object.as_object_mut()?;
    let meta = map.entry("metadata").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    meta.as_object_mut()
}

/// A string field of `metadata`, or "".
pub fn meta_str<'a>(object: &'a Value, field: &str) -> &'a str {
    object
        .get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `metadata.name`.
pub fn name_of(object: &Value) -> &str {
    meta_str(object, "name")
}

/// `metadata.namespace`.
pub fn namespace_of(object: &Value) -> &str {
    meta_str(object, "namespace")
}

/// `metadata.uid`.
pub fn uid_of(object: &Value) -> &str {
    meta_str(object, "uid")
}

/// `metadata.finalizers` as strings.
pub fn finalizers_of(object: &Value) -> Vec<String> {
    object
        .get("metadata")
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the object has a `deletionTimestamp`.
pub fn is_terminating(object: &Value) -> bool {
    !meta_str(object, "deletionTimestamp").is_empty()
}

/// `metadata.generation`, or 0.
pub fn generation_of(object: &Value) -> i64 {
    object
        .get("metadata")
        .and_then(|m| m.get("generation"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// The current time as Kubernetes writes it: RFC 3339, UTC, second precision.
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A new random UUIDv4 for `metadata.uid`.
pub fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Removes empty metadata collections the way Go's `omitempty` would never have written them,
/// and makes sure ARC kinds always carry a `spec` (kube-rs derived types require it).
pub fn normalize(kind: &ResourceKind, object: &mut Value) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in ["finalizers", "ownerReferences", "managedFields"] {
            if meta
                .get(field)
                .is_some_and(|v| v.is_null() || v.as_array().is_some_and(Vec::is_empty))
            {
                meta.remove(field);
            }
        }
        for field in ["labels", "annotations"] {
            if meta
                .get(field)
                .is_some_and(|v| v.is_null() || v.as_object().is_some_and(Map::is_empty))
            {
                meta.remove(field);
            }
        }
        for field in ["generateName", "deletionTimestamp", "namespace"] {
            if meta
                .get(field)
                .is_some_and(|v| v.is_null() || v.as_str() == Some(""))
            {
                meta.remove(field);
            }
        }
        meta.remove("selfLink");
    }
    if !kind.group.is_empty()
        && let Some(map) = object.as_object_mut()
    {
        let spec = map.entry("spec").or_insert_with(|| json!({}));
        if spec.is_null() {
            *spec = json!({});
        }
        if map.get("status").is_some_and(Value::is_null) {
            map.remove("status");
        }
    }
}

/// Whether anything but `metadata` (and `status`, for kinds with a status subresource) differs:
/// the rule for bumping `metadata.generation`.
pub fn spec_changed(kind: &ResourceKind, old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut m = v.as_object().cloned().unwrap_or_default();
        m.remove("metadata");
        if kind.has_status {
            m.remove("status");
        }
        m.remove("apiVersion");
        m.remove("kind");
        m
    };
    strip(old) != strip(new)
}

/// Whether two objects are the same once `resourceVersion` and managed-field timestamps are
/// ignored — an update that changes nothing else is a no-op and creates no revision.
pub fn same_stored_form(old: &Value, new: &Value) -> bool {
    let clean = |v: &Value| {
        let mut c = v.clone();
        if let Some(meta) = c.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("resourceVersion");
            if let Some(Value::Array(entries)) = meta.get_mut("managedFields") {
                for e in entries {
                    if let Some(o) = e.as_object_mut() {
                        o.remove("time");
                    }
                }
            }
        }
        c
    };
    clean(old) == clean(new)
}

/// The error subject for an object of `kind` named `name`.
pub fn subject(kind: &ResourceKind, name: &str) -> Subject {
    Subject {
        group: kind.group.into(),
        plural: kind.plural.into(),
        kind: kind.kind.into(),
        name: name.into(),
    }
}

/// Records a write by `manager` in `metadata.managedFields` (operation `Update` or `Apply`),
/// replacing that manager's previous entry for the same operation and subresource.
pub fn record_manager(
    object: &mut Value,
    api_version: &str,
    manager: &str,
    operation: &str,
    subresource: Option<&str>,
    fields: Value,
) {
    let Some(meta) = metadata_mut(object) else {
        return;
    };
    let entries = meta.entry("managedFields").or_insert_with(|| json!([]));
    if !entries.is_array() {
        *entries = json!([]);
    }
    let Some(list) = entries.as_array_mut() else {
        return;
    };
    list.retain(|e| {
        !(e["manager"] == manager
            && e["operation"] == operation
            && e.get("subresource").and_then(Value::as_str) == subresource)
    });
    let mut entry = json!({
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": now_rfc3339(),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    });
    if let Some(sub) = subresource {
        entry["subresource"] = json!(sub);
    }
    list.push(entry);
}

/// The FieldsV1 set (`{"f:spec":{"f:x":{}}}`) of every leaf and list in `value`, as a manager
/// that wrote all of it would own. Lists are owned atomically.
pub fn field_set(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                out.insert(format!("f:{k}"), field_set(v));
            }
            Value::Object(out)
        }
        _ => json!({}),
    }
}

/// The fields of `object` a manager owns for a write: spec-like content plus labels and
/// annotations (`metadata` otherwise belongs to the server), restricted to `status` for the
/// status subresource and excluding it otherwise.
pub fn owned_fields(kind: &ResourceKind, object: &Value, status_only: bool) -> Value {
    let mut top = Map::new();
    if let Some(map) = object.as_object() {
        for (k, v) in map {
            match k.as_str() {
                "apiVersion" | "kind" => {}
                "metadata" if !status_only => {
                    let mut meta = Map::new();
                    for f in ["labels", "annotations", "finalizers", "ownerReferences"] {
                        if let Some(val) = v.get(f) {
                            meta.insert(format!("f:{f}"), field_set(val));
                        }
                    }
                    if !meta.is_empty() {
                        top.insert("f:metadata".into(), Value::Object(meta));
                    }
                }
                "metadata" => {}
                "status" if status_only || !kind.has_status => {
                    top.insert("f:status".into(), field_set(v));
                }
                _ if status_only => {}
                "status" => {}
                _ => {
                    top.insert(format!("f:{k}"), field_set(v));
                }
            }
        }
    }
    Value::Object(top)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order_kind() -> ResourceKind {
        ResourceKind {
            group: "arc.opendefense.cloud",
            version: "v1alpha1",
            kind: "Order",
            list_kind: "OrderList",
            plural: "orders",
            singular: "order",
            namespaced: true,
            short_names: &[],
            categories: &[],
            has_status: true,
            schema: json!({}),
            columns: vec![],
            description: "",
        }
    }

    #[test]
    fn keys_and_prefixes() {
        let k = order_kind();
        assert_eq!(
            storage_key(&k, Some("default"), "o1"),
            "/registry/arc.opendefense.cloud/orders/default/o1"
        );
        assert_eq!(
            collection_prefix(&k, Some("default")),
            "/registry/arc.opendefense.cloud/orders/default/"
        );
        assert_eq!(
            collection_prefix(&k, None),
            "/registry/arc.opendefense.cloud/orders/"
        );
    }

    #[test]
    fn stored_form_has_no_resource_version() {
        let obj = json!({"metadata": {"name": "o1", "resourceVersion": "5"}, "spec": {}});
        let bytes = to_stored(&obj);
        let kv = KeyValue {
            key: "k".into(),
            value: bytes,
            create_revision: 3,
            mod_revision: 9,
        };
        let back = from_stored(&kv).unwrap();
        assert_eq!(back["metadata"]["resourceVersion"], "9");
        assert!(
            !String::from_utf8(kv.value)
                .unwrap()
                .contains("resourceVersion")
        );
    }

    #[test]
    fn resource_version_is_spliced_into_top_level_metadata_only() {
        let stored =
            br#"{"spec":{"note":"\"metadata\":{","metadata":{"x":1}},"metadata":{"name":"o1"}}"#
                .to_vec();
        let kv = KeyValue {
            key: "k".into(),
            value: stored,
            create_revision: 1,
            mod_revision: 42,
        };
        let out = stored_with_resource_version(&kv).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["metadata"]["resourceVersion"], "42");
        assert!(v["spec"]["metadata"].get("resourceVersion").is_none());
        let empty = KeyValue {
            key: "k".into(),
            value: br#"{"metadata":{}}"#.to_vec(),
            create_revision: 1,
            mod_revision: 7,
        };
        let v: Value =
            serde_json::from_slice(&stored_with_resource_version(&empty).unwrap()).unwrap();
        assert_eq!(v["metadata"], json!({"resourceVersion": "7"}));
        let none = KeyValue {
            key: "k".into(),
            value: br#"{"spec":{}}"#.to_vec(),
            create_revision: 1,
            mod_revision: 7,
        };
        assert!(stored_with_resource_version(&none).is_none());
    }

    #[test]
    fn normalize_omits_empty_and_adds_spec() {
        let mut obj = json!({"metadata": {"name": "o1", "finalizers": [], "labels": {}}});
        normalize(&order_kind(), &mut obj);
        assert_eq!(obj, json!({"metadata": {"name": "o1"}, "spec": {}}));
    }

    #[test]
    fn generation_rule_ignores_metadata_and_status() {
        let k = order_kind();
        let a = json!({"metadata": {"labels": {"a": "b"}}, "spec": {"x": 1}, "status": {"p": 1}});
        let b = json!({"metadata": {}, "spec": {"x": 1}, "status": {"p": 2}});
        assert!(!spec_changed(&k, &a, &b));
        let c = json!({"metadata": {}, "spec": {"x": 2}});
        assert!(spec_changed(&k, &a, &c));
    }
}
