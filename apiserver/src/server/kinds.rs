//! The rows of the registry: the five ARC kinds and, for the embedded server, the core `v1`
//! Namespace, Secret and Event kinds and the `events.k8s.io/v1` Event kind.
//!
//! Schemas are generated from the Rust types — the ARC kinds from their `CustomResource`
//! derive (the same `openAPIV3Schema` a CRD would carry), the core kinds from k8s-openapi — so
//! discovery, OpenAPI, validation and pruning never drift from the types the controllers use.

use std::sync::OnceLock;

use kube::CustomResourceExt;
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

use super::registry::{PrinterColumn, ResourceKind};
use super::validation::{FieldError, hooks};
use crate::types::{
    ArtifactType, ArtifactWorkflow, ClusterArtifactType, Endpoint, GROUP, Order, VERSION,
};

mod columns;
pub mod events;

/// The category every ARC kind belongs to (`kubectl get arc`).
pub const ARC_CATEGORY: &str = "arc";

/// Generated schemas and descriptions, computed once per process (generation walks every type).
struct Generated {
    order: Value,
    endpoint: Value,
    artifact_type: Value,
    cluster_artifact_type: Value,
    artifact_workflow: Value,
    namespace: Value,
    secret: Value,
    core_event: Value,
    events_event: Value,
    descriptions: Vec<String>,
}

fn generated() -> &'static Generated {
    static GENERATED: OnceLock<Generated> = OnceLock::new();
    GENERATED.get_or_init(|| {
        let mut g = Generated {
            order: crd_schema::<Order>(),
            endpoint: crd_schema::<Endpoint>(),
            artifact_type: crd_schema::<ArtifactType>(),
            cluster_artifact_type: crd_schema::<ClusterArtifactType>(),
            artifact_workflow: crd_schema::<ArtifactWorkflow>(),
            namespace: k8s_schema::<k8s_openapi::api::core::v1::Namespace>(),
            secret: k8s_schema::<k8s_openapi::api::core::v1::Secret>(),
            core_event: k8s_schema::<k8s_openapi::api::core::v1::Event>(),
            events_event: k8s_schema::<k8s_openapi::api::events::v1::Event>(),
            descriptions: Vec::new(),
        };
        g.descriptions = [
            &g.order,
            &g.endpoint,
            &g.artifact_type,
            &g.cluster_artifact_type,
            &g.artifact_workflow,
            &g.namespace,
            &g.secret,
            &g.core_event,
            &g.events_event,
        ]
        .iter()
        .map(|s| {
            s.get("description")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        })
        .collect();
        g
    })
}

/// The `openAPIV3Schema` of a `CustomResource` type, exactly as its CRD carries it.
fn crd_schema<K: CustomResourceExt>() -> Value {
    let crd = serde_json::to_value(K::crd()).expect("a CRD serialises to JSON");
    let mut crd = crd;
    let mut schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].take();
    assert!(
        schema.is_object(),
        "the CRD of {} has an openAPIV3Schema",
        K::crd_name()
    );
    normalise_root(&mut schema);
    schema
}

/// The schema of a k8s-openapi type as a kind's root schema: `metadata` reduced to
/// `type: object` as in a CRD.
fn k8s_schema<T: JsonSchema>() -> Value {
    let mut schema = generate_structural_schema::<T>();
    normalise_root(&mut schema);
    schema
}

/// The structural schema of any type, generated the way kube-derive generates CRD schemas
/// (OpenAPI 3 flavour, every subschema inlined, structural rewrites applied).
pub(crate) fn generate_structural_schema<T: JsonSchema>() -> Value {
    let generator = SchemaSettings::openapi3()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .with_transform(schemars::transform::AddNullable::default())
        .with_transform(kube::core::schema::StructuralSchemaRewriter)
        .with_transform(kube::core::schema::OptionalEnum)
        .with_transform(kube::core::schema::OptionalIntOrString)
        .into_generator();
    let mut schema = serde_json::to_value(generator.into_root_schema_for::<T>())
        .expect("a schema serialises to JSON");
    if let Some(root) = schema.as_object_mut() {
        root.remove("$schema");
        root.remove("title");
    }
    schema
}

/// Joins the hard-wrapped lines of every `description` (doc comments wrap at ~100 columns;
/// kubectl re-wraps text itself), keeping blank-line paragraph breaks.
fn unwrap_descriptions(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                match value {
                    Value::String(text) if key == "description" => *text = unwrap_lines(text),
                    _ => unwrap_descriptions(value),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(unwrap_descriptions),
        _ => {}
    }
}

fn unwrap_lines(text: &str) -> String {
    text.split("\n\n")
        .map(|paragraph| {
            paragraph
                .split('\n')
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// Gives every root schema the same shape: no `$schema`/`title`, `metadata` as a plain object
/// (its fields are known to the server itself), described `apiVersion` and `kind`.
fn normalise_root(schema: &mut Value) {
    unwrap_descriptions(schema);
    let Some(root) = schema.as_object_mut() else {
        return;
    };
    root.remove("$schema");
    root.remove("title");
    let mut props = serde_json::Map::new();
    props.insert(
        "apiVersion".into(),
        json!({"type": "string", "description": API_VERSION_DESCRIPTION}),
    );
    props.insert(
        "kind".into(),
        json!({"type": "string", "description": KIND_DESCRIPTION}),
    );
    props.insert("metadata".into(), json!({"type": "object"}));
    if let Some(Value::Object(generated)) = root.remove("properties") {
        for (name, prop) in generated {
            props.entry(name).or_insert(prop);
        }
    }
    root.insert("properties".into(), Value::Object(props));
    if let Some(Value::Array(required)) = root.get_mut("required") {
        required.retain(|r| r != "metadata");
        if required.is_empty() {
            root.remove("required");
        }
    }
}

const API_VERSION_DESCRIPTION: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DESCRIPTION: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

fn description(index: usize) -> &'static str {
    generated().descriptions[index].as_str()
}

/// The five kinds of `arc.opendefense.cloud/v1alpha1`, in the order discovery lists them
/// after sorting: Order, Endpoint, ArtifactType, ClusterArtifactType, ArtifactWorkflow.
pub fn arc_kinds() -> Vec<ResourceKind> {
    let g = generated();
    let arc = |kind, list_kind, plural, singular, short: &'static [&'static str]| ResourceKind {
        group: GROUP,
        version: VERSION,
        kind,
        list_kind,
        plural,
        singular,
        namespaced: true,
        short_names: short,
        categories: &[ARC_CATEGORY],
        has_status: false,
        schema: Value::Null,
        columns: Vec::new(),
        description: "",
    };
    vec![
        ResourceKind {
            has_status: true,
            schema: g.order.clone(),
            columns: columns::order(),
            description: description(0),
            ..arc("Order", "OrderList", "orders", "order", &["ord"])
        },
        ResourceKind {
            has_status: true,
            schema: g.endpoint.clone(),
            columns: columns::endpoint(),
            description: description(1),
            ..arc(
                "Endpoint",
                "EndpointList",
                "endpoints",
                "endpoint",
                &["aep"],
            )
        },
        ResourceKind {
            schema: g.artifact_type.clone(),
            columns: columns::artifact_type(),
            description: description(2),
            ..arc(
                "ArtifactType",
                "ArtifactTypeList",
                "artifacttypes",
                "artifacttype",
                &["atype"],
            )
        },
        ResourceKind {
            namespaced: false,
            schema: g.cluster_artifact_type.clone(),
            columns: columns::artifact_type(),
            description: description(3),
            ..arc(
                "ClusterArtifactType",
                "ClusterArtifactTypeList",
                "clusterartifacttypes",
                "clusterartifacttype",
                &["catype"],
            )
        },
        ResourceKind {
            has_status: true,
            schema: g.artifact_workflow.clone(),
            columns: columns::artifact_workflow(),
            description: description(4),
            ..arc(
                "ArtifactWorkflow",
                "ArtifactWorkflowList",
                "artifactworkflows",
                "artifactworkflow",
                &["awf"],
            )
        },
    ]
}

/// Core `v1` kinds the embedded server owns: Namespace (cluster-scoped, with status), Secret
/// and Event (namespaced). Short names as upstream (`ns`, `ev`).
pub fn core_kinds() -> Vec<ResourceKind> {
    let g = generated();
    vec![
        ResourceKind {
            group: "",
            version: "v1",
            kind: "Namespace",
            list_kind: "NamespaceList",
            plural: "namespaces",
            singular: "namespace",
            namespaced: false,
            short_names: &["ns"],
            categories: &[],
            has_status: true,
            schema: g.namespace.clone(),
            columns: columns::namespace(),
            description: description(5),
        },
        ResourceKind {
            group: "",
            version: "v1",
            kind: "Secret",
            list_kind: "SecretList",
            plural: "secrets",
            singular: "secret",
            namespaced: true,
            short_names: &[],
            categories: &[],
            has_status: false,
            schema: g.secret.clone(),
            columns: columns::secret(),
            description: description(6),
        },
        ResourceKind {
            group: "",
            version: "v1",
            kind: "Event",
            list_kind: "EventList",
            plural: "events",
            singular: "event",
            namespaced: true,
            short_names: &["ev"],
            categories: &[],
            has_status: false,
            schema: g.core_event.clone(),
            columns: columns::core_event(),
            description: description(7),
        },
    ]
}

/// `events.k8s.io/v1` Event — what kube-runtime's event recorder writes. Upstream stores both
/// Event APIs in one place; see [`events`] for the conversions between them.
pub fn events_k8s_io_kinds() -> Vec<ResourceKind> {
    let g = generated();
    vec![ResourceKind {
        group: "events.k8s.io",
        version: "v1",
        kind: "Event",
        list_kind: "EventList",
        plural: "events",
        singular: "event",
        namespaced: true,
        short_names: &["ev"],
        categories: &[],
        has_status: false,
        schema: g.events_event.clone(),
        columns: columns::events_event(),
        description: description(8),
    }]
}

/// Kind-specific semantic checks on a whole object, run after the schema walk.
pub type SemanticValidation = fn(&Value) -> Vec<FieldError>;

/// The semantic checks of `kind` beyond its schema (reference shapes, ranges), if any.
pub fn semantic_validation(kind: &ResourceKind) -> Option<SemanticValidation> {
    match (kind.group, kind.kind) {
        (GROUP, "Order") => Some(hooks::order),
        (GROUP, "Endpoint") => Some(hooks::endpoint),
        (GROUP, "ArtifactType" | "ClusterArtifactType") => Some(hooks::artifact_type),
        (GROUP, "ArtifactWorkflow") => Some(hooks::artifact_workflow),
        ("", "Secret") => Some(hooks::secret),
        _ => None,
    }
}

/// Field-selector labels of `kind` beyond `metadata.name` and `metadata.namespace`, as
/// `(label, dotted JSON path in the object)`.
pub fn selectable_fields(kind: &ResourceKind) -> &'static [(&'static str, &'static str)] {
    match (kind.group, kind.kind) {
        ("", "Event") => CORE_EVENT_FIELDS,
        ("events.k8s.io", "Event") => EVENTS_EVENT_FIELDS,
        ("", "Secret") => &[("type", "type")],
        ("", "Namespace") => &[("status.phase", "status.phase")],
        _ => &[],
    }
}

/// Whether tables of `kind` get the generic Name column first and Age last. A kind whose own
/// columns include a `format: name` column defines the whole layout (core Events, printed as
/// kubectl prints them).
pub fn has_standard_columns(kind: &ResourceKind) -> bool {
    !kind.columns.iter().any(|c| c.format == "name")
}

/// Field selector labels of core `v1` Events (upstream `EventToSelectableFields`), as
/// `(label, dotted JSON path)`. `kubectl describe` selects on the `involvedObject.*` ones.
const CORE_EVENT_FIELDS: &[(&str, &str)] = &[
    ("involvedObject.kind", "involvedObject.kind"),
    ("involvedObject.namespace", "involvedObject.namespace"),
    ("involvedObject.name", "involvedObject.name"),
    ("involvedObject.uid", "involvedObject.uid"),
    ("involvedObject.apiVersion", "involvedObject.apiVersion"),
    (
        "involvedObject.resourceVersion",
        "involvedObject.resourceVersion",
    ),
    ("involvedObject.fieldPath", "involvedObject.fieldPath"),
    ("reason", "reason"),
    ("reportingComponent", "reportingComponent"),
    ("source", "source.component"),
    ("type", "type"),
];

/// Field selector labels of `events.k8s.io/v1` Events.
const EVENTS_EVENT_FIELDS: &[(&str, &str)] = &[
    ("regarding.kind", "regarding.kind"),
    ("regarding.namespace", "regarding.namespace"),
    ("regarding.name", "regarding.name"),
    ("regarding.uid", "regarding.uid"),
    ("regarding.apiVersion", "regarding.apiVersion"),
    ("regarding.resourceVersion", "regarding.resourceVersion"),
    ("regarding.fieldPath", "regarding.fieldPath"),
    ("reason", "reason"),
    ("reportingController", "reportingController"),
    ("type", "type"),
];

/// The Age column every kind with `standard_columns` gets last.
pub fn age_column() -> PrinterColumn {
    PrinterColumn {
        name: "Age",
        type_: "date",
        format: "",
        description: "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
        priority: 0,
        cell: |o| {
            o.pointer("/metadata/creationTimestamp")
                .cloned()
                .unwrap_or(Value::Null)
        },
    }
}

/// The Name column every kind with `standard_columns` gets first.
pub fn name_column() -> PrinterColumn {
    PrinterColumn {
        name: "Name",
        type_: "string",
        format: "name",
        description: "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
        priority: 0,
        cell: |o| o.pointer("/metadata/name").cloned().unwrap_or(Value::Null),
    }
}

#[cfg(test)]
mod tests;
