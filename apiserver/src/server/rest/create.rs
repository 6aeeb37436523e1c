//! POST: creating an object, with the metadata the server owns (uid, creationTimestamp,
//! generation), `generateName`, dry runs and namespace checks.

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::Response;
use rand::Rng;
use serde_json::{Value, json};

use super::admit::{WriteKind, admit};
use super::{Ctx, decode_object, single_response};
use crate::server::errors::ApiError;
use crate::server::negotiate::body_format_for;
use crate::server::object::{
    decode, encode, from_stored, metadata_mut, name_of, namespace_of, new_uid, normalize,
    now_rfc3339, owned_fields, record_manager, set_resource_version, storage_key,
};
use crate::server::registry::ResourceKind;
use crate::server::validation::FieldValidation;
use crate::storage::StorageError;

/// Letters `generateName` suffixes are drawn from (no vowels, no look-alikes), as upstream.
const GENERATE_NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
/// How often a create with `generateName` retries after a name collision.
const GENERATE_NAME_ATTEMPTS: usize = 8;

/// Checks `apiVersion`/`kind` of a body against the URL's kind, filling them when absent.
pub(crate) fn check_type(kind: &ResourceKind, object: &mut Value) -> Result<(), ApiError> {
    let expected = kind.api_version();
    let map = object
        .as_object_mut()
        .ok_or_else(|| ApiError::BadRequest("the body must be an object".into()))?;
    match map.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("apiVersion".into(), json!(expected));
        }
        Some(v) if v == expected => {}
        Some(v) => {
            return Err(ApiError::BadRequest(format!(
                "the API version in the data ({v}) does not match the expected API version ({expected})"
            )));
        }
    }
    match map.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("kind".into(), json!(kind.kind));
        }
        Some(k) if k == kind.kind => {}
        Some(k) => {
            return Err(ApiError::BadRequest(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                kind.kind
            )));
        }
    }
    Ok(())
}

/// Applies the URL's namespace: defaulted into an empty body namespace, 400 when they differ;
/// cleared for cluster-scoped kinds.
pub(crate) fn check_namespace(ctx: &Ctx<'_>, object: &mut Value) -> Result<(), ApiError> {
    let body_ns = namespace_of(object).to_string();
    let meta = metadata_mut(object)
        .ok_or_else(|| ApiError::BadRequest("the body must be an object".into()))?;
    match ctx.namespace() {
        Some(url_ns) => {
            if body_ns.is_empty() {
                meta.insert("namespace".into(), json!(url_ns));
            } else if body_ns != url_ns {
                return Err(ApiError::BadRequest(
                    "the namespace of the provided object does not match the namespace sent on the request".into(),
                ));
            }
        }
        None => {
            meta.remove("namespace");
        }
    }
    Ok(())
}

/// Rejects creates into a namespace that does not exist or is being deleted (embedded mode).
pub(crate) async fn check_namespace_lifecycle(ctx: &Ctx<'_>) -> Result<(), ApiError> {
    let (Some(ns), true) = (ctx.namespace(), ctx.state.options.embedded) else {
        return Ok(());
    };
    let Some(ns_kind) = ctx.state.kind_by_plural("", "namespaces") else {
        return Ok(());
    };
    if ctx.state.namespace_recently_active(ns) {
        return Ok(());
    }
    let key = storage_key(ns_kind, None, ns);
    let subject = crate::server::errors::Subject {
        plural: "namespaces".into(),
        kind: "Namespace".into(),
        name: ns.into(),
        ..Default::default()
    };
    let kv = ctx
        .state
        .store
        .get(&key)
        .await
        .map_err(|e| ApiError::from_storage(e, &subject))?;
    let Some(kv) = kv else {
        return Err(ApiError::NotFound(subject));
    };
    let namespace = from_stored(&kv).map_err(ApiError::Internal)?;
    if crate::server::object::is_terminating(&namespace) {
        return Err(ApiError::Forbidden {
            message: format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            ),
            subject: None,
        });
    }
    ctx.state.remember_active_namespace(ns);
    Ok(())
}

/// Sets the metadata a create owns: uid, creationTimestamp, generation 1; drops status for kinds
/// with a status subresource, and server-only fields.
pub(crate) fn prepare_new(kind: &ResourceKind, object: &mut Value, manager: &str, operation: &str) {
    let fields = owned_fields(kind, object, false);
    if let Some(meta) = metadata_mut(object) {
        for field in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
            "resourceVersion",
            "managedFields",
        ] {
            meta.remove(field);
        }
        meta.insert("uid".into(), json!(new_uid()));
        meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
        meta.insert("generation".into(), json!(1));
    }
    if kind.has_status
        && let Some(map) = object.as_object_mut()
    {
        map.remove("status");
    }
    if kind.group.is_empty() && kind.plural == "namespaces" {
        object["spec"] = json!({"finalizers": ["kubernetes"]});
        object["status"] = json!({"phase": "Active"});
    }
    record_manager(
        object,
        &kind.api_version(),
        manager,
        operation,
        None,
        fields,
    );
    normalize(kind, object);
}

/// POST handler.
pub(super) async fn create(ctx: &Ctx<'_>, body: Bytes) -> Result<Response, ApiError> {
    let format = body_format_for(&ctx.headers, false, ctx.kind.group.is_empty())?;
    let validation = super::admit::field_validation(ctx)?;
    let dry_run = ctx.query.dry_run()?;
    let mut object = decode_object(&body, format)?;
    check_type(ctx.kind, &mut object)?;
    check_namespace(ctx, &mut object)?;
    if !object
        .get("metadata")
        .and_then(|m| m.get("resourceVersion"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        return Err(ApiError::BadRequest(
            "resourceVersion should not be set on objects to be created".into(),
        ));
    }
    let (object, code, warnings) =
        create_object(ctx, object, validation, dry_run, "Update").await?;
    single_response(ctx, code, &object, &warnings)
}

/// Creates `object` (already type- and namespace-checked): admission, server metadata,
/// `generateName`, storage. Shared by POST and by server-side apply of a missing object.
pub(crate) async fn create_object(
    ctx: &Ctx<'_>,
    mut object: Value,
    validation: FieldValidation,
    dry_run: bool,
    operation: &str,
) -> Result<(Value, StatusCode, Vec<String>), ApiError> {
    let generate = object
        .get("metadata")
        .and_then(|m| m.get("generateName"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let use_generate = name_of(&object).is_empty() && !generate.is_empty();
    if use_generate {
        set_name(&mut object, &generated_name(&generate));
    }
    let warnings = admit(ctx, &mut object, validation, WriteKind::CreateOrUpdate)?;
    check_namespace_lifecycle(ctx).await?;
    prepare_new(ctx.kind, &mut object, &ctx.field_manager(), operation);
    if dry_run {
        return Ok((object, StatusCode::CREATED, warnings));
    }
    let mut attempts = 0;
    loop {
        let name = name_of(&object).to_string();
        let key = storage_key(ctx.kind, ctx.namespace(), &name);
        match ctx
            .state
            .store
            .create(&key, encode(ctx.kind, &object))
            .await
        {
            Ok(revision) => {
                set_resource_version(&mut object, revision);
                return Ok((object, StatusCode::CREATED, warnings));
            }
            Err(StorageError::AlreadyExists { .. })
                if use_generate && attempts < GENERATE_NAME_ATTEMPTS =>
            {
                attempts += 1;
                set_name(&mut object, &generated_name(&generate));
            }
            Err(StorageError::AlreadyExists { .. }) => {
                let terminating = ctx
                    .state
                    .store
                    .get(&key)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|kv| decode(ctx.kind, &kv).ok())
                    .is_some_and(|o| crate::server::object::is_terminating(&o));
                return Err(ApiError::AlreadyExists {
                    subject: ctx.subject(&name),
                    terminating,
                });
            }
            Err(e) => return Err(ApiError::from_storage(e, &ctx.subject(&name))),
        }
    }
}

fn set_name(object: &mut Value, name: &str) {
    if let Some(meta) = metadata_mut(object) {
        meta.insert("name".into(), json!(name));
    }
}

/// `prefix` + 5 random characters, the prefix cut so the result stays a valid name.
fn generated_name(prefix: &str) -> String {
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| GENERATE_NAME_ALPHABET[rng.random_range(0..GENERATE_NAME_ALPHABET.len())] as char)
        .collect();
    let keep = prefix.len().min(253 - 5);
    format!("{}{suffix}", &prefix[..keep])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_use_the_upstream_alphabet() {
        let n = generated_name("o-");
        assert_eq!(n.len(), 7);
        assert!(n.starts_with("o-"));
        assert!(n[2..].bytes().all(|b| GENERATE_NAME_ALPHABET.contains(&b)));
    }
}
