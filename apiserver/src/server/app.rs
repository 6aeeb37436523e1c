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

use super::rest;
use super::state::ApiState;

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
