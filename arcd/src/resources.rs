//! Resource files: which kinds may appear in them, how a file becomes a list of objects with
//! identities, and the offline checks both `arcd validate` and the file syncer run on them.
//!
//! A file holds one or many YAML documents; each is one object of a [`KindInfo`] from [`KINDS`].
//! Problems are [`Diagnostic`]s with the position of the offending field.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use base64::Engine;
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Map, Value};

use crate::diagnostic::{Diagnostic, Position};
use crate::yaml::{Document, parse_documents};

/// A kind the syncer applies from files.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KindInfo {
    /// Position in [`KINDS`]: objects are applied in this order (namespaces and secrets first,
    /// Orders after the Endpoints and ArtifactTypes they use) and pruned in the reverse order.
    pub order: u8,
    /// API group, empty for the core group.
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// `apiVersion` as written in files.
    pub api_version: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Plural resource name.
    pub plural: &'static str,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
}

impl KindInfo {
    /// The kube-rs description of the kind, for dynamic API clients.
    pub fn api_resource(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(self.group, self.version, self.kind),
            self.plural,
        )
    }

    /// Whether this is the core `v1` Secret kind.
    pub fn is_secret(&self) -> bool {
        self.group.is_empty() && self.kind == "Secret"
    }
}

const ARC: &str = apiserver::types::GROUP;
const ARC_VERSION: &str = apiserver::types::VERSION;
const ARC_API_VERSION: &str = apiserver::types::API_VERSION;

/// Every kind resource files may contain, in apply order.
pub static KINDS: &[KindInfo] = &[
    KindInfo {
        order: 0,
        group: "",
        version: "v1",
        api_version: "v1",
        kind: "Namespace",
        plural: "namespaces",
        namespaced: false,
    },
    KindInfo {
        order: 1,
        group: "",
        version: "v1",
        api_version: "v1",
        kind: "Secret",
        plural: "secrets",
        namespaced: true,
    },
    KindInfo {
        order: 2,
        group: ARC,
        version: ARC_VERSION,
        api_version: ARC_API_VERSION,
        kind: "ClusterArtifactType",
        plural: "clusterartifacttypes",
        namespaced: false,
    },
    KindInfo {
        order: 3,
        group: ARC,
        version: ARC_VERSION,
        api_version: ARC_API_VERSION,
        kind: "ArtifactType",
        plural: "artifacttypes",
        namespaced: true,
    },
    KindInfo {
        order: 4,
        group: ARC,
        version: ARC_VERSION,
        api_version: ARC_API_VERSION,
        kind: "Endpoint",
        plural: "endpoints",
        namespaced: true,
    },
    KindInfo {
        order: 5,
        group: ARC,
        version: ARC_VERSION,
        api_version: ARC_API_VERSION,
        kind: "Order",
        plural: "orders",
        namespaced: true,
    },
    KindInfo {
        order: 6,
        group: ARC,
        version: ARC_VERSION,
        api_version: ARC_API_VERSION,
        kind: "ArtifactWorkflow",
        plural: "artifactworkflows",
        namespaced: true,
    },
];

/// Finds the kind of `apiVersion`/`kind`.
pub fn find_kind(api_version: &str, kind: &str) -> Option<&'static KindInfo> {
    KINDS
        .iter()
        .find(|k| k.api_version == api_version && k.kind == kind)
}

/// The identity of an object: kind, namespace (for namespaced kinds) and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// The kind.
    pub kind: &'static KindInfo,
    /// The namespace; `None` for cluster-scoped kinds.
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(namespace) => write!(f, "{} {namespace}/{}", self.kind.kind, self.name),
            None => write!(f, "{} {}", self.kind.kind, self.name),
        }
    }
}

/// One object defined in a file, ready to be applied.
#[derive(Clone, Debug)]
pub struct FileObject {
    /// Its identity.
    pub key: ObjectKey,
    /// The object as it should be (namespace filled in, server-owned fields and `status`
    /// removed, a Secret's `stringData` folded into `data`).
    pub manifest: Value,
    /// Where its document starts in the file.
    pub start: Position,
    /// Which document of the file it is (counting non-empty documents from 0).
    pub document_index: usize,
}

impl FileObject {
    /// The position of a field of this object (`spec.artifacts[0].type`) in `file`, the file it
    /// was read from. Field positions are not kept in memory (they would take more than the
    /// objects themselves); the file is read again when an error needs one. Falls back to the
    /// document's start if the file changed meanwhile.
    pub fn position_of(&self, file: &Path, field_path: &str) -> Position {
        let Ok(text) = std::fs::read_to_string(file) else {
            return self.start;
        };
        let Ok(documents) = parse_documents(&text) else {
            return self.start;
        };
        match documents.get(self.document_index) {
            Some(document) if document.start == self.start => document.position_of(field_path),
            _ => self.start,
        }
    }
}

/// Metadata fields the server owns; files may carry them (e.g. exported with `kubectl get -o
/// yaml`) but they are never sent.
const SERVER_OWNED_METADATA: &[&str] = &[
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// What a resource file holds.
#[derive(Debug)]
pub struct ParsedFile {
    /// Its objects, or every problem found. A file with any problem yields no objects at all
    /// (it is applied whole or not at all).
    pub objects: Result<Vec<FileObject>, Vec<Diagnostic>>,
    /// Whether any document of the file is a Secret (then the file must be private), known even
    /// when the file has problems as long as its YAML could be read.
    pub holds_secret: bool,
}

/// Reads every object of a resource file's text.
pub fn parse_resource_file(path: &Path, text: &str, default_namespace: &str) -> ParsedFile {
    let documents = match parse_documents(text) {
        Ok(documents) => documents,
        Err(e) => {
            return ParsedFile {
                objects: Err(vec![Diagnostic::new(path, e.position, e.message)]),
                holds_secret: false,
            };
        }
    };
    let holds_secret = documents
        .iter()
        .any(|d| d.value.get("kind").and_then(Value::as_str) == Some("Secret"));
    let mut objects = Vec::new();
    let mut errors = Vec::new();
    let mut seen: BTreeMap<ObjectKey, Position> = BTreeMap::new();
    for (index, document) in documents.into_iter().enumerate() {
        match parse_object(path, document, index, default_namespace) {
            Ok(object) => {
                let at = object.start;
                if let Some(first) = seen.get(&object.key) {
                    errors.push(Diagnostic::new(
                        path,
                        at,
                        format!(
                            "{} is defined twice in this file (first at line {})",
                            object.key, first.line
                        ),
                    ));
                } else {
                    seen.insert(object.key.clone(), at);
                    objects.push(object);
                }
            }
            Err(mut problems) => errors.append(&mut problems),
        }
    }
    ParsedFile {
        objects: if errors.is_empty() {
            Ok(objects)
        } else {
            Err(errors)
        },
        holds_secret,
    }
}

/// Why a file holding Secrets may not be used: it is readable (or writable) by group or others.
/// `mode` is the file's permission bits (of the symlink's target for a symlink).
pub fn secret_file_mode_problem(mode: u32) -> Option<String> {
    let mode = mode & 0o7777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "holds a Secret but its permissions {mode:04o} let group or others access it; refused \
             (as ssh refuses such private keys): run `chmod 600` on it"
        )
    })
}

fn kinds_list() -> String {
    KINDS
        .iter()
        .map(|k| format!("{} ({})", k.kind, k.api_version))
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse_object(
    path: &Path,
    document: Document,
    document_index: usize,
    default_namespace: &str,
) -> Result<FileObject, Vec<Diagnostic>> {
    let error = |field: &str, message: String| {
        vec![Diagnostic::new(path, document.position_of(field), message)]
    };
    let Value::Object(map) = &document.value else {
        return Err(error(
            "",
            "a resource must be a mapping with apiVersion, kind and metadata".to_string(),
        ));
    };
    let api_version = match map.get("apiVersion") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => {
            return Err(error(
                "apiVersion",
                "apiVersion must be a string".to_string(),
            ));
        }
        None => return Err(error("", "apiVersion is missing".to_string())),
    };
    let kind_name = match map.get("kind") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(error("kind", "kind must be a string".to_string())),
        None => return Err(error("", "kind is missing".to_string())),
    };
    let Some(kind) = find_kind(api_version, kind_name) else {
        let message = if KINDS.iter().any(|k| k.kind == kind_name) {
            let expected = KINDS
                .iter()
                .find(|k| k.kind == kind_name)
                .map(|k| k.api_version)
                .unwrap_or_default();
            format!(
                "unknown apiVersion `{api_version}` for kind {kind_name} (expected `{expected}`)"
            )
        } else {
            format!(
                "unknown kind `{kind_name}` (apiVersion `{api_version}`); resource files may hold {}",
                kinds_list()
            )
        };
        let field = if KINDS.iter().any(|k| k.kind == kind_name) {
            "apiVersion"
        } else {
            "kind"
        };
        return Err(error(field, message));
    };

    let mut problems = Vec::new();
    let mut manifest = document.value.clone();
    let object = manifest.as_object_mut().expect("checked above");
    object.remove("status");
    let metadata = object
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(metadata) = metadata else {
        return Err(error("metadata", "metadata must be a mapping".to_string()));
    };
    for field in SERVER_OWNED_METADATA {
        metadata.remove(*field);
    }
    let name = match metadata.get("name") {
        // The name's syntax is checked with the API's rules in `check_structure`.
        Some(Value::String(name)) => name.clone(),
        Some(_) => {
            return Err(error(
                "metadata.name",
                "metadata.name must be a string".to_string(),
            ));
        }
        None if metadata.contains_key("generateName") => {
            return Err(error(
                "metadata.generateName",
                "metadata.generateName is not supported in resource files: objects need a fixed name".to_string(),
            ));
        }
        None => {
            return Err(error(
                "metadata",
                format!("{kind_name}: metadata.name is missing"),
            ));
        }
    };
    let namespace = if kind.namespaced {
        let namespace = match metadata.get("namespace") {
            Some(Value::String(ns)) if !ns.is_empty() => ns.clone(),
            Some(Value::String(_)) | None | Some(Value::Null) => default_namespace.to_string(),
            Some(_) => {
                return Err(error(
                    "metadata.namespace",
                    "metadata.namespace must be a string".to_string(),
                ));
            }
        };
        metadata.insert("namespace".to_string(), Value::String(namespace.clone()));
        Some(namespace)
    } else {
        if metadata
            .get("namespace")
            .is_some_and(|ns| ns.as_str().is_some_and(|s| !s.is_empty()))
        {
            problems.push(Diagnostic::new(
                path,
                document.position_of("metadata.namespace"),
                format!("{kind_name} is cluster-scoped: remove metadata.namespace"),
            ));
        }
        metadata.remove("namespace");
        None
    };
    for map_field in ["labels", "annotations"] {
        if let Some(value) = metadata.get(map_field) {
            let ok = value.is_null()
                || value
                    .as_object()
                    .is_some_and(|m| m.values().all(Value::is_string));
            if !ok {
                problems.push(Diagnostic::new(
                    path,
                    document.position_of(&format!("metadata.{map_field}")),
                    format!("metadata.{map_field} must map names to strings (quote numbers and booleans)"),
                ));
            }
        }
    }
    if kind.is_secret()
        && let Err(problem) = normalize_secret(object)
    {
        problems.push(Diagnostic::new(
            path,
            document.position_of(&problem.0),
            problem.1,
        ));
    }
    problems.extend(
        check_structure(kind, &manifest)
            .into_iter()
            .map(|(field, message)| Diagnostic::new(path, document.position_of(&field), message)),
    );
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(FileObject {
        key: ObjectKey {
            kind,
            namespace,
            name,
        },
        manifest,
        start: document.start,
        document_index,
    })
}

/// Folds `stringData` into `data` (base64), as the API server would, so that what is applied
/// compares equal to what is read back. Checks that `data` values are base64.
fn normalize_secret(object: &mut Map<String, Value>) -> Result<(), (String, String)> {
    let engine = base64::engine::general_purpose::STANDARD;
    let mut data = match object.remove("data") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err((
                "data".to_string(),
                "data must map keys to base64 strings".to_string(),
            ));
        }
    };
    for (key, value) in &data {
        let valid = value.as_str().is_some_and(|s| engine.decode(s).is_ok());
        if !valid {
            return Err((
                crate::yaml::child_path("data", key),
                format!("data.{key} is not valid base64 (use stringData for plain text)"),
            ));
        }
    }
    match object.remove("stringData") {
        None | Some(Value::Null) => {}
        Some(Value::Object(plain)) => {
            for (key, value) in plain {
                let Value::String(text) = value else {
                    return Err((
                        crate::yaml::child_path("stringData", &key),
                        format!("stringData.{key} must be a string"),
                    ));
                };
                data.insert(key, Value::String(engine.encode(text)));
            }
        }
        Some(_) => {
            return Err((
                "stringData".to_string(),
                "stringData must map keys to strings".to_string(),
            ));
        }
    }
    if !data.is_empty() {
        object.insert("data".to_string(), Value::Object(data));
    }
    Ok(())
}

/// The API server's own kind table (schemas, semantic hooks), built once.
fn served_kinds() -> &'static [apiserver::server::registry::ResourceKind] {
    static KINDS_TABLE: std::sync::OnceLock<Vec<apiserver::server::registry::ResourceKind>> =
        std::sync::OnceLock::new();
    KINDS_TABLE.get_or_init(|| {
        let mut kinds = apiserver::server::kinds::arc_kinds();
        kinds.extend(apiserver::server::kinds::core_kinds());
        kinds
    })
}

/// The checks the API server runs on a create, run offline: unknown fields (as with
/// `fieldValidation=Strict`), metadata rules, the structural schema and the kind's semantic
/// rules. Returns `(field path, message)` pairs.
fn check_structure(kind: &KindInfo, manifest: &Value) -> Vec<(String, String)> {
    use apiserver::server::validation::{FieldValidation, apply_field_validation, validate_object};
    let Some(served) = served_kinds()
        .iter()
        .find(|k| k.group == kind.group && k.kind == kind.kind)
    else {
        return Vec::new();
    };
    let mut pruned = manifest.clone();
    let mut problems = Vec::new();
    if let Err(strict) = apply_field_validation(served, &mut pruned, FieldValidation::Strict) {
        for field in strict.unknown_fields {
            problems.push((field.clone(), format!("unknown field `{field}`")));
        }
    }
    for error in validate_object(served, &pruned) {
        problems.push((error.field.clone(), error.to_string()));
    }
    problems
}

#[cfg(test)]
mod tests;
