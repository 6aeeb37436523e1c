//! Kind-specific semantic checks, run after the schema walk (which already enforces types,
//! required fields and enums such as Endpoint `usage` and ArtifactWorkflow `status.phase`):
//! references must name DNS-1123 subdomains, names that select something must not be empty,
//! numbers must be in range. Registered per kind in [`crate::server::kinds`].

use std::collections::HashSet;

use serde_json::Value;

use super::names::{is_config_map_key, is_dns1123_subdomain};
use super::{FieldError, child, index, key};

/// Largest total size of a Secret's data (upstream `MaxSecretSize`).
pub const MAX_SECRET_SIZE_BYTES: usize = 1024 * 1024;

fn text<'a>(o: &'a Value, pointer: &str) -> Option<&'a str> {
    o.pointer(pointer).and_then(Value::as_str)
}

/// A `{name}` reference at `pointer` (reported at `path`): when set, the name must be a DNS-1123
/// subdomain.
fn reference(o: &Value, pointer: &str, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(name) = text(o, &format!("{pointer}/name")).filter(|n| !n.is_empty()) {
        for msg in is_dns1123_subdomain(name) {
            errs.push(FieldError::invalid(child(path, "name"), name, msg));
        }
    }
}

/// A string at `pointer` that must be present and non-empty (the schema catches absence, this
/// catches `""`).
fn non_empty(o: &Value, pointer: &str, path: &str, errs: &mut Vec<FieldError>) {
    if text(o, pointer) == Some("") {
        errs.push(FieldError::required(path, ""));
    }
}

/// Workflow parameters: names non-empty and unique.
fn parameters(o: &Value, pointer: &str, path: &str, errs: &mut Vec<FieldError>) {
    let Some(params) = o.pointer(pointer).and_then(Value::as_array) else {
        return;
    };
    let mut seen = HashSet::new();
    for (i, p) in params.iter().enumerate() {
        let name_path = child(&index(path, i), "name");
        match p.get("name").and_then(Value::as_str) {
            Some("") => errs.push(FieldError::required(name_path, "")),
            Some(name) if !seen.insert(name) => errs.push(FieldError::duplicate(name_path, name)),
            _ => {}
        }
    }
}

/// The workflow template reference: a non-empty DNS-1123 subdomain name.
fn workflow_template_ref(o: &Value, errs: &mut Vec<FieldError>) {
    match text(o, "/spec/workflowTemplateRef/name") {
        Some("") => errs.push(FieldError::required("spec.workflowTemplateRef.name", "")),
        Some(_) => reference(
            o,
            "/spec/workflowTemplateRef",
            "spec.workflowTemplateRef",
            errs,
        ),
        None => {}
    }
}

/// Order: artifact types non-empty, Endpoint references well-formed,
/// `ttlSecondsAfterCompletion` not negative.
pub fn order(o: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    reference(
        o,
        "/spec/defaults/srcRef",
        "spec.defaults.srcRef",
        &mut errs,
    );
    reference(
        o,
        "/spec/defaults/dstRef",
        "spec.defaults.dstRef",
        &mut errs,
    );
    if let Some(artifacts) = o.pointer("/spec/artifacts").and_then(Value::as_array) {
        for i in 0..artifacts.len() {
            let path = index("spec.artifacts", i);
            let pointer = format!("/spec/artifacts/{i}");
            non_empty(
                o,
                &format!("{pointer}/type"),
                &child(&path, "type"),
                &mut errs,
            );
            reference(
                o,
                &format!("{pointer}/srcRef"),
                &child(&path, "srcRef"),
                &mut errs,
            );
            reference(
                o,
                &format!("{pointer}/dstRef"),
                &child(&path, "dstRef"),
                &mut errs,
            );
        }
    }
    if let Some(ttl) = o
        .pointer("/spec/ttlSecondsAfterCompletion")
        .and_then(Value::as_i64)
        .filter(|t| *t < 0)
    {
        errs.push(FieldError::invalid(
            "spec.ttlSecondsAfterCompletion",
            ttl,
            "must be greater than or equal to 0",
        ));
    }
    errs
}

/// Endpoint: `type` and `remoteURL` non-empty, the Secret reference well-formed.
pub fn endpoint(o: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    non_empty(o, "/spec/type", "spec.type", &mut errs);
    non_empty(o, "/spec/remoteURL", "spec.remoteURL", &mut errs);
    reference(o, "/spec/secretRef", "spec.secretRef", &mut errs);
    errs
}

/// ArtifactType and ClusterArtifactType: a template name, unique parameter names, non-empty
/// Endpoint types in the rules.
pub fn artifact_type(o: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    workflow_template_ref(o, &mut errs);
    parameters(o, "/spec/parameters", "spec.parameters", &mut errs);
    for list in ["srcTypes", "dstTypes"] {
        if let Some(types) = o
            .pointer(&format!("/spec/rules/{list}"))
            .and_then(Value::as_array)
        {
            for (i, t) in types.iter().enumerate() {
                if t.as_str() == Some("") {
                    errs.push(FieldError::required(
                        index(&format!("spec.rules.{list}"), i),
                        "",
                    ));
                }
            }
        }
    }
    errs
}

/// ArtifactWorkflow: a template name, unique parameter names, Secret references well-formed.
pub fn artifact_workflow(o: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    workflow_template_ref(o, &mut errs);
    parameters(o, "/spec/parameters", "spec.parameters", &mut errs);
    reference(o, "/spec/srcSecretRef", "spec.srcSecretRef", &mut errs);
    reference(o, "/spec/dstSecretRef", "spec.dstSecretRef", &mut errs);
    errs
}

/// Secret: data keys are config keys, data at most 1 MiB, `kubernetes.io/dockerconfigjson`
/// Secrets carry `.dockerconfigjson`.
pub fn secret(o: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut total = 0usize;
    for field in ["data", "stringData"] {
        if let Some(data) = o.get(field).and_then(Value::as_object) {
            for (k, v) in data {
                for msg in is_config_map_key(k) {
                    errs.push(FieldError::invalid(key(field, k), k.as_str(), msg));
                }
                // base64 in `data` is about 4/3 of the decoded size; count decoded bytes.
                let len = v.as_str().map_or(0, str::len);
                total += if field == "data" { len / 4 * 3 } else { len };
            }
        }
    }
    if total > MAX_SECRET_SIZE_BYTES {
        errs.push(FieldError::too_long("data", MAX_SECRET_SIZE_BYTES));
    }
    if text(o, "/type") == Some("kubernetes.io/dockerconfigjson") {
        let has = |f: &str| o.get(f).and_then(|d| d.get(".dockerconfigjson")).is_some();
        if !has("data") && !has("stringData") {
            errs.push(FieldError::required("data[.dockerconfigjson]", ""));
        }
    }
    errs
}
