//! One place images live — a repository of a registry, or an OCI image layout directory — with
//! the operations copying needs, the same for both.

use bytes::Bytes;

use super::client::{ByteStream, RegistryClient};
use super::digest::Digest;
use super::layout::OciLayout;
use super::manifest::{Descriptor, parse_manifest};
use crate::error::{Error, ErrorKind, Result};

/// A repository of a registry, or an OCI image layout.
#[derive(Debug, Clone)]
pub enum OciRepo {
    /// A registry repository.
    Registry {
        /// The registry client (endpoint and credentials).
        client: RegistryClient,
        /// The full repository path.
        repository: String,
    },
    /// An OCI image layout directory.
    Layout(OciLayout),
}

/// A root manifest as found at a source.
#[derive(Debug, Clone)]
pub struct RootManifest {
    /// Its exact bytes.
    pub bytes: Bytes,
    /// Its descriptor (media type, digest, size).
    pub descriptor: Descriptor,
}

impl OciRepo {
    /// A registry repository.
    pub fn registry(client: RegistryClient, repository: impl Into<String>) -> Self {
        Self::Registry {
            client,
            repository: repository.into(),
        }
    }

    /// Where this is, for messages (`http://host:5000/v2/repo` or a directory).
    pub fn label(&self) -> String {
        match self {
            Self::Registry { client, repository } => {
                format!(
                    "{}/v2/{repository}",
                    client.endpoint().base.as_str().trim_end_matches('/')
                )
            }
            Self::Layout(layout) => layout.dir().display().to_string(),
        }
    }

    /// How something published here is named: `host[:port]/repo:tag` (or `@digest`) for a
    /// registry, `oci:<dir>:<tag>` (or `@digest`) for a layout, as skopeo writes them.
    pub fn reference(&self, tag: Option<&str>, digest: &Digest) -> String {
        let base = match self {
            Self::Registry { client, repository } => {
                format!("{}/{repository}", client.endpoint().host())
            }
            Self::Layout(layout) => format!("oci:{}", layout.dir().display()),
        };
        match tag {
            Some(t) => format!("{base}:{t}"),
            None => format!("{base}@{digest}"),
        }
    }

    /// A registry client's host, for per-host limits.
    pub fn host(&self) -> Option<String> {
        match self {
            Self::Registry { client, .. } => Some(client.endpoint().host()),
            Self::Layout(_) => None,
        }
    }

    /// Resolves a tag or digest to the root manifest's bytes and descriptor.
    pub async fn fetch_root(
        &self,
        tag: Option<&str>,
        digest: Option<&Digest>,
    ) -> Result<RootManifest> {
        match self {
            Self::Registry { client, repository } => {
                let reference = digest
                    .map(|d| d.to_string())
                    .or(tag.map(str::to_string))
                    .unwrap_or_default();
                let fetched = client.get_manifest(repository, &reference).await?;
                let info = parse_manifest(
                    &fetched.bytes,
                    fetched.media_type.as_deref(),
                    &self.label(),
                    &reference,
                )?;
                let mut descriptor = Descriptor::for_bytes(&info.media_type, &fetched.bytes);
                descriptor.artifact_type = None;
                Ok(RootManifest {
                    bytes: fetched.bytes,
                    descriptor,
                })
            }
            Self::Layout(layout) => {
                let descriptor = layout.resolve(tag, digest).await?;
                let bytes = layout.read_manifest(&descriptor.digest).await?;
                let info = parse_manifest(
                    &bytes,
                    Some(&descriptor.media_type),
                    &self.label(),
                    descriptor.digest.as_str(),
                )?;
                Ok(RootManifest {
                    descriptor: Descriptor::for_bytes(&info.media_type, &bytes),
                    bytes,
                })
            }
        }
    }

    /// Fetches the manifest `desc` points to, verifying digest and size.
    pub async fn fetch_manifest(&self, desc: &Descriptor) -> Result<Bytes> {
        let bytes = match self {
            Self::Registry { client, repository } => {
                client
                    .get_manifest(repository, desc.digest.as_str())
                    .await?
                    .bytes
            }
            Self::Layout(layout) => layout.read_manifest(&desc.digest).await?,
        };
        if bytes.len() as u64 != desc.size {
            return Err(Error::new(
                ErrorKind::DigestMismatch,
                format!(
                    "manifest has {} bytes, its descriptor says {}",
                    bytes.len(),
                    desc.size
                ),
            )
            .with_endpoint(self.label())
            .with_artifact(desc.digest.to_string()));
        }
        Ok(bytes)
    }

    /// Whether the manifest with `digest` is here.
    pub async fn has_manifest(&self, digest: &Digest) -> Result<bool> {
        match self {
            Self::Registry { client, repository } => Ok(client
                .head_manifest(repository, digest.as_str())
                .await?
                .is_some()),
            Self::Layout(layout) => Ok(tokio::fs::try_exists(layout.blob_path(digest))
                .await
                .unwrap_or(false)),
        }
    }

    /// The digest `tag` points to here, if any.
    pub async fn tag_digest(&self, tag: &str) -> Result<Option<Digest>> {
        match self {
            Self::Registry { client, repository } => client.head_manifest(repository, tag).await,
            Self::Layout(layout) => match layout.resolve(Some(tag), None).await {
                Ok(d) => Ok(Some(d.digest)),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            },
        }
    }

    /// Whether blob `desc` is here.
    pub async fn has_blob(&self, desc: &Descriptor) -> Result<bool> {
        match self {
            Self::Registry { client, repository } => {
                client.has_blob(repository, &desc.digest).await
            }
            Self::Layout(layout) => Ok(layout.has_blob(&desc.digest, desc.size).await),
        }
    }

    /// Streams blob `digest` from byte `offset` on.
    pub async fn open_blob(&self, digest: &Digest, offset: u64) -> Result<ByteStream> {
        match self {
            Self::Registry { client, repository } => {
                client.get_blob(repository, digest, offset).await
            }
            Self::Layout(layout) => layout.open_blob(digest, offset).await,
        }
    }

    /// Publishes manifest `bytes` under `tag` (or only by digest). Returns whether the
    /// destination processed a `subject` itself (a registry with the referrers API).
    pub async fn push_manifest(
        &self,
        bytes: &Bytes,
        media_type: &str,
        tag: Option<&str>,
    ) -> Result<bool> {
        let digest = Digest::of(bytes);
        match self {
            Self::Registry { client, repository } => {
                let reference = tag
                    .map(str::to_string)
                    .unwrap_or_else(|| digest.to_string());
                client
                    .put_manifest(repository, &reference, media_type, bytes.clone())
                    .await
            }
            Self::Layout(layout) => {
                layout.init().await?;
                layout.put_manifest(bytes).await?;
                if tag.is_some() {
                    layout
                        .set_tag(&Descriptor::for_bytes(media_type, bytes), tag)
                        .await?;
                }
                Ok(false)
            }
        }
    }

    /// The referrers of `digest` through the referrers API (`None`: not offered here).
    pub async fn referrers(&self, digest: &Digest) -> Result<Option<Vec<Descriptor>>> {
        match self {
            Self::Registry { client, repository } => client.referrers(repository, digest).await,
            Self::Layout(_) => Ok(None),
        }
    }

    /// Whether two repos are on the same registry with the same credentials (so a blob can be
    /// mounted from one into the other).
    pub fn same_registry(&self, other: &OciRepo) -> bool {
        match (self, other) {
            (Self::Registry { client: a, .. }, Self::Registry { client: b, .. }) => {
                a.endpoint().base == b.endpoint().base && a.auth() == b.auth()
            }
            _ => false,
        }
    }
}
