//! Schema definitions of an OpenAPI document: the apimachinery types every path refers to
//! (generated from k8s-openapi, under their k8s-openapi names) and one definition per served
//! kind and list, derived from the kind's registry schema.

use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

use crate::server::registry::ResourceKind;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;

/// Which OpenAPI flavour a definition is for: where `$ref`s point, and what keywords exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// OpenAPI 3.0: `#/components/schemas/…`, `nullable` allowed.
    V3,
    /// Swagger 2.0: `#/definitions/…`, no `nullable`.
    V2,
}

impl Flavour {
    /// The `$ref` prefix of definitions.
    pub fn ref_prefix(self) -> &'static str {
        match self {
            Self::V3 => "#/components/schemas/",
            Self::V2 => "#/definitions/",
        }
    }

    /// A `$ref` to the definition `name`.
    pub fn reference(self, name: &str) -> Value {
        json!({"$ref": format!("{}{name}", self.ref_prefix())})
    }
}

/// `ObjectMeta`.
pub const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
/// `ListMeta`.
pub const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
/// `Status`.
pub const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
/// `DeleteOptions`.
pub const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
/// `Patch`.
pub const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
/// `WatchEvent`.
pub const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";

const METADATA_DESCRIPTION: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const LIST_METADATA_DESCRIPTION: &str = "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

fn add<T: JsonSchema>(generator: &mut SchemaGenerator) {
    generator.subschema_for::<T>();
}

/// The apimachinery definitions every document carries (and everything they refer to):
/// ObjectMeta, ListMeta, ManagedFieldsEntry, OwnerReference, Time, FieldsV1, Status,
/// StatusDetails, StatusCause, DeleteOptions, Preconditions, Patch, WatchEvent, RawExtension,
/// APIResourceList, APIResource.
pub fn meta_definitions(flavour: Flavour) -> Map<String, Value> {
    let path = match flavour {
        Flavour::V3 => "/components/schemas",
        Flavour::V2 => "/definitions",
    };
    let mut generator = SchemaSettings::openapi3()
        .with(|s| {
            s.definitions_path = path.into();
            s.meta_schema = None;
            s.transforms.clear();
        })
        .into_generator();
    add::<meta::ObjectMeta>(&mut generator);
    add::<meta::ListMeta>(&mut generator);
    add::<meta::Status>(&mut generator);
    add::<meta::DeleteOptions>(&mut generator);
    add::<meta::Patch>(&mut generator);
    add::<meta::WatchEvent<Value>>(&mut generator);
    add::<meta::APIResourceList>(&mut generator);
    let mut defs = generator.take_definitions(true);
    for def in defs.values_mut() {
        sanitise(def, flavour);
    }
    defs
}

/// The definition name of a kind, unique cluster-wide: `cloud.opendefense.arc.v1alpha1.Order`
/// (reverse-DNS group), `io.k8s.api.core.v1.Secret` (core), `io.k8s.api.events.v1.Event`.
pub fn definition_name(kind: &ResourceKind, name: &str) -> String {
    let prefix = if kind.group.is_empty() {
        "io.k8s.api.core".to_string()
    } else if let Some(short) = kind.group.strip_suffix(".k8s.io") {
        format!("io.k8s.api.{short}")
    } else {
        kind.group.split('.').rev().collect::<Vec<_>>().join(".")
    };
    format!("{prefix}.{}.{name}", kind.version)
}

fn gvk(kind: &ResourceKind, name: &str) -> Value {
    json!({"group": kind.group, "kind": name, "version": kind.version})
}

/// The `x-kubernetes-group-version-kind` of an operation: a single object.
pub fn operation_gvk(kind: &ResourceKind) -> Value {
    gvk(kind, kind.kind)
}

/// A described reference to `ObjectMeta`/`ListMeta`: `allOf: [$ref]` in v3 (as kube-apiserver
/// publishes it), a `$ref` with a description beside it in v2 (what kube-openapi's v2 parser,
/// used by kubectl 1.27/1.28 `explain`, follows).
fn meta_reference(flavour: Flavour, definition: &str, description: &str) -> Value {
    match flavour {
        Flavour::V3 => {
            json!({"allOf": [flavour.reference(definition)], "default": {}, "description": description})
        }
        Flavour::V2 => {
            let mut r = flavour.reference(definition);
            r["description"] = json!(description);
            r
        }
    }
}

/// The definition of `kind` itself: its schema with `metadata` referring to `ObjectMeta` and
/// the group-version-kind list `kubectl explain` looks it up by.
pub fn kind_definition(kind: &ResourceKind, flavour: Flavour) -> Value {
    let mut schema = kind.schema.clone();
    if !schema.is_object() {
        schema = json!({"type": "object"});
    }
    if schema.get("description").is_none() && !kind.description.is_empty() {
        schema["description"] = json!(kind.description);
    }
    schema["properties"]["metadata"] = meta_reference(flavour, OBJECT_META, METADATA_DESCRIPTION);
    schema["x-kubernetes-group-version-kind"] = json!([gvk(kind, kind.kind)]);
    sanitise(&mut schema, flavour);
    schema
}

/// The definition of `kind`'s list (`OrderList`).
pub fn list_definition(kind: &ResourceKind, flavour: Flavour) -> Value {
    json!({
        "description": format!("{} is a list of {}", kind.list_kind, kind.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": kind.schema.pointer("/properties/apiVersion").cloned().unwrap_or_else(|| json!({"type": "string"})),
            "items": {
                "description": format!("List of {}. More info: https://kubernetes.io/docs/reference/using-api/api-concepts/#collections", kind.plural),
                "type": "array",
                "items": flavour.reference(&definition_name(kind, kind.kind)),
            },
            "kind": kind.schema.pointer("/properties/kind").cloned().unwrap_or_else(|| json!({"type": "string"})),
            "metadata": meta_reference(flavour, LIST_META, LIST_METADATA_DESCRIPTION),
        },
        "x-kubernetes-group-version-kind": [gvk(kind, kind.list_kind)],
    })
}

/// Makes a schema valid for the flavour: Swagger 2.0 has no `nullable`, `anyOf`, `oneOf` or
/// `not`; neither flavour carries JSON Schema's `$schema`, `$id` or `$defs`.
fn sanitise(schema: &mut Value, flavour: Flavour) {
    match schema {
        Value::Object(map) => {
            map.retain(|k, _| !k.starts_with('$') || k == "$ref");
            if flavour == Flavour::V2 {
                for key in ["nullable", "anyOf", "oneOf", "not"] {
                    map.remove(key);
                }
            }
            for (key, value) in map.iter_mut() {
                if key == "properties" {
                    if let Value::Object(props) = value {
                        for prop in props.values_mut() {
                            sanitise(prop, flavour);
                        }
                    }
                } else if !key.starts_with("x-")
                    && key != "enum"
                    && key != "default"
                    && key != "example"
                {
                    sanitise(value, flavour);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                sanitise(item, flavour);
            }
        }
        _ => {}
    }
}
