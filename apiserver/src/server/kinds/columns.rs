//! Printer columns (`kubectl get` output) of the served kinds. Each cell is computed from the
//! whole object; `date` cells return the RFC 3339 timestamp and the table code renders the age.

use serde_json::{Value, json};

use crate::server::registry::PrinterColumn;

fn column(
    name: &'static str,
    type_: &'static str,
    description: &'static str,
    cell: fn(&Value) -> Value,
) -> PrinterColumn {
    PrinterColumn {
        name,
        type_,
        format: "",
        description,
        priority: 0,
        cell,
    }
}

fn wide(mut c: PrinterColumn) -> PrinterColumn {
    c.priority = 1;
    c
}

/// The value at a `/`-separated JSON pointer, or null.
fn at(o: &Value, pointer: &str) -> Value {
    o.pointer(pointer).cloned().unwrap_or(Value::Null)
}

fn count_phases(o: &Value, phases: &[&str]) -> Value {
    let n = o
        .pointer("/status/artifactWorkflows")
        .and_then(Value::as_object)
        .map(|m| {
            m.values()
                .filter(|w| {
                    w.get("phase")
                        .and_then(Value::as_str)
                        .is_some_and(|p| phases.contains(&p))
                })
                .count()
        })
        .unwrap_or(0);
    json!(n)
}

fn condition_status(o: &Value, type_: &str) -> Value {
    o.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
        })
        .and_then(|c| c.get("status").cloned())
        .unwrap_or(Value::Null)
}

fn joined(o: &Value, pointer: &str) -> Value {
    match o.pointer(pointer).and_then(Value::as_array) {
        Some(items) if !items.is_empty() => Value::String(
            items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","),
        ),
        _ => Value::Null,
    }
}

/// Order: Artifacts, Succeeded, Failed, Ready.
pub(super) fn order() -> Vec<PrinterColumn> {
    vec![
        column(
            "Artifacts",
            "integer",
            "The number of artifacts in the Order.",
            |o| {
                json!(
                    o.pointer("/spec/artifacts")
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len)
                )
            },
        ),
        column(
            "Succeeded",
            "integer",
            "The number of the Order's ArtifactWorkflows that succeeded.",
            |o| count_phases(o, &["Succeeded"]),
        ),
        column(
            "Failed",
            "integer",
            "The number of the Order's ArtifactWorkflows that failed (phase Failed or Error).",
            |o| count_phases(o, &["Failed", "Error"]),
        ),
        column(
            "Ready",
            "string",
            "The status of the Ready condition.",
            |o| condition_status(o, "Ready"),
        ),
    ]
}

/// Endpoint: Type, URL, Usage.
pub(super) fn endpoint() -> Vec<PrinterColumn> {
    vec![
        column(
            "Type",
            "string",
            "The kind of system behind the URL.",
            |o| at(o, "/spec/type"),
        ),
        column(
            "URL",
            "string",
            "The URL used to reach the Endpoint.",
            |o| at(o, "/spec/remoteURL"),
        ),
        column(
            "Usage",
            "string",
            "How the Endpoint may be used: PullOnly, PushOnly or All.",
            |o| {
                o.pointer("/spec/usage")
                    .cloned()
                    .unwrap_or_else(|| json!("All"))
            },
        ),
    ]
}

/// ArtifactType and ClusterArtifactType: Template, Src Types, Dst Types.
pub(super) fn artifact_type() -> Vec<PrinterColumn> {
    vec![
        column(
            "Template",
            "string",
            "The workflow template that moves artifacts of this type.",
            |o| at(o, "/spec/workflowTemplateRef/name"),
        ),
        column(
            "Src Types",
            "string",
            "Endpoint types allowed as source.",
            |o| joined(o, "/spec/rules/srcTypes"),
        ),
        column(
            "Dst Types",
            "string",
            "Endpoint types allowed as destination.",
            |o| joined(o, "/spec/rules/dstTypes"),
        ),
    ]
}

/// ArtifactWorkflow: Phase, Message (wide only: it can be a log tail).
pub(super) fn artifact_workflow() -> Vec<PrinterColumn> {
    vec![
        column("Phase", "string", "The workflow's phase.", |o| {
            at(o, "/status/phase")
        }),
        wide(column(
            "Message",
            "string",
            "A human-readable message; on failure the tail of the worker's log.",
            |o| at(o, "/status/message"),
        )),
    ]
}

/// Namespace: Status.
pub(super) fn namespace() -> Vec<PrinterColumn> {
    vec![column(
        "Status",
        "string",
        "The phase of the namespace: Active or Terminating.",
        |o| at(o, "/status/phase"),
    )]
}

/// Secret: Type, Data.
pub(super) fn secret() -> Vec<PrinterColumn> {
    vec![
        column("Type", "string", "The type of the secret.", |o| {
            at(o, "/type")
        }),
        column(
            "Data",
            "integer",
            "The number of items in the secret.",
            |o| {
                json!(
                    o.get("data")
                        .and_then(Value::as_object)
                        .map_or(0, |m| m.len())
                )
            },
        ),
    ]
}

/// The fields of an Event, whichever API it came through.
struct EventView<'a> {
    regarding: &'a str,
    message: &'a str,
    first_timestamp: &'a str,
    last_timestamp: &'a str,
    count: &'a str,
    reporting_controller: &'a str,
    source: Option<&'a str>,
}

const CORE_EVENT: EventView<'static> = EventView {
    regarding: "involvedObject",
    message: "message",
    first_timestamp: "firstTimestamp",
    last_timestamp: "lastTimestamp",
    count: "count",
    reporting_controller: "reportingComponent",
    source: Some("source"),
};

const EVENTS_EVENT: EventView<'static> = EventView {
    regarding: "regarding",
    message: "note",
    first_timestamp: "deprecatedFirstTimestamp",
    last_timestamp: "deprecatedLastTimestamp",
    count: "deprecatedCount",
    reporting_controller: "reportingController",
    source: Some("deprecatedSource"),
};

fn non_empty<'a>(o: &'a Value, key: &str) -> Option<&'a str> {
    o.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

impl EventView<'_> {
    /// First seen: the first timestamp, else the event time (upstream `printEvent`).
    fn first_seen(&self, o: &Value) -> Value {
        non_empty(o, self.first_timestamp)
            .or_else(|| non_empty(o, "eventTime"))
            .map_or(Value::Null, |s| json!(s))
    }

    /// Last seen: the series' last observation, else the last timestamp, else first seen.
    fn last_seen(&self, o: &Value) -> Value {
        if let Some(t) = o
            .get("series")
            .and_then(|s| non_empty(s, "lastObservedTime"))
        {
            return json!(t);
        }
        non_empty(o, self.last_timestamp).map_or_else(|| self.first_seen(o), |s| json!(s))
    }

    fn count(&self, o: &Value) -> Value {
        if let Some(c) = o.get("series").and_then(|s| s.get("count")) {
            return c.clone();
        }
        match o.get(self.count).and_then(Value::as_i64) {
            Some(c) if c != 0 => json!(c),
            _ => json!(1),
        }
    }

    /// `kind/name` of the object the event is about, the kind lower-cased.
    fn object(&self, o: &Value) -> Value {
        let r = o.get(self.regarding);
        let kind = r
            .and_then(|r| r.get("kind"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_lowercase();
        match r.and_then(|r| non_empty(r, "name")) {
            Some(name) => json!(format!("{kind}/{name}")),
            None => json!(kind),
        }
    }

    /// `component, host` of the source, or `controller, instance` of the reporter.
    fn source(&self, o: &Value) -> Value {
        let src = self.source.and_then(|s| o.get(s));
        let component = src.and_then(|s| non_empty(s, "component"));
        let host = src.and_then(|s| non_empty(s, "host"));
        let (a, b) = match component {
            Some(c) => (Some(c), host),
            None => (
                non_empty(o, self.reporting_controller),
                non_empty(o, "reportingInstance"),
            ),
        };
        match (a, b) {
            (Some(a), Some(b)) => json!(format!("{a}, {b}")),
            (Some(a), None) => json!(a),
            _ => json!(""),
        }
    }
}

/// The columns of upstream's event printer (kubectl shows the same for both Event APIs):
/// Last Seen, Type, Reason, Object, Message; wide adds Subobject, Source, First Seen, Count, Name.
macro_rules! event_columns {
    ($view:expr) => {
        vec![
            column(
                "Last Seen",
                "date",
                "Time when this Event was last observed.",
                |o| $view.last_seen(o),
            ),
            column(
                "Type",
                "string",
                "Type of this event (Normal, Warning).",
                |o| at(o, "/type"),
            ),
            column("Reason", "string", "Why the action was taken.", |o| {
                at(o, "/reason")
            }),
            column("Object", "string", "The object this Event is about.", |o| {
                $view.object(o)
            }),
            wide(column(
                "Subobject",
                "string",
                "The field of the object this Event is about.",
                |o| {
                    o.get($view.regarding)
                        .and_then(|r| r.get("fieldPath"))
                        .cloned()
                        .unwrap_or(json!(""))
                },
            )),
            wide(column(
                "Source",
                "string",
                "The component reporting this Event.",
                |o| $view.source(o),
            )),
            column(
                "Message",
                "string",
                "A human-readable description of the status of this operation.",
                |o| {
                    json!(
                        o.get($view.message)
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .trim()
                    )
                },
            ),
            wide(column(
                "First Seen",
                "date",
                "Time when this Event was first observed.",
                |o| $view.first_seen(o),
            )),
            wide(column(
                "Count",
                "integer",
                "The number of times this event has occurred.",
                |o| $view.count(o),
            )),
            wide(PrinterColumn {
                format: "name",
                ..column("Name", "string", "The Event's name.", |o| {
                    at(o, "/metadata/name")
                })
            }),
        ]
    };
}

/// Core `v1` Event columns.
pub(super) fn core_event() -> Vec<PrinterColumn> {
    event_columns!(CORE_EVENT)
}

/// `events.k8s.io/v1` Event columns.
pub(super) fn events_event() -> Vec<PrinterColumn> {
    event_columns!(EVENTS_EVENT)
}
