//! Server-side apply, reduced to what clients rely on: maps merge by key, `conditions`-style
//! lists merge by their `type` key, other lists are atomic; each manager owns the fields it
//! applied (recorded in `managedFields`); applying a value another manager owns is a 409 conflict
//! unless `force`; fields a manager applied before and omits now are removed if nobody else owns
//! them.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::Ctx;
use crate::server::errors::{ApiError, Cause};
use crate::server::object::now_rfc3339;

/// One step of a field path: a map key (`f:name`) or a keyed list item (`k:{"type":"Ready"}`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Field(String),
    Item(String, String),
}

type Path = Vec<Step>;

/// Lists whose items are merged by key rather than replaced (`x-kubernetes-list-type: map`).
fn list_key(field: &str) -> Option<&'static str> {
    match field {
        "conditions" => Some("type"),
        _ => None,
    }
}

fn leaves(value: &Value, prefix: &mut Path, field: &str, out: &mut BTreeSet<Path>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                prefix.push(Step::Field(k.clone()));
                leaves(v, prefix, k, out);
                prefix.pop();
            }
        }
        Value::Array(items)
            if list_key(field).is_some()
                && items
                    .iter()
                    .all(|i| i.get(list_key(field).unwrap_or("")).is_some()) =>
        {
            let key = list_key(field).unwrap_or("");
            for item in items {
                let id = item[key]
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| item[key].to_string());
                prefix.push(Step::Item(key.into(), id));
                leaves(item, prefix, "", out);
                prefix.pop();
            }
        }
        _ => {
            out.insert(prefix.clone());
        }
    }
}

/// The applied configuration's owned paths, limited to the part of the object a write owns.
fn applied_paths(applied: &Value, status_only: bool, has_status: bool) -> BTreeSet<Path> {
    let mut out = BTreeSet::new();
    let Some(map) = applied.as_object() else {
        return out;
    };
    for (k, v) in map {
        match k.as_str() {
            "apiVersion" | "kind" => {}
            "metadata" => {
                if status_only {
                    continue;
                }
                for f in ["labels", "annotations", "finalizers", "ownerReferences"] {
                    if let Some(val) = v.get(f) {
                        let mut p = vec![Step::Field("metadata".into()), Step::Field(f.into())];
                        leaves(val, &mut p, f, &mut out);
                    }
                }
            }
            "status" if status_only || !has_status => {
                leaves(v, &mut vec![Step::Field(k.clone())], k, &mut out)
            }
            _ if status_only => {}
            "status" => {}
            _ => leaves(v, &mut vec![Step::Field(k.clone())], k, &mut out),
        }
    }
    out
}

fn step_key(step: &Step) -> String {
    match step {
        Step::Field(f) => format!("f:{f}"),
        Step::Item(k, v) => format!("k:{}", json!({ k: v })),
    }
}

fn to_fields_v1(paths: &BTreeSet<Path>) -> Value {
    let mut root = Map::new();
    for path in paths {
        let mut node = &mut root;
        for step in path {
            let entry = node.entry(step_key(step)).or_insert_with(|| json!({}));
            if matches!(step, Step::Item(..)) {
                entry
                    .as_object_mut()
                    .map(|m| m.entry(".").or_insert_with(|| json!({})));
            }
            node = match entry.as_object_mut() {
                Some(m) => m,
                None => break,
            };
        }
    }
    Value::Object(root)
}

fn from_fields_v1(value: &Value, prefix: &mut Path, out: &mut BTreeSet<Path>) {
    let Some(map) = value.as_object() else { return };
    let children: Vec<_> = map.iter().filter(|(k, _)| k.as_str() != ".").collect();
    if children.is_empty() {
        if !prefix.is_empty() {
            out.insert(prefix.clone());
        }
        return;
    }
    for (k, v) in children {
        let step = if let Some(f) = k.strip_prefix("f:") {
            Step::Field(f.to_string())
        } else if let Some(j) = k.strip_prefix("k:") {
            let Ok(Value::Object(key)) = serde_json::from_str::<Value>(j) else {
                continue;
            };
            let Some((kk, kv)) = key.iter().next() else {
                continue;
            };
            Step::Item(
                kk.clone(),
                kv.as_str()
                    .map(String::from)
                    .unwrap_or_else(|| kv.to_string()),
            )
        } else {
            continue;
        };
        prefix.push(step);
        from_fields_v1(v, prefix, out);
        prefix.pop();
    }
}

fn get<'a>(value: &'a Value, path: &[Step]) -> Option<&'a Value> {
    let mut node = value;
    for step in path {
        node = match step {
            Step::Field(f) => node.get(f)?,
            Step::Item(k, v) => node.as_array()?.iter().find(|i| item_matches(i, k, v))?,
        };
    }
    Some(node)
}

fn item_matches(item: &Value, key: &str, id: &str) -> bool {
    item.get(key)
        .is_some_and(|x| x.as_str() == Some(id) || *x == id)
}

fn remove(value: &mut Value, path: &[Step]) {
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    let mut node = value;
    for step in parent_path {
        let next = match step {
            Step::Field(f) => node.get_mut(f),
            Step::Item(k, v) => node
                .as_array_mut()
                .and_then(|a| a.iter_mut().find(|i| item_matches(i, k, v))),
        };
        match next {
            Some(n) => node = n,
            None => return,
        }
    }
    match last {
        Step::Field(f) => {
            if let Some(m) = node.as_object_mut() {
                m.remove(f);
            }
        }
        Step::Item(k, v) => {
            if let Some(a) = node.as_array_mut() {
                a.retain(|i| !item_matches(i, k, v));
            }
        }
    }
}

/// Merges `applied` into `live`: maps by key, keyed lists by key, everything else replaced.
fn merge(live: &mut Value, applied: &Value, field: &str) {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) => {
            for (k, v) in a {
                match l.get_mut(k) {
                    Some(existing) if !v.is_null() => merge(existing, v, k),
                    _ => {
                        l.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(l), Value::Array(a)) if list_key(field).is_some() => {
            let key = list_key(field).unwrap_or("");
            for item in a {
                let id = item.get(key).cloned().unwrap_or(Value::Null);
                match l.iter_mut().find(|i| i.get(key) == Some(&id)) {
                    Some(existing) => merge(existing, item, ""),
                    None => l.push(item.clone()),
                }
            }
        }
        (live, applied) => *live = applied.clone(),
    }
}

/// Applies `applied` to `live` on behalf of the request's field manager, updating `managedFields`.
pub(crate) fn server_side_apply(
    ctx: &Ctx<'_>,
    live: &mut Value,
    applied: &Value,
    force: bool,
    status_only: bool,
) -> Result<(), ApiError> {
    let manager = ctx.field_manager();
    let subresource = status_only.then_some("status");
    let new_paths = applied_paths(applied, status_only, ctx.kind.has_status);
    let mut entries: Vec<Value> = live
        .get("metadata")
        .and_then(|m| m.get("managedFields"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let is_mine = |e: &Value| {
        e["manager"] == manager.as_str()
            && e["operation"] == "Apply"
            && e.get("subresource").and_then(Value::as_str) == subresource
    };
    let mut old_paths = BTreeSet::new();
    if let Some(mine) = entries.iter().find(|e| is_mine(e)) {
        from_fields_v1(&mine["fieldsV1"], &mut Vec::new(), &mut old_paths);
    }
    let mut others: Vec<(usize, BTreeSet<Path>)> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if !is_mine(e) {
            let mut set = BTreeSet::new();
            from_fields_v1(&e["fieldsV1"], &mut Vec::new(), &mut set);
            others.push((i, set));
        }
    }
    // Conflicts: a value we apply differs from the live one and someone else owns it.
    let mut conflicts = Vec::new();
    for path in &new_paths {
        let wanted = get(applied, path);
        if get(live, path) == wanted {
            continue;
        }
        for (i, set) in &others {
            if set.contains(path) {
                conflicts.push((*i, path.clone()));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        let causes: Vec<Cause> = conflicts
            .iter()
            .map(|(i, path)| Cause {
                reason: "FieldManagerConflict".into(),
                message: format!(
                    "conflict with \"{}\" using {}",
                    entries[*i]["manager"].as_str().unwrap_or(""),
                    entries[*i]["apiVersion"].as_str().unwrap_or("")
                ),
                field: path_string(path),
            })
            .collect();
        let summary: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.message, c.field))
            .collect();
        let plural = if causes.len() == 1 {
            "conflict"
        } else {
            "conflicts"
        };
        return Err(ApiError::Conflict {
            subject: ctx.subject(crate::server::object::name_of(live)),
            detail: format!(
                "Apply failed with {} {plural}: {}",
                causes.len(),
                summary.join("\n")
            ),
        });
    }
    // Forced: ownership moves to us.
    for (i, path) in &conflicts {
        if let Some((_, set)) = others.iter_mut().find(|(j, _)| j == i) {
            set.remove(path);
        }
    }
    // Fields we applied before and dropped now go away unless someone else owns them.
    for path in old_paths.difference(&new_paths) {
        if !others.iter().any(|(_, set)| set.contains(path)) {
            remove(live, path);
        }
    }
    let mut body = applied.clone();
    if let Some(map) = body.as_object_mut() {
        map.remove("apiVersion");
        map.remove("kind");
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.retain(|k, _| {
                matches!(
                    k.as_str(),
                    "labels" | "annotations" | "finalizers" | "ownerReferences"
                )
            });
        }
        if status_only {
            map.retain(|k, _| k == "status");
        } else if ctx.kind.has_status {
            map.remove("status");
        }
    }
    merge(live, &body, "");
    for (i, set) in &others {
        entries[*i]["fieldsV1"] = to_fields_v1(set);
    }
    entries.retain(|e| !is_mine(e));
    let mut entry = json!({
        "manager": manager,
        "operation": "Apply",
        "apiVersion": ctx.kind.api_version(),
        "time": now_rfc3339(),
        "fieldsType": "FieldsV1",
        "fieldsV1": to_fields_v1(&new_paths),
    });
    if let Some(sub) = subresource {
        entry["subresource"] = json!(sub);
    }
    entries.push(entry);
    entries.retain(|e| e["fieldsV1"].as_object().is_some_and(|m| !m.is_empty()));
    live["metadata"]["managedFields"] = Value::Array(entries);
    Ok(())
}

fn path_string(path: &Path) -> String {
    path.iter()
        .map(|s| match s {
            Step::Field(f) => format!(".{f}"),
            Step::Item(k, v) => format!("[{k}=\"{v}\"]"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_v1_round_trips_keyed_items() {
        let applied = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}, "spec": {"a": 1}});
        let paths = applied_paths(&applied, false, false);
        let fields = to_fields_v1(&paths);
        assert!(
            fields["f:status"]["f:conditions"]["k:{\"type\":\"Ready\"}"]["f:status"].is_object(),
            "{fields}"
        );
        let mut back = BTreeSet::new();
        from_fields_v1(&fields, &mut Vec::new(), &mut back);
        assert_eq!(back, paths);
    }

    #[test]
    fn merge_keyed_lists_by_key() {
        let mut live = json!({"conditions": [{"type": "A", "status": "False"}, {"type": "B", "status": "True"}]});
        merge(
            &mut live,
            &json!({"conditions": [{"type": "A", "status": "True"}]}),
            "",
        );
        assert_eq!(live["conditions"][0]["status"], "True");
        assert_eq!(live["conditions"][1]["type"], "B");
    }
}
