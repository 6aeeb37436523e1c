//! Where an `arc-file` artifact goes, and how it is published only once verified:
//! - `dir`: staged as a hidden temporary file beside its final name, checked (and scanned),
//!   synced, then renamed into place — a reader never sees a partial or unverified file;
//! - `s3`: a multipart upload completed only after the checksum matched (aborted otherwise), so
//!   the object never appears unverified. With a scanner the file is staged on local disk,
//!   checked and scanned first, then uploaded. Objects carry their SHA-256 as user metadata
//!   (`x-amz-meta-sha256`), which lets a re-run skip an object that is already there.

use std::path::{Path, PathBuf};

use object_store::path::Path as ObjectPath;
use object_store::{
    Attribute, Attributes, ObjectStore as _, ObjectStoreExt as _, PutMultipartOptions,
    WriteMultipart,
};

use crate::error::{Error, ErrorKind, Result};
use crate::file::copy::{Copied, MULTIPART_PART_BYTES, Sink, copy, verify};
use crate::file::source::{FileSource, local_dir, relative_path};
use crate::params::{EndpointParams, EndpointType, Sha256Hex};
use crate::pipeline::Job;
use crate::progress::BlobStatus;
use crate::s3::{S3Bucket, S3Location};
use crate::secrets::Credentials;

/// The S3 user-metadata key holding an object's SHA-256 (hex).
pub const SHA256_METADATA_KEY: &str = "sha256";

/// A resolved destination.
#[derive(Debug)]
pub enum FileDestination {
    /// A local directory.
    Dir {
        /// The directory (must exist).
        root: PathBuf,
    },
    /// A bucket.
    S3(S3Bucket),
}

/// What got published where.
#[derive(Debug, Clone)]
pub struct Published {
    /// The destination reference (path or `s3://bucket/key`).
    pub reference: String,
    /// The content.
    pub copied: Copied,
}

impl FileDestination {
    /// Resolves the destination Endpoint; unsupported types fail before anything is read.
    pub fn resolve(
        endpoint: &EndpointParams,
        credentials: &Credentials,
        job: &Job,
    ) -> Result<Self> {
        match endpoint.kind {
            EndpointType::Dir => Ok(Self::Dir { root: local_dir(&endpoint.remote_url, "dstRemoteURL")? }),
            EndpointType::S3 => {
                let location = S3Location::parse(&endpoint.remote_url)?;
                Ok(Self::S3(S3Bucket::connect(location, credentials, &job.settings.retry)?))
            }
            EndpointType::Oci => Err(Error::new(
                ErrorKind::Unsupported,
                "arc-file cannot publish to an OCI registry yet (files as OCI artifacts); use an s3 or dir destination",
            )
            .with_endpoint(endpoint.remote_url.clone())),
            other => Err(Error::new(
                ErrorKind::Unsupported,
                format!("arc-file cannot write to `{other}` endpoints; destinations: s3, dir"),
            )
            .with_endpoint(endpoint.remote_url.clone())),
        }
    }

    /// The endpoint for messages.
    pub fn endpoint(&self) -> String {
        match self {
            Self::Dir { root } => root.display().to_string(),
            Self::S3(bucket) => bucket.location.describe(),
        }
    }

    /// Whether the destination already holds `key` with SHA-256 `expected`; returns its size.
    pub async fn existing(&self, key: &str, expected: &Sha256Hex) -> Result<Option<u64>> {
        match self {
            Self::Dir { root } => {
                let path = root.join(key);
                let Ok(meta) = tokio::fs::metadata(&path).await else {
                    return Ok(None);
                };
                if !meta.is_file() {
                    return Ok(None);
                }
                let source = FileSource::Local { path: path.clone() };
                let mut sink = Sink::Discard;
                let endpoint = path.display().to_string();
                let policy = crate::retry::RetryPolicy::none();
                let copied = copy(
                    &source,
                    &mut sink,
                    &endpoint,
                    &policy,
                    &tokio_util::sync::CancellationToken::new(),
                    None,
                )
                .await?;
                Ok((copied.sha256 == *expected).then_some(copied.bytes))
            }
            Self::S3(bucket) => {
                let full_key = bucket.location.key(key);
                let value = bucket.metadata(&full_key, SHA256_METADATA_KEY).await?;
                if value.as_deref() != Some(expected.hex()) {
                    return Ok(None);
                }
                let meta = bucket
                    .store()
                    .head(&ObjectPath::from(full_key.as_str()))
                    .await
                    .map_err(|e| bucket.map_error(e, &full_key))?;
                Ok(Some(meta.size))
            }
        }
    }

    /// Moves `source` to `key`, verifying against `expected` (and scanning) before publishing.
    pub async fn publish(
        &self,
        source: &FileSource,
        key: &str,
        expected: Option<&Sha256Hex>,
        job: &Job,
    ) -> Result<Published> {
        match self {
            Self::Dir { root } => publish_to_dir(root, source, key, expected, job).await,
            Self::S3(bucket) => publish_to_s3(bucket, source, key, expected, job).await,
        }
    }
}

/// Stages `source` in `dir` as a hidden temporary file (removed on drop), verifies and scans it.
async fn stage(
    dir: &Path,
    name: &str,
    source: &FileSource,
    expected: Option<&Sha256Hex>,
    job: &Job,
) -> Result<(tempfile::TempPath, Copied)> {
    let temp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".arc-partial")
        .tempfile_in(dir)
        .map_err(|e| Error::io("cannot create a staging file in", dir, e))?;
    let (file, temp_path) = temp.into_parts();
    let mut sink = Sink::file(tokio::fs::File::from_std(file));
    let endpoint = dir.display().to_string();
    let copied = copy(
        source,
        &mut sink,
        &endpoint,
        &job.settings.retry,
        &job.cancel,
        Some(&job.reporter),
    )
    .await?;
    drop(sink);
    verify(&copied, expected, &source.endpoint())?;
    if let Some(scanner) = &job.settings.scanner {
        scanner
            .scan(&temp_path, &job.artifact(), &job.cancel)
            .await?;
    }
    Ok((temp_path, copied))
}

async fn publish_to_dir(
    root: &Path,
    source: &FileSource,
    key: &str,
    expected: Option<&Sha256Hex>,
    job: &Job,
) -> Result<Published> {
    let meta = tokio::fs::metadata(root).await.map_err(|e| {
        Error::new(
            ErrorKind::NotFound,
            format!(
                "destination directory {} is not accessible: {e}",
                root.display()
            ),
        )
        .with_endpoint(root.display().to_string())
    })?;
    if !meta.is_dir() {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("destination {} is not a directory", root.display()),
        )
        .with_endpoint(root.display().to_string()));
    }
    let key = relative_path("destination key", key)?;
    let target = root.join(&key);
    let parent = target.parent().unwrap_or(root).to_path_buf();
    tokio::fs::create_dir_all(&parent)
        .await
        .map_err(|e| Error::io("cannot create directory", &parent, e))?;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (temp_path, copied) = stage(&parent, &name, source, expected, job).await?;
    temp_path
        .persist(&target)
        .map_err(|e| Error::io("cannot move the verified file to", &target, e.error))?;
    if let Ok(dir) = tokio::fs::File::open(&parent).await {
        // Make the rename durable; failure here does not undo the publication.
        let _ = dir.sync_all().await;
    }
    Ok(Published {
        reference: target.display().to_string(),
        copied,
    })
}

async fn publish_to_s3(
    bucket: &S3Bucket,
    source: &FileSource,
    key: &str,
    expected: Option<&Sha256Hex>,
    job: &Job,
) -> Result<Published> {
    let full_key = bucket.location.key(&relative_path("destination key", key)?);
    let reference = bucket.location.object_url(&full_key);
    let endpoint = bucket.location.describe();
    if job.settings.scanner.is_some() {
        // Scanners need the bytes on disk: stage, verify, scan, then upload the staged file.
        let staging = job.settings.staging_dir();
        let name = full_key.rsplit('/').next().unwrap_or("file").to_string();
        let (temp_path, copied) = stage(&staging, &name, source, expected, job).await?;
        let staged = FileSource::Local {
            path: temp_path.to_path_buf(),
        };
        upload(bucket, &full_key, &staged, Some(&copied.sha256), job, false).await?;
        return Ok(Published { reference, copied });
    }
    let copied = upload(bucket, &full_key, source, expected, job, true)
        .await
        .map_err(|e| e.or_endpoint(endpoint))?;
    Ok(Published { reference, copied })
}

/// Streams `source` into a multipart upload of `full_key`; completes it only if the whole
/// source was read and its SHA-256 matches `expected` (when given), aborts it otherwise.
async fn upload(
    bucket: &S3Bucket,
    full_key: &str,
    source: &FileSource,
    expected: Option<&Sha256Hex>,
    job: &Job,
    count_bytes: bool,
) -> Result<Copied> {
    let path = ObjectPath::from(full_key);
    let mut attributes = Attributes::new();
    if let Some(sha) = expected {
        attributes.insert(
            Attribute::Metadata(SHA256_METADATA_KEY.into()),
            sha.hex().to_string().into(),
        );
    }
    let options = PutMultipartOptions {
        attributes,
        ..PutMultipartOptions::default()
    };
    let upload = bucket
        .store()
        .put_multipart_opts(&path, options)
        .await
        .map_err(|e| bucket.map_error(e, full_key))?;
    let mut sink = Sink::Multipart(WriteMultipart::new_with_chunk_size(
        upload,
        MULTIPART_PART_BYTES,
    ));
    let endpoint = bucket.location.describe();
    let reporter = count_bytes.then_some(&job.reporter);
    let outcome = copy(
        source,
        &mut sink,
        &endpoint,
        &job.settings.retry,
        &job.cancel,
        reporter,
    )
    .await
    .and_then(|copied| verify(&copied, expected, &source.endpoint()).map(|()| copied));
    let Sink::Multipart(upload) = sink else {
        unreachable!("the sink is a multipart upload")
    };
    match outcome {
        Ok(copied) => {
            upload
                .finish()
                .await
                .map_err(|e| bucket.map_error(e, full_key))?;
            Ok(copied)
        }
        Err(error) => {
            if let Err(abort) = upload.abort().await {
                tracing::warn!("aborting the upload of {full_key}: {abort}");
            }
            Err(error)
        }
    }
}

/// Reports a skipped artifact that the destination already holds.
pub fn report_existing(job: &Job, reference: &str, sha: &Sha256Hex, bytes: u64) {
    job.reporter.blob(&sha.digest(), bytes, BlobStatus::Skipped);
    tracing::info!("{reference} already holds {sha}; nothing to do");
}
