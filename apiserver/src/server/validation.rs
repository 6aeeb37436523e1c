//! Validation of incoming objects against their kind, with apimachinery's field errors.
//!
//! What a CRD-backed kube-apiserver does, as pure functions the handlers call in this order:
//! 1. [`apply_field_validation`]: find the fields the schema does not know, prune them
//!    (CRD-style, also non-nullable `null`s) and, per `fieldValidation`, fail (Strict → 400),
//!    warn (Warn, the server default) or stay silent (Ignore);
//! 2. [`apply_defaults`]: schema `default`s for absent fields;
//! 3. [`validate_object`]: metadata rules, the structural schema walk and the kind's semantic
//!    hooks; a non-empty result becomes an [`InvalidObject`], i.e. a 422 `Invalid` Status.

use serde_json::{Value, json};

use super::registry::ResourceKind;

pub mod hooks;
mod metadata;
pub mod names;
mod schema;

pub use metadata::{ObjectScope, validate_object_meta};
pub use schema::{apply_defaults, prune_unknown_fields, unknown_fields, validate_against_schema};

/// The kinds of field error (apimachinery `field.ErrorType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldErrorKind {
    /// A referenced thing does not exist.
    NotFound,
    /// A required field is missing or empty.
    Required,
    /// A value that must be unique is repeated.
    Duplicate,
    /// A value is malformed or out of range.
    Invalid,
    /// A value is not one of the allowed ones.
    NotSupported,
    /// A field may not be set (here, or any more).
    Forbidden,
    /// A value is too long.
    TooLong,
    /// A list has too many items.
    TooMany,
    /// The server failed to validate.
    Internal,
    /// A value has the wrong JSON type.
    TypeInvalid,
}

impl FieldErrorKind {
    /// The `details.causes[].reason` string, e.g. `FieldValueRequired`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::NotFound => "FieldValueNotFound",
            Self::Required => "FieldValueRequired",
            Self::Duplicate => "FieldValueDuplicate",
            Self::Invalid => "FieldValueInvalid",
            Self::NotSupported => "FieldValueNotSupported",
            Self::Forbidden => "FieldValueForbidden",
            Self::TooLong => "FieldValueTooLong",
            Self::TooMany => "FieldValueTooMany",
            Self::Internal => "InternalError",
            Self::TypeInvalid => "FieldValueTypeInvalid",
        }
    }

    /// The human words that start the message, e.g. `Required value`.
    pub fn text(self) -> &'static str {
        match self {
            Self::NotFound => "Not found",
            Self::Required => "Required value",
            Self::Duplicate => "Duplicate value",
            Self::Invalid | Self::TypeInvalid => "Invalid value",
            Self::NotSupported => "Unsupported value",
            Self::Forbidden => "Forbidden",
            Self::TooLong => "Too long",
            Self::TooMany => "Too many",
            Self::Internal => "Internal error",
        }
    }
}

/// One field-level validation failure, as apimachinery's `field.Error`.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    /// What is wrong.
    pub kind: FieldErrorKind,
    /// The field path, e.g. `spec.artifacts[0].type` or `metadata.labels`.
    pub field: String,
    /// The offending value, shown in the message; `None` leaves it out.
    pub bad_value: Option<Value>,
    /// Extra explanation appended to the message.
    pub detail: String,
}

impl FieldError {
    fn new(
        kind: FieldErrorKind,
        field: impl Into<String>,
        bad_value: Option<Value>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            field: field.into(),
            bad_value,
            detail: detail.into(),
        }
    }

    /// `Required value` (with an optional detail).
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(FieldErrorKind::Required, field, None, detail)
    }

    /// `Invalid value: <value>: <detail>`.
    pub fn invalid(
        field: impl Into<String>,
        value: impl Into<Value>,
        detail: impl Into<String>,
    ) -> Self {
        Self::new(FieldErrorKind::Invalid, field, Some(value.into()), detail)
    }

    /// `Unsupported value: <value>: supported values: "A", "B"`.
    pub fn not_supported<S: AsRef<str>>(
        field: impl Into<String>,
        value: impl Into<Value>,
        supported: &[S],
    ) -> Self {
        let list: Vec<String> = supported.iter().map(|s| quote(s.as_ref())).collect();
        Self::new(
            FieldErrorKind::NotSupported,
            field,
            Some(value.into()),
            format!("supported values: {}", list.join(", ")),
        )
    }

    /// `Invalid value: <value>: <detail>` with reason `FieldValueTypeInvalid`.
    pub fn type_invalid(
        field: impl Into<String>,
        value: impl Into<Value>,
        detail: impl Into<String>,
    ) -> Self {
        Self::new(
            FieldErrorKind::TypeInvalid,
            field,
            Some(value.into()),
            detail,
        )
    }

    /// `Forbidden: <detail>`.
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(FieldErrorKind::Forbidden, field, None, detail)
    }

    /// `Duplicate value: <value>`.
    pub fn duplicate(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::new(FieldErrorKind::Duplicate, field, Some(value.into()), "")
    }

    /// `Not found: <value>`.
    pub fn not_found(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::new(FieldErrorKind::NotFound, field, Some(value.into()), "")
    }

    /// `Too long: may not be more than <max> bytes`.
    pub fn too_long(field: impl Into<String>, max_bytes: usize) -> Self {
        Self::new(
            FieldErrorKind::TooLong,
            field,
            None,
            format!("may not be more than {max_bytes} bytes"),
        )
    }

    /// `Too many: <actual>: must have at most <max> items`.
    pub fn too_many(field: impl Into<String>, actual: usize, max: usize) -> Self {
        Self::new(
            FieldErrorKind::TooMany,
            field,
            Some(json!(actual)),
            format!("must have at most {max} items"),
        )
    }

    /// The message without the field path (apimachinery `ErrorBody`), e.g.
    /// `Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of …`.
    pub fn message(&self) -> String {
        use FieldErrorKind::*;
        let mut s = self.kind.text().to_string();
        let show_value = !matches!(self.kind, Required | Forbidden | TooLong | Internal);
        if let (true, Some(v)) = (show_value, &self.bad_value) {
            s.push_str(": ");
            s.push_str(&format_value(v));
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }

    /// The `details.causes[]` entry: `{reason, message, field}`.
    pub fn cause(&self) -> Value {
        json!({"reason": self.kind.reason(), "message": self.message(), "field": self.field})
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.message())
        } else {
            write!(f, "{}: {}", self.field, self.message())
        }
    }
}

/// A Go `%q`-style quoted string.
fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// Values as apimachinery prints them: strings quoted, scalars plain, the rest as JSON.
fn format_value(v: &Value) -> String {
    match v {
        Value::String(s) => quote(s),
        Value::Null => "null".to_string(),
        other => other.to_string(),
    }
}

/// A rejected object: becomes HTTP 422 with reason `Invalid` ([`InvalidObject::status`]).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{}", self.message())]
pub struct InvalidObject {
    /// API group of the object's kind (empty for core).
    pub group: String,
    /// The Kind (`details.kind` is the Kind for `Invalid`, not the plural).
    pub kind: String,
    /// The object's name (may be empty, e.g. a missing name).
    pub name: String,
    /// Every problem found, in order.
    pub errors: Vec<FieldError>,
}

impl InvalidObject {
    /// An `Invalid` error about `name` of `kind`.
    pub fn new(kind: &ResourceKind, name: impl Into<String>, errors: Vec<FieldError>) -> Self {
        Self {
            group: kind.group.to_string(),
            kind: kind.kind.to_string(),
            name: name.into(),
            errors,
        }
    }

    /// `Kind.group`, or `Kind` for core.
    fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    /// `Order.arc.opendefense.cloud "o1" is invalid: spec.x: Required value` — one error plain,
    /// several in brackets, repeated messages once (apimachinery `NewInvalid`).
    pub fn message(&self) -> String {
        let mut seen = std::collections::HashSet::new();
        let parts: Vec<String> = self
            .errors
            .iter()
            .map(ToString::to_string)
            .filter(|m| seen.insert(m.clone()))
            .collect();
        let head = format!("{} {} is invalid", self.qualified_kind(), quote(&self.name));
        match parts.len() {
            0 => head,
            1 => format!("{head}: {}", parts[0]),
            _ => format!("{head}: [{}]", parts.join(", ")),
        }
    }

    /// The full `metav1.Status` body (HTTP 422).
    pub fn status(&self) -> Value {
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message(),
            "reason": "Invalid",
            "details": {
                "name": self.name,
                "group": self.group,
                "kind": self.kind,
                "causes": self.errors.iter().map(FieldError::cause).collect::<Vec<_>>(),
            },
            "code": 422,
        })
    }
}

/// How to treat fields the schema does not know (`fieldValidation` query parameter).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    /// Drop them silently.
    Ignore,
    /// Drop them and send one `Warning` header per field (the server default).
    #[default]
    Warn,
    /// Reject the request with 400.
    Strict,
}

/// An unknown `fieldValidation` directive (the text of upstream's options validation error).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", FieldError::not_supported("fieldValidation", .0.as_str(), &["", "Ignore", "Warn", "Strict"]))]
pub struct InvalidFieldValidation(pub String);

impl FieldValidation {
    /// Parses the query parameter; absent or empty means [`FieldValidation::Warn`]. An unknown
    /// directive is the error upstream returns (a 422 on the request options).
    pub fn parse(param: Option<&str>) -> Result<Self, InvalidFieldValidation> {
        match param.unwrap_or("") {
            "" | "Warn" => Ok(Self::Warn),
            "Ignore" => Ok(Self::Ignore),
            "Strict" => Ok(Self::Strict),
            other => Err(InvalidFieldValidation(other.to_string())),
        }
    }
}

/// Unknown fields under `fieldValidation=Strict`: the 400 `BadRequest` message, e.g.
/// `Order in version "v1alpha1" cannot be handled as a Order: strict decoding error: unknown field "spec.foo"`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}", fields_list(.unknown_fields))]
pub struct StrictDecodingError {
    /// The Kind.
    pub kind: String,
    /// The version.
    pub version: String,
    /// The unknown field paths, e.g. `spec.foo`.
    pub unknown_fields: Vec<String>,
}

fn fields_list(fields: &[String]) -> String {
    fields
        .iter()
        .map(|f| format!("unknown field {}", quote(f)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `Warning` header texts for unknown fields: `unknown field "spec.foo"`.
pub fn unknown_field_warnings(fields: &[String]) -> Vec<String> {
    fields
        .iter()
        .map(|f| format!("unknown field {}", quote(f)))
        .collect()
}

/// Prunes the fields `kind`'s schema does not know from `object` (CRD-style pruning, also
/// `null`s in non-nullable fields) and applies `mode`: `Ok(warnings)` to send as `Warning`
/// headers (empty unless Warn), or the Strict error. The object is pruned in every mode.
pub fn apply_field_validation(
    kind: &ResourceKind,
    object: &mut Value,
    mode: FieldValidation,
) -> Result<Vec<String>, StrictDecodingError> {
    let unknown = prune_unknown_fields(kind, object);
    match mode {
        FieldValidation::Strict if !unknown.is_empty() => Err(StrictDecodingError {
            kind: kind.kind.to_string(),
            version: kind.version.to_string(),
            unknown_fields: unknown,
        }),
        FieldValidation::Warn => Ok(unknown_field_warnings(&unknown)),
        _ => Ok(Vec::new()),
    }
}

/// Every problem with `object` as a `kind`: metadata rules ([`validate_object_meta`]), the
/// structural schema walk ([`validate_against_schema`]) and the kind's semantic hook. Empty
/// means valid. Call it after pruning and defaulting, on create, update and status update.
pub fn validate_object(kind: &ResourceKind, object: &Value) -> Vec<FieldError> {
    let scope = if kind.group.is_empty() && kind.kind == "Namespace" {
        ObjectScope::NamespaceObject
    } else if kind.namespaced {
        ObjectScope::Namespaced
    } else {
        ObjectScope::Cluster
    };
    let mut errors = match object.get("metadata") {
        Some(meta) => validate_object_meta(meta, scope),
        None => vec![FieldError::required(
            "metadata.name",
            "name or generateName is required",
        )],
    };
    errors.extend(validate_against_schema(&kind.schema, object));
    if let Some(hook) = super::kinds::semantic_validation(kind) {
        errors.extend(hook(object));
    }
    errors
}

/// [`validate_object`] as a `Result`, with the name taken from the object.
pub fn check_object(kind: &ResourceKind, object: &Value) -> Result<(), InvalidObject> {
    let errors = validate_object(kind, object);
    if errors.is_empty() {
        return Ok(());
    }
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Err(InvalidObject::new(kind, name, errors))
}

/// Appends `.name` to a field path (no leading dot at the root).
pub fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Appends `[i]` to a field path.
pub fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// Appends `[key]` to a field path (map entries).
pub fn key(path: &str, key: &str) -> String {
    format!("{path}[{key}]")
}

#[cfg(test)]
mod tests;
