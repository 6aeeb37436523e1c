//! The HTTP surface: `fn app(state) -> Router` with health, version, discovery and OpenAPI
//! routes, and every other path handed to the generic resource handler.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::discovery::{self, DiscoveryFormat};
use super::errors::ApiError;
use super::openapi::{HashCheck, V2Format};
use super::rest;
use super::state::ApiState;
use axum::extract::Path;
use axum::http::HeaderMap;
use axum::http::header::{ACCEPT, CACHE_CONTROL, ETAG, EXPIRES, IF_NONE_MATCH, LOCATION};
use serde_json::Value;

/// The API server's router over `state`. Authentication and TLS wrap it from outside.
pub fn app(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/healthz", get(health))
        .route("/livez", get(live))
        .route("/readyz", get(health))
        .route("/healthz/{check}", get(health))
        .route("/readyz/{check}", get(health))
        .route("/livez/{check}", get(live))
        .route("/version", get(version))
        .route("/api", get(discovery_core))
        .route("/api/{version}", get(discovery_core_version))
        .route("/apis", get(discovery_apis))
        .route("/apis/{group}", get(discovery_group))
        .route("/apis/{group}/{version}", get(discovery_group_version))
        .route("/openapi/v2", get(openapi_v2))
        .route("/openapi/v3", get(openapi_v3_root))
        .route("/openapi/v3/{*key}", get(openapi_v3))
        .fallback(rest::handle)
        .with_state(state)
}

async fn live() -> &'static str {
    "ok"
}

/// `/healthz` and `/readyz`: ready when the store answers. `?verbose` lists the checks.
async fn health(State(state): State<Arc<ApiState>>, request: Request) -> Response {
    let verbose = request.uri().query().is_some_and(|q| {
        q.split('&')
            .any(|p| p == "verbose" || p.starts_with("verbose="))
    });
    let storage = state.store.health().await;
    let ok = storage.is_ok();
    let body = if verbose {
        format!(
            "[+]ping ok\n[{}]storage {}\n{}\n",
            if ok { "+" } else { "-" },
            if ok {
                "ok".to_string()
            } else {
                format!(
                    "failed: {}",
                    storage.err().map(|e| e.to_string()).unwrap_or_default()
                )
            },
            if ok {
                "readyz check passed"
            } else {
                "readyz check failed"
            }
        )
    } else if ok {
        "ok".into()
    } else {
        "[-]storage failed: reason withheld\nreadyz check failed\n".into()
    };
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    let mut response = (code, body).into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// `/version`: a `version.Info` with every field a string.
async fn version(State(state): State<Arc<ApiState>>) -> Response {
    let body = json!({
        "major": "1",
        "minor": "0",
        "gitVersion": state.options.version,
        "gitCommit": option_env!("ARC_GIT_COMMIT").unwrap_or("unknown"),
        "gitTreeState": "clean",
        "buildDate": option_env!("ARC_BUILD_DATE").unwrap_or("1970-01-01T00:00:00Z"),
        "goVersion": "n/a",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, if std::env::consts::ARCH == "x86_64" { "amd64" } else { std::env::consts::ARCH }),
    });
    rest::json_response(StatusCode::OK, &body, &[])
}

fn header(headers: &HeaderMap, name: axum::http::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A JSON body with an ETag; 304 when the client already has it.
fn tagged(headers: &HeaderMap, body: &Value, content_type: &'static str) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let etag = discovery::etag(&bytes);
    if discovery::if_none_match(header(headers, IF_NONE_MATCH), &etag) {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(v) = HeaderValue::from_str(&etag) {
            response.headers_mut().insert(ETAG, v);
        }
        return response;
    }
    let mut response = (StatusCode::OK, bytes).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(ETAG, v);
    }
    response
}

fn discovery_format(headers: &HeaderMap) -> Result<DiscoveryFormat, ApiError> {
    discovery::negotiate_discovery(header(headers, ACCEPT)).ok_or_else(|| {
        ApiError::NotAcceptable("application/json, application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList".into())
    })
}

/// `/api`: the core group's versions (legacy `APIVersions` or aggregated); 404 in cluster mode.
async fn discovery_core(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let format = discovery_format(&headers)?;
    match format {
        DiscoveryFormat::Legacy => {
            let body = discovery::api_versions(&state.kinds, None).ok_or(ApiError::UnknownPath)?;
            Ok(tagged(&headers, &body, format.content_type()))
        }
        aggregated => Ok(tagged(
            &headers,
            &discovery::aggregated_core(&state.kinds, aggregated),
            aggregated.content_type(),
        )),
    }
}

/// `/api/v1`: the core `APIResourceList`.
async fn discovery_core_version(
    State(state): State<Arc<ApiState>>,
    Path(version): Path<String>,
) -> Result<Response, ApiError> {
    let body =
        discovery::api_resource_list(&state.kinds, "", &version).ok_or(ApiError::UnknownPath)?;
    Ok(rest::json_response(StatusCode::OK, &body, &[]))
}

/// `/apis`: every named group (legacy `APIGroupList` or aggregated, by Accept).
async fn discovery_apis(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let format = discovery_format(&headers)?;
    Ok(tagged(
        &headers,
        &discovery::apis(&state.kinds, format),
        format.content_type(),
    ))
}

/// `/apis/{group}`: one `APIGroup`.
async fn discovery_group(
    State(state): State<Arc<ApiState>>,
    Path(group): Path<String>,
) -> Result<Response, ApiError> {
    let body = discovery::api_group(&state.kinds, &group).ok_or(ApiError::UnknownPath)?;
    Ok(rest::json_response(StatusCode::OK, &body, &[]))
}

/// `/apis/{group}/{version}`: its `APIResourceList` (also the aggregator's availability probe).
async fn discovery_group_version(
    State(state): State<Arc<ApiState>>,
    Path((group, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let body = discovery::api_resource_list(&state.kinds, &group, &version)
        .ok_or(ApiError::UnknownPath)?;
    Ok(rest::json_response(StatusCode::OK, &body, &[]))
}

/// `/openapi/v2`: Swagger 2.0 as JSON or gnostic protobuf, by Accept.
async fn openapi_v2(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let format = V2Format::negotiate(header(&headers, ACCEPT)).ok_or_else(|| {
        ApiError::NotAcceptable(format!(
            "application/json, {}",
            V2Format::Protobuf.content_type()
        ))
    })?;
    let doc = state.openapi.v2_as(format);
    let etag = doc.etag();
    if discovery::if_none_match(header(&headers, IF_NONE_MATCH), &etag) {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    let mut response = (StatusCode::OK, doc.body.clone()).into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(ETAG, v);
    }
    Ok(response)
}

/// `/openapi/v3`: the list of group-version documents with their content-hash URLs.
async fn openapi_v3_root(State(state): State<Arc<ApiState>>) -> Response {
    rest::json_response(StatusCode::OK, &state.openapi.v3_root(), &[])
}

fn accepts_json(headers: &HeaderMap) -> bool {
    header(headers, ACCEPT).is_none_or(|accept| {
        accept.trim().is_empty()
            || accept.split(',').any(|c| {
                matches!(
                    c.split(';').next().unwrap_or("").trim(),
                    "application/json" | "*/*" | "application/*"
                )
            })
    })
}

/// `/openapi/v3/{key}`: one document, pinned by `?hash=` (immutable caching) or redirected to
/// the current hash.
async fn openapi_v3(
    State(state): State<Arc<ApiState>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    request: Request,
) -> Result<Response, ApiError> {
    if !accepts_json(&headers) {
        return Err(ApiError::NotAcceptable("application/json".into()));
    }
    let hash = request
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("hash=")));
    let check = state
        .openapi
        .check_hash(&key, hash)
        .ok_or(ApiError::UnknownPath)?;
    let doc = state.openapi.v3(&key).ok_or(ApiError::UnknownPath)?;
    let mut response = match check {
        HashCheck::Redirect(location) => {
            let mut r = StatusCode::MOVED_PERMANENTLY.into_response();
            if let Ok(v) = HeaderValue::from_str(&location) {
                r.headers_mut().insert(LOCATION, v);
            }
            return Ok(r);
        }
        HashCheck::Current => {
            let mut r = (StatusCode::OK, doc.body.clone()).into_response();
            r.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("public, immutable"));
            let expires = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 365))
                .strftime("%a, %d %b %Y %H:%M:%S GMT")
                .to_string();
            if let Ok(v) = HeaderValue::from_str(&expires) {
                r.headers_mut().insert(EXPIRES, v);
            }
            r
        }
        HashCheck::Unpinned => (StatusCode::OK, doc.body.clone()).into_response(),
    };
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(&doc.etag()) {
        response.headers_mut().insert(ETAG, v);
    }
    Ok(response)
}
