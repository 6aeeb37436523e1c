//! Admission of a written object: unknown-field handling per `fieldValidation` (pruning,
//! warnings or the strict-decoding error), then metadata, schema and per-kind validation.
//! Returns the warnings to send back.

use serde_json::Value;

use super::Ctx;
use crate::server::errors::{ApiError, Cause};
use crate::server::validation::{
    FieldValidation, apply_defaults, apply_field_validation, check_object,
};

/// Whether the write is a patch (strict-decoding errors then are 422 on field `patch`, as upstream).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WriteKind {
    /// POST or PUT.
    CreateOrUpdate,
    /// PATCH.
    Patch,
}

/// Reads `fieldValidation` from the query; an unknown directive is a 400.
pub(crate) fn field_validation(ctx: &Ctx<'_>) -> Result<FieldValidation, ApiError> {
    FieldValidation::parse(ctx.query.get("fieldValidation"))
        .map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// Validates `object` (already carrying its final metadata) and applies `fieldValidation`.
pub(crate) fn admit(
    ctx: &Ctx<'_>,
    object: &mut Value,
    validation: FieldValidation,
    write: WriteKind,
) -> Result<Vec<String>, ApiError> {
    let name = crate::server::object::name_of(object).to_string();
    let warnings = match apply_field_validation(ctx.kind, object, validation) {
        Ok(warnings) => warnings,
        Err(strict) => {
            return Err(match write {
                WriteKind::CreateOrUpdate => ApiError::BadRequest(strict.to_string()),
                WriteKind::Patch => ApiError::invalid_field(
                    ctx.subject(&name),
                    "FieldValueInvalid",
                    "patch",
                    strict.to_string(),
                ),
            });
        }
    };
    apply_defaults(ctx.kind, object);
    check_object(ctx.kind, object).map_err(|invalid| ApiError::Invalid {
        subject: ctx.subject(&invalid.name),
        causes: invalid
            .errors
            .iter()
            .map(|e| {
                let c = e.cause();
                Cause {
                    reason: c["reason"].as_str().unwrap_or_default().to_string(),
                    message: c["message"].as_str().unwrap_or_default().to_string(),
                    field: c["field"].as_str().unwrap_or_default().to_string(),
                }
            })
            .collect(),
    })?;
    Ok(warnings)
}
