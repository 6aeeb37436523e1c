//! OCI image layouts on disk (`oci-layout`, `index.json`, `blobs/sha256/<hex>`), read and
//! written the way skopeo's `oci:DIR:TAG` does: a tag is the `org.opencontainers.image.ref.name`
//! annotation of an `index.json` entry.
//!
//! Blobs are written to `.partial/sha256-<hex>` first, hashed as they arrive and moved into
//! `blobs/` only when their digest matched, so a reader never sees unverified content and an
//! interrupted copy resumes from the bytes already on disk.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::StreamExt as _;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _};

use super::client::ByteStream;
use super::digest::Digest;
use super::manifest::{Descriptor, parse_manifest};
use crate::error::{Error, ErrorKind, Result};

/// The annotation carrying a tag in `index.json`.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// Read buffer for streaming blobs out of a layout.
const READ_BUFFER_BYTES: usize = 256 * 1024;
/// Directory (inside the layout) for blobs being written.
const PARTIAL_DIR: &str = ".partial";

/// One OCI image layout directory.
#[derive(Debug, Clone)]
pub struct OciLayout {
    dir: PathBuf,
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::io(what, path, e)
}

impl OciLayout {
    /// A layout at `dir` (it need not exist yet).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The layout's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where blob `digest` lives.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("blobs").join("sha256").join(digest.hex())
    }

    fn partial_path(&self, digest: &Digest) -> PathBuf {
        self.dir
            .join(PARTIAL_DIR)
            .join(format!("sha256-{}", digest.hex()))
    }

    /// Creates the directory structure and the `oci-layout` marker if missing.
    pub async fn init(&self) -> Result<()> {
        let blobs = self.dir.join("blobs").join("sha256");
        tokio::fs::create_dir_all(&blobs)
            .await
            .map_err(|e| io_error("cannot create", &blobs, e))?;
        let marker = self.dir.join("oci-layout");
        if !tokio::fs::try_exists(&marker).await.unwrap_or(false) {
            write_atomically(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#).await?;
        }
        let index = self.dir.join("index.json");
        if !tokio::fs::try_exists(&index).await.unwrap_or(false) {
            write_atomically(&index, br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#).await?;
        }
        Ok(())
    }

    async fn read_index(&self) -> Result<serde_json::Value> {
        let path = self.dir.join("index.json");
        let bytes = tokio::fs::read(&path).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "no OCI image layout at {} (index.json missing)",
                        self.dir.display()
                    ),
                )
            } else {
                io_error("cannot read", &path, e)
            }
        })?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            Error::new(
                ErrorKind::Unsupported,
                format!("{} is not JSON: {e}", path.display()),
            )
        })?;
        if !value.get("manifests").is_some_and(|m| m.is_array()) {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("{} has no manifests array", path.display()),
            ));
        }
        Ok(value)
    }

    /// The descriptor `index.json` has for `tag` (or for `digest` when given).
    pub async fn resolve(&self, tag: Option<&str>, digest: Option<&Digest>) -> Result<Descriptor> {
        let index = self.read_index().await?;
        let entries: Vec<Descriptor> =
            serde_json::from_value(index["manifests"].clone()).map_err(|e| {
                Error::new(
                    ErrorKind::Unsupported,
                    format!("{}/index.json: bad descriptor: {e}", self.dir.display()),
                )
            })?;
        let found = entries.into_iter().find(|d| match (digest, tag) {
            (Some(digest), _) => &d.digest == digest,
            (None, Some(tag)) => d
                .annotations
                .get(REF_NAME_ANNOTATION)
                .is_some_and(|t| t == tag),
            (None, None) => false,
        });
        match (found, digest) {
            (Some(d), _) => Ok(d),
            // A digest that is not an index.json entry may still be a manifest blob in the layout.
            (None, Some(digest))
                if tokio::fs::try_exists(self.blob_path(digest))
                    .await
                    .unwrap_or(false) =>
            {
                let bytes = self.read_manifest(digest).await?;
                let info = parse_manifest(
                    &bytes,
                    None,
                    &self.dir.display().to_string(),
                    digest.as_str(),
                )?;
                Ok(Descriptor::for_bytes(&info.media_type, &bytes))
            }
            (None, _) => Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "{} not in the OCI image layout",
                    digest
                        .map(|d| d.to_string())
                        .or(tag.map(str::to_string))
                        .unwrap_or_default()
                ),
            )
            .with_endpoint(self.dir.display().to_string())),
        }
    }

    /// Reads a manifest blob and verifies its digest.
    pub async fn read_manifest(&self, digest: &Digest) -> Result<Bytes> {
        let path = self.blob_path(digest);
        let bytes = tokio::fs::read(&path).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::new(
                    ErrorKind::NotFound,
                    format!("manifest {digest} missing from the layout"),
                )
                .with_endpoint(self.dir.display().to_string())
            } else {
                io_error("cannot read", &path, e)
            }
        })?;
        let actual = Digest::of(&bytes);
        if &actual != digest {
            return Err(Error::new(
                ErrorKind::DigestMismatch,
                format!("{} holds {actual}", path.display()),
            )
            .with_artifact(digest.to_string()));
        }
        Ok(Bytes::from(bytes))
    }

    /// Whether the layout holds blob `digest` with `size` bytes.
    pub async fn has_blob(&self, digest: &Digest, size: u64) -> bool {
        tokio::fs::metadata(self.blob_path(digest))
            .await
            .is_ok_and(|m| m.is_file() && m.len() == size)
    }

    /// Streams blob `digest` from byte `offset` on (unverified: the caller hashes).
    pub async fn open_blob(&self, digest: &Digest, offset: u64) -> Result<ByteStream> {
        let path = self.blob_path(digest);
        let mut file = tokio::fs::File::open(&path).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::new(
                    ErrorKind::NotFound,
                    format!("blob {digest} missing from the layout"),
                )
                .with_endpoint(self.dir.display().to_string())
            } else {
                io_error("cannot open", &path, e)
            }
        })?;
        if offset > 0 {
            file.seek(std::io::SeekFrom::Start(offset))
                .await
                .map_err(|e| io_error("cannot seek", &path, e))?;
        }
        let stream = tokio_util::io::ReaderStream::with_capacity(file, READ_BUFFER_BYTES)
            .map(move |r| r.map_err(|e| io_error("cannot read", &path, e)));
        Ok(Box::pin(stream))
    }

    /// Writes a blob from `open(offset)` streams, verifying size and digest before it becomes
    /// visible; resumes from a partial file left by an interrupted run. `on_bytes` is told of
    /// every chunk written. Transient source errors are retried by reopening at the current
    /// offset (up to `max_attempts` in a row).
    pub async fn write_blob<F, Fut>(
        &self,
        desc: &Descriptor,
        max_attempts: u32,
        mut open: F,
        on_bytes: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<()>
    where
        F: FnMut(u64) -> Fut,
        Fut: std::future::Future<Output = Result<ByteStream>>,
    {
        let partial = self.partial_path(&desc.digest);
        let parent = self.dir.join(PARTIAL_DIR);
        tokio::fs::create_dir_all(&parent)
            .await
            .map_err(|e| io_error("cannot create", &parent, e))?;
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&partial)
            .await
            .map_err(|e| io_error("cannot open", &partial, e))?;
        // Hash what an earlier run left, if it is a prefix of the right size.
        let mut hasher = Sha256::new();
        let mut written = file
            .metadata()
            .await
            .map_err(|e| io_error("cannot stat", &partial, e))?
            .len();
        if written > desc.size {
            file.set_len(0)
                .await
                .map_err(|e| io_error("cannot truncate", &partial, e))?;
            written = 0;
        } else if written > 0 {
            let mut reader = tokio::fs::File::open(&partial)
                .await
                .map_err(|e| io_error("cannot open", &partial, e))?;
            let mut buf = vec![0u8; READ_BUFFER_BYTES];
            loop {
                let n = reader
                    .read(&mut buf)
                    .await
                    .map_err(|e| io_error("cannot read", &partial, e))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
            tracing::info!(
                "resuming {} at byte {written} of {}",
                desc.digest,
                desc.size
            );
        }
        let mut failures = 0;
        while written < desc.size {
            let mut stream = match open(written).await {
                Ok(s) => s,
                Err(e) if e.is_transient() && failures + 1 < max_attempts => {
                    failures += 1;
                    tracing::warn!("{e}; reopening");
                    tokio::time::sleep(std::time::Duration::from_millis(200 * u64::from(failures)))
                        .await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut progressed = false;
            let mut failed = None;
            while let Some(chunk) = stream.next().await {
                let chunk = match chunk {
                    Ok(c) => c,
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                };
                let take = chunk.len().min((desc.size - written) as usize);
                hasher.update(&chunk[..take]);
                file.write_all(&chunk[..take])
                    .await
                    .map_err(|e| io_error("cannot write", &partial, e))?;
                written += take as u64;
                progressed = true;
                on_bytes(take as u64);
                if written == desc.size {
                    break;
                }
            }
            match failed {
                Some(e) if e.is_transient() && (progressed || failures + 1 < max_attempts) => {
                    failures = if progressed { 0 } else { failures + 1 };
                    tracing::warn!("{e}; resuming at byte {written}");
                }
                Some(e) => return Err(e),
                None if written < desc.size => {
                    let _ = tokio::fs::remove_file(&partial).await;
                    return Err(Error::new(
                        ErrorKind::DigestMismatch,
                        format!("source ended after {written} of {} bytes", desc.size),
                    )
                    .with_artifact(desc.digest.to_string()));
                }
                None => {}
            }
        }
        file.flush()
            .await
            .map_err(|e| io_error("cannot write", &partial, e))?;
        let actual = Digest::from_hasher(hasher);
        if actual != desc.digest {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(Error::new(
                ErrorKind::DigestMismatch,
                format!("expected {}, got {actual}", desc.digest),
            )
            .with_artifact(desc.digest.to_string()));
        }
        file.sync_all()
            .await
            .map_err(|e| io_error("cannot sync", &partial, e))?;
        drop(file);
        let target = self.blob_path(&desc.digest);
        tokio::fs::rename(&partial, &target)
            .await
            .map_err(|e| io_error("cannot publish", &target, e))?;
        Ok(())
    }

    /// Writes manifest bytes as a blob (named by their digest).
    pub async fn put_manifest(&self, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::of(bytes);
        let path = self.blob_path(&digest);
        if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
            write_atomically(&path, bytes).await?;
        }
        Ok(digest)
    }

    /// Points `tag` at `desc` in `index.json` (replacing the tag's earlier entry); without a
    /// tag, adds the descriptor untagged if it is not listed yet.
    pub async fn set_tag(&self, desc: &Descriptor, tag: Option<&str>) -> Result<()> {
        let mut index = self.read_index().await?;
        let entries = index["manifests"]
            .as_array_mut()
            .expect("checked by read_index");
        let ref_of = |e: &serde_json::Value| {
            e["annotations"][REF_NAME_ANNOTATION]
                .as_str()
                .map(str::to_string)
        };
        match tag {
            Some(tag) => {
                entries.retain(|e| ref_of(e).as_deref() != Some(tag));
                let mut entry = desc.clone();
                entry
                    .annotations
                    .insert(REF_NAME_ANNOTATION.to_string(), tag.to_string());
                entries.push(
                    serde_json::to_value(&entry)
                        .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?,
                );
            }
            None => {
                if !entries
                    .iter()
                    .any(|e| e["digest"].as_str() == Some(desc.digest.as_str()))
                {
                    entries.push(
                        serde_json::to_value(desc)
                            .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?,
                    );
                }
            }
        }
        let bytes =
            serde_json::to_vec(&index).map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
        write_atomically(&self.dir.join("index.json"), &bytes).await
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, synced.
async fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    tokio::fs::create_dir_all(parent)
        .await
        .map_err(|e| io_error("cannot create", parent, e))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = parent.join(format!(
        ".{name}.tmp-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let mut file = tokio::fs::File::create(&tmp)
        .await
        .map_err(|e| io_error("cannot create", &tmp, e))?;
    file.write_all(bytes)
        .await
        .map_err(|e| io_error("cannot write", &tmp, e))?;
    file.sync_all()
        .await
        .map_err(|e| io_error("cannot sync", &tmp, e))?;
    drop(file);
    tokio::fs::rename(&tmp, path)
        .await
        .map_err(|e| io_error("cannot rename into", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn stream_of(bytes: &'static [u8], offset: u64) -> ByteStream {
        let chunks: Vec<Result<Bytes>> = bytes[offset as usize..]
            .chunks(7)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        Box::pin(futures::stream::iter(chunks))
    }

    #[tokio::test]
    async fn a_partial_blob_is_resumed_and_verified() {
        static DATA: &[u8] = b"the quick brown fox jumps over the lazy dog, twice over";
        let dir = tempfile::tempdir().unwrap();
        let layout = OciLayout::new(dir.path().join("l"));
        layout.init().await.unwrap();
        let desc = Descriptor::for_bytes("application/octet-stream", DATA);
        // An earlier run left the first 20 bytes.
        std::fs::create_dir_all(dir.path().join("l/.partial")).unwrap();
        std::fs::write(layout.partial_path(&desc.digest), &DATA[..20]).unwrap();
        let offsets = Mutex::new(Vec::new());
        let written = std::sync::atomic::AtomicU64::new(0);
        layout
            .write_blob(
                &desc,
                3,
                |offset| {
                    offsets.lock().unwrap().push(offset);
                    std::future::ready(Ok(stream_of(DATA, offset)))
                },
                &|n| {
                    written.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                },
            )
            .await
            .unwrap();
        assert_eq!(*offsets.lock().unwrap(), [20]);
        assert_eq!(written.into_inner(), DATA.len() as u64 - 20);
        assert_eq!(std::fs::read(layout.blob_path(&desc.digest)).unwrap(), DATA);
        assert!(layout.has_blob(&desc.digest, desc.size).await);
    }

    #[tokio::test]
    async fn corrupt_content_never_becomes_a_blob() {
        static DATA: &[u8] = b"some content";
        let dir = tempfile::tempdir().unwrap();
        let layout = OciLayout::new(dir.path());
        layout.init().await.unwrap();
        let mut desc = Descriptor::for_bytes("application/octet-stream", DATA);
        desc.digest = Digest::of(b"other content");
        let error = layout
            .write_blob(
                &desc,
                1,
                |o| std::future::ready(Ok(stream_of(DATA, o))),
                &|_| {},
            )
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::DigestMismatch);
        assert!(!layout.has_blob(&desc.digest, desc.size).await);
        assert!(
            !layout.partial_path(&desc.digest).exists(),
            "the partial file is removed"
        );
    }

    #[tokio::test]
    async fn tags_live_in_index_json() {
        let dir = tempfile::tempdir().unwrap();
        let layout = OciLayout::new(dir.path());
        layout.init().await.unwrap();
        let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"a","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
        let digest = layout.put_manifest(manifest).await.unwrap();
        let desc = Descriptor::for_bytes(super::super::manifest::OCI_MANIFEST, manifest);
        layout.set_tag(&desc, Some("v1")).await.unwrap();
        layout.set_tag(&desc, Some("v1")).await.unwrap();
        assert_eq!(
            layout.resolve(Some("v1"), None).await.unwrap().digest,
            digest
        );
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("index.json")).unwrap()).unwrap();
        assert_eq!(
            index["manifests"].as_array().unwrap().len(),
            1,
            "re-tagging replaces the entry"
        );
        assert_eq!(
            layout.resolve(Some("v2"), None).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }
}
