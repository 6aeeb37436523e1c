//! Content negotiation: which representation the `Accept` header asks for (plain JSON, a
//! `meta.k8s.io` Table, PartialObjectMetadata), and which body formats a write accepts.

use axum::http::HeaderMap;
use axum::http::header::{ACCEPT, CONTENT_TYPE};

use super::errors::ApiError;

/// The representation of a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// The objects themselves.
    Json,
    /// A `meta.k8s.io` Table (`v1` or `v1beta1`).
    Table(&'static str),
    /// `PartialObjectMetadata` (single objects and watch events).
    PartialObjectMetadata,
    /// `PartialObjectMetadataList` (lists).
    PartialObjectMetadataList,
}

/// What the response is: one object, a list, or a watch stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// GET/PUT/PATCH/POST/DELETE of one object.
    Single,
    /// A LIST.
    List,
    /// A WATCH stream.
    Watch,
}

/// The media types we can answer with, for 406 messages.
const ACCEPTED: &str = "application/json, application/json;as=Table;v=v1;g=meta.k8s.io, \
application/json;as=Table;v=v1beta1;g=meta.k8s.io, application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io, \
application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io";

/// Picks the first `Accept` clause we can satisfy for a response of `shape`.
pub fn negotiate(headers: &HeaderMap, shape: Shape) -> Result<Output, ApiError> {
    let accept = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim();
    if accept.is_empty() {
        return Ok(Output::Json);
    }
    for clause in accept.split(',') {
        let mut parts = clause.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        if !matches!(media.as_str(), "application/json" | "*/*" | "application/*") {
            continue;
        }
        let (mut as_, mut g, mut v) = (None, None, None);
        for param in parts {
            if let Some((k, val)) = param.split_once('=') {
                match k.trim() {
                    "as" => as_ = Some(val.trim().to_string()),
                    "g" => g = Some(val.trim().to_string()),
                    "v" => v = Some(val.trim().to_string()),
                    _ => {}
                }
            }
        }
        let Some(as_) = as_ else {
            return Ok(Output::Json);
        };
        if g.as_deref() != Some("meta.k8s.io") {
            continue;
        }
        let output = match (as_.as_str(), v.as_deref(), shape) {
            ("Table", Some("v1"), _) => Output::Table("v1"),
            ("Table", Some("v1beta1"), _) => Output::Table("v1beta1"),
            ("PartialObjectMetadata", Some("v1" | "v1beta1"), Shape::Single | Shape::Watch) => {
                Output::PartialObjectMetadata
            }
            ("PartialObjectMetadataList", Some("v1" | "v1beta1"), Shape::List) => {
                Output::PartialObjectMetadataList
            }
            _ => continue,
        };
        return Ok(output);
    }
    Err(ApiError::NotAcceptable(ACCEPTED.into()))
}

/// The format of a request body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFormat {
    /// JSON (also an empty Content-Type).
    Json,
    /// YAML (a JSON superset).
    Yaml,
    /// RFC 7386 JSON merge patch.
    MergePatch,
    /// RFC 6902 JSON patch.
    JsonPatch,
    /// Server-side apply (YAML or JSON body).
    ApplyPatch,
    /// Kubernetes protobuf (core Secrets and Namespaces only, as kubectl ≥ 1.33 sends them).
    Protobuf,
}

/// Classifies the `Content-Type` of a create/update (`patch = false`) or patch request.
pub fn body_format(headers: &HeaderMap, patch: bool) -> Result<BodyFormat, ApiError> {
    body_format_for(headers, patch, false)
}

/// [`body_format`] for a kind that may be in the core group.
///
/// Strategic merge patch is refused with 415 for ARC kinds (clients then fall back to merge
/// patches). For the core kinds the embedded server serves (Secrets, Namespaces, Events) kubectl
/// always sends strategic merge patches, whatever the OpenAPI says; their fields have no merge
/// keys that behave differently from a JSON merge patch, so `core_kind` accepts them as one.
pub fn body_format_for(
    headers: &HeaderMap,
    patch: bool,
    core_kind: bool,
) -> Result<BodyFormat, ApiError> {
    let raw = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = raw
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if patch {
        return match media.as_str() {
            "application/strategic-merge-patch+json" if core_kind => Ok(BodyFormat::MergePatch),
            "application/merge-patch+json" => Ok(BodyFormat::MergePatch),
            "application/json-patch+json" => Ok(BodyFormat::JsonPatch),
            "application/apply-patch+yaml" => Ok(BodyFormat::ApplyPatch),
            _ => Err(ApiError::UnsupportedMediaType(
                "the body of the request was in an unknown format - accepted media types include: \
application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
                    .into(),
            )),
        };
    }
    match media.as_str() {
        "" | "application/json" => Ok(BodyFormat::Json),
        "application/yaml" => Ok(BodyFormat::Yaml),
        "application/vnd.kubernetes.protobuf" if core_kind => Ok(BodyFormat::Protobuf),
        _ => Err(ApiError::UnsupportedMediaType(
            "the body of the request was in an unknown format - accepted media types include: \
application/json, application/yaml"
                .into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn kubectl_table_accept() {
        let h = accept(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
        );
        assert_eq!(negotiate(&h, Shape::List).unwrap(), Output::Table("v1"));
    }

    #[test]
    fn partial_metadata_rules() {
        let single = accept("application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1");
        assert_eq!(
            negotiate(&single, Shape::Single).unwrap(),
            Output::PartialObjectMetadata
        );
        assert_eq!(
            negotiate(&single, Shape::Watch).unwrap(),
            Output::PartialObjectMetadata
        );
        assert_eq!(
            negotiate(&single, Shape::List).unwrap_err().code().as_u16(),
            406
        );
        let list = accept("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1");
        assert_eq!(
            negotiate(&list, Shape::List).unwrap(),
            Output::PartialObjectMetadataList
        );
        assert!(negotiate(&list, Shape::Single).is_err());
    }

    #[test]
    fn protobuf_only_is_not_acceptable_but_falls_back_to_json() {
        assert!(
            negotiate(
                &accept("application/vnd.kubernetes.protobuf"),
                Shape::Single
            )
            .is_err()
        );
        assert_eq!(
            negotiate(
                &accept("application/vnd.kubernetes.protobuf, application/json"),
                Shape::Single
            )
            .unwrap(),
            Output::Json
        );
        assert!(
            negotiate(
                &accept("application/json;as=Table;v=v2;g=meta.k8s.io"),
                Shape::List
            )
            .is_err()
        );
    }

    #[test]
    fn strategic_merge_patch_is_unsupported() {
        let mut h = HeaderMap::new();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/strategic-merge-patch+json"),
        );
        let e = body_format(&h, true).unwrap_err();
        assert_eq!(e.code().as_u16(), 415);
        assert_eq!(e.reason(), "UnsupportedMediaType");
    }
}
