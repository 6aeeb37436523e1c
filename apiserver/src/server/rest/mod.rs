//! The generic REST handlers: one entry point that resolves the URL against the registry and
//! dispatches to get/list/watch/create/update/patch/delete for any served kind.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_TYPE, USER_AGENT};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::errors::ApiError;
use super::negotiate::{BodyFormat, Shape, negotiate};
use super::registry::ResourceKind;
use super::request::{Query, Target, parse_target};
use super::state::ApiState;

mod admit;
mod apply;
mod create;
pub(crate) mod delete;
mod filter;
mod patch;
mod present;
mod read;
mod update;
mod watch;

pub use present::{present_list, present_single};

/// Request bodies larger than this are refused with 413 (the Kubernetes default).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Everything a verb handler gets about one request.
pub(crate) struct Ctx<'a> {
    pub state: &'a Arc<ApiState>,
    pub kind: &'a ResourceKind,
    pub target: Target,
    pub query: Query,
    pub headers: HeaderMap,
}

impl Ctx<'_> {
    /// The error subject for the addressed object (or `name`).
    pub fn subject(&self, name: &str) -> super::errors::Subject {
        super::object::subject(self.kind, name)
    }

    /// The field manager: `fieldManager`, else the User-Agent up to its first `/`, else `unknown`.
    pub fn field_manager(&self) -> String {
        if let Some(m) = self.query.non_empty("fieldManager") {
            return m.to_string();
        }
        let agent = self
            .headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let prefix = agent.split('/').next().unwrap_or("").trim();
        if prefix.is_empty() {
            "unknown".into()
        } else {
            prefix.to_string()
        }
    }

    /// The namespace from the URL, for namespaced kinds.
    pub fn namespace(&self) -> Option<&str> {
        if self.kind.namespaced {
            self.target.namespace.as_deref()
        } else {
            None
        }
    }
}

/// The axum handler behind every resource path.
pub async fn handle(State(state): State<Arc<ApiState>>, request: Request) -> Response {
    match dispatch(&state, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn dispatch(state: &Arc<ApiState>, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let target = parse_target(parts.uri.path(), &state.kinds)?.ok_or(ApiError::UnknownPath)?;
    let kind = &state.kinds[target.kind];
    let query = Query::parse(parts.uri.query());
    let method = parts.method.clone();
    let has_name = target.name.is_some();
    let is_status = target.subresource.is_some();
    if kind.namespaced && target.namespace.is_none() && method != Method::GET {
        return Err(ApiError::UnknownPath);
    }
    let ctx = Ctx {
        state,
        kind,
        target,
        query,
        headers: parts.headers,
    };
    match method {
        Method::GET if has_name => read::get(&ctx).await,
        Method::GET if ctx.query.flag("watch")? => watch::watch(&ctx).await,
        Method::GET => read::list(&ctx).await,
        Method::POST if !has_name => create::create(&ctx, read_body(body).await?).await,
        Method::PUT if has_name => update::update(&ctx, read_body(body).await?).await,
        Method::PATCH if has_name => patch::patch(&ctx, read_body(body).await?).await,
        Method::DELETE if has_name && !is_status => {
            delete::delete(&ctx, read_body(body).await?).await
        }
        Method::DELETE if !has_name => {
            delete::delete_collection(&ctx, read_body(body).await?).await
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}

async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            ApiError::TooLarge(format!(
                "the request body exceeds the limit of {MAX_BODY_BYTES} bytes"
            ))
        })
}

/// Decodes a JSON or YAML request body into a JSON object.
pub(crate) fn decode_object(bytes: &[u8], format: BodyFormat) -> Result<Value, ApiError> {
    let value: Value = match format {
        BodyFormat::Yaml | BodyFormat::ApplyPatch => {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| ApiError::BadRequest("the request body is not valid UTF-8".into()))?;
            if let Ok(v) = serde_json::from_str(text) {
                v
            } else {
                serde_saphyr::from_str(text)
                    .map_err(|e| ApiError::BadRequest(format!("error decoding YAML body: {e}")))?
            }
        }
        BodyFormat::Protobuf => {
            super::protobuf::decode(bytes).map_err(|e| ApiError::BadRequest(e.to_string()))?
        }
        _ => serde_json::from_slice(bytes)
            .map_err(|e| ApiError::BadRequest(format!("error decoding JSON body: {e}")))?,
    };
    if !value.is_object() {
        return Err(ApiError::BadRequest(
            "the request body must be a JSON object".into(),
        ));
    }
    Ok(value)
}

/// A JSON response with optional `Warning: 299 - "..."` headers.
pub(crate) fn json_response(code: StatusCode, body: &Value, warnings: &[String]) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = (code, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for warning in warnings {
        let text = format!("299 - \"{}\"", warning.replace('"', "'"));
        if let Ok(v) = HeaderValue::from_str(&text) {
            headers.append("warning", v);
        }
    }
    response
}

/// Presents one object per the `Accept` header and wraps it in a response.
pub(crate) fn single_response(
    ctx: &Ctx<'_>,
    code: StatusCode,
    object: &Value,
    warnings: &[String],
) -> Result<Response, ApiError> {
    let output = negotiate(&ctx.headers, Shape::Single)?;
    let body = present_single(ctx.kind, object, output, &ctx.query)?;
    Ok(json_response(code, &body, warnings))
}
