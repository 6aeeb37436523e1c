//! Background work of the embedded server: the namespaces that must exist, garbage collection
//! of ownerReferences (background, foreground and orphan propagation), namespace finalization,
//! and periodic compaction of the store's history.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::object::{
    collection_prefix, finalizers_of, from_stored, new_uid, now_rfc3339, storage_key, to_stored,
};
use super::rest::delete::{FOREGROUND_FINALIZER, ORPHAN_FINALIZER};
use super::state::ApiState;
use crate::storage::{ListRequest, Revision, StorageError};

/// Namespaces the embedded server always has.
pub const BOOTSTRAP_NAMESPACES: [&str; 2] = ["default", "arc-system"];
/// The namespace finalizer that keeps a namespace until its contents are gone.
const NAMESPACE_FINALIZER: &str = "kubernetes";
/// How often the collector sweeps even without a deletion.
const GC_SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// How long the collector waits for a burst of deletions to settle before sweeping.
const GC_DEBOUNCE: Duration = Duration::from_millis(100);
/// Store history is compacted to the revision seen this long ago (as kube-apiserver does).
const COMPACTION_INTERVAL: Duration = Duration::from_secs(300);
/// Events are deleted this long after they were created (kube-apiserver's default `--event-ttl`).
const EVENT_TTL: Duration = Duration::from_secs(3600);
/// Page size of the collector's reads.
const GC_PAGE_SIZE: usize = 1000;

/// Creates the bootstrap namespaces when absent.
pub async fn bootstrap_namespaces(state: &Arc<ApiState>) -> Result<(), StorageError> {
    let Some(kind) = state.kind_by_plural("", "namespaces") else {
        return Ok(());
    };
    for name in BOOTSTRAP_NAMESPACES {
        let key = storage_key(kind, None, name);
        if state.store.get(&key).await?.is_some() {
            continue;
        }
        let object = json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "uid": new_uid(), "creationTimestamp": now_rfc3339(),
                         "labels": {"kubernetes.io/metadata.name": name}},
            "spec": {"finalizers": [NAMESPACE_FINALIZER]},
            "status": {"phase": "Active"},
        });
        match state.store.create(&key, to_stored(&object)).await {
            Ok(_) | Err(StorageError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Spawns the collector and the compactor; both stop with the server's shutdown token.
pub fn spawn(state: &Arc<ApiState>) {
    if state.options.embedded {
        let gc_state = state.clone();
        tokio::spawn(async move { run_collector(gc_state).await });
    }
    let compact_state = state.clone();
    tokio::spawn(async move { run_compactor(compact_state).await });
}

async fn run_compactor(state: Arc<ApiState>) {
    let mut previous: Option<Revision> = None;
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tokio::time::sleep(COMPACTION_INTERVAL) => {}
        }
        if let Some(revision) = previous
            && let Err(e) = state.store.compact(revision).await
        {
            tracing::warn!(error = %e, revision, "compacting the store failed");
        }
        previous = state.store.current_revision().await.ok();
    }
}

async fn run_collector(state: Arc<ApiState>) {
    loop {
        let notified = state.deletions.notified();
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = notified => tokio::time::sleep(GC_DEBOUNCE).await,
            _ = tokio::time::sleep(GC_SWEEP_INTERVAL) => {}
        }
        // Sweep until a pass changes nothing (deleting dependents can free further ones).
        for _ in 0..8 {
            match sweep(&state).await {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "garbage collection sweep failed");
                    break;
                }
            }
        }
    }
}

/// What the collector keeps of each object.
struct Record {
    kind: usize,
    key: String,
    namespace: String,
    uid: String,
    owners: Vec<String>,
    terminating: bool,
    finalizers: Vec<String>,
    created: Option<jiff::Timestamp>,
}

/// One pass over every object; returns how many changes it made.
async fn sweep(state: &Arc<ApiState>) -> Result<usize, StorageError> {
    let revision = state.store.current_revision().await?;
    let mut records = Vec::new();
    for (index, kind) in state.kinds.iter().enumerate() {
        if super::object::is_storage_alias(kind) {
            continue;
        }
        let prefix = collection_prefix(kind, None);
        let mut start_after = None;
        loop {
            let page = state
                .store
                .list(ListRequest {
                    prefix: prefix.clone(),
                    start_after: start_after.clone(),
                    limit: GC_PAGE_SIZE,
                    revision: Some(revision),
                })
                .await?;
            for kv in &page.items {
                let Ok(object) = from_stored(kv) else {
                    continue;
                };
                let meta = &object["metadata"];
                records.push(Record {
                    kind: index,
                    key: kv.key.clone(),
                    namespace: meta["namespace"].as_str().unwrap_or("").to_string(),
                    uid: meta["uid"].as_str().unwrap_or("").to_string(),
                    owners: meta["ownerReferences"]
                        .as_array()
                        .map(|refs| {
                            refs.iter()
                                .filter_map(|r| r["uid"].as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default(),
                    terminating: meta.get("deletionTimestamp").is_some_and(|v| !v.is_null()),
                    finalizers: finalizers_of(&object),
                    created: meta["creationTimestamp"]
                        .as_str()
                        .and_then(|t| t.parse().ok()),
                });
            }
            if page.remaining == 0 || page.items.is_empty() {
                break;
            }
            start_after = page.items.last().map(|kv| kv.key.clone());
        }
    }
    let uids: HashSet<&str> = records.iter().map(|r| r.uid.as_str()).collect();
    let mut dependents: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        for owner in &r.owners {
            dependents.entry(owner.as_str()).or_default().push(i);
        }
    }
    let mut changes = 0;
    let expired_before =
        jiff::Timestamp::now() - jiff::SignedDuration::try_from(EVENT_TTL).unwrap_or_default();
    for record in &records {
        let kind = &state.kinds[record.kind];
        if kind.group.is_empty()
            && kind.plural == "events"
            && record.created.is_some_and(|c| c < expired_before)
        {
            changes += mark_deleted(state, &record.key).await?;
            continue;
        }
        let deps = dependents
            .get(record.uid.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let is_namespace = state.kinds[record.kind].group.is_empty()
            && state.kinds[record.kind].plural == "namespaces";
        if record.terminating && is_namespace {
            changes += finalize_namespace(state, record, &records).await?;
            continue;
        }
        if record.terminating && record.finalizers.iter().any(|f| f == FOREGROUND_FINALIZER) {
            if deps.is_empty() {
                changes += remove_finalizer(state, &record.key, FOREGROUND_FINALIZER).await?;
            } else {
                for &d in deps {
                    changes += mark_deleted(state, &records[d].key).await?;
                }
            }
        }
        if record.terminating && record.finalizers.iter().any(|f| f == ORPHAN_FINALIZER) {
            for &d in deps {
                changes += drop_owner(state, &records[d].key, &record.uid).await?;
            }
            changes += remove_finalizer(state, &record.key, ORPHAN_FINALIZER).await?;
        }
        if !record.owners.is_empty() {
            let dangling: Vec<&String> = record
                .owners
                .iter()
                .filter(|o| !uids.contains(o.as_str()))
                .collect();
            if dangling.len() == record.owners.len() {
                if !record.terminating {
                    changes += mark_deleted(state, &record.key).await?;
                }
            } else {
                for owner in dangling {
                    changes += drop_owner(state, &record.key, owner).await?;
                }
            }
        }
    }
    Ok(changes)
}

/// Deletes the namespace's contents; once none are left, drops its finalizer and the namespace.
async fn finalize_namespace(
    state: &Arc<ApiState>,
    namespace: &Record,
    records: &[Record],
) -> Result<usize, StorageError> {
    let name = namespace.key.rsplit('/').next().unwrap_or("");
    let contents: Vec<&Record> = records
        .iter()
        .filter(|r| state.kinds[r.kind].namespaced && r.namespace == name)
        .collect();
    if !contents.is_empty() {
        let mut changes = 0;
        for r in contents {
            if !r.terminating {
                changes += mark_deleted(state, &r.key).await?;
            }
        }
        return Ok(changes);
    }
    let Some(kv) = state.store.get(&namespace.key).await? else {
        return Ok(0);
    };
    let Ok(object) = from_stored(&kv) else {
        return Ok(0);
    };
    if !finalizers_of(&object).is_empty() {
        return Ok(0);
    }
    match state.store.delete(&namespace.key, kv.mod_revision).await {
        Ok(_) => Ok(1),
        Err(StorageError::Conflict { .. } | StorageError::NotFound { .. }) => Ok(0),
        Err(e) => Err(e),
    }
}

/// Read-modify-write of one object with a compare-and-swap; a lost race counts as "no change"
/// (the next sweep looks again).
async fn modify(
    state: &Arc<ApiState>,
    key: &str,
    change: impl FnOnce(&mut Value) -> bool,
) -> Result<usize, StorageError> {
    let Some(kv) = state.store.get(key).await? else {
        return Ok(0);
    };
    let Ok(mut object) = from_stored(&kv) else {
        return Ok(0);
    };
    if !change(&mut object) {
        return Ok(0);
    }
    let terminating = object["metadata"]
        .get("deletionTimestamp")
        .is_some_and(|v| !v.is_null());
    let result = if terminating && finalizers_of(&object).is_empty() {
        state.store.delete(key, kv.mod_revision).await.map(|_| ())
    } else {
        state
            .store
            .update(key, to_stored(&object), kv.mod_revision)
            .await
            .map(|_| ())
    };
    match result {
        Ok(()) => {
            state.deletions.notify_one();
            Ok(1)
        }
        Err(StorageError::Conflict { .. } | StorageError::NotFound { .. }) => Ok(0),
        Err(e) => Err(e),
    }
}

async fn remove_finalizer(
    state: &Arc<ApiState>,
    key: &str,
    finalizer: &str,
) -> Result<usize, StorageError> {
    modify(state, key, |object| {
        let before = finalizers_of(object);
        let after: Vec<String> = before.iter().filter(|f| *f != finalizer).cloned().collect();
        if after.len() == before.len() {
            return false;
        }
        if after.is_empty() {
            object["metadata"]
                .as_object_mut()
                .map(|m| m.remove("finalizers"));
        } else {
            object["metadata"]["finalizers"] = json!(after);
        }
        true
    })
    .await
}

async fn drop_owner(
    state: &Arc<ApiState>,
    key: &str,
    owner_uid: &str,
) -> Result<usize, StorageError> {
    modify(state, key, |object| {
        let Some(refs) = object["metadata"]
            .get_mut("ownerReferences")
            .and_then(Value::as_array_mut)
        else {
            return false;
        };
        let before = refs.len();
        refs.retain(|r| r["uid"].as_str() != Some(owner_uid));
        if refs.len() == before {
            return false;
        }
        if refs.is_empty() {
            object["metadata"]
                .as_object_mut()
                .map(|m| m.remove("ownerReferences"));
        }
        true
    })
    .await
}

/// Deletes an object the way a Background DELETE would: immediately when it has no finalizers,
/// else by setting its deletionTimestamp.
async fn mark_deleted(state: &Arc<ApiState>, key: &str) -> Result<usize, StorageError> {
    // `modify` deletes an object that is terminating without finalizers, and stores the rest.
    modify(state, key, |object| {
        if super::object::is_terminating(object) {
            return false;
        }
        object["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
        object["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        true
    })
    .await
}
