//! A lean OCI distribution client on reqwest: manifests as raw bytes, blob HEAD/GET (with
//! ranges), upload sessions (start, cross-repo mount, chunked PATCH, status, complete, cancel),
//! referrers; authentication (anonymous, basic, bearer tokens per scope) and retries of
//! transient failures (connection errors, 5xx, 429 with `Retry-After`) built in.
//!
//! One client serves one registry with one set of credentials.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{Stream, TryStreamExt as _};
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, RANGE, WWW_AUTHENTICATE,
};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use tokio_util::sync::CancellationToken;

use super::auth::{self, AuthState, Challenge, RegistryAuth, TokenResponse};
use super::digest::Digest;
use super::http::{
    build_http_client, error_body, expect_success, header_string, is_transient_status,
    read_limited, retry_after, skip_bytes, status_error, transport_error,
};
use super::manifest::{ACCEPTED_MANIFEST_TYPES, Descriptor, OCI_INDEX};
use super::reference::RegistryEndpoint;
use crate::error::{Error, ErrorKind, Result};
use crate::retry::RetryPolicy;
use crate::secrets::Credentials;

/// Largest manifest we read into memory.
pub const MANIFEST_LIMIT_BYTES: usize = 8 * 1024 * 1024;

/// A stream of blob bytes.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>;

/// A manifest fetched as its exact bytes.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// The raw bytes.
    pub bytes: Bytes,
    /// The `Content-Type` it came with.
    pub media_type: Option<String>,
    /// The SHA-256 of the bytes (verified against a requested digest).
    pub digest: Digest,
}

/// What starting an upload gave.
#[derive(Debug, Clone)]
pub enum UploadStart {
    /// The registry mounted the blob from the other repository: nothing to upload.
    Mounted,
    /// An upload session to send the bytes to.
    Session(Url),
}

struct Inner {
    http: reqwest::Client,
    endpoint: RegistryEndpoint,
    auth: RegistryAuth,
    state: tokio::sync::Mutex<AuthState>,
    retry: RetryPolicy,
    cancel: CancellationToken,
}

/// A client for one registry and one set of credentials. Cheap to clone.
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("endpoint", &self.inner.endpoint.to_string())
            .finish_non_exhaustive()
    }
}

/// An access scope for the token endpoint (`repository:<name>:pull[,push]`, space-separated).
fn scope_pull(repo: &str) -> String {
    format!("repository:{repo}:pull")
}

/// `repo:tag` or `repo@sha256:…`, for messages.
fn manifest_artifact(repo: &str, reference: &str) -> String {
    if reference.starts_with("sha256:") {
        format!("{repo}@{reference}")
    } else {
        format!("{repo}:{reference}")
    }
}

fn scope_push(repo: &str) -> String {
    format!("repository:{repo}:pull,push")
}

impl RegistryClient {
    /// A client for `endpoint` with `auth`, trusting the system roots plus `ca_pem`.
    pub fn new(
        endpoint: RegistryEndpoint,
        auth: RegistryAuth,
        ca_pem: Option<&[u8]>,
        retry: RetryPolicy,
        cancel: CancellationToken,
    ) -> Result<Self> {
        let http = build_http_client(ca_pem).map_err(|e| e.with_endpoint(endpoint.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                endpoint,
                auth,
                state: Default::default(),
                retry,
                cancel,
            }),
        })
    }

    /// A client for an Endpoint's `remoteURL` with one side's credentials (see
    /// [`RegistryAuth::from_credentials`]; `ca.crt` adds a trusted CA).
    pub fn from_remote_url(
        remote_url: &str,
        credentials: &Credentials,
        retry: RetryPolicy,
        cancel: CancellationToken,
    ) -> Result<Self> {
        let endpoint = RegistryEndpoint::parse(remote_url)?;
        let auth = RegistryAuth::from_credentials(credentials, &endpoint.host())?;
        Self::new(
            endpoint,
            auth,
            credentials.ca_cert_pem.as_deref(),
            retry,
            cancel,
        )
    }

    /// The registry endpoint.
    pub fn endpoint(&self) -> &RegistryEndpoint {
        &self.inner.endpoint
    }

    /// The credentials in use.
    pub fn auth(&self) -> &RegistryAuth {
        &self.inner.auth
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    /// The cancellation token the client honours.
    pub fn cancel_token(&self) -> &CancellationToken {
        &self.inner.cancel
    }

    /// The URL of `/v2/<repo>/<suffix>` (for requests and messages).
    pub fn api_url(&self, repo: &str, suffix: &str) -> Url {
        let mut url = self.inner.endpoint.base.clone();
        url.set_path(&format!("/v2/{repo}/{suffix}"));
        url
    }

    /// The `Authorization` header for `scope`, if any.
    async fn auth_header(&self, scope: &str) -> Option<String> {
        self.inner
            .state
            .lock()
            .await
            .header(&self.inner.auth, scope)
    }

    /// Handles a 401: records the challenge and fetches a token for `scope` when it is a bearer
    /// challenge. `url` and `reference` go into errors.
    async fn authenticate(
        &self,
        response: &Response,
        scope: &str,
        rejected: Option<&str>,
        url: &str,
        reference: &str,
    ) -> Result<()> {
        let header = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let unauthorized = |detail: String| {
            Error::new(ErrorKind::Unauthorized, detail)
                .with_endpoint(url)
                .with_artifact(reference)
        };
        let Some(challenge) = auth::parse_challenge(header) else {
            return Err(unauthorized(format!(
                "HTTP 401 without a usable WWW-Authenticate challenge ({header:?})"
            )));
        };
        let mut state = self.inner.state.lock().await;
        state.challenge = Some(challenge.clone());
        // Parallel transfers hit the same 401 at once: the first fetches the scope's token, the
        // others find it here (a token other than the one just refused) and use it.
        if matches!(challenge, Challenge::Bearer { .. })
            && let Some(current) = state.header(&self.inner.auth, scope)
            && rejected != Some(current.as_str())
        {
            return Ok(());
        }
        match (&challenge, &self.inner.auth) {
            (_, RegistryAuth::Bearer(_)) => Err(unauthorized(
                "the registry refused the configured token".into(),
            )),
            (Challenge::Basic, RegistryAuth::Anonymous) => Err(unauthorized(
                "the registry requires credentials and none are configured".into(),
            )),
            (Challenge::Basic, RegistryAuth::Basic { .. }) => Ok(()),
            (Challenge::Bearer { realm, service }, auth) => {
                let mut token_url = Url::parse(realm).map_err(|e| {
                    unauthorized(format!("token realm {realm:?} is not a URL: {e}"))
                })?;
                {
                    let mut query = token_url.query_pairs_mut();
                    if let Some(service) = service {
                        query.append_pair("service", service);
                    }
                    for s in scope.split(' ') {
                        query.append_pair("scope", s);
                    }
                }
                let mut request = self.inner.http.get(token_url.clone());
                if let RegistryAuth::Basic { username, password } = auth {
                    request = request.header(AUTHORIZATION, auth::basic_header(username, password));
                }
                let response = request
                    .send()
                    .await
                    .map_err(|e| transport_error(&e, token_url.as_str(), reference))?;
                let status = response.status();
                if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                    let body = error_body(response).await;
                    return Err(Error::new(
                        ErrorKind::Unauthorized,
                        format!(
                            "the token endpoint refused the credentials: HTTP {}: {body}",
                            status.as_u16()
                        ),
                    )
                    .with_endpoint(token_url.to_string())
                    .with_artifact(reference));
                }
                if !status.is_success() {
                    let retry_after = retry_after(&response);
                    let body = error_body(response).await;
                    return Err(status_error(
                        status,
                        retry_after,
                        &body,
                        token_url.as_str(),
                        reference,
                    ));
                }
                let token: TokenResponse = response.json().await.map_err(|e| {
                    Error::new(
                        ErrorKind::Transport,
                        format!("token response is not JSON: {e}"),
                    )
                    .with_endpoint(token_url.to_string())
                })?;
                let value = token
                    .token
                    .or(token.access_token)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| {
                        Error::new(ErrorKind::Transport, "token response has no token")
                            .with_endpoint(token_url.to_string())
                    })?;
                let lifetime = Duration::from_secs(
                    token
                        .expires_in
                        .unwrap_or(auth::TOKEN_DEFAULT_LIFETIME_SECS)
                        .max(auth::TOKEN_RENEW_MARGIN_SECS * 2),
                );
                state
                    .tokens
                    .insert(scope.to_string(), (value, Instant::now() + lifetime));
                Ok(())
            }
        }
    }

    /// Sends a request built by `make` (called again for each attempt), authenticating on a 401
    /// and retrying transient failures. Returns any response that is not a 401 and not a
    /// transient failure; the caller interprets its status.
    async fn send(
        &self,
        scope: &str,
        reference: &str,
        make: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response> {
        let policy = &self.inner.retry;
        let mut attempt: u32 = 0;
        let mut authenticated = false;
        loop {
            attempt += 1;
            if self.inner.cancel.is_cancelled() {
                return Err(Error::cancelled());
            }
            let mut request = make(&self.inner.http);
            let sent_auth = self.auth_header(scope).await;
            if let Some(header) = &sent_auth {
                request = request.header(AUTHORIZATION, header);
            }
            let request = request
                .build()
                .map_err(|e| Error::new(ErrorKind::Transport, e.to_string()))?;
            let url = request.url().to_string();
            let error = match self.inner.http.execute(request).await {
                Ok(response) if response.status() == StatusCode::UNAUTHORIZED => {
                    if authenticated {
                        let body = error_body(response).await;
                        return Err(Error::new(
                            ErrorKind::Unauthorized,
                            if body.is_empty() {
                                "credentials refused (HTTP 401)".to_string()
                            } else {
                                format!("credentials refused (HTTP 401): {body}")
                            },
                        )
                        .with_endpoint(url)
                        .with_artifact(reference));
                    }
                    self.authenticate(&response, scope, sent_auth.as_deref(), &url, reference)
                        .await?;
                    authenticated = true;
                    attempt -= 1;
                    continue;
                }
                Ok(response) if is_transient_status(response.status()) => {
                    let status = response.status();
                    let after = retry_after(&response);
                    let body = error_body(response).await;
                    status_error(status, after, &body, &url, reference)
                }
                Ok(response) => return Ok(response),
                Err(e) => transport_error(&e, &url, reference),
            };
            if attempt >= policy.max_attempts {
                return Err(error);
            }
            let delay = policy.delay(attempt, &error);
            tracing::warn!(
                "{error}; retry {attempt}/{} in {:.1}s",
                policy.max_attempts - 1,
                delay.as_secs_f64()
            );
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.inner.cancel.cancelled() => return Err(Error::cancelled()),
            }
        }
    }

    /// Fetches a manifest (by tag or digest) as its exact bytes; a digest reference is verified.
    pub async fn get_manifest(&self, repo: &str, reference: &str) -> Result<FetchedManifest> {
        let url = self.api_url(repo, &format!("manifests/{reference}"));
        let artifact = manifest_artifact(repo, reference);
        let response = self
            .send(&scope_pull(repo), &artifact, |c| {
                c.get(url.clone()).header(ACCEPT, ACCEPTED_MANIFEST_TYPES)
            })
            .await?;
        let response = expect_success(response, url.as_str(), &artifact).await?;
        if response
            .content_length()
            .is_some_and(|l| l > MANIFEST_LIMIT_BYTES as u64)
        {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("manifest larger than {MANIFEST_LIMIT_BYTES} bytes"),
            )
            .with_endpoint(url.to_string())
            .with_artifact(artifact));
        }
        let media_type = header_string(&response, CONTENT_TYPE.as_str());
        let header_digest = header_string(&response, "docker-content-digest");
        let bytes = read_limited(response, MANIFEST_LIMIT_BYTES, url.as_str(), &artifact).await?;
        let digest = Digest::of(&bytes);
        let expected = if reference.starts_with("sha256:") {
            Some(reference.to_string())
        } else {
            header_digest.filter(|d| d.starts_with("sha256:"))
        };
        if let Some(expected) = expected
            && expected != digest.as_str()
        {
            return Err(Error::new(
                ErrorKind::DigestMismatch,
                format!("manifest expected {expected}, got {digest}"),
            )
            .with_endpoint(url.to_string())
            .with_artifact(artifact));
        }
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// The digest a manifest reference resolves to, or `None` when the registry has no such
    /// manifest.
    pub async fn head_manifest(&self, repo: &str, reference: &str) -> Result<Option<Digest>> {
        let url = self.api_url(repo, &format!("manifests/{reference}"));
        let artifact = manifest_artifact(repo, reference);
        let response = self
            .send(&scope_pull(repo), &artifact, |c| {
                c.head(url.clone()).header(ACCEPT, ACCEPTED_MANIFEST_TYPES)
            })
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = expect_success(response, url.as_str(), &artifact).await?;
        match header_string(&response, "docker-content-digest").and_then(|d| Digest::parse(&d).ok())
        {
            Some(digest) => Ok(Some(digest)),
            None => Ok(Some(self.get_manifest(repo, reference).await?.digest)),
        }
    }

    /// Pushes manifest `bytes` exactly as given under `reference` (a tag or its digest).
    /// Returns whether the registry processed a `subject` (the `OCI-Subject` header).
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<bool> {
        let url = self.api_url(repo, &format!("manifests/{reference}"));
        let artifact = manifest_artifact(repo, reference);
        let digest = Digest::of(&bytes);
        let response = self
            .send(&scope_push(repo), &artifact, |c| {
                c.put(url.clone())
                    .header(CONTENT_TYPE, media_type)
                    .body(bytes.clone())
            })
            .await?;
        let response = expect_success(response, url.as_str(), &artifact).await?;
        if let Some(returned) = header_string(&response, "docker-content-digest")
            && returned != digest.as_str()
        {
            return Err(Error::new(
                ErrorKind::DigestMismatch,
                format!("registry stored the manifest as {returned}, expected {digest}"),
            )
            .with_endpoint(url.to_string())
            .with_artifact(artifact));
        }
        Ok(response.headers().contains_key("oci-subject"))
    }

    /// Whether the repository has the blob.
    pub async fn has_blob(&self, repo: &str, digest: &Digest) -> Result<bool> {
        let url = self.api_url(repo, &format!("blobs/{digest}"));
        let artifact = format!("{repo}@{digest}");
        let response = self
            .send(&scope_pull(repo), &artifact, |c| c.head(url.clone()))
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(false);
        }
        expect_success(response, url.as_str(), &artifact).await?;
        Ok(true)
    }

    /// Streams a blob from byte `offset` on (a `Range` request; a registry that ignores the
    /// range is handled by skipping). Bytes are not verified here: the caller hashes them.
    pub async fn get_blob(&self, repo: &str, digest: &Digest, offset: u64) -> Result<ByteStream> {
        let url = self.api_url(repo, &format!("blobs/{digest}"));
        let artifact = format!("{repo}@{digest}");
        let response = self
            .send(&scope_pull(repo), &artifact, |c| {
                let request = c.get(url.clone());
                if offset > 0 {
                    request.header(RANGE, format!("bytes={offset}-"))
                } else {
                    request
                }
            })
            .await?;
        let response = expect_success(response, url.as_str(), &artifact).await?;
        let skip = if offset > 0 && response.status() != StatusCode::PARTIAL_CONTENT {
            offset
        } else {
            0
        };
        let endpoint = url.to_string();
        let stream = response
            .bytes_stream()
            .map_err(move |e| transport_error(&e, &endpoint, &artifact));
        Ok(if skip == 0 {
            Box::pin(stream)
        } else {
            Box::pin(skip_bytes(stream, skip))
        })
    }

    /// Starts an upload session in `repo`, first trying to mount `digest` from `mount_from`
    /// (another repository of this registry) when given.
    pub async fn start_upload(
        &self,
        repo: &str,
        mount: Option<(&Digest, &str)>,
    ) -> Result<UploadStart> {
        let mut url = self.api_url(repo, "blobs/uploads/");
        let mut scope = scope_push(repo);
        if let Some((digest, from)) = mount {
            url.query_pairs_mut()
                .append_pair("mount", digest.as_str())
                .append_pair("from", from);
            scope = format!("{scope} {}", scope_pull(from));
        }
        let artifact = match mount {
            Some((digest, _)) => format!("{repo}@{digest}"),
            None => format!("{repo} (upload)"),
        };
        let response = self
            .send(&scope, &artifact, |c| {
                c.post(url.clone()).header(CONTENT_LENGTH, "0")
            })
            .await?;
        let response = expect_success(response, url.as_str(), &artifact).await?;
        if response.status() == StatusCode::CREATED && mount.is_some() {
            return Ok(UploadStart::Mounted);
        }
        Ok(UploadStart::Session(self.location(
            &response,
            url.as_str(),
            &artifact,
        )?))
    }

    /// Sends `len` bytes (`body`) at offset `start` of the upload session; one attempt (the body
    /// cannot be replayed). Returns the session's next location.
    pub async fn patch_upload(
        &self,
        repo: &str,
        session: &Url,
        body: reqwest::Body,
        start: u64,
        len: u64,
    ) -> Result<Url> {
        let artifact = format!("{repo} (upload)");
        let scope = scope_push(repo);
        let mut request = self
            .inner
            .http
            .patch(session.clone())
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, len.to_string())
            .header("content-range", format!("{start}-{}", start + len - 1))
            .body(body);
        let sent_auth = self.auth_header(&scope).await;
        if let Some(header) = &sent_auth {
            request = request.header(AUTHORIZATION, header);
        }
        let response = request
            .send()
            .await
            .map_err(|e| transport_error(&e, session.as_str(), &artifact))?;
        if response.status() == StatusCode::UNAUTHORIZED {
            // The token expired mid-transfer: renew it; the caller retries the chunk.
            self.authenticate(
                &response,
                &scope,
                sent_auth.as_deref(),
                session.as_str(),
                &artifact,
            )
            .await?;
            return Err(Error::transient("HTTP 401 during upload, token renewed")
                .with_endpoint(session.to_string()));
        }
        if is_transient_status(response.status()) {
            let status = response.status();
            let after = retry_after(&response);
            let body = error_body(response).await;
            return Err(status_error(
                status,
                after,
                &body,
                session.as_str(),
                &artifact,
            ));
        }
        let response = expect_success(response, session.as_str(), &artifact).await?;
        self.location(&response, session.as_str(), &artifact)
    }

    /// How many bytes the upload session holds, and its current location; `None` when the
    /// registry no longer knows the session.
    pub async fn upload_status(&self, repo: &str, session: &Url) -> Result<Option<(u64, Url)>> {
        let artifact = format!("{repo} (upload)");
        let response = self
            .send(&scope_push(repo), &artifact, |c| c.get(session.clone()))
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = expect_success(response, session.as_str(), &artifact).await?;
        let range = header_string(&response, RANGE.as_str()).unwrap_or_default();
        let end = range
            .trim_start_matches("bytes=")
            .split_once('-')
            .and_then(|(_, end)| end.parse::<u64>().ok());
        let location = self
            .location(&response, session.as_str(), &artifact)
            .unwrap_or_else(|_| session.clone());
        // "0-0" is ambiguous (nothing or one byte): report nothing so the caller starts over.
        Ok(Some((
            end.filter(|e| *e > 0).map(|e| e + 1).unwrap_or(0),
            location,
        )))
    }

    /// Completes the upload session as blob `digest` (the registry checks the digest too).
    pub async fn complete_upload(&self, repo: &str, session: &Url, digest: &Digest) -> Result<()> {
        let mut url = session.clone();
        url.query_pairs_mut().append_pair("digest", digest.as_str());
        let artifact = format!("{repo}@{digest}");
        let response = self
            .send(&scope_push(repo), &artifact, |c| {
                c.put(url.clone()).header(CONTENT_LENGTH, "0")
            })
            .await?;
        if response.status() == StatusCode::NOT_FOUND && self.has_blob(repo, digest).await? {
            // An earlier attempt completed it and its answer was lost.
            return Ok(());
        }
        expect_success(response, url.as_str(), &artifact).await?;
        Ok(())
    }

    /// Abandons an upload session (best effort: nothing is published either way).
    pub async fn cancel_upload(&self, repo: &str, session: &Url) {
        let mut request = self.inner.http.delete(session.clone());
        if let Some(header) = self.auth_header(&scope_push(repo)).await {
            request = request.header(AUTHORIZATION, header);
        }
        if let Err(e) = request.send().await {
            tracing::debug!("cancelling upload {session}: {e}");
        }
    }

    /// The referrers of `digest` through the OCI referrers API, or `None` when the registry
    /// does not offer the API.
    pub async fn referrers(&self, repo: &str, digest: &Digest) -> Result<Option<Vec<Descriptor>>> {
        let url = self.api_url(repo, &format!("referrers/{digest}"));
        let artifact = format!("{repo}@{digest}");
        let response = self
            .send(&scope_pull(repo), &artifact, |c| {
                c.get(url.clone()).header(ACCEPT, OCI_INDEX)
            })
            .await?;
        if response.status() == StatusCode::NOT_FOUND
            || response.status() == StatusCode::METHOD_NOT_ALLOWED
        {
            return Ok(None);
        }
        let response = expect_success(response, url.as_str(), &artifact).await?;
        let bytes = read_limited(response, MANIFEST_LIMIT_BYTES, url.as_str(), &artifact).await?;
        #[derive(serde::Deserialize)]
        struct Index {
            #[serde(default)]
            manifests: Vec<Descriptor>,
        }
        let index: Index = serde_json::from_slice(&bytes).map_err(|e| {
            Error::new(
                ErrorKind::Transport,
                format!("referrers response is not an index: {e}"),
            )
            .with_endpoint(url.to_string())
        })?;
        Ok(Some(index.manifests))
    }

    fn location(&self, response: &Response, url: &str, artifact: &str) -> Result<Url> {
        let value = header_string(response, LOCATION.as_str()).ok_or_else(|| {
            Error::new(
                ErrorKind::Transport,
                "upload response without a Location header",
            )
            .with_endpoint(url)
            .with_artifact(artifact)
        })?;
        self.inner.endpoint.base.join(&value).map_err(|e| {
            Error::new(ErrorKind::Transport, format!("bad Location {value:?}: {e}"))
                .with_endpoint(url)
                .with_artifact(artifact)
        })
    }

    /// A raw request with this client's authentication for `repo` (pull scope); no retry.
    pub async fn raw(&self, method: Method, url: Url, repo: &str) -> Result<Response> {
        let artifact = repo.to_string();
        self.send(&scope_pull(repo), &artifact, |c| {
            c.request(method.clone(), url.clone())
        })
        .await
    }
}
