//! API errors and their one exhaustive mapping to HTTP status codes and `metav1.Status` bodies.
//!
//! kube-rs matches errors on `reason` only, kubectl prints `message`; both are exact here.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::storage::StorageError;

/// The resource an error is about: `orders.arc.opendefense.cloud "o1"`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subject {
    /// API group (empty for core).
    pub group: String,
    /// Plural resource name (`details.kind` for most reasons).
    pub plural: String,
    /// Kind (`details.kind` for `Invalid`).
    pub kind: String,
    /// Object name, if known.
    pub name: String,
}

impl Subject {
    /// `plural.group`, or `plural` for core.
    pub fn qualified_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `Kind.group`, or `Kind` for core.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
}

/// One field-level validation failure (`details.causes[]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueRequired`, `FieldValueInvalid`, ...
    pub reason: String,
    /// The message without the field path, e.g. `Required value`.
    pub message: String,
    /// The field path, e.g. `spec.artifacts[0].type`.
    pub field: String,
}

/// Every way an API request can fail.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ApiError {
    /// 404: the object does not exist.
    #[error("{} \"{}\" not found", .0.qualified_resource(), .0.name)]
    NotFound(Subject),
    /// 404: no such path or resource.
    #[error("the server could not find the requested resource")]
    UnknownPath,
    /// 409: create of an existing name.
    #[error("{}{} \"{}\" already exists", if *.terminating { "object is being deleted: " } else { "" }, .subject.qualified_resource(), .subject.name)]
    AlreadyExists {
        /// The object.
        subject: Subject,
        /// Whether the existing object is being deleted.
        terminating: bool,
    },
    /// 409: stale resourceVersion or failed precondition.
    #[error("Operation cannot be fulfilled on {} \"{}\": {detail}", .subject.qualified_resource(), .subject.name)]
    Conflict {
        /// The object.
        subject: Subject,
        /// What failed, e.g. the "object has been modified" sentence.
        detail: String,
    },
    /// 422: the object is invalid.
    #[error("{}", invalid_message(.subject, .causes))]
    Invalid {
        /// The object (details.kind is the Kind).
        subject: Subject,
        /// Field-level causes.
        causes: Vec<Cause>,
    },
    /// 422 without field causes on a resource (e.g. a failing JSON Patch `test`).
    #[error("{0}")]
    UnprocessableEntity(String),
    /// 400: malformed request.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no or invalid credentials.
    #[error("Unauthorized")]
    Unauthorized,
    /// 403: not allowed.
    #[error("{message}")]
    Forbidden {
        /// The full message.
        message: String,
        /// The object, if the request was about one.
        subject: Option<Subject>,
    },
    /// 405: method not allowed on this path.
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    /// 406: no acceptable representation.
    #[error("only the following media types are accepted: {0}")]
    NotAcceptable(String),
    /// 413: request too large.
    #[error("{0}")]
    TooLarge(String),
    /// 415: unsupported body or patch type.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 410: the resourceVersion is too old (lists, continue tokens).
    #[error("{message}")]
    Expired {
        /// The message.
        message: String,
        /// A continue token to resume at the latest revision, for expired continue tokens.
        continue_token: Option<String>,
    },
    /// 504: the requested resourceVersion is newer than the store.
    #[error("Too large resource version: {requested}, current: {current}")]
    TooLargeResourceVersion {
        /// Requested.
        requested: i64,
        /// Current.
        current: i64,
    },
    /// 503: storage unavailable.
    #[error("{0}")]
    ServiceUnavailable(String),
    /// 500: anything else.
    #[error("{0}")]
    Internal(String),
}

fn invalid_message(subject: &Subject, causes: &[Cause]) -> String {
    let parts: Vec<String> = causes
        .iter()
        .map(|c| {
            if c.field.is_empty() {
                c.message.clone()
            } else {
                format!("{}: {}", c.field, c.message)
            }
        })
        .collect();
    let list = if parts.len() == 1 {
        parts[0].clone()
    } else {
        format!("[{}]", parts.join(", "))
    };
    format!(
        "{} \"{}\" is invalid: {list}",
        subject.qualified_kind(),
        subject.name
    )
}

impl ApiError {
    /// The "object has been modified" conflict.
    pub fn modified(subject: Subject) -> Self {
        Self::Conflict {
            subject,
            detail: "the object has been modified; please apply your changes to the latest version and try again".into(),
        }
    }

    /// A single-cause `Invalid` error.
    pub fn invalid_field(
        subject: Subject,
        reason: &str,
        field: &str,
        message: impl Into<String>,
    ) -> Self {
        Self::Invalid {
            subject,
            causes: vec![Cause {
                reason: reason.into(),
                message: message.into(),
                field: field.into(),
            }],
        }
    }

    /// The HTTP status code.
    pub fn code(&self) -> StatusCode {
        match self {
            Self::NotFound(_) | Self::UnknownPath => StatusCode::NOT_FOUND,
            Self::AlreadyExists { .. } | Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::Invalid { .. } | Self::UnprocessableEntity(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Expired { .. } => StatusCode::GONE,
            Self::TooLargeResourceVersion { .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::ServiceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `reason` string clients match on.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotFound(_) | Self::UnknownPath => "NotFound",
            Self::AlreadyExists { .. } => "AlreadyExists",
            Self::Conflict { .. } => "Conflict",
            Self::Invalid { .. } | Self::UnprocessableEntity(_) => "Invalid",
            Self::BadRequest(_) => "BadRequest",
            Self::Unauthorized => "Unauthorized",
            Self::Forbidden { .. } => "Forbidden",
            Self::MethodNotAllowed => "MethodNotAllowed",
            Self::NotAcceptable(_) => "NotAcceptable",
            Self::TooLarge(_) => "RequestEntityTooLarge",
            Self::UnsupportedMediaType(_) => "UnsupportedMediaType",
            Self::Expired { .. } => "Expired",
            Self::TooLargeResourceVersion { .. } => "Timeout",
            Self::ServiceUnavailable(_) => "ServiceUnavailable",
            Self::Internal(_) => "InternalError",
        }
    }

    /// The `metav1.Status` body.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code().as_u16(),
        });
        let details = match self {
            Self::NotFound(s)
            | Self::AlreadyExists { subject: s, .. }
            | Self::Conflict { subject: s, .. } => {
                Some(json!({"name": s.name, "group": s.group, "kind": s.plural}))
            }
            Self::Forbidden {
                subject: Some(s), ..
            } => Some(json!({"name": s.name, "group": s.group, "kind": s.plural})),
            Self::Invalid { subject, causes } => Some(json!({
                "name": subject.name, "group": subject.group, "kind": subject.kind,
                "causes": causes.iter().map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field})).collect::<Vec<_>>(),
            })),
            Self::TooLargeResourceVersion { .. } => Some(json!({
                "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                "retryAfterSeconds": 1,
            })),
            _ => None,
        };
        if let Some(mut d) = details {
            // Go omits empty strings in StatusDetails.
            if let Some(map) = d.as_object_mut() {
                map.retain(|_, v| v.as_str() != Some(""));
            }
            status["details"] = d;
        }
        if let Self::Expired {
            continue_token: Some(token),
            ..
        } = self
        {
            status["metadata"] = json!({"continue": token});
        }
        status
    }

    /// Maps a storage failure about `subject` to the API error clients expect.
    pub fn from_storage(error: StorageError, subject: &Subject) -> Self {
        match error {
            StorageError::AlreadyExists { .. } => Self::AlreadyExists {
                subject: subject.clone(),
                terminating: false,
            },
            StorageError::NotFound { .. } => Self::NotFound(subject.clone()),
            StorageError::Conflict { .. } => Self::modified(subject.clone()),
            StorageError::Compacted { .. } => Self::Expired {
                message: "The resourceVersion for the provided list is too old.".into(),
                continue_token: None,
            },
            StorageError::FutureRevision { requested, current } => {
                Self::TooLargeResourceVersion { requested, current }
            }
            StorageError::TooLarge { size, limit } => Self::TooLarge(format!(
                "object of {size} bytes exceeds the storage limit of {limit} bytes"
            )),
            StorageError::Unavailable(m) => Self::ServiceUnavailable(m),
            StorageError::Internal(m) => Self::Internal(m),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        let body = serde_json::to_vec(&self.status()).unwrap_or_default();
        let mut response = (code, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(name: &str) -> Subject {
        Subject {
            group: "arc.opendefense.cloud".into(),
            plural: "orders".into(),
            kind: "Order".into(),
            name: name.into(),
        }
    }

    #[test]
    fn not_found_matches_kube_shape() {
        let s = ApiError::NotFound(order("o1")).status();
        assert_eq!(
            s["message"],
            "orders.arc.opendefense.cloud \"o1\" not found"
        );
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["code"], 404);
        assert_eq!(
            s["details"],
            json!({"name": "o1", "group": "arc.opendefense.cloud", "kind": "orders"})
        );
    }

    #[test]
    fn invalid_lists_causes_with_brackets_only_for_many() {
        let one = ApiError::invalid_field(
            order("o1"),
            "FieldValueRequired",
            "spec.x",
            "Required value",
        );
        assert_eq!(
            one.to_string(),
            "Order.arc.opendefense.cloud \"o1\" is invalid: spec.x: Required value"
        );
        let two = ApiError::Invalid {
            subject: order("o1"),
            causes: vec![
                Cause {
                    reason: "FieldValueRequired".into(),
                    message: "Required value".into(),
                    field: "a".into(),
                },
                Cause {
                    reason: "FieldValueInvalid".into(),
                    message: "Invalid value: 1".into(),
                    field: "b".into(),
                },
            ],
        };
        assert_eq!(
            two.to_string(),
            "Order.arc.opendefense.cloud \"o1\" is invalid: [a: Required value, b: Invalid value: 1]"
        );
        assert_eq!(two.status()["details"]["kind"], "Order");
        assert_eq!(two.code(), StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn conflict_and_terminating_already_exists_messages() {
        assert!(ApiError::modified(order("o1")).to_string().starts_with(
            "Operation cannot be fulfilled on orders.arc.opendefense.cloud \"o1\": the object has been modified"
        ));
        let e = ApiError::AlreadyExists {
            subject: order("o1"),
            terminating: true,
        };
        assert_eq!(
            e.to_string(),
            "object is being deleted: orders.arc.opendefense.cloud \"o1\" already exists"
        );
    }
}
