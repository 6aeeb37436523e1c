//! DELETE and DELETECOLLECTION: preconditions, propagation policies (garbage-collector
//! finalizers), the finalizer/deletionTimestamp state machine, dry runs, and namespaces.

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::filter::ListFilter;
use super::read::{ReadAt, load, read_collection};
use super::{Ctx, json_response, single_response};
use crate::server::errors::ApiError;
use crate::server::object::{
    encode, finalizers_of, generation_of, is_terminating, meta_str, name_of, now_rfc3339,
    set_resource_version, storage_key, uid_of,
};
use crate::storage::StorageError;

/// The garbage collector's finalizer for `propagationPolicy=Orphan`.
pub const ORPHAN_FINALIZER: &str = "orphan";
/// The garbage collector's finalizer for `propagationPolicy=Foreground`.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";
/// How often a delete is retried after losing a compare-and-swap race.
const MAX_DELETE_ATTEMPTS: usize = 16;

/// `DeleteOptions`, from the body (with or without TypeMeta) or the query.
#[derive(Debug, Default, Clone)]
pub(crate) struct DeleteOptions {
    pub propagation: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    fn parse(ctx: &Ctx<'_>, body: &[u8]) -> Result<Self, ApiError> {
        let mut options = Self {
            dry_run: ctx.query.dry_run()?,
            ..Self::default()
        };
        options.propagation = ctx.query.non_empty("propagationPolicy").map(String::from);
        if ctx.query.flag("orphanDependents")? {
            options.propagation = Some("Orphan".into());
        }
        if body.iter().any(|b| !b.is_ascii_whitespace()) {
            let v: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::BadRequest(format!("error decoding DeleteOptions: {e}")))?;
            match v.get("apiVersion").and_then(Value::as_str) {
                None | Some("v1") | Some("meta.k8s.io/v1") | Some("meta.k8s.io/v1beta1") => {}
                Some(other) => {
                    return Err(ApiError::BadRequest(format!(
                        "unsupported DeleteOptions apiVersion {other:?}"
                    )));
                }
            }
            if let Some(p) = v.get("propagationPolicy").and_then(Value::as_str) {
                options.propagation = Some(p.to_string());
            }
            if v.get("orphanDependents").and_then(Value::as_bool) == Some(true) {
                options.propagation = Some("Orphan".into());
            }
            if let Some(pre) = v.get("preconditions") {
                options.precondition_uid = pre.get("uid").and_then(Value::as_str).map(String::from);
                options.precondition_rv = pre
                    .get("resourceVersion")
                    .and_then(Value::as_str)
                    .map(String::from);
            }
            if let Some(dry) = v.get("dryRun").and_then(Value::as_array) {
                options.dry_run |= dry.iter().any(|d| d == "All");
            }
        }
        if let Some(p) = &options.propagation
            && !matches!(p.as_str(), "Orphan" | "Background" | "Foreground")
        {
            return Err(ApiError::BadRequest(format!(
                "Unsupported value: {p:?}: supported values: \"Orphan\", \"Background\", \"Foreground\""
            )));
        }
        Ok(options)
    }
}

/// What deleting one object did.
enum Deleted {
    /// It is gone; here is its last state.
    Gone(Value),
    /// It has finalizers left and is now (or was already) terminating.
    Terminating(Value),
}

/// Deletes one object per `options`, retrying on CAS races.
async fn delete_one(
    ctx: &Ctx<'_>,
    name: &str,
    options: &DeleteOptions,
) -> Result<Deleted, ApiError> {
    let subject = ctx.subject(name);
    for _ in 0..MAX_DELETE_ATTEMPTS {
        let (current, rev) = load(ctx, name).await?;
        if let Some(uid) = &options.precondition_uid
            && uid != uid_of(&current)
        {
            return Err(ApiError::Conflict {
                subject,
                detail: format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    uid_of(&current)
                ),
            });
        }
        if let Some(expected) = &options.precondition_rv
            && *expected != rev.to_string()
        {
            return Err(ApiError::Conflict {
                subject,
                detail: format!(
                    "Precondition failed: ResourceVersion in precondition: {expected}, ResourceVersion in object meta: {rev}"
                ),
            });
        }
        let mut next = current.clone();
        let mut finalizers = finalizers_of(&current);
        let is_namespace = ctx.kind.group.is_empty() && ctx.kind.plural == "namespaces";
        if is_namespace {
            ctx.state.forget_namespace(name);
        }
        if ctx.state.options.embedded && !is_namespace {
            match options.propagation.as_deref() {
                Some("Orphan") => ensure(&mut finalizers, ORPHAN_FINALIZER, FOREGROUND_FINALIZER),
                Some("Foreground") => {
                    ensure(&mut finalizers, FOREGROUND_FINALIZER, ORPHAN_FINALIZER)
                }
                Some(_) => {
                    finalizers.retain(|f| f != ORPHAN_FINALIZER && f != FOREGROUND_FINALIZER)
                }
                None => {}
            }
        }
        let namespace_has_content = is_namespace
            && next
                .get("spec")
                .and_then(|s| s.get("finalizers"))
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty());
        if finalizers.is_empty() && !namespace_has_content {
            if options.dry_run {
                return Ok(Deleted::Gone(current));
            }
            let key = storage_key(ctx.kind, ctx.namespace(), name);
            match ctx.state.store.delete(&key, rev).await {
                Ok(revision) => {
                    set_resource_version(&mut next, revision);
                    ctx.state.deletions.notify_one();
                    return Ok(Deleted::Gone(next));
                }
                Err(StorageError::Conflict { .. }) => continue,
                Err(StorageError::NotFound { .. }) => return Err(ApiError::NotFound(subject)),
                Err(e) => return Err(ApiError::from_storage(e, &subject)),
            }
        }
        let meta = next["metadata"]
            .as_object_mut()
            .ok_or_else(|| ApiError::Internal("object without metadata".into()))?;
        let newly = !is_terminating(&current);
        if newly {
            meta.insert("deletionTimestamp".into(), json!(now_rfc3339()));
            meta.insert("deletionGracePeriodSeconds".into(), json!(0));
            let generation = generation_of(&current);
            if generation > 0 {
                meta.insert("generation".into(), json!(generation + 1));
            }
        }
        if finalizers.is_empty() {
            meta.remove("finalizers");
        } else {
            meta.insert("finalizers".into(), json!(finalizers));
        }
        if is_namespace {
            next["status"] = json!({"phase": "Terminating"});
        }
        if !newly && finalizers == finalizers_of(&current) {
            return Ok(Deleted::Terminating(current));
        }
        if options.dry_run {
            return Ok(Deleted::Terminating(next));
        }
        let key = storage_key(ctx.kind, ctx.namespace(), name);
        match ctx
            .state
            .store
            .update(&key, encode(ctx.kind, &next), rev)
            .await
        {
            Ok(revision) => {
                set_resource_version(&mut next, revision);
                ctx.state.deletions.notify_one();
                return Ok(Deleted::Terminating(next));
            }
            Err(StorageError::Conflict { .. }) => continue,
            Err(e) => return Err(ApiError::from_storage(e, &subject)),
        }
    }
    Err(ApiError::modified(subject))
}

fn ensure(finalizers: &mut Vec<String>, wanted: &str, unwanted: &str) {
    finalizers.retain(|f| f != unwanted);
    if !finalizers.iter().any(|f| f == wanted) {
        finalizers.push(wanted.to_string());
    }
}

/// DELETE of one object.
pub(super) async fn delete(ctx: &Ctx<'_>, body: Bytes) -> Result<Response, ApiError> {
    let options = DeleteOptions::parse(ctx, &body)?;
    let name = ctx.target.name.clone().unwrap_or_default();
    match delete_one(ctx, &name, &options).await? {
        Deleted::Terminating(object) => single_response(ctx, StatusCode::OK, &object, &[]),
        Deleted::Gone(object) => {
            let mut details = Map::new();
            details.insert("name".into(), json!(name));
            if !ctx.kind.group.is_empty() {
                details.insert("group".into(), json!(ctx.kind.group));
            }
            details.insert("kind".into(), json!(ctx.kind.plural));
            details.insert("uid".into(), json!(uid_of(&object)));
            let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details});
            Ok(json_response(StatusCode::OK, &status, &[]))
        }
    }
}

/// DELETECOLLECTION: deletes every matching object; returns the list of deleted or terminating ones.
pub(super) async fn delete_collection(ctx: &Ctx<'_>, body: Bytes) -> Result<Response, ApiError> {
    let options = DeleteOptions::parse(ctx, &body)?;
    let filter = ListFilter::from_query(ctx.kind, &ctx.query)?;
    let listing = read_collection(ctx, ReadAt::Latest, None, &filter, 0).await?;
    let mut deleted = Vec::new();
    for object in listing.items {
        let name = name_of(&object).to_string();
        // Objects in other namespaces can only show up for all-namespace requests.
        let scoped = Ctx {
            state: ctx.state,
            kind: ctx.kind,
            target: crate::server::request::Target {
                namespace: Some(meta_str(&object, "namespace").to_string())
                    .filter(|n| !n.is_empty()),
                ..ctx.target.clone()
            },
            query: ctx.query.clone(),
            headers: ctx.headers.clone(),
        };
        match delete_one(&scoped, &name, &options).await {
            Ok(Deleted::Gone(o) | Deleted::Terminating(o)) => deleted.push(o),
            Err(ApiError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let revision = ctx
        .state
        .store
        .current_revision()
        .await
        .map_err(|e| ApiError::from_storage(e, &Default::default()))?;
    let list = json!({
        "apiVersion": ctx.kind.api_version(),
        "kind": ctx.kind.list_kind,
        "metadata": {"resourceVersion": revision.to_string()},
        "items": deleted,
    });
    Ok(json_response(StatusCode::OK, &list, &[]))
}
