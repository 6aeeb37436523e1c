//! Presentation of objects and lists per the negotiated [`Output`]: the objects themselves, a
//! `meta.k8s.io` Table, or PartialObjectMetadata(List).

use serde_json::{Map, Value, json};

use crate::server::errors::ApiError;
use crate::server::negotiate::Output;
use crate::server::registry::ResourceKind;
use crate::server::request::Query;
use crate::server::table::{
    IncludeObject, MetaVersion, TableOptions, list_table, object_table, partial_object_metadata,
    partial_object_metadata_list,
};

/// `PartialObjectMetadata` of one object.
pub fn partial_metadata(object: &Value) -> Value {
    partial_object_metadata(object, MetaVersion::V1)
}

fn options(query: &Query, version: &str, with_columns: bool) -> Result<TableOptions, ApiError> {
    let include_object = IncludeObject::parse(query.get("includeObject"))
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let version = MetaVersion::parse(version)
        .ok_or_else(|| ApiError::NotAcceptable("application/json".into()))?;
    Ok(TableOptions {
        version,
        include_object,
        include_column_definitions: with_columns,
        ..TableOptions::default()
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
        Output::Table(version) => Ok(object_table(kind, object, &options(query, version, true)?)),
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
    let meta = Value::Object(list_meta);
    match output {
        Output::Json => Ok(json!({
            "apiVersion": kind.api_version(),
            "kind": kind.list_kind,
            "metadata": meta,
            "items": items,
        })),
        Output::PartialObjectMetadataList => {
            Ok(partial_object_metadata_list(&items, &meta, MetaVersion::V1))
        }
        Output::Table(version) => Ok(list_table(
            kind,
            &items,
            &meta,
            &options(query, version, true)?,
        )),
        Output::PartialObjectMetadata => Err(ApiError::NotAcceptable("application/json".into())),
    }
}

/// A one-row Table for a watch event; `with_columns` = false omits the column definitions
/// (every event after the first).
pub fn event_table(
    kind: &ResourceKind,
    object: &Value,
    version: &str,
    query: &Query,
    with_columns: bool,
) -> Result<Value, ApiError> {
    Ok(object_table(
        kind,
        object,
        &options(query, version, with_columns)?,
    ))
}
