//! Workflow parameters derived from an artifact, following the original ARC's convention:
//! `srcType`, `srcRemoteURL`, `srcSecret`, `dstType`, `dstRemoteURL`, `dstSecret`, and the
//! artifact's free-form `spec` flattened into camelCase names (`spec.image` → `specImage`,
//! `spec.a.b` → `specAB`, `spec.tags[0]` → `specTags0`), then the ArtifactType's own
//! `parameters`, which override everything derived.
//!
//! Values are strings: JSON strings as they are, booleans as `true`/`false`, numbers in their
//! JSON form (`30`, `1.5`, `10000000`), `null` as the empty string. Elements of lists that are
//! objects or lists are flattened further (`spec.files[0].path` → `specFiles0Path`).
//!
//! Where the Go original differs, ARC follows its documented convention instead of the
//! accident: the original appends nested keys uncapitalized (`spec.a.b` → `specaB`), prints
//! numbers with Go's `%v` (`10000000` → `1e+07`) and list elements that are objects as Go maps
//! (`map[path:a]`). For the flat specs every shipped template uses (`image`, `override`,
//! `path`, …) the names and values are identical. Two fields that would flatten to the same
//! name are an error rather than one silently overwriting the other.

use std::collections::BTreeMap;

use apiserver::types::{ArtifactWorkflowParameter, EndpointSpec};
use serde_json::Value;

/// Why an artifact's `spec` cannot be turned into parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlattenError {
    /// The spec is a string, number, list or boolean.
    #[error("spec must be an object, not {found}")]
    NotAnObject {
        /// The JSON type found instead.
        found: &'static str,
    },
    /// A key is the empty string, which gives no parameter name.
    #[error("spec has an empty key at {path}")]
    EmptyKey {
        /// Where, as a JSON path (`spec.a`).
        path: String,
    },
    /// Two different fields flatten to the same parameter name.
    #[error("{first} and {second} both become parameter `{name}`")]
    Collision {
        /// The parameter name.
        name: String,
        /// The first field, as a path.
        first: String,
        /// The second field, as a path.
        second: String,
    },
}

/// The name of a JSON value's type, for messages.
pub fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Flattens an artifact spec into parameters named `spec…`. A missing spec (`null`) gives none.
pub fn flatten_spec(spec: &Value) -> Result<BTreeMap<String, String>, FlattenError> {
    let mut out = BTreeMap::new();
    let mut origins = BTreeMap::new();
    match spec {
        Value::Null => {}
        Value::Object(_) => flatten_into("spec", "spec", spec, &mut out, &mut origins)?,
        other => {
            return Err(FlattenError::NotAnObject {
                found: json_type_name(other),
            });
        }
    }
    Ok(out)
}

fn flatten_into(
    name: &str,
    path: &str,
    value: &Value,
    out: &mut BTreeMap<String, String>,
    origins: &mut BTreeMap<String, String>,
) -> Result<(), FlattenError> {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let child_path = format!("{path}.{key}");
                let capitalized = capitalize(key).ok_or_else(|| FlattenError::EmptyKey {
                    path: path.to_string(),
                })?;
                flatten_into(
                    &format!("{name}{capitalized}"),
                    &child_path,
                    child,
                    out,
                    origins,
                )?;
            }
            Ok(())
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                flatten_into(
                    &format!("{name}{index}"),
                    &format!("{path}[{index}]"),
                    child,
                    out,
                    origins,
                )?;
            }
            Ok(())
        }
        scalar => {
            if let Some(first) = origins.get(name) {
                return Err(FlattenError::Collision {
                    name: name.to_string(),
                    first: first.clone(),
                    second: path.to_string(),
                });
            }
            origins.insert(name.to_string(), path.to_string());
            out.insert(name.to_string(), scalar_to_string(scalar));
            Ok(())
        }
    }
}

/// `image` → `Image`; `None` for the empty string.
fn capitalize(key: &str) -> Option<String> {
    let mut chars = key.chars();
    let first = chars.next()?;
    Some(first.to_uppercase().chain(chars).collect())
}

fn scalar_to_string(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        // Not reached: containers are flattened by the caller.
        Value::Array(_) | Value::Object(_) => value.to_string(),
    }
}

/// Builds the full, sorted parameter list of one artifact: the Endpoints' parameters, the
/// flattened spec, then the ArtifactType's parameters overriding any of them.
pub fn workflow_parameters(
    src: &EndpointSpec,
    dst: &EndpointSpec,
    flattened_spec: BTreeMap<String, String>,
    type_parameters: &[ArtifactWorkflowParameter],
) -> Vec<ArtifactWorkflowParameter> {
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    params.insert("srcType".into(), src.type_.clone());
    params.insert("srcRemoteURL".into(), src.remote_url.clone());
    params.insert("srcSecret".into(), has_secret(src).to_string());
    params.insert("dstType".into(), dst.type_.clone());
    params.insert("dstRemoteURL".into(), dst.remote_url.clone());
    params.insert("dstSecret".into(), has_secret(dst).to_string());
    params.extend(flattened_spec);
    for p in type_parameters {
        params.insert(p.name.clone(), p.value.clone());
    }
    params
        .into_iter()
        .map(|(name, value)| ArtifactWorkflowParameter { name, value })
        .collect()
}

/// Whether an Endpoint names a Secret.
pub fn has_secret(endpoint: &EndpointSpec) -> bool {
    endpoint.secret_ref.as_ref().is_some_and(|r| r.is_set())
}

#[cfg(test)]
mod tests {
    use apiserver::types::LocalObjectReference;
    use serde_json::json;

    use super::*;

    fn flat(v: Value) -> BTreeMap<String, String> {
        flatten_spec(&v).expect("flattens")
    }

    #[test]
    fn flattens_like_the_documented_examples() {
        let out =
            flat(json!({"image": "library/alpine:3.20", "a": {"b": "x"}, "tags": ["v1", "v2"]}));
        assert_eq!(out["specImage"], "library/alpine:3.20");
        assert_eq!(out["specAB"], "x");
        assert_eq!(out["specTags0"], "v1");
        assert_eq!(out["specTags1"], "v2");
        assert_eq!(out.len(), 4);
    }

    #[test]
    fn keeps_camel_case_of_keys_and_capitalizes_only_the_first_letter() {
        let out = flat(json!({"imageName": "nginx", "nested": {"fieldName": 1}}));
        assert_eq!(out["specImageName"], "nginx");
        assert_eq!(out["specNestedFieldName"], "1");
    }

    #[test]
    fn scalars_become_strings() {
        let out =
            flat(json!({"n": 30, "big": 10000000, "f": 1.5, "t": true, "no": false, "z": null}));
        assert_eq!(out["specN"], "30");
        assert_eq!(out["specBig"], "10000000");
        assert_eq!(out["specF"], "1.5");
        assert_eq!(out["specT"], "true");
        assert_eq!(out["specNo"], "false");
        assert_eq!(out["specZ"], "");
    }

    #[test]
    fn lists_of_objects_flatten_further() {
        let out = flat(json!({"files": [{"path": "a"}, {"path": "b", "sha256": "00"}]}));
        assert_eq!(out["specFiles0Path"], "a");
        assert_eq!(out["specFiles1Path"], "b");
        assert_eq!(out["specFiles1Sha256"], "00");
    }

    #[test]
    fn null_and_empty_specs_give_no_parameters() {
        assert!(flat(Value::Null).is_empty());
        assert!(flat(json!({})).is_empty());
    }

    #[test]
    fn non_object_specs_are_rejected_with_their_type() {
        assert_eq!(
            flatten_spec(&json!("x")).unwrap_err().to_string(),
            "spec must be an object, not a string"
        );
        assert_eq!(
            flatten_spec(&json!([1])).unwrap_err().to_string(),
            "spec must be an object, not a list"
        );
        assert_eq!(
            flatten_spec(&json!(3)).unwrap_err().to_string(),
            "spec must be an object, not a number"
        );
    }

    #[test]
    fn empty_keys_and_collisions_are_rejected() {
        assert_eq!(
            flatten_spec(&json!({"a": {"": 1}}))
                .unwrap_err()
                .to_string(),
            "spec has an empty key at spec.a"
        );
        let err = flatten_spec(&json!({"a": {"b": 1}, "aB": 2})).unwrap_err();
        assert!(
            matches!(err, FlattenError::Collision { ref name, .. } if name == "specAB"),
            "{err}"
        );
        assert!(
            err.to_string().contains("spec.a.b") && err.to_string().contains("spec.aB"),
            "{err}"
        );
    }

    fn endpoint(type_: &str, url: &str, secret: Option<&str>) -> EndpointSpec {
        EndpointSpec {
            type_: type_.into(),
            remote_url: url.into(),
            secret_ref: secret.map(LocalObjectReference::new),
            ..Default::default()
        }
    }

    #[test]
    fn parameters_combine_endpoints_spec_and_type_overrides() {
        let src = endpoint("oci", "https://src.example", Some("creds"));
        let dst = endpoint("oci", "https://dst.example", None);
        let spec = flat(json!({"image": "nginx", "override": "mine/nginx"}));
        let overrides = vec![
            ArtifactWorkflowParameter {
                name: "specOverride".into(),
                value: "forced".into(),
            },
            ArtifactWorkflowParameter {
                name: "scanSeverity".into(),
                value: "HIGH".into(),
            },
        ];
        let params = workflow_parameters(&src, &dst, spec, &overrides);
        let got: Vec<(&str, &str)> = params
            .iter()
            .map(|p| (p.name.as_str(), p.value.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("dstRemoteURL", "https://dst.example"),
                ("dstSecret", "false"),
                ("dstType", "oci"),
                ("scanSeverity", "HIGH"),
                ("specImage", "nginx"),
                ("specOverride", "forced"),
                ("srcRemoteURL", "https://src.example"),
                ("srcSecret", "true"),
                ("srcType", "oci"),
            ]
        );
    }

    #[test]
    fn an_empty_secret_name_means_no_secret() {
        assert!(!has_secret(&endpoint("oci", "u", Some(""))));
        assert!(has_secret(&endpoint("oci", "u", Some("s"))));
    }
}
