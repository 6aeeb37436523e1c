//! Server-side printing: objects as `meta.k8s.io` `Table`s (what `kubectl get` asks for with
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`), and the `PartialObjectMetadata`
//! and `PartialObjectMetadataList` transformations.
//!
//! Columns: `Name` (format `name`) first, the kind's printer columns, `Age` (type `date`) last
//! — unless the kind defines its whole layout (core Events). Date cells are rendered here as
//! ages, exactly like apimachinery's `duration.HumanDuration`.

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

use super::kinds::{age_column, has_standard_columns, name_column};
use super::registry::{PrinterColumn, ResourceKind};

/// The `meta.k8s.io` version a client asked for (`v=` in the Accept clause).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MetaVersion {
    /// `meta.k8s.io/v1`.
    #[default]
    V1,
    /// `meta.k8s.io/v1beta1` (older kubectl also accepts it).
    V1beta1,
}

impl MetaVersion {
    /// Parses the `v=` parameter of an Accept clause.
    pub fn parse(version: &str) -> Option<Self> {
        match version {
            "v1" => Some(Self::V1),
            "v1beta1" => Some(Self::V1beta1),
            _ => None,
        }
    }

    /// `meta.k8s.io/v1` or `meta.k8s.io/v1beta1`.
    pub fn api_version(self) -> &'static str {
        match self {
            Self::V1 => "meta.k8s.io/v1",
            Self::V1beta1 => "meta.k8s.io/v1beta1",
        }
    }
}

/// What each row carries in `object` (`includeObject` query parameter).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IncludeObject {
    /// No object.
    None,
    /// A `PartialObjectMetadata` (the default; kubectl needs it for `-A`, `--show-labels`, `-L`).
    #[default]
    Metadata,
    /// The whole object (kubectl asks for it with `--sort-by`).
    Object,
}

/// An `includeObject` value that is none of `Metadata`, `Object`, `None` or empty (→ 400).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("includeObject: Invalid value: {0:?}: must be 'Metadata', 'Object', 'None', or empty")]
pub struct InvalidIncludeObject(pub String);

impl IncludeObject {
    /// Parses the query parameter; absent or empty means [`IncludeObject::Metadata`].
    pub fn parse(param: Option<&str>) -> Result<Self, InvalidIncludeObject> {
        match param.unwrap_or("") {
            "" | "Metadata" => Ok(Self::Metadata),
            "Object" => Ok(Self::Object),
            "None" => Ok(Self::None),
            other => Err(InvalidIncludeObject(other.to_string())),
        }
    }
}

/// How to print a table.
#[derive(Clone, Copy, Debug)]
pub struct TableOptions {
    /// `meta.k8s.io/v1` or `v1beta1`.
    pub version: MetaVersion,
    /// What rows carry in `object`.
    pub include_object: IncludeObject,
    /// Whether to include `columnDefinitions`; false for every watch event after the first.
    pub include_column_definitions: bool,
    /// The time ages are computed against.
    pub now: Timestamp,
}

impl Default for TableOptions {
    fn default() -> Self {
        Self {
            version: MetaVersion::V1,
            include_object: IncludeObject::Metadata,
            include_column_definitions: true,
            now: Timestamp::now(),
        }
    }
}

/// The columns of `kind`'s tables, in order.
pub fn columns(kind: &ResourceKind) -> Vec<PrinterColumn> {
    if !has_standard_columns(kind) {
        return kind.columns.clone();
    }
    let mut all = Vec::with_capacity(kind.columns.len() + 2);
    all.push(name_column());
    all.extend(kind.columns.iter().cloned());
    all.push(age_column());
    all
}

/// The `columnDefinitions` of `kind`'s tables.
pub fn column_definitions(kind: &ResourceKind) -> Vec<Value> {
    columns(kind)
        .iter()
        .map(|c| {
            json!({"name": c.name, "type": c.type_, "format": c.format, "description": c.description, "priority": c.priority})
        })
        .collect()
}

/// One table row for `object`.
pub fn row(kind: &ResourceKind, object: &Value, options: &TableOptions) -> Value {
    row_with(&columns(kind), object, options)
}

fn row_with(columns: &[PrinterColumn], object: &Value, options: &TableOptions) -> Value {
    let cells: Vec<Value> = columns
        .iter()
        .map(|c| cell(c, object, options.now))
        .collect();
    let mut row = Map::new();
    row.insert("cells".into(), Value::Array(cells));
    match options.include_object {
        IncludeObject::None => {}
        IncludeObject::Metadata => {
            row.insert(
                "object".into(),
                partial_object_metadata(object, options.version),
            );
        }
        IncludeObject::Object => {
            row.insert("object".into(), object.clone());
        }
    }
    Value::Object(row)
}

/// A cell: the column's value, with `date` values rendered as ages.
fn cell(column: &PrinterColumn, object: &Value, now: Timestamp) -> Value {
    let value = (column.cell)(object);
    if column.type_ != "date" {
        return value;
    }
    match value {
        Value::String(s) => match s.parse::<Timestamp>() {
            Ok(t) => Value::String(human_duration(now.duration_since(t))),
            Err(_) => Value::String(s),
        },
        // The generic Age column of an object without a creation time, as upstream prints it.
        Value::Null if column.name == "Age" && column.format.is_empty() => {
            Value::String("<unknown>".into())
        }
        other => other,
    }
}

fn table(
    kind: &ResourceKind,
    objects: &[&Value],
    metadata: Value,
    options: &TableOptions,
) -> Value {
    let columns = columns(kind);
    let definitions = if options.include_column_definitions {
        column_definitions(kind)
    } else {
        Vec::new()
    };
    json!({
        "kind": "Table",
        "apiVersion": options.version.api_version(),
        "metadata": metadata,
        "columnDefinitions": definitions,
        "rows": objects.iter().map(|o| row_with(&columns, o, options)).collect::<Vec<_>>(),
    })
}

/// The table of one object (GET of one object, or one watch event). The table's
/// `metadata.resourceVersion` is the object's.
pub fn object_table(kind: &ResourceKind, object: &Value, options: &TableOptions) -> Value {
    let mut metadata = Map::new();
    if let Some(rv) = object.pointer("/metadata/resourceVersion") {
        metadata.insert("resourceVersion".into(), rv.clone());
    }
    table(kind, &[object], Value::Object(metadata), options)
}

/// The table of a list: `list_metadata` is the list's `metadata` (`resourceVersion`,
/// `continue`, `remainingItemCount` are carried over; `resourceVersion` is always present).
pub fn list_table(
    kind: &ResourceKind,
    items: &[Value],
    list_metadata: &Value,
    options: &TableOptions,
) -> Value {
    let refs: Vec<&Value> = items.iter().collect();
    table(kind, &refs, list_meta(list_metadata), options)
}

fn list_meta(list_metadata: &Value) -> Value {
    let mut metadata = Map::new();
    metadata.insert(
        "resourceVersion".into(),
        list_metadata
            .get("resourceVersion")
            .cloned()
            .unwrap_or_else(|| Value::String(String::new())),
    );
    for key in ["continue", "remainingItemCount"] {
        if let Some(v) = list_metadata.get(key).filter(|v| !v.is_null()) {
            metadata.insert(key.into(), v.clone());
        }
    }
    Value::Object(metadata)
}

/// `{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":{…}}` for an object.
pub fn partial_object_metadata(object: &Value, version: MetaVersion) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": version.api_version(),
        "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// A `PartialObjectMetadataList` for a list's items and its `metadata`.
pub fn partial_object_metadata_list(
    items: &[Value],
    list_metadata: &Value,
    version: MetaVersion,
) -> Value {
    json!({
        "kind": "PartialObjectMetadataList",
        "apiVersion": version.api_version(),
        "metadata": list_meta(list_metadata),
        "items": items.iter().map(|o| partial_object_metadata(o, version)).collect::<Vec<_>>(),
    })
}

/// The age of a timestamp (RFC 3339) at `now`, as kubectl prints it; `<unknown>` when absent
/// or unreadable (apimachinery `translateTimestampSince`).
pub fn age(timestamp: Option<&str>, now: Timestamp) -> String {
    match timestamp.and_then(|t| t.parse::<Timestamp>().ok()) {
        Some(t) => human_duration(now.duration_since(t)),
        None => "<unknown>".to_string(),
    }
}

/// A duration as apimachinery's `duration.HumanDuration` prints it: `45s`, `5m12s`, `17m`,
/// `5h3m`, `30h`, `3d4h`, `120d`, `2y15d`, `9y`; up to 1 s in the future is `0s`, more is
/// `<invalid>`.
pub fn human_duration(d: SignedDuration) -> String {
    let seconds = d.as_secs();
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests;
