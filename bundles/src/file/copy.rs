//! The streaming copy at the heart of `arc-file`: bytes flow from a [`FileSource`] into a
//! [`Sink`] chunk by chunk while a SHA-256 is computed on the way. A transient failure in the
//! middle reopens the source at the current offset (HTTP `Range`, S3 ranged GET, seek), so the
//! hash continues and nothing is read twice. Memory use is bounded by the chunk size and, for
//! S3, the multipart part size.

use bytes::Bytes;
use futures::StreamExt as _;
use object_store::WriteMultipart;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt as _;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, ErrorKind, Result};
use crate::file::source::FileSource;
use crate::params::Sha256Hex;
use crate::progress::Reporter;
use crate::retry::{RetryPolicy, retry};

/// Size of one S3 multipart part (S3 needs at least 5 MiB for all but the last).
pub const MULTIPART_PART_BYTES: usize = 8 * 1024 * 1024;
/// Parts uploaded concurrently (memory: about this many parts plus one being filled).
pub const MULTIPART_CONCURRENCY: usize = 2;
/// Write buffer of staged files.
const FILE_WRITE_BUFFER_BYTES: usize = 256 * 1024;

/// Where the copied bytes go.
pub enum Sink {
    /// A local (staging) file.
    File(tokio::io::BufWriter<tokio::fs::File>),
    /// An S3 multipart upload, completed only by the caller after verification.
    Multipart(WriteMultipart),
    /// Nowhere (hashing only).
    Discard,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::File(_) => "Sink::File",
            Self::Multipart(_) => "Sink::Multipart",
            Self::Discard => "Sink::Discard",
        })
    }
}

impl Sink {
    /// A sink writing to `file`.
    pub fn file(file: tokio::fs::File) -> Self {
        Self::File(tokio::io::BufWriter::with_capacity(
            FILE_WRITE_BUFFER_BYTES,
            file,
        ))
    }

    async fn write(&mut self, chunk: Bytes, endpoint: &str) -> Result<()> {
        match self {
            Self::File(file) => file.write_all(&chunk).await.map_err(|e| {
                Error::new(ErrorKind::Io, format!("cannot write the staged file: {e}"))
                    .with_endpoint(endpoint)
            }),
            Self::Multipart(upload) => {
                upload
                    .wait_for_capacity(MULTIPART_CONCURRENCY)
                    .await
                    .map_err(|e| {
                        Error::new(ErrorKind::Transport, format!("uploading a part: {e}"))
                            .with_endpoint(endpoint)
                    })?;
                upload.put(chunk);
                Ok(())
            }
            Self::Discard => Ok(()),
        }
    }

    /// Flushes a file sink to disk (multipart uploads finish in the caller).
    pub async fn flush(&mut self, endpoint: &str) -> Result<()> {
        if let Self::File(file) = self {
            let io = |e: std::io::Error| {
                Error::new(ErrorKind::Io, format!("cannot flush the staged file: {e}"))
                    .with_endpoint(endpoint)
            };
            file.flush().await.map_err(io)?;
            file.get_ref().sync_all().await.map_err(io)?;
        }
        Ok(())
    }
}

/// What was copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// SHA-256 of the bytes.
    pub sha256: Sha256Hex,
    /// How many bytes.
    pub bytes: u64,
}

/// Copies `source` into `sink`, hashing on the way; `sink_endpoint` names the destination in
/// errors. Bytes are counted on `reporter` when `count_bytes` (a re-read of a staged file is
/// not counted twice). Fails if the source ends before the size it announced.
pub async fn copy(
    source: &FileSource,
    sink: &mut Sink,
    sink_endpoint: &str,
    policy: &RetryPolicy,
    cancel: &CancellationToken,
    reporter: Option<&Reporter>,
) -> Result<Copied> {
    let endpoint = source.endpoint();
    let mut hasher = Sha256::new();
    let mut offset: u64 = 0;
    let mut failures: u32 = 0;
    loop {
        let what = format!("GET {endpoint}");
        let opened = retry(policy, cancel, &what, |_| source.open(offset)).await?;
        let mut stream = opened.stream;
        let mut progressed = false;
        let interrupted = loop {
            let next = tokio::select! {
                next = stream.next() => next,
                () = cancel.cancelled() => return Err(Error::cancelled().with_endpoint(endpoint.clone())),
            };
            match next {
                Some(Ok(chunk)) => {
                    let len = chunk.len() as u64;
                    hasher.update(&chunk);
                    sink.write(chunk, sink_endpoint).await?;
                    offset += len;
                    progressed |= len > 0;
                    if let Some(r) = reporter {
                        r.add_bytes(len);
                    }
                }
                // A connection that fails after the last byte still delivered the whole file.
                Some(Err(_)) if opened.total_bytes == Some(offset) => break None,
                Some(Err(e)) if e.is_transient() => break Some(e),
                Some(Err(e)) => return Err(e),
                None => match opened.total_bytes {
                    Some(total) if offset < total => {
                        break Some(
                            Error::transient(format!(
                                "the body ended after {offset} of {total} bytes"
                            ))
                            .with_endpoint(endpoint.clone()),
                        );
                    }
                    Some(total) if offset > total => {
                        return Err(Error::new(
                            ErrorKind::Transport,
                            format!("the source sent {offset} bytes but announced {total}"),
                        )
                        .with_endpoint(endpoint.clone()));
                    }
                    _ => break None,
                },
            }
        };
        let Some(error) = interrupted else { break };
        failures = if progressed { 1 } else { failures + 1 };
        if failures >= policy.max_attempts {
            return Err(error);
        }
        let delay = policy.delay(failures, &error);
        tracing::warn!(
            "{what}: interrupted at byte {offset}: {error}; resuming in {:.1}s",
            delay.as_secs_f64()
        );
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = cancel.cancelled() => return Err(Error::cancelled().with_endpoint(endpoint.clone())),
        }
    }
    sink.flush(sink_endpoint).await?;
    Ok(Copied {
        sha256: Sha256Hex::from_bytes(&hasher.finalize()),
        bytes: offset,
    })
}

/// Checks `copied` against `expected`: a mismatch is a terminal
/// [`ErrorKind::ChecksumMismatch`] naming both digests.
pub fn verify(copied: &Copied, expected: Option<&Sha256Hex>, source_endpoint: &str) -> Result<()> {
    match expected {
        Some(expected) if *expected != copied.sha256 => Err(Error::new(
            ErrorKind::ChecksumMismatch,
            format!(
                "expected {expected}, got {} ({} bytes); nothing was published",
                copied.sha256, copied.bytes
            ),
        )
        .with_endpoint(source_endpoint)),
        _ => Ok(()),
    }
}
