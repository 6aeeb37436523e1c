//! HTTP plumbing shared by the registry client: the reqwest client (HTTP/1.1, rustls with
//! ring, system roots plus an optional CA), status and transport errors that name the endpoint
//! and artifact, registry error bodies, bounded reads and byte skipping.

use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt as _};
use reqwest::header::RETRY_AFTER;
use reqwest::{Response, StatusCode};

use crate::error::{Error, ErrorKind, Result};
use crate::retry::parse_retry_after;

/// Connection establishment bound.
const CONNECT_TIMEOUT_SECS: u64 = 30;
/// Bound on the silence between two reads of a response.
const READ_TIMEOUT_SECS: u64 = 120;
/// Idle pooled connections are closed after this.
const POOL_IDLE_TIMEOUT_SECS: u64 = 60;
/// How much of an error body ends up in a message.
const ERROR_BODY_LIMIT_BYTES: usize = 512;
pub(crate) fn is_transient_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

pub(crate) fn retry_after(response: &Response) -> Option<Duration> {
    response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after)
}

pub(crate) fn header_string(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Turns a non-success response into an error; passes a success through.
pub(crate) async fn expect_success(
    response: Response,
    url: &str,
    artifact: &str,
) -> Result<Response> {
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status();
    let after = retry_after(&response);
    let body = error_body(response).await;
    Err(status_error(status, after, &body, url, artifact))
}

pub(crate) fn status_error(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &str,
    url: &str,
    artifact: &str,
) -> Error {
    let base = Error::from_http_status(status.as_u16(), url, retry_after);
    let reason = if body.is_empty() {
        base.reason().to_string()
    } else {
        format!("{}: {body}", base.reason())
    };
    Error::new(base.kind(), reason)
        .with_transient(base.is_transient())
        .with_retry_after(base.retry_after())
        .with_endpoint(url)
        .with_artifact(artifact)
}

pub(crate) fn transport_error(error: &reqwest::Error, url: &str, artifact: &str) -> Error {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    Error::transient(format!("connection failed: {text}"))
        .with_endpoint(url)
        .with_artifact(artifact)
}

/// The registry's error body, summarised (`CODE: message` per error), truncated.
pub(crate) async fn error_body(response: Response) -> String {
    let bytes = response.bytes().await.unwrap_or_default();
    let text = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(v) if v.get("errors").is_some_and(|e| e.is_array()) => v["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                format!(
                    "{}: {}",
                    e["code"].as_str().unwrap_or("?"),
                    e["message"].as_str().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => String::from_utf8_lossy(&bytes).trim().to_string(),
    };
    if text.len() > ERROR_BODY_LIMIT_BYTES {
        let mut cut = ERROR_BODY_LIMIT_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}…", &text[..cut])
    } else {
        text
    }
}

pub(crate) async fn read_limited(
    response: Response,
    limit: usize,
    url: &str,
    artifact: &str,
) -> Result<Bytes> {
    let mut stream = response.bytes_stream();
    let mut out = bytes::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| transport_error(&e, url, artifact))?;
        if out.len() + chunk.len() > limit {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("response larger than {limit} bytes"),
            )
            .with_endpoint(url)
            .with_artifact(artifact));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

/// Drops the first `skip` bytes of a stream.
pub(crate) fn skip_bytes(
    stream: impl Stream<Item = Result<Bytes>> + Send + 'static,
    skip: u64,
) -> impl Stream<Item = Result<Bytes>> + Send {
    let mut remaining = skip;
    stream.filter_map(move |item| {
        let out = match item {
            Ok(mut chunk) if remaining > 0 => {
                let drop = remaining.min(chunk.len() as u64);
                remaining -= drop;
                let rest = chunk.split_off(drop as usize);
                if rest.is_empty() {
                    None
                } else {
                    Some(Ok(rest))
                }
            }
            other => Some(other),
        };
        futures::future::ready(out)
    })
}

pub(crate) fn build_http_client(ca_pem: Option<&[u8]>) -> Result<reqwest::Client> {
    // The same trust as every other client of the data plane (system roots plus `ca.crt`),
    // restricted to HTTP/1.1: registries' chunked uploads are sequential anyway.
    let mut tls = crate::http::tls_config(ca_pem)?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .http1_only()
        .connect_timeout(Duration::from_secs(CONNECT_TIMEOUT_SECS))
        .read_timeout(Duration::from_secs(READ_TIMEOUT_SECS))
        .pool_idle_timeout(Duration::from_secs(POOL_IDLE_TIMEOUT_SECS))
        .tcp_nodelay(true)
        .user_agent(concat!("arc/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::new(ErrorKind::Transport, format!("HTTP client setup: {e}")))
}
