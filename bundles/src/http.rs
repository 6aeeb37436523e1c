//! Plain HTTP(S): the shared client (rustls on ring, system roots plus an optional `ca.crt`,
//! basic or bearer credentials) and the `http` file source — a streaming GET that can resume at
//! an offset with a `Range` request, so an interrupted download continues where it stopped.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt as _;
use futures::stream::BoxStream;
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, RANGE, RETRY_AFTER};
use url::Url;

use crate::error::{Error, ErrorKind, Result};
use crate::retry::parse_retry_after;
use crate::secrets::Credentials;

/// Bound on establishing a connection.
pub const CONNECT_TIMEOUT_SECS: u64 = 30;
/// Bound on waiting for the next bytes of a response.
pub const READ_TIMEOUT_SECS: u64 = 120;
/// How long idle pooled connections are kept.
const POOL_IDLE_TIMEOUT_SECS: u64 = 60;

/// A stream of body chunks; errors carry their kind and transience.
pub type ByteStream = BoxStream<'static, Result<Bytes>>;

/// The system's root certificates, loaded once per process.
fn system_roots() -> &'static rustls::RootCertStore {
    static ROOTS: OnceLock<rustls::RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = rustls::RootCertStore::empty();
        let loaded = rustls_native_certs::load_native_certs();
        for error in &loaded.errors {
            tracing::debug!("loading system root certificates: {error}");
        }
        roots.add_parsable_certificates(loaded.certs);
        roots
    })
}

/// A TLS configuration (rustls with ring) trusting the system roots plus the PEM
/// certificates in `ca_pem` (an Endpoint's `ca.crt`).
pub fn tls_config(ca_pem: Option<&[u8]>) -> Result<rustls::ClientConfig> {
    let mut roots = system_roots().clone();
    if let Some(pem) = ca_pem {
        let mut added = 0;
        for cert in rustls_pemfile::certs(&mut &pem[..]) {
            let cert =
                cert.map_err(|e| Error::invalid_parameter(format!("ca.crt is not PEM: {e}")))?;
            roots.add(cert).map_err(|e| {
                Error::invalid_parameter(format!("ca.crt holds an unusable certificate: {e}"))
            })?;
            added += 1;
        }
        if added == 0 {
            return Err(Error::invalid_parameter("ca.crt holds no PEM certificate"));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::new(ErrorKind::Transport, format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// An HTTP client trusting the system roots plus `ca_pem`, with connect and read timeouts.
pub fn build_client(ca_pem: Option<&[u8]>) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config(ca_pem)?)
        .connect_timeout(Duration::from_secs(CONNECT_TIMEOUT_SECS))
        .read_timeout(Duration::from_secs(READ_TIMEOUT_SECS))
        .pool_idle_timeout(Duration::from_secs(POOL_IDLE_TIMEOUT_SECS))
        .user_agent(concat!("arc/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::new(ErrorKind::Transport, format!("HTTP client setup: {e}")))
}

/// Maps a reqwest error talking to `endpoint`: connection, timeout and body errors are
/// transient, anything else terminal.
pub fn map_reqwest_error(error: reqwest::Error, endpoint: &str) -> Error {
    let transient = error.is_connect()
        || error.is_timeout()
        || error.is_body()
        || error.is_request()
        || error.is_decode();
    let mut reason = error.to_string();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(&error);
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    Error::new(ErrorKind::Transport, reason)
        .with_transient(transient)
        .with_endpoint(endpoint)
}

/// A URL as it may appear in messages: without user info or query.
pub fn display_url(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.to_string()
}

/// One file behind an HTTP(S) URL.
#[derive(Debug, Clone)]
pub struct HttpSource {
    client: reqwest::Client,
    url: Url,
    authorization: Option<String>,
}

/// An opened source: the body from the requested offset and, if known, the whole size.
pub struct Opened {
    /// The bytes from the requested offset on.
    pub stream: ByteStream,
    /// The size of the whole file, if the server said.
    pub total_bytes: Option<u64>,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("total_bytes", &self.total_bytes)
            .finish_non_exhaustive()
    }
}

impl HttpSource {
    /// A source for `url` with `credentials` (a bearer `token`, else `username`/`password`,
    /// else anonymous; `ca.crt` trusted in addition to the system roots).
    pub fn new(url: Url, credentials: &Credentials) -> Result<Self> {
        let client = build_client(credentials.ca_cert_pem.as_deref())?;
        let authorization = if let Some(token) = &credentials.token {
            Some(format!("Bearer {}", token.expose()))
        } else {
            use base64::Engine as _;
            credentials.basic().map(|(user, pass)| {
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
                )
            })
        };
        Ok(Self {
            client,
            url,
            authorization,
        })
    }

    /// The URL, for messages.
    pub fn endpoint(&self) -> String {
        display_url(&self.url)
    }

    /// GETs the file from byte `offset` on. A server that ignores the `Range` request (200
    /// instead of 206) is handled by skipping the first `offset` bytes of its answer.
    pub async fn open(&self, offset: u64) -> Result<Opened> {
        let endpoint = self.endpoint();
        let mut request = self.client.get(self.url.clone());
        if let Some(auth) = &self.authorization {
            request = request.header(AUTHORIZATION, auth);
        }
        if offset > 0 {
            request = request.header(RANGE, format!("bytes={offset}-"));
        }
        let response = request
            .send()
            .await
            .map_err(|e| map_reqwest_error(e, &endpoint))?;
        let status = response.status().as_u16();
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
        };
        match status {
            200 => {
                let total = header(CONTENT_LENGTH).and_then(|v| v.parse().ok());
                let stream = body_stream(response, endpoint);
                Ok(Opened {
                    stream: skip_bytes(stream, offset),
                    total_bytes: total,
                })
            }
            206 if offset > 0 => {
                let total = header(CONTENT_RANGE)
                    .and_then(|v| v.rsplit('/').next())
                    .and_then(|v| v.parse().ok());
                let start = header(CONTENT_RANGE)
                    .and_then(|v| v.strip_prefix("bytes "))
                    .and_then(|v| v.split('-').next())
                    .and_then(|v| v.parse::<u64>().ok());
                if start != Some(offset) {
                    return Err(Error::new(
                        ErrorKind::Transport,
                        format!(
                            "asked for bytes from {offset}, server answered Content-Range {:?}",
                            header(CONTENT_RANGE)
                        ),
                    )
                    .with_endpoint(endpoint));
                }
                Ok(Opened {
                    stream: body_stream(response, endpoint),
                    total_bytes: total,
                })
            }
            _ => {
                let retry_after = header(RETRY_AFTER).and_then(parse_retry_after);
                Err(Error::from_http_status(status, endpoint, retry_after))
            }
        }
    }
}

fn body_stream(response: reqwest::Response, endpoint: String) -> ByteStream {
    response
        .bytes_stream()
        .map(move |chunk| chunk.map_err(|e| map_reqwest_error(e, &endpoint).with_transient(true)))
        .boxed()
}

/// Drops the first `skip` bytes of `stream`.
pub fn skip_bytes(stream: ByteStream, skip: u64) -> ByteStream {
    if skip == 0 {
        return stream;
    }
    let mut remaining = skip;
    stream
        .filter_map(move |chunk| {
            let out = match chunk {
                Ok(mut bytes) if remaining > 0 => {
                    let len = bytes.len() as u64;
                    if len <= remaining {
                        remaining -= len;
                        None
                    } else {
                        let rest =
                            bytes.split_off(usize::try_from(remaining).unwrap_or(usize::MAX));
                        remaining = 0;
                        Some(Ok(rest))
                    }
                }
                other => Some(other),
            };
            futures::future::ready(out)
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn skip_bytes_across_chunks() {
        let chunks: Vec<Result<Bytes>> = vec![
            Ok(Bytes::from_static(b"abc")),
            Ok(Bytes::from_static(b"defg")),
            Ok(Bytes::from_static(b"h")),
        ];
        let out: Vec<Bytes> = skip_bytes(futures::stream::iter(chunks).boxed(), 5)
            .map(|c| c.unwrap())
            .collect()
            .await;
        assert_eq!(out.concat(), b"fgh");
    }

    #[test]
    fn display_url_hides_credentials_and_query() {
        let url = Url::parse("https://u:p@h.example/a/b?X-Amz-Signature=s").unwrap();
        assert_eq!(display_url(&url), "https://h.example/a/b");
    }

    #[test]
    fn bad_ca_is_a_clear_error() {
        let e = tls_config(Some(b"not a certificate")).unwrap_err();
        assert!(e.to_string().contains("ca.crt"), "{e}");
    }
}
