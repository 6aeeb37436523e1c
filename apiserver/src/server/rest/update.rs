//! PUT and the shared update path PATCH also goes through: immutable metadata, the status
//! subresource split, generation bumps, the finalizer/deletion state machine and no-op detection.

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::admit::{WriteKind, admit};
use super::create::{check_namespace, check_type};
use super::read::load;
use super::{Ctx, decode_object, single_response};
use crate::server::errors::ApiError;
use crate::server::negotiate::body_format_for;
use crate::server::object::{
    encode, finalizers_of, generation_of, is_terminating, meta_str, metadata_mut, name_of,
    normalize, owned_fields, record_manager, same_stored_form, set_resource_version, spec_changed,
    storage_key, uid_of,
};
use crate::server::validation::FieldValidation;
use crate::storage::{Revision, StorageError};

/// Why an update could not be stored.
pub(crate) enum UpdateFailure {
    /// The object changed since it was read (CAS failed): PATCH retries, PUT answers 409.
    Conflict,
    /// Any other error, returned as is.
    Api(ApiError),
}

impl From<ApiError> for UpdateFailure {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

/// Options of one update.
pub(crate) struct UpdateRequest {
    /// Whether the request addressed `/status`.
    pub status_only: bool,
    /// `fieldValidation`.
    pub validation: FieldValidation,
    /// `dryRun=All`.
    pub dry_run: bool,
    /// The managedFields operation to record (`Update` or `Apply`).
    pub operation: &'static str,
    /// PUT or PATCH (error shapes differ).
    pub write: WriteKind,
}

/// Builds the object to store from the current one and the requested one, applying the rules of
/// upstream's update strategy, then stores it with a compare-and-swap on `current_rev`.
/// Returns the stored (or deleted-as-final) object.
pub(crate) async fn apply_update(
    ctx: &Ctx<'_>,
    current: &Value,
    current_rev: Revision,
    requested: Value,
    options: &UpdateRequest,
) -> Result<(Value, Vec<String>), UpdateFailure> {
    let kind = ctx.kind;
    let name = name_of(current).to_string();
    let subject = ctx.subject(&name);
    let mut next = if options.status_only {
        let mut next = current.clone();
        match requested.get("status") {
            Some(status) => next["status"] = status.clone(),
            None => {
                if let Some(map) = next.as_object_mut() {
                    map.remove("status");
                }
            }
        }
        if let Some(fields) = requested
            .get("metadata")
            .and_then(|m| m.get("managedFields"))
        {
            next["metadata"]["managedFields"] = fields.clone();
        }
        next
    } else {
        let mut next = requested;
        let requested_uid = uid_of(&next).to_string();
        if !requested_uid.is_empty() && requested_uid != uid_of(current) {
            return Err(ApiError::invalid_field(
                subject,
                "FieldValueInvalid",
                "metadata.uid",
                format!("Invalid value: {requested_uid:?}: field is immutable"),
            )
            .into());
        }
        let meta = metadata_mut(&mut next)
            .ok_or_else(|| ApiError::BadRequest("metadata must be an object".into()))?;
        for field in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            match current.get("metadata").and_then(|m| m.get(field)) {
                Some(v) => meta.insert(field.into(), v.clone()),
                None => meta.remove(field),
            };
        }
        if kind.has_status {
            match current.get("status") {
                Some(status) => next["status"] = status.clone(),
                None => {
                    if let Some(map) = next.as_object_mut() {
                        map.remove("status");
                    }
                }
            }
        }
        next
    };
    let warnings = admit(ctx, &mut next, options.validation, options.write)?;

    // Finalizers can only be removed once deletion started.
    if is_terminating(current) {
        let before = finalizers_of(current);
        let added: Vec<String> = finalizers_of(&next)
            .into_iter()
            .filter(|f| !before.contains(f))
            .collect();
        if !added.is_empty() {
            return Err(ApiError::invalid_field(
                subject,
                "FieldValueForbidden",
                "metadata.finalizers",
                format!("Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"),
            )
            .into());
        }
    }
    let generation = generation_of(current) + i64::from(spec_changed(kind, current, &next));
    next["metadata"]["generation"] = json!(generation.max(1));
    let explicit_managed_fields = next.get("metadata").and_then(|m| m.get("managedFields"))
        != current.get("metadata").and_then(|m| m.get("managedFields"));
    if !explicit_managed_fields {
        let fields = owned_fields(kind, &next, options.status_only);
        record_manager(
            &mut next,
            &kind.api_version(),
            &ctx.field_manager(),
            options.operation,
            options.status_only.then_some("status"),
            fields,
        );
    }
    normalize(kind, &mut next);
    set_resource_version(&mut next, current_rev);

    if same_stored_form(current, &next) {
        return Ok((current.clone(), warnings));
    }
    if options.dry_run {
        return Ok((next, warnings));
    }
    let key = storage_key(kind, ctx.namespace(), &name);
    // The last finalizer of a terminating object is gone: the update deletes it.
    if is_terminating(&next) && finalizers_of(&next).is_empty() {
        return match ctx.state.store.delete(&key, current_rev).await {
            Ok(revision) => {
                set_resource_version(&mut next, revision);
                ctx.state.deletions.notify_one();
                Ok((next, warnings))
            }
            Err(StorageError::Conflict { .. }) => Err(UpdateFailure::Conflict),
            Err(e) => Err(ApiError::from_storage(e, &subject).into()),
        };
    }
    match ctx
        .state
        .store
        .update(&key, encode(ctx.kind, &next), current_rev)
        .await
    {
        Ok(revision) => {
            set_resource_version(&mut next, revision);
            Ok((next, warnings))
        }
        Err(StorageError::Conflict { .. }) => Err(UpdateFailure::Conflict),
        Err(e) => Err(ApiError::from_storage(e, &subject).into()),
    }
}

/// PUT handler (main resource or `/status`).
pub(super) async fn update(ctx: &Ctx<'_>, body: Bytes) -> Result<Response, ApiError> {
    let format = body_format_for(&ctx.headers, false, ctx.kind.group.is_empty())?;
    let options = UpdateRequest {
        status_only: ctx.target.subresource.is_some(),
        validation: super::admit::field_validation(ctx)?,
        dry_run: ctx.query.dry_run()?,
        operation: "Update",
        write: WriteKind::CreateOrUpdate,
    };
    let url_name = ctx.target.name.clone().unwrap_or_default();
    let mut requested = decode_object(&body, format)?;
    check_type(ctx.kind, &mut requested)?;
    let body_name = name_of(&requested).to_string();
    if body_name.is_empty() {
        if let Some(meta) = metadata_mut(&mut requested) {
            meta.insert("name".into(), json!(url_name));
        }
    } else if body_name != url_name {
        return Err(ApiError::BadRequest(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({url_name})"
        )));
    }
    check_namespace(ctx, &mut requested)?;
    let requested_rv = meta_str(&requested, "resourceVersion").to_string();
    if requested_rv.is_empty() {
        return Err(ApiError::invalid_field(
            ctx.subject(&url_name),
            "FieldValueInvalid",
            "metadata.resourceVersion",
            "Invalid value: 0x0: must be specified for an update",
        ));
    }
    let (current, current_rev) = load(ctx, &url_name).await?;
    if requested_rv != current_rev.to_string() {
        return Err(ApiError::modified(ctx.subject(&url_name)));
    }
    match apply_update(ctx, &current, current_rev, requested, &options).await {
        Ok((object, warnings)) => single_response(ctx, StatusCode::OK, &object, &warnings),
        Err(UpdateFailure::Conflict) => Err(ApiError::modified(ctx.subject(&url_name))),
        Err(UpdateFailure::Api(e)) => Err(e),
    }
}
