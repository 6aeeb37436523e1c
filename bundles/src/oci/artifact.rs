//! Pushing local files as OCI artifacts: a manifest with a config blob and one layer per file
//! (a single file with the empty config, the ORAS convention; a Helm chart with its chart
//! config). Files are streamed from disk and verified on the way like any blob.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::StreamExt as _;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use super::client::ByteStream;
use super::copy::{DEFAULT_CHUNK_BYTES, put_blob};
use super::digest::Digest;
use super::manifest::{Descriptor, OCI_EMPTY, OCI_MANIFEST};
use super::repo::OciRepo;
use crate::error::{Error, Result};
use crate::progress::{BlobStatus, Reporter};

/// The `org.opencontainers.image.title` annotation (a layer's file name).
pub const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";
/// Read buffer for streaming files.
const FILE_BUFFER_BYTES: usize = 256 * 1024;

/// A local file to become one layer.
#[derive(Debug, Clone)]
pub struct LayerFile {
    /// The file.
    pub path: PathBuf,
    /// The layer's media type.
    pub media_type: String,
    /// Layer annotations (a title is added from the file name when missing).
    pub annotations: BTreeMap<String, String>,
}

/// What was published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedArtifact {
    /// The manifest's digest.
    pub digest: Digest,
    /// Where (`host/repo:tag`, `oci:<dir>:<tag>`, or `@digest` without a tag).
    pub reference: String,
}

/// The SHA-256 digest and size of a local file, streamed.
pub async fn digest_file(path: &Path) -> Result<(Digest, u64)> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| Error::io("cannot open", path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; FILE_BUFFER_BYTES];
    let mut size = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .await
            .map_err(|e| Error::io("cannot read", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((Digest::from_hasher(hasher), size))
}

/// Streams a local file from `offset` on.
pub async fn file_stream(path: PathBuf, offset: u64) -> Result<ByteStream> {
    let mut file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| Error::io("cannot open", &path, e))?;
    if offset > 0 {
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(|e| Error::io("cannot seek", &path, e))?;
    }
    let stream = tokio_util::io::ReaderStream::with_capacity(file, FILE_BUFFER_BYTES)
        .map(move |r| r.map_err(|e| Error::io("cannot read", &path, e)));
    Ok(Box::pin(stream))
}

fn bytes_stream(bytes: Bytes, offset: u64) -> ByteStream {
    let rest = bytes.slice((offset as usize).min(bytes.len())..);
    Box::pin(futures::stream::iter([Ok(rest)]))
}

/// Pushes an artifact: `config` (media type and bytes), one layer per file, then a manifest
/// (OCI image manifest, with `artifact_type` and `annotations` when given) tagged `tag` (or
/// by digest only). Blobs the destination has are skipped.
pub async fn push_artifact(
    dst: &OciRepo,
    tag: Option<&str>,
    config: (&str, Bytes),
    layers: &[LayerFile],
    artifact_type: Option<&str>,
    annotations: BTreeMap<String, String>,
    reporter: &Reporter,
) -> Result<PushedArtifact> {
    let (config_type, config_bytes) = config;
    let config_desc = Descriptor::for_bytes(config_type, &config_bytes);
    let on_bytes = |n: u64| reporter.add_bytes(n);
    if dst.has_blob(&config_desc).await? {
        reporter.blob(
            config_desc.digest.as_str(),
            config_desc.size,
            BlobStatus::Skipped,
        );
    } else {
        let bytes = config_bytes.clone();
        put_blob(
            dst,
            &config_desc,
            None,
            DEFAULT_CHUNK_BYTES,
            |o| std::future::ready(Ok(bytes_stream(bytes.clone(), o))),
            &on_bytes,
            "config",
        )
        .await?;
        reporter.blob(
            config_desc.digest.as_str(),
            config_desc.size,
            BlobStatus::Copied,
        );
    }
    let mut layer_descs = Vec::with_capacity(layers.len());
    for layer in layers {
        let (digest, size) = digest_file(&layer.path).await?;
        let mut desc = Descriptor {
            media_type: layer.media_type.clone(),
            digest,
            size,
            platform: None,
            artifact_type: None,
            annotations: layer.annotations.clone(),
        };
        if let Some(name) = layer.path.file_name().and_then(|n| n.to_str()) {
            desc.annotations
                .entry(TITLE_ANNOTATION.to_string())
                .or_insert_with(|| name.to_string());
        }
        if dst.has_blob(&desc).await? {
            reporter.blob(desc.digest.as_str(), desc.size, BlobStatus::Skipped);
        } else {
            let path = layer.path.clone();
            let source = path.display().to_string();
            put_blob(
                dst,
                &desc,
                None,
                DEFAULT_CHUNK_BYTES,
                |o| file_stream(path.clone(), o),
                &on_bytes,
                &source,
            )
            .await?;
            reporter.blob(desc.digest.as_str(), desc.size, BlobStatus::Copied);
        }
        layer_descs.push(desc);
    }
    let mut manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config_desc,
        "layers": layer_descs,
    });
    if let Some(t) = artifact_type {
        manifest["artifactType"] = serde_json::Value::String(t.to_string());
    }
    if !annotations.is_empty() {
        manifest["annotations"] = serde_json::to_value(&annotations).unwrap_or_default();
    }
    let bytes = Bytes::from(
        serde_json::to_vec(&manifest)
            .map_err(|e| Error::new(crate::error::ErrorKind::Io, e.to_string()))?,
    );
    let digest = Digest::of(&bytes);
    dst.push_manifest(&bytes, OCI_MANIFEST, tag).await?;
    let reference = dst.reference(tag, &digest);
    reporter.pushed(&reference, digest.as_str());
    Ok(PushedArtifact { digest, reference })
}

/// Pushes one local file as an OCI artifact (empty config, the file as the only layer with
/// `media_type`, the manifest's `artifactType` set to `artifact_type`), tagged `tag`.
pub async fn push_file_artifact(
    dst: &OciRepo,
    tag: Option<&str>,
    file: &Path,
    media_type: &str,
    artifact_type: &str,
    annotations: BTreeMap<String, String>,
    reporter: &Reporter,
) -> Result<PushedArtifact> {
    let layer = LayerFile {
        path: file.to_path_buf(),
        media_type: media_type.to_string(),
        annotations: BTreeMap::new(),
    };
    push_artifact(
        dst,
        tag,
        (OCI_EMPTY, Bytes::from_static(b"{}")),
        &[layer],
        Some(artifact_type),
        annotations,
        reporter,
    )
    .await
}
