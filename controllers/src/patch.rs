//! Status writes as JSON merge patches (RFC 7386) that carry only what changed, guarded by the
//! object's `resourceVersion` so a reconcile that worked from a stale cache gets a 409 Conflict
//! instead of overwriting newer state.

use serde_json::{Map, Value};

/// The merge patch that turns `old` into `new`, or `None` when they are equal. Keys missing
/// from `new` become `null`; arrays and scalars are replaced whole.
pub fn merge_diff(old: &Value, new: &Value) -> Option<Value> {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut out = Map::new();
            for (k, nv) in n {
                match o.get(k) {
                    Some(ov) => {
                        if let Some(d) = merge_diff(ov, nv) {
                            out.insert(k.clone(), d);
                        }
                    }
                    None => {
                        out.insert(k.clone(), nv.clone());
                    }
                }
            }
            for k in o.keys().filter(|k| !n.contains_key(*k)) {
                out.insert(k.clone(), Value::Null);
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        _ if old == new => None,
        _ => Some(new.clone()),
    }
}

/// A status patch: `{"metadata":{"resourceVersion":rv},"status":diff}`; `None` when the status
/// did not change and no precondition check is wanted.
pub fn status_patch(
    resource_version: Option<&str>,
    old: &Value,
    new: &Value,
    always: bool,
) -> Option<Value> {
    let diff = merge_diff(old, new);
    if diff.is_none() && !always {
        return None;
    }
    let mut patch = Map::new();
    if let Some(rv) = resource_version {
        patch.insert(
            "metadata".into(),
            serde_json::json!({ "resourceVersion": rv }),
        );
    }
    if let Some(d) = diff {
        // A diff against "no status" is the whole status.
        patch.insert("status".into(), d);
    }
    Some(Value::Object(patch))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Applies a merge patch (RFC 7386) to check the diffs round-trip.
    fn apply(target: &Value, patch: &Value) -> Value {
        match (target, patch) {
            (Value::Object(t), Value::Object(p)) => {
                let mut out = t.clone();
                for (k, v) in p {
                    if v.is_null() {
                        out.remove(k);
                    } else {
                        let cur = out.get(k).cloned().unwrap_or(Value::Null);
                        out.insert(k.clone(), apply(&cur, v));
                    }
                }
                Value::Object(out)
            }
            (_, Value::Object(p)) => apply(&Value::Object(Map::new()), &Value::Object(p.clone())),
            (_, p) => p.clone(),
        }
    }

    #[test]
    fn diffs_round_trip() {
        let cases = [
            (json!({}), json!({"a": 1})),
            (
                json!({"a": 1, "b": {"c": 2, "d": 3}}),
                json!({"a": 1, "b": {"c": 4}}),
            ),
            (
                json!({"m": {"x": {"p": "Running"}, "y": {"p": "Pending"}}}),
                json!({"m": {"x": {"p": "Succeeded"}}}),
            ),
            (json!({"l": [1, 2]}), json!({"l": [1]})),
            (json!({"s": "a"}), json!({"s": {"nested": true}})),
        ];
        for (old, new) in cases {
            let patch = merge_diff(&old, &new).expect("differs");
            assert_eq!(apply(&old, &patch), new, "patch {patch}");
        }
        assert_eq!(merge_diff(&json!({"a": [1]}), &json!({"a": [1]})), None);
    }

    #[test]
    fn status_patches_carry_the_precondition() {
        let p = status_patch(Some("42"), &json!({"a": 1}), &json!({"a": 2}), false).expect("patch");
        assert_eq!(
            p,
            json!({"metadata": {"resourceVersion": "42"}, "status": {"a": 2}})
        );
        assert_eq!(
            status_patch(Some("42"), &json!({"a": 1}), &json!({"a": 1}), false),
            None
        );
        assert_eq!(
            status_patch(Some("42"), &json!({"a": 1}), &json!({"a": 1}), true),
            Some(json!({"metadata": {"resourceVersion": "42"}}))
        );
        assert_eq!(
            status_patch(None, &Value::Null, &json!({"a": 1}), false),
            Some(json!({"status": {"a": 1}}))
        );
    }
}
