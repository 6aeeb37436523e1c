//! The label and field selectors of a list or watch request, as one predicate over objects.

use serde_json::Value;

use crate::server::errors::ApiError;
use crate::server::registry::ResourceKind;
use crate::server::request::Query;

/// A parsed `labelSelector` + `fieldSelector`.
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    labels: Vec<(String, String)>,
    fields: Vec<(String, String)>,
}

impl ListFilter {
    /// Parses the selectors of `query` for `kind`; malformed selectors are a 400.
    pub fn from_query(_kind: &ResourceKind, query: &Query) -> Result<Self, ApiError> {
        let mut filter = Self::default();
        for (param, out) in [
            ("labelSelector", &mut filter.labels),
            ("fieldSelector", &mut filter.fields),
        ] {
            if let Some(raw) = query.non_empty(param) {
                for term in raw.split(',') {
                    let (k, v) = term.split_once('=').ok_or_else(|| {
                        ApiError::BadRequest(format!("unable to parse requirement: {term}"))
                    })?;
                    out.push((
                        k.trim().to_string(),
                        v.trim_start_matches('=').trim().to_string(),
                    ));
                }
            }
        }
        Ok(filter)
    }

    /// Whether no selector was given.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    /// Whether `object` matches both selectors.
    pub fn matches(&self, object: &Value) -> bool {
        let meta = object.get("metadata");
        self.labels.iter().all(|(k, v)| {
            meta.and_then(|m| m.get("labels"))
                .and_then(|l| l.get(k))
                .and_then(Value::as_str)
                == Some(v)
        }) && self.fields.iter().all(|(k, v)| {
            let field = k.strip_prefix("metadata.").unwrap_or(k);
            meta.and_then(|m| m.get(field))
                .and_then(Value::as_str)
                .unwrap_or("")
                == v
        })
    }
}
