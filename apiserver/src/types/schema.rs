//! Schema helpers for fields whose OpenAPI shape `schemars` cannot infer.

use schemars::{Schema, SchemaGenerator, json_schema};

/// The schema of a free-form field: any JSON value, kept as it is
/// (`x-kubernetes-preserve-unknown-fields: true`, as a CRD would declare it).
pub fn preserve_unknown_fields(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "x-kubernetes-preserve-unknown-fields": true })
}
