//! The path items of a kind: list/create/deletecollection on the collection, get/replace/
//! patch/delete on an object, get/replace/patch on `/status`, and the all-namespaces list —
//! with kube-apiserver's operation ids, actions and parameters, in either OpenAPI flavour.
//!
//! PATCH accepts JSON Patch, JSON merge patch and apply patches; never strategic merge patch
//! (kubectl would send it, and the server answers it with 415).

use serde_json::{Map, Value, json};

use super::definitions::{DELETE_OPTIONS, Flavour, PATCH, STATUS, definition_name, operation_gvk};
use crate::server::registry::ResourceKind;

/// The patch content types every PATCH operation accepts.
pub const PATCH_CONTENT_TYPES: [&str; 3] = [
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
];

/// Body content types of create and replace.
const WRITE_CONTENT_TYPES: [&str; 2] = ["application/json", "application/yaml"];

/// A query or path parameter.
struct Param {
    name: &'static str,
    location: &'static str,
    type_: &'static str,
    description: &'static str,
}

const fn query(name: &'static str, type_: &'static str, description: &'static str) -> Param {
    Param {
        name,
        location: "query",
        type_,
        description,
    }
}

const PRETTY: Param = query(
    "pretty",
    "string",
    "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).",
);
const DRY_RUN: Param = query(
    "dryRun",
    "string",
    "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed",
);
const FIELD_MANAGER: Param = query(
    "fieldManager",
    "string",
    "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint. This field is required for apply requests (application/apply-patch) but optional for non-apply patch types (JsonPatch, MergePatch).",
);
const FIELD_VALIDATION: Param = query(
    "fieldValidation",
    "string",
    "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default. - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.",
);
const FORCE: Param = query(
    "force",
    "boolean",
    "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.",
);

const LIST_PARAMS: [Param; 10] = [
    query(
        "allowWatchBookmarks",
        "boolean",
        "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do not implement bookmarks may ignore this flag and bookmarks are sent at the server's discretion. Clients should not assume bookmarks are returned at any specific interval, nor may they assume the server will send any BOOKMARK event during a session.",
    ),
    query(
        "continue",
        "string",
        "The continue option should be set when retrieving more results from the server. Since this value is server defined, clients may only use the continue value from a previous query result with identical query parameters (except for the value of continue).",
    ),
    query(
        "fieldSelector",
        "string",
        "A selector to restrict the list of returned objects by their fields. Defaults to everything. Supported: metadata.name, metadata.namespace (with =, ==, !=).",
    ),
    query(
        "labelSelector",
        "string",
        "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
    ),
    query(
        "limit",
        "integer",
        "limit is a maximum number of responses to return for a list call. If more items exist, the server will set the `continue` field on the list metadata to a value that can be used with the same initial query to retrieve the next set of results.",
    ),
    query(
        "resourceVersion",
        "string",
        "resourceVersion sets a constraint on what resource versions a request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.",
    ),
    query(
        "resourceVersionMatch",
        "string",
        "resourceVersionMatch determines how resourceVersion is applied to list calls. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.",
    ),
    query(
        "sendInitialEvents",
        "boolean",
        "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with synthetic events to produce the current state of objects in the collection, followed by a bookmark annotated with \"k8s.io/initial-events-end\".",
    ),
    query(
        "timeoutSeconds",
        "integer",
        "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.",
    ),
    query(
        "watch",
        "boolean",
        "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.",
    ),
];

const DELETE_PARAMS: [Param; 4] = [
    query(
        "gracePeriodSeconds",
        "integer",
        "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately.",
    ),
    query(
        "ignoreStoreReadErrorWithClusterBreakingPotential",
        "boolean",
        "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow fails with a corrupt object error.",
    ),
    query(
        "orphanDependents",
        "boolean",
        "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. Should the dependent objects be orphaned.",
    ),
    query(
        "propagationPolicy",
        "string",
        "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, but not both. Acceptable values are: 'Orphan' - orphan the dependents; 'Background' - allow the garbage collector to delete the dependents in the background; 'Foreground' - a cascading policy that deletes all dependents in the foreground.",
    ),
];

const NAME: Param = Param {
    name: "name",
    location: "path",
    type_: "string",
    description: "name of the object",
};
const NAMESPACE: Param = Param {
    name: "namespace",
    location: "path",
    type_: "string",
    description: "object name and auth scope, such as for teams and projects",
};

fn param(p: &Param, flavour: Flavour) -> Value {
    let mut v = Map::new();
    v.insert("name".into(), json!(p.name));
    v.insert("in".into(), json!(p.location));
    v.insert("description".into(), json!(p.description));
    if p.location == "path" {
        v.insert("required".into(), json!(true));
    }
    match flavour {
        Flavour::V3 => {
            v.insert(
                "schema".into(),
                json!({"type": p.type_, "uniqueItems": true}),
            );
        }
        Flavour::V2 => {
            v.insert("type".into(), json!(p.type_));
            v.insert("uniqueItems".into(), json!(true));
        }
    }
    Value::Object(v)
}

/// The response and body schemas an operation refers to.
#[derive(Clone, Copy)]
enum Body<'a> {
    None,
    /// A definition, accepted as JSON or YAML.
    Object(&'a str),
    /// A `Patch` in one of [`PATCH_CONTENT_TYPES`].
    Patch,
}

struct Operation<'a> {
    verb: &'static str,
    id: String,
    action: &'static str,
    params: Vec<&'a Param>,
    body: Body<'a>,
    /// `(code, definition)`.
    responses: Vec<(&'static str, &'a str)>,
    list: bool,
}

fn operation(kind: &ResourceKind, op: &Operation<'_>, tag: &str, flavour: Flavour) -> Value {
    let mut v = Map::new();
    v.insert("description".into(), json!(description(op, kind)));
    v.insert("operationId".into(), json!(op.id));
    v.insert("tags".into(), json!([tag]));
    let mut params: Vec<Value> = op.params.iter().map(|p| param(p, flavour)).collect();
    let produces: Vec<&str> = if op.list {
        vec!["application/json", "application/json;stream=watch"]
    } else {
        vec!["application/json"]
    };
    match (flavour, op.body) {
        (_, Body::None) => {}
        (Flavour::V3, Body::Object(def)) => {
            let content: Map<String, Value> = WRITE_CONTENT_TYPES
                .iter()
                .map(|t| ((*t).to_string(), json!({"schema": flavour.reference(def)})))
                .collect();
            v.insert(
                "requestBody".into(),
                json!({"content": content, "required": op.verb != "delete"}),
            );
        }
        (Flavour::V3, Body::Patch) => {
            let content: Map<String, Value> = PATCH_CONTENT_TYPES
                .iter()
                .map(|t| {
                    (
                        (*t).to_string(),
                        json!({"schema": flavour.reference(PATCH)}),
                    )
                })
                .collect();
            v.insert(
                "requestBody".into(),
                json!({"content": content, "required": true}),
            );
        }
        (Flavour::V2, Body::Object(def)) => {
            params.push(json!({"name": "body", "in": "body", "required": op.verb != "delete", "schema": flavour.reference(def)}));
            v.insert("consumes".into(), json!(WRITE_CONTENT_TYPES));
        }
        (Flavour::V2, Body::Patch) => {
            params.push(json!({"name": "body", "in": "body", "required": true, "schema": flavour.reference(PATCH)}));
            v.insert("consumes".into(), json!(PATCH_CONTENT_TYPES));
        }
    }
    if !params.is_empty() {
        v.insert("parameters".into(), Value::Array(params));
    }
    let mut responses = Map::new();
    for (code, def) in &op.responses {
        let text = match *code {
            "200" => "OK",
            "201" => "Created",
            _ => "Accepted",
        };
        let response = match flavour {
            Flavour::V3 => {
                let content: Map<String, Value> = produces
                    .iter()
                    .map(|t| ((*t).to_string(), json!({"schema": flavour.reference(def)})))
                    .collect();
                json!({"description": text, "content": content})
            }
            Flavour::V2 => json!({"description": text, "schema": flavour.reference(def)}),
        };
        responses.insert((*code).to_string(), response);
    }
    responses.insert("401".into(), json!({"description": "Unauthorized"}));
    v.insert("responses".into(), Value::Object(responses));
    if flavour == Flavour::V2 {
        v.insert("produces".into(), json!(produces));
        v.insert("schemes".into(), json!(["https"]));
    }
    v.insert("x-kubernetes-action".into(), json!(op.action));
    v.insert(
        "x-kubernetes-group-version-kind".into(),
        operation_gvk(kind),
    );
    Value::Object(v)
}

fn description(op: &Operation<'_>, kind: &ResourceKind) -> String {
    let what = if op.id.ends_with("Status") {
        format!("status of the specified {}", kind.kind)
    } else {
        kind.kind.to_string()
    };
    match op.action {
        "list" => format!("list or watch objects of kind {}", kind.kind),
        "post" => format!("create a {}", kind.kind),
        "deletecollection" => format!("delete collection of {}", kind.kind),
        "get" => format!("read the specified {what}"),
        "put" => format!("replace the specified {what}"),
        "patch" => format!("partially update the specified {what}"),
        _ => format!("delete a {}", kind.kind),
    }
}

/// `ArcOpendefenseCloudV1alpha1`, `CoreV1`, `EventsV1`: the group-version part of operation ids.
pub fn operation_group(kind: &ResourceKind) -> String {
    let group = if kind.group.is_empty() {
        "core"
    } else {
        kind.group.strip_suffix(".k8s.io").unwrap_or(kind.group)
    };
    let mut out = String::new();
    for word in group.split(['.', '-']).chain([kind.version]) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    out
}

/// The tag of a group-version's operations: `arcOpendefenseCloud_v1alpha1`, `core_v1`.
fn tag(kind: &ResourceKind) -> String {
    let mut group = operation_group(kind);
    group.truncate(group.len() - kind.version.len());
    let mut chars = group.chars();
    let lower: String = chars
        .next()
        .map(|c| c.to_lowercase().chain(chars).collect())
        .unwrap_or_default();
    format!("{lower}_{}", kind.version)
}

/// The URL prefix of a group-version: `/apis/{g}/{v}` or `/api/v1`.
pub fn group_version_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

/// Every path of `kind` with its operations, as `(path, path item)`.
pub fn kind_paths(kind: &ResourceKind, flavour: Flavour) -> Vec<(String, Value)> {
    let gv = operation_group(kind);
    let tag = tag(kind);
    let kind_def = definition_name(kind, kind.kind);
    let list_def = definition_name(kind, kind.list_kind);
    let base = group_version_path(kind.group, kind.version);
    let scope = if kind.namespaced { "Namespaced" } else { "" };
    let k = kind.kind;
    let write = [&DRY_RUN, &FIELD_MANAGER, &FIELD_VALIDATION];
    let patch = [&DRY_RUN, &FIELD_MANAGER, &FIELD_VALIDATION, &FORCE];
    let list: Vec<&Param> = LIST_PARAMS.iter().collect();
    let delete: Vec<&Param> = [&DRY_RUN].into_iter().chain(DELETE_PARAMS.iter()).collect();
    let collection_delete: Vec<&Param> = delete
        .iter()
        .copied()
        .chain(
            LIST_PARAMS
                .iter()
                .filter(|p| p.name != "watch" && p.name != "allowWatchBookmarks"),
        )
        .collect();
    let id =
        |verb: &str, middle: &str, suffix: &str| format!("{verb}{gv}{middle}{scope}{k}{suffix}");

    let collection_ops = vec![
        Operation {
            verb: "get",
            id: id("list", "", ""),
            action: "list",
            params: list.clone(),
            body: Body::None,
            responses: vec![("200", &list_def)],
            list: true,
        },
        Operation {
            verb: "post",
            id: id("create", "", ""),
            action: "post",
            params: write.to_vec(),
            body: Body::Object(&kind_def),
            responses: vec![("200", &kind_def), ("201", &kind_def), ("202", &kind_def)],
            list: false,
        },
        Operation {
            verb: "delete",
            id: id("delete", "Collection", ""),
            action: "deletecollection",
            params: collection_delete,
            body: Body::Object(DELETE_OPTIONS),
            responses: vec![("200", STATUS)],
            list: false,
        },
    ];
    let object_ops = vec![
        Operation {
            verb: "get",
            id: id("read", "", ""),
            action: "get",
            params: vec![],
            body: Body::None,
            responses: vec![("200", &kind_def)],
            list: false,
        },
        Operation {
            verb: "put",
            id: id("replace", "", ""),
            action: "put",
            params: write.to_vec(),
            body: Body::Object(&kind_def),
            responses: vec![("200", &kind_def), ("201", &kind_def)],
            list: false,
        },
        Operation {
            verb: "patch",
            id: id("patch", "", ""),
            action: "patch",
            params: patch.to_vec(),
            body: Body::Patch,
            responses: vec![("200", &kind_def), ("201", &kind_def)],
            list: false,
        },
        Operation {
            verb: "delete",
            id: id("delete", "", ""),
            action: "delete",
            params: delete.clone(),
            body: Body::Object(DELETE_OPTIONS),
            responses: vec![("200", STATUS), ("202", STATUS)],
            list: false,
        },
    ];
    let status_ops = vec![
        Operation {
            verb: "get",
            id: id("read", "", "Status"),
            action: "get",
            params: vec![],
            body: Body::None,
            responses: vec![("200", &kind_def)],
            list: false,
        },
        Operation {
            verb: "put",
            id: id("replace", "", "Status"),
            action: "put",
            params: write.to_vec(),
            body: Body::Object(&kind_def),
            responses: vec![("200", &kind_def), ("201", &kind_def)],
            list: false,
        },
        Operation {
            verb: "patch",
            id: id("patch", "", "Status"),
            action: "patch",
            params: patch.to_vec(),
            body: Body::Patch,
            responses: vec![("200", &kind_def), ("201", &kind_def)],
            list: false,
        },
    ];

    let scoped = if kind.namespaced {
        format!("{base}/namespaces/{{namespace}}/{}", kind.plural)
    } else {
        format!("{base}/{}", kind.plural)
    };
    let scope_params: Vec<&Param> = if kind.namespaced {
        vec![&NAMESPACE, &PRETTY]
    } else {
        vec![&PRETTY]
    };
    let object_params: Vec<&Param> = [&NAME]
        .into_iter()
        .chain(scope_params.iter().copied())
        .collect();
    let item = |ops: &[Operation<'_>], params: &[&Param]| -> Value {
        let mut v = Map::new();
        for op in ops {
            v.insert(op.verb.into(), operation(kind, op, &tag, flavour));
        }
        v.insert(
            "parameters".into(),
            Value::Array(params.iter().map(|p| param(p, flavour)).collect()),
        );
        Value::Object(v)
    };
    let mut paths = vec![
        (scoped.clone(), item(&collection_ops, &scope_params)),
        (
            format!("{scoped}/{{name}}"),
            item(&object_ops, &object_params),
        ),
    ];
    if kind.has_status {
        paths.push((
            format!("{scoped}/{{name}}/status"),
            item(&status_ops, &object_params),
        ));
    }
    if kind.namespaced {
        let all = Operation {
            verb: "get",
            id: format!("list{gv}{k}ForAllNamespaces"),
            action: "list",
            params: list.clone(),
            body: Body::None,
            responses: vec![("200", &list_def)],
            list: true,
        };
        paths.push((
            format!("{base}/{}", kind.plural),
            item(std::slice::from_ref(&all), &[&PRETTY]),
        ));
    }
    paths
}
