//! The structural schema walk (what apiextensions does with a CRD's `openAPIV3Schema`):
//! type, required, enum, format and range checks; unknown-field detection and pruning; defaulting.
//!
//! Supported keywords: `type`, `properties`, `required`, `additionalProperties`, `items`,
//! `enum`, `nullable`, `format` (`date-time`, `byte`), `minimum`/`maximum` (+ `exclusive*`),
//! `minLength`/`maxLength`, `minItems`/`maxItems`, `maxProperties`, `allOf`, `default`,
//! `x-kubernetes-preserve-unknown-fields`, `x-kubernetes-int-or-string`,
//! `x-kubernetes-list-type` (`set`, `map` with `x-kubernetes-list-map-keys`). `pattern` and
//! `anyOf`/`oneOf` are not checked (the generated schemas carry none).

use std::sync::OnceLock;

use base64::Engine;
use serde_json::{Map, Value};

use super::{FieldError, child, index, key};
use crate::server::kinds::generate_structural_schema;
use crate::server::registry::ResourceKind;

/// The structural schema of `ObjectMeta`, used for `metadata` in place of the kinds'
/// `{type: object}` placeholder.
pub(super) fn object_meta_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let mut schema = generate_structural_schema::<
            k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
        >();
        // FieldsV1 is a free-form field set (`{"f:spec": {...}}`): keep it as it is.
        if let Some(fields) =
            schema.pointer_mut("/properties/managedFields/items/properties/fieldsV1")
        {
            *fields =
                serde_json::json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
        }
        schema
    })
}

/// The schema that accepts anything (a preserved unknown field).
static ANYTHING: Value = Value::Bool(true);

fn flag(s: &Map<String, Value>, name: &str) -> bool {
    s.get(name).and_then(Value::as_bool).unwrap_or(false)
}

/// The schema for `value`'s child `name` under `schema`: a property, the `additionalProperties`
/// schema, or `None` when the field is unknown. `Some(Value::Bool(true))` means "anything".
fn field_schema<'a>(s: &'a Map<String, Value>, name: &str, at_root: bool) -> Option<&'a Value> {
    if at_root && name == "metadata" {
        return Some(object_meta_schema());
    }
    if let Some(p) = s.get("properties").and_then(|p| p.get(name)) {
        return Some(p);
    }
    match s.get("additionalProperties") {
        Some(a @ Value::Object(_)) => Some(a),
        Some(t @ Value::Bool(true)) => Some(t),
        _ if flag(s, "x-kubernetes-preserve-unknown-fields") => Some(&ANYTHING),
        _ => None,
    }
}

fn is_nullable(s: &Value) -> bool {
    s.get("nullable").and_then(Value::as_bool).unwrap_or(false)
}

fn is_integer(v: &Value) -> bool {
    v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0)
}

/// The JSON type name of a value, as kube-openapi reports it.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) if is_integer(v) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(expected: &str, v: &Value) -> bool {
    match expected {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "integer" => v.is_number() && is_integer(v),
        "number" => v.is_number(),
        _ => true,
    }
}

/// Every schema violation of `object` (rooted at the kind's schema), except in `metadata`
/// (see `validate_object_meta`); `null` counts as absent (it is pruned unless nullable).
pub fn validate_against_schema(schema: &Value, object: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    walk(schema, object, "", true, &mut errs);
    errs
}

/// Schema violations of a value that sits at `path` inside an object (not a root).
pub(super) fn validate_at(schema: &Value, value: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    walk(schema, value, path, false, &mut errs);
    errs
}

fn walk(schema: &Value, value: &Value, path: &str, at_root: bool, errs: &mut Vec<FieldError>) {
    let Some(s) = schema.as_object() else { return };
    if value.is_null() {
        return;
    }
    for sub in s
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        walk(sub, value, path, at_root, errs);
    }
    if flag(s, "x-kubernetes-int-or-string") {
        if !(value.is_string() || (value.is_number() && is_integer(value))) {
            let t = type_name(value);
            errs.push(FieldError::type_invalid(
                path,
                t,
                format!("{path} in body must be of type integer-or-string: \"{t}\""),
            ));
        }
        return;
    }
    if let Some(expected) = s.get("type").and_then(Value::as_str)
        && !type_matches(expected, value)
    {
        let t = type_name(value);
        errs.push(FieldError::type_invalid(
            path,
            t,
            format!("{path} in body must be of type {expected}: \"{t}\""),
        ));
        return;
    }
    if let Some(allowed) = s.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let names: Vec<String> = allowed
            .iter()
            .map(|a| a.as_str().map_or_else(|| a.to_string(), str::to_string))
            .collect();
        errs.push(FieldError::not_supported(path, value.clone(), &names));
    }
    match value {
        Value::String(text) => check_string(s, text, path, errs),
        Value::Number(_) => check_number(s, value, path, errs),
        Value::Array(items) => check_array(s, items, path, errs),
        Value::Object(map) => check_object(s, map, path, at_root, errs),
        _ => {}
    }
}

fn check_string(s: &Map<String, Value>, text: &str, path: &str, errs: &mut Vec<FieldError>) {
    match s.get("format").and_then(Value::as_str) {
        Some("date-time") if text.parse::<jiff::Timestamp>().is_err() => {
            errs.push(FieldError::type_invalid(
                path,
                text,
                format!("{path} in body must be of type date-time: \"{text}\""),
            ));
        }
        Some("byte")
            if base64::engine::general_purpose::STANDARD
                .decode(text)
                .is_err() =>
        {
            errs.push(FieldError::type_invalid(
                path,
                text,
                format!("{path} in body must be of type byte: \"{text}\""),
            ));
        }
        _ => {}
    }
    let chars = text.chars().count() as u64;
    if let Some(max) = s
        .get("maxLength")
        .and_then(Value::as_u64)
        .filter(|&m| chars > m)
    {
        errs.push(FieldError::invalid(
            path,
            text,
            format!("{path} in body should be at most {max} chars long"),
        ));
    }
    if let Some(min) = s
        .get("minLength")
        .and_then(Value::as_u64)
        .filter(|&m| chars < m)
    {
        errs.push(FieldError::invalid(
            path,
            text,
            format!("{path} in body should be at least {min} chars long"),
        ));
    }
}

fn check_number(s: &Map<String, Value>, value: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let Some(n) = value.as_f64() else { return };
    if let Some(min) = s.get("minimum").and_then(Value::as_f64) {
        let exclusive = flag(s, "exclusiveMinimum");
        if n < min || (exclusive && n == min) {
            let op = if exclusive {
                "greater than"
            } else {
                "greater than or equal to"
            };
            errs.push(FieldError::invalid(
                path,
                value.clone(),
                format!("{path} in body should be {op} {}", s["minimum"]),
            ));
        }
    }
    if let Some(max) = s.get("maximum").and_then(Value::as_f64) {
        let exclusive = flag(s, "exclusiveMaximum");
        if n > max || (exclusive && n == max) {
            let op = if exclusive {
                "less than"
            } else {
                "less than or equal to"
            };
            errs.push(FieldError::invalid(
                path,
                value.clone(),
                format!("{path} in body should be {op} {}", s["maximum"]),
            ));
        }
    }
}

fn check_array(s: &Map<String, Value>, items: &[Value], path: &str, errs: &mut Vec<FieldError>) {
    if let Some(max) = s
        .get("maxItems")
        .and_then(Value::as_u64)
        .filter(|&m| items.len() as u64 > m)
    {
        errs.push(FieldError::too_many(path, items.len(), max as usize));
    }
    if let Some(min) = s
        .get("minItems")
        .and_then(Value::as_u64)
        .filter(|&m| (items.len() as u64) < m)
    {
        errs.push(FieldError::invalid(
            path,
            items.len(),
            format!("{path} in body should have at least {min} items"),
        ));
    }
    if let Some(item_schema) = s.get("items") {
        for (i, item) in items.iter().enumerate() {
            walk(item_schema, item, &index(path, i), false, errs);
        }
    }
    match s.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => {
            for (i, item) in items.iter().enumerate() {
                if items[..i].contains(item) {
                    errs.push(FieldError::duplicate(index(path, i), item.clone()));
                }
            }
        }
        Some("map") => {
            let keys: Vec<&str> = s
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|k| k.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let key_of = |item: &Value| -> Map<String, Value> {
                keys.iter()
                    .filter_map(|k| item.get(*k).map(|v| ((*k).to_string(), v.clone())))
                    .collect()
            };
            for (i, item) in items.iter().enumerate() {
                let k = key_of(item);
                if items[..i].iter().any(|prev| key_of(prev) == k) {
                    errs.push(FieldError::duplicate(index(path, i), Value::Object(k)));
                }
            }
        }
        _ => {}
    }
}

fn check_object(
    s: &Map<String, Value>,
    map: &Map<String, Value>,
    path: &str,
    at_root: bool,
    errs: &mut Vec<FieldError>,
) {
    for required in s
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if map.get(required).is_none_or(Value::is_null) {
            errs.push(FieldError::required(child(path, required), ""));
        }
    }
    if let Some(max) = s
        .get("maxProperties")
        .and_then(Value::as_u64)
        .filter(|&m| map.len() as u64 > m)
    {
        errs.push(FieldError::too_many(path, map.len(), max as usize));
    }
    let in_map = s.get("additionalProperties").is_some_and(Value::is_object)
        && s.get("properties").is_none();
    for (name, v) in map {
        if at_root && name == "metadata" {
            continue; // validate_object_meta's job
        }
        let sub_path = if in_map {
            key(path, name)
        } else {
            child(path, name)
        };
        if let Some(sub) = field_schema(s, name, at_root) {
            walk(sub, v, &sub_path, false, errs);
        }
    }
}

/// The paths (`spec.foo`, `metadata.bar`, `spec.artifacts[0].baz`) of fields the schema does
/// not know, without changing the object.
pub fn unknown_fields(kind: &ResourceKind, object: &Value) -> Vec<String> {
    let mut copy = object.clone();
    prune_unknown_fields(kind, &mut copy)
}

/// Removes what a CRD-backed server prunes: fields the schema does not know (returned, as
/// paths) and `null`s in non-nullable fields (not returned: they are not unknown).
pub fn prune_unknown_fields(kind: &ResourceKind, object: &mut Value) -> Vec<String> {
    let mut pruned = Vec::new();
    prune(&kind.schema, object, "", true, &mut pruned);
    pruned
}

fn prune(schema: &Value, value: &mut Value, path: &str, at_root: bool, pruned: &mut Vec<String>) {
    let Some(s) = schema.as_object() else { return };
    match value {
        Value::Object(map) => {
            let names: Vec<String> = map.keys().cloned().collect();
            for name in names {
                let sub_path = child(path, &name);
                match field_schema(s, &name, at_root) {
                    None => {
                        map.remove(&name);
                        pruned.push(sub_path);
                    }
                    Some(sub) => {
                        let v = map.get_mut(&name).expect("key listed above");
                        if v.is_null() && sub.is_object() && !is_nullable(sub) {
                            map.remove(&name);
                        } else {
                            prune(sub, v, &sub_path, false, pruned);
                        }
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = s.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune(item_schema, item, &index(path, i), false, pruned);
                }
            }
        }
        _ => {}
    }
}

/// Fills absent (or non-nullable `null`) fields that have a schema `default`, recursively, as a
/// CRD-backed server does on create, update and read. `metadata` is left alone.
pub fn apply_defaults(kind: &ResourceKind, object: &mut Value) {
    default_into(&kind.schema, object, true);
}

fn default_into(schema: &Value, value: &mut Value, at_root: bool) {
    let Some(s) = schema.as_object() else { return };
    match value {
        Value::Object(map) => {
            if let Some(props) = s.get("properties").and_then(Value::as_object) {
                for (name, sub) in props {
                    if at_root && name == "metadata" {
                        continue;
                    }
                    let Some(default) = sub.get("default") else {
                        continue;
                    };
                    let absent = map
                        .get(name)
                        .is_none_or(|v| v.is_null() && !is_nullable(sub));
                    if absent {
                        map.insert(name.clone(), default.clone());
                    }
                }
            }
            for (name, v) in map.iter_mut() {
                if at_root && name == "metadata" {
                    continue;
                }
                if let Some(sub) = field_schema(s, name, false) {
                    default_into(sub, v, false);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = s.get("items") {
                for item in items {
                    default_into(item_schema, item, false);
                }
            }
        }
        _ => {}
    }
}
