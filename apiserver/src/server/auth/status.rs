//! The `metav1.Status` bodies for 401 and 403, worded and ordered exactly as kube-apiserver
//! writes them.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use super::{Identity, RequestAttributes};

/// The `Unauthorized` Status (401) kube-apiserver sends for missing or bad credentials.
pub fn unauthorized_response() -> Response {
    status_response(
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
        "Unauthorized",
        None,
    )
}

/// The message of a 403, worded as kube-apiserver words it, e.g.
/// `orders.arc.opendefense.cloud "o1" is forbidden: User "viewer" cannot delete resource
/// "orders" in API group "arc.opendefense.cloud" in the namespace "default"`.
pub fn forbidden_message(
    identity: &Identity,
    attributes: &RequestAttributes,
    reason: Option<&str>,
) -> String {
    let user = &identity.user;
    let verb = &attributes.verb;
    let mut cause = match &attributes.resource {
        None => format!("User {user:?} cannot {verb} path {:?}", attributes.path),
        Some(r) => {
            let resource = if r.subresource.is_empty() {
                r.resource.clone()
            } else {
                format!("{}/{}", r.resource, r.subresource)
            };
            let scope = if r.namespace.is_empty() {
                "at the cluster scope".to_owned()
            } else {
                format!("in the namespace {:?}", r.namespace)
            };
            format!(
                "User {user:?} cannot {verb} resource {resource:?} in API group {:?} {scope}",
                r.api_group
            )
        }
    };
    if let Some(reason) = reason.filter(|r| !r.is_empty()) {
        cause = format!("{cause}: {reason}");
    }
    match &attributes.resource {
        Some(r) if !r.resource.is_empty() || !r.api_group.is_empty() => {
            let qualified = if r.api_group.is_empty() {
                r.resource.clone()
            } else {
                format!("{}.{}", r.resource, r.api_group)
            };
            if r.name.is_empty() {
                format!("{qualified} is forbidden: {cause}")
            } else {
                format!("{qualified} {:?} is forbidden: {cause}", r.name)
            }
        }
        _ => format!("forbidden: {cause}"),
    }
}

/// The `Forbidden` Status (403) for `identity` doing `attributes`, with details
/// `{name, group, kind: <plural resource>}`.
pub fn forbidden_response(
    identity: &Identity,
    attributes: &RequestAttributes,
    reason: Option<&str>,
) -> Response {
    let mut details = serde_json::Map::new();
    if let Some(r) = &attributes.resource {
        for (key, value) in [
            ("name", &r.name),
            ("group", &r.api_group),
            ("kind", &r.resource),
        ] {
            if !value.is_empty() {
                details.insert(key.to_owned(), serde_json::Value::String(value.clone()));
            }
        }
    }
    let mut response = status_response(
        StatusCode::FORBIDDEN,
        "Forbidden",
        &forbidden_message(identity, attributes, reason),
        Some(details),
    );
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// A `metav1.Status` failure response, fields in upstream order.
pub(super) fn status_response(
    code: StatusCode,
    reason: &str,
    message: &str,
    details: Option<serde_json::Map<String, serde_json::Value>>,
) -> Response {
    let mut status = serde_json::Map::new();
    status.insert("kind".into(), "Status".into());
    status.insert("apiVersion".into(), "v1".into());
    status.insert(
        "metadata".into(),
        serde_json::Value::Object(Default::default()),
    );
    status.insert("status".into(), "Failure".into());
    status.insert("message".into(), message.into());
    status.insert("reason".into(), reason.into());
    if let Some(details) = details {
        status.insert("details".into(), serde_json::Value::Object(details));
    }
    status.insert("code".into(), code.as_u16().into());
    let body = serde_json::to_vec(&serde_json::Value::Object(status))
        .expect("a JSON map always serialises");
    (
        code,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}
