//! The two Event APIs are two views of one object, as upstream: `events.k8s.io/v1` (what
//! kube-runtime's recorder writes) and core `v1` (what `kubectl describe` reads). Store one form
//! and convert with these functions; fields map one to one (upstream `pkg/apis/events/v1`
//! conversion), metadata is shared.

use serde_json::{Map, Value};

/// `(events.k8s.io/v1 field, core v1 field)` pairs with different names.
const RENAMED: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
];

/// Fields with the same name in both APIs (besides `metadata`).
const SHARED: &[&str] = &[
    "metadata",
    "action",
    "eventTime",
    "reason",
    "related",
    "reportingInstance",
    "series",
    "type",
];

fn convert(obj: &Value, api_version: &str, to_core: bool) -> Value {
    let mut out = Map::new();
    out.insert("apiVersion".into(), Value::from(api_version));
    out.insert("kind".into(), Value::from("Event"));
    let Some(src) = obj.as_object() else {
        return Value::Object(out);
    };
    for key in SHARED {
        if let Some(v) = src.get(*key) {
            out.insert((*key).into(), v.clone());
        }
    }
    for (events, core) in RENAMED {
        let (from, to) = if to_core {
            (events, core)
        } else {
            (core, events)
        };
        if let Some(v) = src.get(*from) {
            out.insert((*to).into(), v.clone());
        }
    }
    Value::Object(out)
}

/// A core `v1` Event with the content of an `events.k8s.io/v1` Event.
pub fn core_from_events_v1(event: &Value) -> Value {
    convert(event, "v1", true)
}

/// An `events.k8s.io/v1` Event with the content of a core `v1` Event.
pub fn events_v1_from_core(event: &Value) -> Value {
    convert(event, "events.k8s.io/v1", false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn recorder_event_reads_as_core_event_and_back() {
        let recorded = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "o1.17a", "namespace": "default"},
            "eventTime": "2026-01-02T03:04:05.000000Z",
            "regarding": {"apiVersion": "arc.opendefense.cloud/v1alpha1", "kind": "Order", "name": "o1", "namespace": "default", "uid": "u1"},
            "note": "all artifacts moved", "reason": "Ready", "type": "Normal", "action": "Reconcile",
            "reportingController": "arc-order-controller", "reportingInstance": "arcd-host",
            "series": {"count": 3, "lastObservedTime": "2026-01-02T03:05:05.000000Z"}
        });
        let core = core_from_events_v1(&recorded);
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["uid"], "u1");
        assert_eq!(core["message"], "all artifacts moved");
        assert_eq!(core["reportingComponent"], "arc-order-controller");
        assert_eq!(core["series"]["count"], 3);
        assert!(core.get("regarding").is_none() && core.get("note").is_none());
        assert_eq!(events_v1_from_core(&core), recorded);
    }

    #[test]
    fn core_only_fields_map_to_deprecated_ones() {
        let core = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
            "involvedObject": {"kind": "Order", "name": "o1"}, "count": 2,
            "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:01:00Z",
            "source": {"component": "arcd"}});
        let ev = events_v1_from_core(&core);
        assert_eq!(ev["deprecatedCount"], 2);
        assert_eq!(ev["deprecatedSource"]["component"], "arcd");
        assert_eq!(ev["deprecatedLastTimestamp"], "2026-01-01T00:01:00Z");
        assert_eq!(ev["regarding"]["kind"], "Order");
    }
}
