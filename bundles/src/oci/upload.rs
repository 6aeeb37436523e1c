//! Verified, resumable blob uploads to a registry: bytes stream from a source into an upload
//! session in chunks (PATCH) while being hashed; the session is completed (PUT with the digest)
//! only when the streamed bytes hash to the blob's digest, and abandoned otherwise, so nothing
//! unverified is ever published.
//!
//! A failed chunk (connection reset, 5xx, a registry restart, a source that broke off) is
//! resumed where the registry says its session ends: the source is reopened at the last
//! confirmed offset with the hash state saved there, the bytes the registry already holds are
//! hashed without being sent again, and the upload goes on. Memory stays bounded: no chunk is
//! buffered; bytes flow from the source's response into the PATCH request body.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt as _;
use reqwest::Url;
use sha2::{Digest as _, Sha256};
use tokio::sync::Mutex;

use super::client::{ByteStream, RegistryClient, UploadStart};
use super::digest::Digest;
use super::manifest::Descriptor;
use crate::error::{Error, ErrorKind, Result};

/// The source side of a feed: bytes positioned at some offset, hashed as they are handed on.
struct Feed {
    stream: ByteStream,
    leftover: Option<Bytes>,
    hasher: Sha256,
    /// Absolute offset of the next byte.
    position: u64,
    /// What made the source fail, if it did.
    error: Option<Error>,
}

impl Feed {
    async fn next_bytes(&mut self) -> Option<std::result::Result<Bytes, ()>> {
        if let Some(left) = self.leftover.take() {
            return Some(Ok(left));
        }
        match self.stream.next().await {
            Some(Ok(chunk)) => Some(Ok(chunk)),
            Some(Err(e)) => {
                self.error = Some(e);
                Some(Err(()))
            }
            None => None,
        }
    }

    /// Takes up to `max` bytes, hashing them; `None` at the end of the source.
    async fn take(&mut self, max: u64) -> Option<std::result::Result<Bytes, ()>> {
        loop {
            let mut chunk = match self.next_bytes().await? {
                Ok(c) => c,
                Err(()) => return Some(Err(())),
            };
            if chunk.is_empty() {
                continue;
            }
            if chunk.len() as u64 > max {
                self.leftover = Some(chunk.split_off(max as usize));
            }
            self.hasher.update(&chunk);
            self.position += chunk.len() as u64;
            return Some(Ok(chunk));
        }
    }

    /// Hashes `count` bytes without handing them on (bytes the destination already holds).
    async fn advance(&mut self, count: u64, source: &str, digest: &Digest) -> Result<()> {
        let mut remaining = count;
        while remaining > 0 {
            match self.take(remaining).await {
                Some(Ok(chunk)) => remaining -= chunk.len() as u64,
                Some(Err(())) => {
                    return Err(self
                        .error
                        .take()
                        .unwrap_or_else(|| Error::transient("source failed")));
                }
                None => return Err(short_source(source, digest, self.position)),
            }
        }
        Ok(())
    }
}

fn short_source(source: &str, digest: &Digest, at: u64) -> Error {
    Error::new(
        ErrorKind::DigestMismatch,
        format!("the source ended after {at} bytes, before the size its descriptor gives"),
    )
    .with_endpoint(source)
    .with_artifact(format!("blob {digest}"))
}

/// A request body handing on exactly `len` bytes of the feed.
fn chunk_body(feed: Arc<Mutex<Feed>>, len: u64, source: String, digest: Digest) -> reqwest::Body {
    let stream = futures::stream::unfold((feed, len), move |(feed, remaining)| {
        let source = source.clone();
        let digest = digest.clone();
        async move {
            if remaining == 0 {
                return None;
            }
            let mut guard = feed.lock().await;
            let item = match guard.take(remaining).await {
                Some(Ok(chunk)) => Ok(chunk),
                Some(Err(())) => Err(std::io::Error::other("the source failed")),
                None => {
                    let at = guard.position;
                    guard.error = Some(short_source(&source, &digest, at));
                    Err(std::io::Error::other("the source ended early"))
                }
            };
            drop(guard);
            let next = match &item {
                Ok(chunk) => remaining - chunk.len() as u64,
                Err(_) => 0,
            };
            Some((item, (feed, next)))
        }
    });
    reqwest::Body::wrap_stream(stream)
}

/// Where to go on after a failure.
enum Resume {
    /// Go on at `offset` with the hash state there (and the source already positioned).
    At {
        offset: u64,
        hasher: Sha256,
        feed: Option<Arc<Mutex<Feed>>>,
    },
    /// The session is gone: start over in this new one.
    Restart(Url),
}

/// Asks the registry how much of the session it holds and positions the source there: bytes
/// it holds beyond our last confirmed offset are read from the source and hashed, not resent.
#[allow(clippy::too_many_arguments)]
async fn resume_point<F, Fut>(
    client: &RegistryClient,
    repo: &str,
    session: &mut Url,
    desc: &Descriptor,
    confirmed: u64,
    checkpoint: &Sha256,
    open: &mut F,
    source: &str,
) -> Result<Resume>
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = Result<ByteStream>>,
{
    match client.upload_status(repo, session).await? {
        Some((received, location)) if received >= confirmed && received <= desc.size => {
            *session = location;
            if received == confirmed {
                return Ok(Resume::At {
                    offset: confirmed,
                    hasher: checkpoint.clone(),
                    feed: None,
                });
            }
            let stream = open(confirmed).await?;
            let mut feed = Feed {
                stream,
                leftover: None,
                hasher: checkpoint.clone(),
                position: confirmed,
                error: None,
            };
            feed.advance(received - confirmed, source, &desc.digest)
                .await?;
            let hasher = feed.hasher.clone();
            Ok(Resume::At {
                offset: received,
                hasher,
                feed: Some(Arc::new(Mutex::new(feed))),
            })
        }
        _ => {
            client.cancel_upload(repo, session).await;
            match client.start_upload(repo, None).await? {
                UploadStart::Session(url) => Ok(Resume::Restart(url)),
                UploadStart::Mounted => Err(Error::new(
                    ErrorKind::Transport,
                    "registry mounted a blob without a mount request",
                )),
            }
        }
    }
}

/// Uploads blob `desc` into `repo` through upload session `session`, reading it from `open`
/// (which opens the source at a byte offset). `chunk_bytes` bounds one PATCH; `on_bytes` hears
/// of every confirmed chunk. `source` names the source in errors.
#[allow(clippy::too_many_arguments)]
pub async fn upload_blob<F, Fut>(
    client: &RegistryClient,
    repo: &str,
    desc: &Descriptor,
    mut session: Url,
    chunk_bytes: u64,
    mut open: F,
    on_bytes: &(dyn Fn(u64) + Send + Sync),
    source: &str,
) -> Result<()>
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = Result<ByteStream>>,
{
    let policy = client.retry_policy().clone();
    let chunk_bytes = chunk_bytes.max(1);
    let artifact = format!("blob {}", desc.digest);
    let mut confirmed: u64 = 0;
    let mut checkpoint = Sha256::new();
    let mut feed: Option<Arc<Mutex<Feed>>> = None;
    let mut failures: u32 = 0;
    // After a failure, ask the registry where its session ends before sending more.
    let mut reconcile = false;
    loop {
        while confirmed < desc.size || reconcile {
            let error = if reconcile {
                match resume_point(
                    client,
                    repo,
                    &mut session,
                    desc,
                    confirmed,
                    &checkpoint,
                    &mut open,
                    source,
                )
                .await
                {
                    Ok(Resume::At {
                        offset,
                        hasher,
                        feed: resumed,
                    }) => {
                        if offset > confirmed {
                            tracing::info!(
                                "{artifact}: the registry holds {offset} bytes, resuming there"
                            );
                            on_bytes(offset - confirmed);
                        }
                        confirmed = offset;
                        checkpoint = hasher;
                        feed = resumed;
                        reconcile = false;
                        continue;
                    }
                    Ok(Resume::Restart(url)) => {
                        tracing::info!("{artifact}: upload session lost, starting over");
                        session = url;
                        confirmed = 0;
                        checkpoint = Sha256::new();
                        feed = None;
                        reconcile = false;
                        continue;
                    }
                    Err(e) => e,
                }
            } else {
                let current = match feed.take() {
                    Some(f) => Ok(f),
                    None => open(confirmed).await.map(|stream| {
                        Arc::new(Mutex::new(Feed {
                            stream,
                            leftover: None,
                            hasher: checkpoint.clone(),
                            position: confirmed,
                            error: None,
                        }))
                    }),
                };
                match current {
                    Err(e) => e,
                    Ok(current) => {
                        let len = chunk_bytes.min(desc.size - confirmed);
                        let body = chunk_body(
                            current.clone(),
                            len,
                            source.to_string(),
                            desc.digest.clone(),
                        );
                        let outcome = client
                            .patch_upload(repo, &session, body, confirmed, len)
                            .await;
                        let mut state = current.lock().await;
                        match (outcome, state.error.take()) {
                            (_, Some(source_error)) => source_error,
                            (Err(e), None) => e,
                            (Ok(next), None) => {
                                session = next;
                                confirmed += len;
                                checkpoint = state.hasher.clone();
                                drop(state);
                                feed = Some(current);
                                failures = 0;
                                on_bytes(len);
                                continue;
                            }
                        }
                    }
                }
            };
            if !error.is_transient() {
                client.cancel_upload(repo, &session).await;
                return Err(error.or_artifact(artifact));
            }
            failures += 1;
            if failures >= policy.max_attempts {
                return Err(error.or_artifact(artifact));
            }
            let delay = policy.delay(failures, &error);
            tracing::warn!(
                "{error}; resuming {artifact} in {:.1}s",
                delay.as_secs_f64()
            );
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = client.cancel_token().cancelled() => return Err(Error::cancelled()),
            }
            reconcile = true;
        }
        let actual = Digest::from_hasher(checkpoint.clone());
        if actual != desc.digest {
            client.cancel_upload(repo, &session).await;
            return Err(Error::new(
                ErrorKind::DigestMismatch,
                format!(
                    "expected {}, the source sent {actual}; nothing was published",
                    desc.digest
                ),
            )
            .with_endpoint(source)
            .with_artifact(artifact));
        }
        match client.complete_upload(repo, &session, &desc.digest).await {
            // A registry that lost the session (e.g. restarted mid-transfer) gets the blob again.
            Err(e) if e.kind() == ErrorKind::NotFound && failures + 1 < policy.max_attempts => {
                failures += 1;
                tracing::warn!(
                    "{artifact}: the registry lost the upload session ({e}); starting over"
                );
                session = match client.start_upload(repo, None).await? {
                    UploadStart::Session(url) => url,
                    UploadStart::Mounted => return Ok(()),
                };
                confirmed = 0;
                checkpoint = Sha256::new();
                feed = None;
            }
            other => return other,
        }
    }
}
