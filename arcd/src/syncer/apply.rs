//! Bringing the API server in line with a [`Plan`]: create, update and prune the objects the
//! syncer manages, and nothing else.
//!
//! Ownership: every object the syncer writes carries the label `app.kubernetes.io/managed-by:
//! arcd`, the annotation `arc.opendefense.cloud/source-file` (the file that defines it) and the
//! annotation `arc.opendefense.cloud/last-applied` (what it last applied, with Secret values
//! blanked). An existing object without the label belongs to someone else and is never changed.
//!
//! Updates are JSON merge patches computed three ways, as `kubectl apply` does: every field of
//! the file is set, fields that were in the last applied version but are no longer in the file
//! are removed, and fields other writers added (labels, annotations, finalizers, defaults) are
//! left alone. `status` is never sent. Deletes check the label and source annotation on the live
//! object and carry its `resourceVersion` as a precondition.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use kube::core::DynamicObject;
use serde_json::{Map, Value};

use super::files::Plan;
use crate::diagnostic::Diagnostic;
use crate::resources::{FileObject, KINDS, KindInfo, ObjectKey};

/// The label marking objects the syncer manages.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Its value.
pub const MANAGED_BY_VALUE: &str = "arcd";
/// The annotation naming the file an object comes from.
pub const SOURCE_FILE_ANNOTATION: &str = "arc.opendefense.cloud/source-file";
/// The annotation holding the last applied manifest (Secret values blanked).
pub const LAST_APPLIED_ANNOTATION: &str = "arc.opendefense.cloud/last-applied";
/// Objects per page when listing what the syncer manages.
pub const LIST_PAGE_SIZE: u32 = 500;
/// The field manager name the syncer writes as.
pub const FIELD_MANAGER: &str = "arcd-syncer";

/// A failure that is not about one object: the API server cannot be reached or refuses us.
#[derive(Debug, thiserror::Error)]
#[error("API server: {0}")]
pub struct ApiUnavailable(#[source] pub kube::Error);

/// What one apply pass did.
#[derive(Debug, Default)]
pub struct ApplyOutcome {
    /// Objects created.
    pub created: usize,
    /// Objects updated.
    pub updated: usize,
    /// Objects deleted.
    pub deleted: usize,
    /// Objects already as the files say.
    pub unchanged: usize,
    /// Problems applying objects, by the file that defines them.
    pub problems: BTreeMap<PathBuf, Vec<Diagnostic>>,
}

/// What the syncer last applied for one object.
#[derive(Clone, Debug)]
struct Applied {
    source: PathBuf,
    last: Last,
}

/// The last applied version of an object.
#[derive(Clone, Debug)]
enum Last {
    /// Applied by this process: the file's object itself (shared with the file table, so
    /// remembering it costs nothing).
    Object(Arc<FileObject>),
    /// Found on the server: its `last-applied` annotation.
    Annotation(Value),
}

impl Applied {
    /// The manifest last applied, as the base of a three-way patch.
    fn base(&self) -> Value {
        match &self.last {
            Last::Object(object) => target_manifest(object, &self.source),
            Last::Annotation(value) => value.clone(),
        }
    }
}

/// Applies plans to the API server, remembering what it applied.
pub struct Applier {
    client: kube::Client,
    applied: HashMap<ObjectKey, Applied>,
}

impl std::fmt::Debug for Applier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Applier")
            .field("applied", &self.applied.len())
            .finish()
    }
}

fn api(client: &kube::Client, kind: &KindInfo, namespace: Option<&str>) -> Api<DynamicObject> {
    let resource = kind.api_resource();
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None if kind.namespaced => Api::all_with(client.clone(), &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

/// Whether a kube error is about the request (the object) rather than the connection.
fn api_status(error: &kube::Error) -> Option<&kube::core::Status> {
    match error {
        kube::Error::Api(status) => Some(status),
        _ => None,
    }
}

/// The manifest as sent: the file's object plus ownership metadata.
fn target_manifest(object: &FileObject, source: &Path) -> Value {
    let mut manifest = object.manifest.clone();
    let last_applied = redacted(object);
    let metadata = manifest
        .as_object_mut()
        .and_then(|o| o.get_mut("metadata"))
        .and_then(Value::as_object_mut)
        .expect("parsed objects have metadata");
    let labels = metadata
        .entry("labels")
        .or_insert_with(|| Value::Object(Map::new()));
    if !labels.is_object() {
        *labels = Value::Object(Map::new());
    }
    labels.as_object_mut().expect("object").insert(
        MANAGED_BY_LABEL.to_string(),
        Value::String(MANAGED_BY_VALUE.to_string()),
    );
    let annotations = metadata
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if !annotations.is_object() {
        *annotations = Value::Object(Map::new());
    }
    let annotations = annotations.as_object_mut().expect("object");
    annotations.insert(
        SOURCE_FILE_ANNOTATION.to_string(),
        Value::String(source.display().to_string()),
    );
    annotations.insert(
        LAST_APPLIED_ANNOTATION.to_string(),
        Value::String(last_applied.to_string()),
    );
    manifest
}

/// The file's object with Secret values blanked (what the last-applied annotation records).
fn redacted(object: &FileObject) -> Value {
    let mut manifest = object.manifest.clone();
    if object.key.kind.is_secret()
        && let Some(Value::Object(data)) = manifest.get_mut("data")
    {
        for value in data.values_mut() {
            *value = Value::String(String::new());
        }
    }
    manifest
}

/// The file's manifest last applied to a live object, from its annotation (`null` when absent);
/// the base for computing which fields the file dropped since.
fn last_applied_of(live: &Value) -> Value {
    live.pointer("/metadata/annotations")
        .and_then(|a| a.get(LAST_APPLIED_ANNOTATION))
        .and_then(Value::as_str)
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
        .unwrap_or(Value::Null)
}

/// A merge patch that turns an object last applied as `old` into `new`: everything in `new`,
/// plus `null` for every map key `old` had and `new` no longer has. Arrays are replaced whole.
pub fn three_way_patch(old: &Value, new: &Value) -> Value {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            let mut patch = Map::new();
            for (key, new_value) in new {
                let value = match old.get(key) {
                    Some(old_value) => three_way_patch(old_value, new_value),
                    None => new_value.clone(),
                };
                patch.insert(key.clone(), value);
            }
            for key in old.keys() {
                if !new.contains_key(key) {
                    patch.insert(key.clone(), Value::Null);
                }
            }
            Value::Object(patch)
        }
        (_, new) => new.clone(),
    }
}

fn is_managed(live: &Value) -> bool {
    live.pointer("/metadata/labels")
        .and_then(|l| l.get(MANAGED_BY_LABEL))
        .and_then(Value::as_str)
        == Some(MANAGED_BY_VALUE)
}

fn source_of(live: &Value) -> Option<PathBuf> {
    live.pointer("/metadata/annotations")
        .and_then(|a| a.get(SOURCE_FILE_ANNOTATION))
        .and_then(Value::as_str)
        .map(PathBuf::from)
}

fn key_of(kind: &'static KindInfo, live: &Value) -> Option<ObjectKey> {
    let name = live.pointer("/metadata/name")?.as_str()?.to_string();
    let namespace = live
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .map(str::to_string);
    Some(ObjectKey {
        kind,
        namespace: if kind.namespaced { namespace } else { None },
        name,
    })
}

/// Outcome of one object operation.
enum Op {
    Created,
    Updated,
    Unchanged,
}

impl Applier {
    /// An applier writing through `client`.
    pub fn new(client: kube::Client) -> Self {
        Self {
            client,
            applied: HashMap::new(),
        }
    }

    /// How many objects the syncer currently has applied.
    pub fn applied_count(&self) -> usize {
        self.applied.len()
    }

    /// Lists every managed object on the server and compares it with the plan (startup,
    /// periodic rescans, reloads). Corrects drift, recreates objects deleted behind our back.
    pub async fn sync_full(&mut self, plan: &Plan) -> Result<ApplyOutcome, ApiUnavailable> {
        let mut live: HashMap<ObjectKey, Value> = HashMap::new();
        let selector = format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}");
        for kind in KINDS {
            // Paged: one response for thousands of objects costs both ends far more memory.
            let api = api(&self.client, kind, None);
            let mut continue_token: Option<String> = None;
            loop {
                let mut params = ListParams::default()
                    .labels(&selector)
                    .limit(LIST_PAGE_SIZE);
                if let Some(token) = &continue_token {
                    params = params.continue_token(token);
                }
                let page = api.list(&params).await.map_err(ApiUnavailable)?;
                for object in page.items {
                    let value = serde_json::to_value(&object).unwrap_or(Value::Null);
                    if let Some(key) = key_of(kind, &value) {
                        live.insert(key, value);
                    }
                }
                continue_token = page.metadata.continue_.filter(|token| !token.is_empty());
                if continue_token.is_none() {
                    break;
                }
            }
        }
        // What the server holds is the truth about what was applied.
        self.applied = live
            .iter()
            .filter_map(|(key, value)| {
                let source = source_of(value)?;
                Some((
                    key.clone(),
                    Applied {
                        source,
                        last: Last::Annotation(last_applied_of(value)),
                    },
                ))
            })
            .collect();
        self.apply(plan, Some(&live), None).await
    }

    /// Applies the plan against what this applier remembers having applied (after file events).
    /// With `touched`, only objects of those files (as they were and as they are) and objects
    /// not applied yet (earlier failures) are looked at, so a pass costs what changed, not what
    /// exists.
    pub async fn sync_incremental(
        &mut self,
        plan: &Plan,
        touched: Option<&HashSet<PathBuf>>,
    ) -> Result<ApplyOutcome, ApiUnavailable> {
        let scope = touched.map(|touched| {
            let mut keys: HashSet<ObjectKey> = plan
                .desired
                .iter()
                .filter(|(key, (source, _))| {
                    touched.contains(source) || !self.applied.contains_key(*key)
                })
                .map(|(key, _)| key.clone())
                .collect();
            keys.extend(
                self.applied
                    .iter()
                    .filter(|(_, applied)| touched.contains(&applied.source))
                    .map(|(key, _)| key.clone()),
            );
            keys
        });
        self.apply(plan, None, scope.as_ref()).await
    }

    async fn apply(
        &mut self,
        plan: &Plan,
        live: Option<&HashMap<ObjectKey, Value>>,
        scope: Option<&HashSet<ObjectKey>>,
    ) -> Result<ApplyOutcome, ApiUnavailable> {
        let mut outcome = ApplyOutcome::default();
        let in_scope = |key: &ObjectKey| scope.is_none_or(|keys| keys.contains(key));
        // Creates and updates, namespaces and secrets first (BTreeMap order is KINDS order).
        for (key, (source, object)) in &plan.desired {
            if !in_scope(key) {
                outcome.unchanged += 1;
                continue;
            }
            let result = match live {
                Some(live) => {
                    let target = target_manifest(object, source);
                    self.converge_live(key, &target, live.get(key)).await
                }
                None => self.converge_remembered(key, source, object).await,
            };
            match result {
                Ok(op) => {
                    match op {
                        Op::Created => outcome.created += 1,
                        Op::Updated => outcome.updated += 1,
                        Op::Unchanged => outcome.unchanged += 1,
                    }
                    self.applied.insert(
                        key.clone(),
                        Applied {
                            source: source.clone(),
                            last: Last::Object(Arc::clone(object)),
                        },
                    );
                }
                Err(ObjectError::Unavailable(error)) => return Err(error),
                Err(ObjectError::Refused(problems)) => {
                    let problems = problems.into_iter().map(|(field, message)| {
                        Diagnostic::new(
                            source.clone(),
                            object.position_of(source, &field),
                            format!("{key}: {message}"),
                        )
                    });
                    outcome
                        .problems
                        .entry(source.clone())
                        .or_default()
                        .extend(problems);
                }
            }
        }
        // Prunes, in reverse kind order (Orders before the Endpoints they use).
        let mut stale: Vec<(ObjectKey, PathBuf)> = self
            .applied
            .iter()
            .filter(|(key, applied)| {
                in_scope(key)
                    && !plan.desired.contains_key(*key)
                    && !plan.conflicts.contains_key(*key)
                    && !plan.is_protected(&applied.source)
            })
            .map(|(key, applied)| (key.clone(), applied.source.clone()))
            .collect();
        stale.sort_by(|a, b| b.0.cmp(&a.0));
        for (key, source) in stale {
            if key.kind.kind == "Namespace" {
                // Deleting a namespace deletes everything in it, also what others created there.
                tracing::info!(namespace = %key.name, file = %source.display(),
                    "Namespace is no longer defined by any file; left in place (delete it with kubectl if intended)");
                self.applied.remove(&key);
                continue;
            }
            match self.delete(&key, &source).await {
                Ok(deleted) => {
                    if deleted {
                        outcome.deleted += 1;
                        tracing::info!(object = %key, file = %source.display(), "deleted: its file no longer defines it");
                    }
                    self.applied.remove(&key);
                }
                Err(ObjectError::Unavailable(error)) => return Err(error),
                Err(ObjectError::Refused(problems)) => {
                    let message = problems
                        .into_iter()
                        .map(|(_, m)| m)
                        .collect::<Vec<_>>()
                        .join("; ");
                    outcome.problems.entry(source.clone()).or_default().push(
                        Diagnostic::whole_file(
                            source.clone(),
                            format!("cannot delete {key}: {message}"),
                        ),
                    );
                }
            }
        }
        Ok(outcome)
    }

    /// Full sync: compare with the live object (if the listing had it) and patch when it differs.
    async fn converge_live(
        &self,
        key: &ObjectKey,
        target: &Value,
        live: Option<&Value>,
    ) -> Result<Op, ObjectError> {
        let Some(live) = live else {
            return self.create(key, target).await;
        };
        let patch = three_way_patch(&last_applied_of(live), target);
        let mut merged = live.clone();
        json_patch::merge(&mut merged, &patch);
        if &merged == live {
            return Ok(Op::Unchanged);
        }
        self.patch(key, &patch).await.map(|_| Op::Updated)
    }

    /// Incremental sync: compare with what was last applied.
    async fn converge_remembered(
        &self,
        key: &ObjectKey,
        source: &Path,
        object: &Arc<FileObject>,
    ) -> Result<Op, ObjectError> {
        let applied = self.applied.get(key);
        if let Some(Applied {
            source: applied_source,
            last: Last::Object(last),
        }) = applied
            && applied_source == source
            && (Arc::ptr_eq(last, object) || last.manifest == object.manifest)
        {
            return Ok(Op::Unchanged);
        }
        let target = target_manifest(object, source);
        match applied {
            Some(applied) => {
                let patch = three_way_patch(&applied.base(), &target);
                match self.patch(key, &patch).await {
                    Err(ObjectError::Refused(_)) if self.get(key).await?.is_none() => {
                        self.create(key, &target).await
                    }
                    other => other.map(|_| Op::Updated),
                }
            }
            None => self.create(key, &target).await,
        }
    }

    async fn get(&self, key: &ObjectKey) -> Result<Option<Value>, ObjectError> {
        match api(&self.client, key.kind, key.namespace.as_deref())
            .get_opt(&key.name)
            .await
        {
            Ok(object) => Ok(object.map(|o| serde_json::to_value(o).unwrap_or(Value::Null))),
            Err(error) => Err(ObjectError::from_kube(error)),
        }
    }

    async fn create(&self, key: &ObjectKey, target: &Value) -> Result<Op, ObjectError> {
        let object: DynamicObject = serde_json::from_value(target.clone()).map_err(|e| {
            ObjectError::Refused(vec![(String::new(), format!("cannot encode: {e}"))])
        })?;
        let api = api(&self.client, key.kind, key.namespace.as_deref());
        match api
            .create(
                &PostParams {
                    field_manager: Some(FIELD_MANAGER.to_string()),
                    ..PostParams::default()
                },
                &object,
            )
            .await
        {
            Ok(_) => Ok(Op::Created),
            Err(kube::Error::Api(status)) if status.is_already_exists() || status.code == 409 => {
                let Some(live) = self.get(key).await? else {
                    return Err(ObjectError::Refused(vec![(
                        String::new(),
                        status.message.clone(),
                    )]));
                };
                if !is_managed(&live) {
                    return Err(ObjectError::Refused(vec![(
                        "metadata.name".to_string(),
                        format!(
                            "already exists and was not created by arcd (no label {MANAGED_BY_LABEL}={MANAGED_BY_VALUE}); \
                             refusing to take it over: delete it or rename the object in the file"
                        ),
                    )]));
                }
                let patch = three_way_patch(&last_applied_of(&live), target);
                self.patch(key, &patch).await.map(|_| Op::Updated)
            }
            Err(error) => Err(ObjectError::from_kube(error)),
        }
    }

    async fn patch(&self, key: &ObjectKey, patch: &Value) -> Result<(), ObjectError> {
        // Unknown fields were already refused offline by the file checks (with positions), so
        // the server's default field validation is enough here.
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PatchParams::default()
        };
        api(&self.client, key.kind, key.namespace.as_deref())
            .patch(&key.name, &params, &Patch::Merge(patch))
            .await
            .map(|_| ())
            .map_err(ObjectError::from_kube)
    }

    /// Deletes a pruned object if it is still ours and still attributed to `source`. Returns
    /// whether something was deleted.
    async fn delete(&self, key: &ObjectKey, source: &Path) -> Result<bool, ObjectError> {
        let Some(live) = self.get(key).await? else {
            return Ok(false);
        };
        if !is_managed(&live) || source_of(&live).as_deref() != Some(source) {
            return Ok(false); // Taken over by someone else or moved to another file meanwhile.
        }
        let resource_version = live
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string);
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version,
                uid: None,
            }),
            ..DeleteParams::default()
        };
        match api(&self.client, key.kind, key.namespace.as_deref())
            .delete(&key.name, &params)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.is_not_found() => Ok(false),
            Err(error) => Err(ObjectError::from_kube(error)),
        }
    }
}

/// Why one object could not be written.
enum ObjectError {
    /// The server refused it: `(field path, message)` pairs (field path empty when unknown).
    Refused(Vec<(String, String)>),
    /// The server cannot be reached; the whole pass stops.
    Unavailable(ApiUnavailable),
}

impl ObjectError {
    fn from_kube(error: kube::Error) -> Self {
        let Some(status) = api_status(&error) else {
            return Self::Unavailable(ApiUnavailable(error));
        };
        if status.code == 401 || status.code >= 500 {
            return Self::Unavailable(ApiUnavailable(error));
        }
        let causes: Vec<(String, String)> = status
            .details
            .as_ref()
            .map(|details| {
                details
                    .causes
                    .iter()
                    .map(|cause| {
                        let field = cause.field.clone();
                        let message = if field.is_empty() {
                            cause.message.clone()
                        } else {
                            format!("{field}: {}", cause.message)
                        };
                        (field, message)
                    })
                    .collect()
            })
            .unwrap_or_default();
        if causes.is_empty() {
            let message = if status.message.is_empty() {
                status.reason.clone()
            } else {
                status.message.clone()
            };
            Self::Refused(vec![(String::new(), message)])
        } else {
            Self::Refused(causes)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn three_way_patch_sets_new_removes_dropped_keeps_foreign() {
        let old = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"x": 1, "y": 2, "list": [1, 2]}});
        let new = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"x": 5, "list": [3]}});
        let patch = three_way_patch(&old, &new);
        assert_eq!(
            patch,
            json!({"metadata": {"labels": {"a": "1", "b": null}}, "spec": {"x": 5, "list": [3], "y": null}})
        );
        let mut live = json!({"metadata": {"labels": {"a": "1", "b": "2", "theirs": "t"}, "finalizers": ["f"]},
                              "spec": {"x": 1, "y": 2, "list": [1, 2], "defaulted": true}, "status": {"phase": "Running"}});
        json_patch::merge(&mut live, &patch);
        assert_eq!(
            live,
            json!({"metadata": {"labels": {"a": "1", "theirs": "t"}, "finalizers": ["f"]},
                                "spec": {"x": 5, "list": [3], "defaulted": true}, "status": {"phase": "Running"}})
        );
    }

    #[test]
    fn ownership_metadata_and_redaction() {
        let parsed = crate::resources::parse_resource_file(
            Path::new("/o/s.yaml"),
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s, labels: {team: a}}\nstringData: {password: hunter2}\n",
            "default",
        );
        let object = &parsed.objects.unwrap()[0];
        let target = target_manifest(object, Path::new("/o/s.yaml"));
        assert!(is_managed(&target));
        assert_eq!(source_of(&target), Some(PathBuf::from("/o/s.yaml")));
        assert_eq!(target["metadata"]["labels"]["team"], "a");
        let annotation = target["metadata"]["annotations"][LAST_APPLIED_ANNOTATION]
            .as_str()
            .unwrap();
        assert!(
            !annotation.contains("aHVudGVyMg"),
            "secret values never go into annotations: {annotation}"
        );
        let last = last_applied_of(&target);
        assert_eq!(last["data"]["password"], "");
        assert_eq!(last["metadata"]["labels"], json!({"team": "a"}));
        // A live object equal to the target needs no patch.
        let patch = three_way_patch(&last, &target);
        let mut merged = target.clone();
        json_patch::merge(&mut merged, &patch);
        assert_eq!(merged, target);
    }
}
