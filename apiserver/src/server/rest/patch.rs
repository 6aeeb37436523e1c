//! PATCH: JSON merge patch, JSON patch (with the Go library's `test`-on-missing-path quirk that
//! kube-rs's finalizer helper relies on) and server-side apply, inside a compare-and-swap retry
//! loop like upstream's.

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::admit::WriteKind;
use super::create::{check_namespace, check_type, create_object};
use super::read::load;
use super::update::{UpdateFailure, UpdateRequest, apply_update};
use super::{Ctx, decode_object, single_response};
use crate::server::errors::ApiError;
use crate::server::negotiate::{BodyFormat, body_format_for};
use crate::server::object::{meta_str, name_of};
use crate::server::validation::FieldValidation;

/// A JSON patch with more operations than this is refused with 413.
const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;
/// How often a patch is re-applied after losing a compare-and-swap race.
const MAX_PATCH_ATTEMPTS: usize = 16;

/// Applies an RFC 7386 merge patch.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// Applies an RFC 6902 patch with evanphx/json-patch v4 semantics: `test` with a `null` value
/// succeeds when the path does not exist.
pub(crate) fn json_patch_apply(target: &mut Value, operations: &[Value]) -> Result<(), String> {
    for operation in operations {
        let is_null_test = operation.get("op").and_then(Value::as_str) == Some("test")
            && operation.get("value").is_some_and(Value::is_null);
        if is_null_test {
            let path = operation.get("path").and_then(Value::as_str).unwrap_or("");
            match target.pointer(path) {
                None | Some(Value::Null) => continue,
                Some(other) => {
                    return Err(format!(
                        "testing value {path} failed: found {other}, expected null"
                    ));
                }
            }
        }
        let single: json_patch::Patch =
            serde_json::from_value(Value::Array(vec![operation.clone()]))
                .map_err(|e| format!("invalid operation: {e}"))?;
        json_patch::patch(target, &single).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// PATCH handler (main resource or `/status`).
pub(super) async fn patch(ctx: &Ctx<'_>, body: Bytes) -> Result<Response, ApiError> {
    let format = body_format_for(&ctx.headers, true, ctx.kind.group.is_empty())?;
    let name = ctx.target.name.clone().unwrap_or_default();
    let force = ctx.query.optional_flag("force")?;
    let manager = ctx.query.non_empty("fieldManager");
    if format == BodyFormat::ApplyPatch && manager.is_none() {
        return Err(ApiError::Invalid {
            subject: crate::server::errors::Subject {
                group: "meta.k8s.io".into(),
                kind: "PatchOptions".into(),
                ..Default::default()
            },
            causes: vec![crate::server::errors::Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value: is required for apply patch".into(),
                field: "fieldManager".into(),
            }],
        });
    }
    if format != BodyFormat::ApplyPatch && force.is_some() {
        return Err(ApiError::Invalid {
            subject: crate::server::errors::Subject {
                group: "meta.k8s.io".into(),
                kind: "PatchOptions".into(),
                ..Default::default()
            },
            causes: vec![crate::server::errors::Cause {
                reason: "FieldValueForbidden".into(),
                message: "Forbidden: may not be specified for non-apply patch".into(),
                field: "force".into(),
            }],
        });
    }
    let options = UpdateRequest {
        status_only: ctx.target.subresource.is_some(),
        validation: super::admit::field_validation(ctx)?,
        dry_run: ctx.query.dry_run()?,
        operation: if format == BodyFormat::ApplyPatch {
            "Apply"
        } else {
            "Update"
        },
        write: WriteKind::Patch,
    };
    let document: Value = match format {
        BodyFormat::ApplyPatch => decode_object(&body, format)?,
        _ => serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("error decoding patch: {e}")))?,
    };
    let operations = match format {
        BodyFormat::JsonPatch => {
            let ops = document.as_array().ok_or_else(|| {
                ApiError::BadRequest("a JSON patch must be an array of operations".into())
            })?;
            if ops.len() > MAX_JSON_PATCH_OPERATIONS {
                return Err(ApiError::TooLarge(format!(
                    "the JSON patch has {} operations, more than the limit of {MAX_JSON_PATCH_OPERATIONS}",
                    ops.len()
                )));
            }
            ops.clone()
        }
        BodyFormat::MergePatch if !document.is_object() => {
            return Err(ApiError::BadRequest(
                "a merge patch must be a JSON object".into(),
            ));
        }
        _ => Vec::new(),
    };

    for _ in 0..MAX_PATCH_ATTEMPTS {
        let (current, current_rev) = match load(ctx, &name).await {
            Ok(found) => found,
            Err(ApiError::NotFound(_))
                if format == BodyFormat::ApplyPatch && !options.status_only =>
            {
                return apply_create(ctx, document, options.validation, options.dry_run).await;
            }
            Err(e) => return Err(e),
        };
        let mut patched = current.clone();
        match format {
            BodyFormat::MergePatch => merge_patch(&mut patched, &document),
            BodyFormat::JsonPatch => json_patch_apply(&mut patched, &operations).map_err(|e| {
                ApiError::UnprocessableEntity(format!(
                    "the server rejected our request due to an error in our request: {e}"
                ))
            })?,
            BodyFormat::ApplyPatch => super::apply::server_side_apply(
                ctx,
                &mut patched,
                &document,
                force.unwrap_or(false),
                options.status_only,
            )?,
            _ => return Err(ApiError::Internal("unexpected patch format".into())),
        }
        if !patched.is_object() {
            return Err(ApiError::UnprocessableEntity(
                "the patched object is not a JSON object".into(),
            ));
        }
        check_type(ctx.kind, &mut patched)?;
        if name_of(&patched) != name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                name_of(&patched)
            )));
        }
        check_namespace(ctx, &mut patched)?;
        let patched_rv = meta_str(&patched, "resourceVersion").to_string();
        let carries_rv = patched_rv != current_rev.to_string();
        if carries_rv {
            return Err(ApiError::modified(ctx.subject(&name)));
        }
        match apply_update(ctx, &current, current_rev, patched, &options).await {
            Ok((object, warnings)) => {
                return single_response(ctx, StatusCode::OK, &object, &warnings);
            }
            Err(UpdateFailure::Conflict) => continue,
            Err(UpdateFailure::Api(e)) => return Err(e),
        }
    }
    Err(ApiError::modified(ctx.subject(&name)))
}

/// Server-side apply of an object that does not exist yet: a create owned by the manager.
async fn apply_create(
    ctx: &Ctx<'_>,
    mut document: Value,
    validation: FieldValidation,
    dry_run: bool,
) -> Result<Response, ApiError> {
    check_type(ctx.kind, &mut document)?;
    if name_of(&document).is_empty() {
        document["metadata"]["name"] = json!(ctx.target.name.clone().unwrap_or_default());
    }
    check_namespace(ctx, &mut document)?;
    let (object, code, warnings) =
        create_object(ctx, document, validation, dry_run, "Apply").await?;
    single_response(ctx, code, &object, &warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_null_on_missing_path_succeeds_like_go() {
        let mut obj = json!({"metadata": {"name": "o1"}});
        let ops = vec![
            json!({"op": "test", "path": "/metadata/finalizers", "value": null}),
            json!({"op": "add", "path": "/metadata/finalizers", "value": ["arc/x"]}),
        ];
        json_patch_apply(&mut obj, &ops).unwrap();
        assert_eq!(obj["metadata"]["finalizers"], json!(["arc/x"]));
        // Now the path exists: the same null test must fail.
        assert!(json_patch_apply(&mut obj, &ops[..1]).is_err());
    }

    #[test]
    fn failing_test_leaves_an_error() {
        let mut obj = json!({"spec": {"a": "x"}});
        let ops = vec![json!({"op": "test", "path": "/spec/a", "value": "nope"})];
        assert!(json_patch_apply(&mut obj, &ops).is_err());
    }

    #[test]
    fn merge_patch_null_removes() {
        let mut obj = json!({"metadata": {"labels": {"a": "b", "c": "d"}}});
        merge_patch(&mut obj, &json!({"metadata": {"labels": {"a": null}}}));
        assert_eq!(obj, json!({"metadata": {"labels": {"c": "d"}}}));
    }
}
