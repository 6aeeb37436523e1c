//! `metadata` rules every object obeys (apimachinery `ValidateObjectMetaAccessor`): name and
//! generateName, namespace, generation, labels, annotations, finalizers, ownerReferences.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::names::{
    is_dns1123_label, is_dns1123_subdomain, is_qualified_name, is_valid_label_value,
};
use super::schema::{object_meta_schema, validate_at};
use super::{FieldError, index};

/// Total size limit of all annotation keys and values.
pub const TOTAL_ANNOTATION_SIZE_LIMIT_BYTES: usize = 256 * 1024;

/// Where an object lives, which decides the namespace and name rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectScope {
    /// A namespaced object: `metadata.namespace` is required; names are DNS-1123 subdomains.
    Namespaced,
    /// A cluster-scoped object: `metadata.namespace` must be empty.
    Cluster,
    /// A Namespace itself: cluster-scoped, and its name must be a DNS-1123 label.
    NamespaceObject,
}

/// Every problem with `meta` (an object's `metadata`). The name must already be generated
/// from `generateName` if that was used; an empty name with a generateName is accepted.
pub fn validate_object_meta(meta: &Value, scope: ObjectScope) -> Vec<FieldError> {
    let mut errs = Vec::new();
    // Type errors first (a label that is a number, finalizers that are not a list, ...); the
    // semantic checks below only look at well-typed parts.
    errs.extend(validate_at(object_meta_schema(), meta, "metadata"));
    if !meta.is_object() {
        return errs;
    }

    let name_rule: fn(&str) -> Vec<String> = if scope == ObjectScope::NamespaceObject {
        is_dns1123_label
    } else {
        is_dns1123_subdomain
    };
    let name = meta.get("name").and_then(Value::as_str).unwrap_or("");
    let generate_name = meta
        .get("generateName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !generate_name.is_empty() {
        // A prefix may end in '-': validate it as if the dash were a letter.
        let masked = match generate_name.strip_suffix('-') {
            Some(rest) => format!("{rest}a"),
            None => generate_name.to_string(),
        };
        for msg in name_rule(&masked) {
            errs.push(FieldError::invalid(
                "metadata.generateName",
                generate_name,
                msg,
            ));
        }
    }
    if name.is_empty() {
        if generate_name.is_empty() {
            errs.push(FieldError::required(
                "metadata.name",
                "name or generateName is required",
            ));
        }
    } else {
        for msg in name_rule(name) {
            errs.push(FieldError::invalid("metadata.name", name, msg));
        }
    }

    let namespace = meta.get("namespace").and_then(Value::as_str).unwrap_or("");
    match scope {
        ObjectScope::Namespaced if namespace.is_empty() => {
            errs.push(FieldError::required("metadata.namespace", ""))
        }
        ObjectScope::Namespaced => {
            for msg in is_dns1123_label(namespace) {
                errs.push(FieldError::invalid("metadata.namespace", namespace, msg));
            }
        }
        ObjectScope::Cluster | ObjectScope::NamespaceObject if !namespace.is_empty() => {
            errs.push(FieldError::forbidden(
                "metadata.namespace",
                "not allowed on this type",
            ));
        }
        _ => {}
    }

    if let Some(generation) = meta
        .get("generation")
        .and_then(Value::as_i64)
        .filter(|g| *g < 0)
    {
        errs.push(FieldError::invalid(
            "metadata.generation",
            generation,
            "must be greater than or equal to 0",
        ));
    }

    if let Some(labels) = meta.get("labels").and_then(Value::as_object) {
        for (k, v) in labels {
            for msg in is_qualified_name(k) {
                errs.push(FieldError::invalid("metadata.labels", k.as_str(), msg));
            }
            if let Some(v) = v.as_str() {
                for msg in is_valid_label_value(v) {
                    errs.push(FieldError::invalid("metadata.labels", v, msg));
                }
            }
        }
    }

    if let Some(annotations) = meta.get("annotations").and_then(Value::as_object) {
        let mut total = 0usize;
        for (k, v) in annotations {
            for msg in is_qualified_name(&k.to_lowercase()) {
                errs.push(FieldError::invalid("metadata.annotations", k.as_str(), msg));
            }
            total += k.len() + v.as_str().map_or(0, str::len);
        }
        if total > TOTAL_ANNOTATION_SIZE_LIMIT_BYTES {
            errs.push(FieldError::too_long(
                "metadata.annotations",
                TOTAL_ANNOTATION_SIZE_LIMIT_BYTES,
            ));
        }
    }

    if let Some(finalizers) = meta.get("finalizers").and_then(Value::as_array) {
        let mut seen = HashSet::new();
        for (i, f) in finalizers.iter().enumerate() {
            let Some(f) = f.as_str() else { continue };
            let path = index("metadata.finalizers", i);
            for msg in is_qualified_name(f) {
                errs.push(FieldError::invalid(path.as_str(), f, msg));
            }
            if !seen.insert(f) {
                errs.push(FieldError::duplicate(path, f));
            }
        }
    }

    if let Some(refs) = meta.get("ownerReferences").and_then(Value::as_array) {
        validate_owner_references(refs, &mut errs);
    }
    errs
}

fn validate_owner_references(refs: &[Value], errs: &mut Vec<FieldError>) {
    const PATH: &str = "metadata.ownerReferences";
    let mut first_controller: Option<String> = None;
    for r in refs {
        let text = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
        let api_version = text("apiVersion");
        let version = api_version.rsplit('/').next().unwrap_or("");
        if version.is_empty() {
            errs.push(FieldError::invalid(
                format!("{PATH}.apiVersion"),
                api_version,
                "version must not be empty",
            ));
        }
        for (field, what) in [("kind", "kind"), ("name", "name"), ("uid", "uid")] {
            if text(field).is_empty() {
                errs.push(FieldError::invalid(
                    format!("{PATH}.{field}"),
                    "",
                    format!("{what} must not be empty"),
                ));
            }
        }
        if r.get("controller").and_then(Value::as_bool) == Some(true) {
            let current = format!("{}/{}", text("kind"), text("name"));
            match &first_controller {
                Some(first) => errs.push(FieldError::invalid(
                    PATH,
                    json!(refs),
                    format!("Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}"),
                )),
                None => first_controller = Some(current),
            }
        }
    }
}
