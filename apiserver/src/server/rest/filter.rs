//! The label and field selectors of a list or watch request, as one predicate over objects.

use serde_json::Value;

use crate::server::errors::ApiError;
use crate::server::kinds::selectable_fields;
use crate::server::registry::ResourceKind;
use crate::server::request::Query;
use crate::server::selectors::{FieldSelector, LabelSelector};

/// A parsed `labelSelector` + `fieldSelector` for one kind.
#[derive(Clone, Debug)]
pub struct ListFilter {
    /// The kind's extra selectable fields (kept instead of a copy of the whole kind row).
    selectable: &'static [(&'static str, &'static str)],
    labels: LabelSelector,
    fields: FieldSelector,
}

impl ListFilter {
    /// Parses the selectors of `query` for `kind`; malformed selectors and fields the kind
    /// cannot select on are a 400.
    pub fn from_query(kind: &ResourceKind, query: &Query) -> Result<Self, ApiError> {
        let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or(""))
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let fields = FieldSelector::parse_for(kind, query.get("fieldSelector").unwrap_or(""))
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        Ok(Self {
            selectable: selectable_fields(kind),
            labels,
            fields,
        })
    }

    /// Whether no selector was given.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    /// Whether `object` matches both selectors.
    pub fn matches(&self, object: &Value) -> bool {
        self.labels.matches(object) && self.fields.matches_with(self.selectable, object)
    }
}
