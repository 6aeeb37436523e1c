//! Where an `arc-file` artifact goes, and how it is published only once verified:
//! - `dir`: staged as a hidden temporary file beside its final name, checked (and scanned),
//!   synced, then renamed into place — a reader never sees a partial or unverified file;
//! - `s3`: a multipart upload completed only after the checksum matched (aborted otherwise), so
//!   the object never appears unverified. With a scanner the file is staged on local disk,
//!   checked and scanned first, then uploaded. Objects carry their SHA-256 as user metadata
//!   (`x-amz-meta-sha256`), which lets a re-run skip an object that is already there;
//! - `oci`: staged on local disk, checked (and scanned), then pushed as an OCI artifact (the
//!   file as the single layer, empty config, `artifactType` [`FILE_ARTIFACT_TYPE`]); blobs the
//!   registry has are skipped, and the manifest is pushed last, after every blob verified.

use std::os::unix::fs::PermissionsExt as _;
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
/// Mode of files published into a `dir` destination.
pub const PUBLISHED_FILE_MODE: u32 = 0o644;
/// Characters of the file name kept in a staging file's name.
const STAGING_NAME_CHARS: usize = 100;
/// The `artifactType` of files pushed to OCI registries.
pub const FILE_ARTIFACT_TYPE: &str = "application/vnd.opendefense.arc.file.v1";
/// The media type of a file's layer.
pub const FILE_LAYER_MEDIA_TYPE: &str = "application/octet-stream";
/// The tag used when `specOverride` names a repository without one.
pub const DEFAULT_FILE_TAG: &str = "latest";

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
    /// An OCI registry.
    Oci {
        /// The Endpoint's `remoteURL`.
        remote_url: String,
        /// The destination's credentials.
        credentials: Credentials,
    },
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
            EndpointType::Dir => Ok(Self::Dir {
                root: local_dir(&endpoint.remote_url, "dstRemoteURL")?,
            }),
            EndpointType::S3 => {
                let location = S3Location::parse(&endpoint.remote_url)?;
                Ok(Self::S3(S3Bucket::connect(
                    location,
                    credentials,
                    &job.settings.retry,
                )?))
            }
            EndpointType::Oci => {
                // Fail on a malformed URL before anything is downloaded.
                crate::oci::RegistryEndpoint::parse(&endpoint.remote_url)?;
                Ok(Self::Oci {
                    remote_url: endpoint.remote_url.clone(),
                    credentials: credentials.clone(),
                })
            }
            other => Err(Error::new(
                ErrorKind::Unsupported,
                format!("arc-file cannot write to `{other}` endpoints; destinations: s3, dir, oci"),
            )
            .with_endpoint(endpoint.remote_url.clone())),
        }
    }

    /// The endpoint for messages.
    pub fn endpoint(&self) -> String {
        match self {
            Self::Dir { root } => root.display().to_string(),
            Self::S3(bucket) => bucket.location.describe(),
            Self::Oci { remote_url, .. } => remote_url.clone(),
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
            // Blobs already in the registry are skipped by the push itself.
            Self::Oci { .. } => Ok(None),
        }
    }

    /// Moves `source` to `key` (for `oci`: `repository[:tag]`), verifying against `expected`
    /// (and scanning) before publishing, and reports the blob and what was published.
    pub async fn publish(
        &self,
        source: &FileSource,
        key: &str,
        expected: Option<&Sha256Hex>,
        job: &Job,
    ) -> Result<Published> {
        let published = match self {
            Self::Dir { root } => publish_to_dir(root, source, key, expected, job).await?,
            Self::S3(bucket) => publish_to_s3(bucket, source, key, expected, job).await?,
            Self::Oci {
                remote_url,
                credentials,
            } => {
                // The OCI push reports its blobs and manifest itself.
                return publish_to_oci(remote_url, credentials, source, key, expected, job).await;
            }
        };
        let digest = published.copied.sha256.digest();
        job.reporter
            .blob(&digest, published.copied.bytes, BlobStatus::Copied);
        job.reporter.pushed(&published.reference, &digest);
        Ok(published)
    }
}

/// Stages `source` in `dir` as a hidden temporary file (removed on drop), verifies and scans it.
async fn stage(
    dir: &Path,
    name: &str,
    source: &FileSource,
    expected: Option<&Sha256Hex>,
    job: &Job,
    count_bytes: bool,
) -> Result<(tempfile::TempPath, Copied)> {
    // Keep the staging name within NAME_MAX whatever the file name.
    let short: String = name.chars().take(STAGING_NAME_CHARS).collect();
    let temp = tempfile::Builder::new()
        .prefix(&format!(".{short}."))
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
        count_bytes.then_some(&job.reporter),
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
    let (temp_path, copied) = stage(&parent, &name, source, expected, job, true).await?;
    // Staging files are created private (0600); the published file gets the usual 0644.
    std::fs::set_permissions(
        &temp_path,
        std::fs::Permissions::from_mode(PUBLISHED_FILE_MODE),
    )
    .map_err(|e| Error::io("cannot set the permissions of", &temp_path, e))?;
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
        let (temp_path, copied) = stage(&staging, &name, source, expected, job, true).await?;
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

/// Stages the file in a private directory under the staging directory (under its own name, which
/// becomes the layer's title), verifies and scans it, then pushes it as an OCI artifact.
async fn publish_to_oci(
    remote_url: &str,
    credentials: &Credentials,
    source: &FileSource,
    key: &str,
    expected: Option<&Sha256Hex>,
    job: &Job,
) -> Result<Published> {
    let reference = if key.contains(':') || key.contains('@') {
        key.to_string()
    } else {
        format!("{key}:{DEFAULT_FILE_TAG}")
    };
    let image = crate::oci::ImageRef::parse(&reference)?;
    if image.digest.is_some() {
        return Err(Error::invalid_parameter(format!(
            "specOverride `{key}` names a digest; a file is pushed as `repository[:tag]`"
        )));
    }
    let name = source.file_name().unwrap_or_else(|| "file".to_string());
    let staging = job.settings.staging_dir();
    let private = tempfile::Builder::new()
        .prefix(".arc-file.")
        .tempdir_in(&staging)
        .map_err(|e| Error::io("cannot create a staging directory in", &staging, e))?;
    // Bytes are counted once, by the upload.
    let (temp_path, copied) = stage(private.path(), &name, source, expected, job, false).await?;
    let staged = private.path().join(&name);
    temp_path
        .persist(&staged)
        .map_err(|e| Error::io("cannot rename the staged file to", &staged, e.error))?;
    let repo = crate::oci::open_repo(
        EndpointType::Oci,
        remote_url,
        credentials,
        &image.repository,
        job.settings.retry.clone(),
        job.cancel.clone(),
    )?;
    let pushed = crate::oci::push_file_artifact(
        &repo,
        image.tag.as_deref(),
        &staged,
        FILE_LAYER_MEDIA_TYPE,
        FILE_ARTIFACT_TYPE,
        std::collections::BTreeMap::new(),
        &job.reporter,
    )
    .await?;
    Ok(Published {
        reference: pushed.reference,
        copied,
    })
}

/// Reports a skipped artifact that the destination already holds.
pub fn report_existing(job: &Job, reference: &str, sha: &Sha256Hex, bytes: u64) {
    job.reporter.blob(&sha.digest(), bytes, BlobStatus::Skipped);
    tracing::info!("{reference} already holds {sha}; nothing to do");
}
