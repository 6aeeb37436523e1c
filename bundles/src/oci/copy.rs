//! The copy engine: an image (a manifest, or an index and everything below it) from one
//! [`OciRepo`] to another, digest-exactly.
//!
//! Manifests travel as their exact bytes, so an index keeps its digest (unless a platform
//! subset is asked for: then a new index is built and old → new is reported). Every blob is
//! skipped when the destination has it (HEAD), mounted when both sides are the same registry,
//! and otherwise streamed and verified ([`super::upload`], [`OciLayout::write_blob`]). Blobs
//! move in parallel, bounded overall and per registry host. Manifests are pushed children
//! first, so a destination never holds a manifest whose content is missing; a destination that
//! already holds the root manifest is complete and costs one HEAD.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::{StreamExt as _, TryStreamExt as _};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::client::UploadStart;
use super::digest::Digest;
use super::layout::OciLayout;
use super::manifest::{Descriptor, Platform, parse_manifest, subset_index};
use super::repo::{OciRepo, RootManifest};
use super::upload::upload_blob;
use crate::error::{Error, ErrorKind, Result};
use crate::progress::{BlobStatus, Reporter};

/// Default number of blobs moved at once.
pub const DEFAULT_BLOB_CONCURRENCY: usize = 8;
/// Default number of blob transfers at once per registry host.
pub const DEFAULT_PER_HOST_LIMIT: usize = 6;
/// Default size of one upload chunk (one PATCH request).
pub const DEFAULT_CHUNK_BYTES: u64 = 64 * 1024 * 1024;
/// How many child manifests are fetched at once.
const MANIFEST_FETCH_CONCURRENCY: usize = 8;
/// Deepest nesting of indexes followed.
const INDEX_DEPTH_LIMIT: usize = 4;

/// How to copy.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Keep only these platforms of an index (a new index is built; its digest differs).
    pub platforms: Option<Vec<Platform>>,
    /// Also copy the referrers (signatures, SBOMs, attestations) of every manifest copied.
    pub referrers: bool,
    /// Blobs moved at once.
    pub blob_concurrency: usize,
    /// Blob transfers at once per registry host (source and destination).
    pub per_host_limit: usize,
    /// Bytes per upload request.
    pub chunk_bytes: u64,
}

impl Default for CopyOptions {
    fn default() -> Self {
        Self {
            platforms: None,
            referrers: false,
            blob_concurrency: DEFAULT_BLOB_CONCURRENCY,
            per_host_limit: DEFAULT_PER_HOST_LIMIT,
            chunk_bytes: DEFAULT_CHUNK_BYTES,
        }
    }
}

/// What a copy did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyOutcome {
    /// The digest of the root manifest at the source.
    pub source_digest: Option<Digest>,
    /// The digest of the root manifest as pushed (differs only for a platform subset).
    pub digest: Option<Digest>,
    /// Blobs whose bytes were transferred.
    pub blobs_copied: u64,
    /// Blobs the destination already had.
    pub blobs_skipped: u64,
    /// Blobs mounted from another repository of the destination registry.
    pub blobs_mounted: u64,
    /// Bytes transferred.
    pub bytes_copied: u64,
    /// Manifests pushed (root included).
    pub manifests_pushed: u64,
    /// Referrer manifests copied.
    pub referrers: Vec<Digest>,
}

/// Limits concurrent blob transfers per registry host.
#[derive(Debug, Clone, Default)]
pub struct HostLimits {
    per_host: usize,
    hosts: Arc<std::sync::Mutex<HashMap<String, Arc<Semaphore>>>>,
}

impl HostLimits {
    /// At most `per_host` transfers per host.
    pub fn new(per_host: usize) -> Self {
        Self {
            per_host: per_host.max(1),
            hosts: Default::default(),
        }
    }

    /// Takes one slot of each host (in a fixed order, so two transfers never deadlock).
    pub async fn acquire(&self, hosts: &[Option<String>]) -> Vec<OwnedSemaphorePermit> {
        let mut names: Vec<&String> = hosts.iter().flatten().collect();
        names.sort();
        names.dedup();
        let mut permits = Vec::with_capacity(names.len());
        for name in names {
            let semaphore = {
                let mut map = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
                map.entry(name.clone())
                    .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)))
                    .clone()
            };
            permits.push(
                semaphore
                    .acquire_owned()
                    .await
                    .expect("semaphores are never closed"),
            );
        }
        permits
    }
}

/// One manifest of the tree being copied.
#[derive(Debug, Clone)]
struct Node {
    descriptor: Descriptor,
    bytes: Bytes,
}

/// Copies images between repos, reporting to a [`Reporter`].
#[derive(Debug, Clone)]
pub struct Copier {
    options: CopyOptions,
    limits: HostLimits,
    reporter: Reporter,
}

#[derive(Default)]
struct Counters {
    copied: AtomicU64,
    skipped: AtomicU64,
    mounted: AtomicU64,
    bytes: AtomicU64,
    manifests: AtomicU64,
}

impl Copier {
    /// A copier with `options`, reporting to `reporter`.
    pub fn new(options: CopyOptions, reporter: Reporter) -> Self {
        let limits = HostLimits::new(options.per_host_limit);
        Self {
            options,
            limits,
            reporter,
        }
    }

    /// The options in use.
    pub fn options(&self) -> &CopyOptions {
        &self.options
    }

    /// The same copier (sharing its host limits and reporter) with other options.
    pub fn with_options(&self, options: CopyOptions) -> Self {
        Self {
            options,
            limits: self.limits.clone(),
            reporter: self.reporter.clone(),
        }
    }

    /// Copies the image `tag`/`digest` of `src` to `dst`, tagging it `dst_tag` there (or
    /// pushing it by digest only).
    pub async fn copy(
        &self,
        src: &OciRepo,
        tag: Option<&str>,
        digest: Option<&Digest>,
        dst: &OciRepo,
        dst_tag: Option<&str>,
    ) -> Result<CopyOutcome> {
        let root = src.fetch_root(tag, digest).await?;
        self.copy_root(src, root, dst, dst_tag).await
    }

    /// Copies an already fetched root manifest and everything below it.
    pub async fn copy_root(
        &self,
        src: &OciRepo,
        root: RootManifest,
        dst: &OciRepo,
        dst_tag: Option<&str>,
    ) -> Result<CopyOutcome> {
        let counters = Counters::default();
        let source_digest = root.descriptor.digest.clone();
        let mut root_node = Node {
            descriptor: root.descriptor.clone(),
            bytes: root.bytes.clone(),
        };
        let mut wanted_children: Option<HashSet<Digest>> = None;
        if let Some(platforms) = &self.options.platforms {
            if super::manifest::is_index_type(&root.descriptor.media_type) {
                let (bytes, _) = subset_index(&root.bytes, platforms).map_err(|reason| {
                    Error::new(ErrorKind::InvalidParameter, reason)
                        .with_endpoint(src.label())
                        .with_artifact(source_digest.to_string())
                })?;
                let bytes = Bytes::from(bytes);
                let info = parse_manifest(
                    &bytes,
                    Some(&root.descriptor.media_type),
                    &src.label(),
                    source_digest.as_str(),
                )?;
                wanted_children = Some(info.manifests.iter().map(|d| d.digest.clone()).collect());
                root_node = Node {
                    descriptor: Descriptor::for_bytes(&root.descriptor.media_type, &bytes),
                    bytes,
                };
                let list: Vec<String> = platforms.iter().map(|p| p.to_string()).collect();
                self.reporter.digest_changed(
                    source_digest.as_str(),
                    root_node.descriptor.digest.as_str(),
                    &format!("platform subset {}", list.join(",")),
                );
            } else {
                tracing::warn!(
                    "{source_digest} is a single-platform manifest; the platform subset does not apply"
                );
            }
        }
        let final_digest = root_node.descriptor.digest.clone();

        let complete = dst.has_manifest(&final_digest).await?;
        let tree = if complete && !self.options.referrers {
            vec![root_node.clone()]
        } else {
            self.gather(src, &root_node, wanted_children.as_ref())
                .await?
        };
        if complete {
            tracing::info!(
                "{} already holds {final_digest}: nothing to copy",
                dst.label()
            );
        } else {
            self.copy_blobs(src, dst, &tree, &counters).await?;
            // Children first (all but the root, deepest first), then the root.
            for node in tree.iter().filter(|n| n.descriptor.digest != final_digest) {
                if !dst.has_manifest(&node.descriptor.digest).await? {
                    dst.push_manifest(&node.bytes, &node.descriptor.media_type, None)
                        .await?;
                    counters.manifests.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        let tag_current = match dst_tag {
            Some(t) if complete => dst.tag_digest(t).await? == Some(final_digest.clone()),
            _ => complete,
        };
        if !tag_current {
            dst.push_manifest(&root_node.bytes, &root_node.descriptor.media_type, dst_tag)
                .await?;
            counters.manifests.fetch_add(1, Ordering::Relaxed);
        }
        let reference = dst.reference(dst_tag, &final_digest);
        self.reporter.pushed(&reference, final_digest.as_str());

        let mut referrers = Vec::new();
        if self.options.referrers {
            let subjects: Vec<Digest> = tree
                .iter()
                .map(|n| n.descriptor.digest.clone())
                .chain(std::iter::once(source_digest.clone()))
                .collect();
            referrers =
                Box::pin(super::referrers::copy_referrers(self, src, dst, &subjects)).await?;
        }
        Ok(CopyOutcome {
            source_digest: Some(source_digest),
            digest: Some(final_digest),
            blobs_copied: counters.copied.load(Ordering::Relaxed),
            blobs_skipped: counters.skipped.load(Ordering::Relaxed),
            blobs_mounted: counters.mounted.load(Ordering::Relaxed),
            bytes_copied: counters.bytes.load(Ordering::Relaxed),
            manifests_pushed: counters.manifests.load(Ordering::Relaxed),
            referrers,
        })
    }

    /// Fetches every manifest below `root` (restricted to `wanted` children at the top level),
    /// returned deepest first with the root last.
    async fn gather(
        &self,
        src: &OciRepo,
        root: &Node,
        wanted: Option<&HashSet<Digest>>,
    ) -> Result<Vec<Node>> {
        let mut levels: Vec<Vec<Node>> = vec![vec![root.clone()]];
        let mut seen: HashSet<Digest> = HashSet::from([root.descriptor.digest.clone()]);
        for depth in 0..INDEX_DEPTH_LIMIT {
            let mut children = Vec::new();
            for node in &levels[depth] {
                let info = parse_manifest(
                    &node.bytes,
                    Some(&node.descriptor.media_type),
                    &src.label(),
                    node.descriptor.digest.as_str(),
                )?;
                for child in info.manifests {
                    if depth == 0 && wanted.is_some_and(|w| !w.contains(&child.digest)) {
                        continue;
                    }
                    if seen.insert(child.digest.clone()) {
                        children.push(child);
                    }
                }
            }
            if children.is_empty() {
                break;
            }
            let fetched: Vec<Node> = futures::stream::iter(children)
                .map(|desc| async move {
                    let bytes = src.fetch_manifest(&desc).await?;
                    Ok::<_, Error>(Node {
                        descriptor: desc,
                        bytes,
                    })
                })
                .buffered(MANIFEST_FETCH_CONCURRENCY)
                .try_collect()
                .await?;
            levels.push(fetched);
        }
        Ok(levels.into_iter().rev().flatten().collect())
    }

    /// Moves every blob of `tree` that `dst` lacks.
    async fn copy_blobs(
        &self,
        src: &OciRepo,
        dst: &OciRepo,
        tree: &[Node],
        counters: &Counters,
    ) -> Result<()> {
        let mut blobs: Vec<Descriptor> = Vec::new();
        let mut seen = HashSet::new();
        for node in tree {
            let info = parse_manifest(
                &node.bytes,
                Some(&node.descriptor.media_type),
                &src.label(),
                node.descriptor.digest.as_str(),
            )?;
            for blob in info.blobs {
                if seen.insert(blob.digest.clone()) {
                    blobs.push(blob);
                }
            }
        }
        // Largest first: the long transfers start early and the tail is short.
        blobs.sort_by_key(|b| std::cmp::Reverse(b.size));
        futures::stream::iter(blobs)
            .map(|blob| async move {
                let status = self.copy_blob(src, dst, &blob, counters).await?;
                let counter = match status {
                    BlobStatus::Copied => &counters.copied,
                    BlobStatus::Skipped => &counters.skipped,
                    BlobStatus::Mounted => &counters.mounted,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                self.reporter.blob(blob.digest.as_str(), blob.size, status);
                Ok::<_, Error>(())
            })
            .buffer_unordered(self.options.blob_concurrency.max(1))
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// Moves one blob: skip, mount, or stream and verify.
    async fn copy_blob(
        &self,
        src: &OciRepo,
        dst: &OciRepo,
        blob: &Descriptor,
        counters: &Counters,
    ) -> Result<BlobStatus> {
        if dst.has_blob(blob).await? {
            return Ok(BlobStatus::Skipped);
        }
        let _permits = self.limits.acquire(&[src.host(), dst.host()]).await;
        let on_bytes = |n: u64| {
            counters.bytes.fetch_add(n, Ordering::Relaxed);
            self.reporter.add_bytes(n);
        };
        let open = |offset: u64| src.open_blob(&blob.digest, offset);
        let mut session = None;
        if let (
            OciRepo::Registry { client, repository },
            OciRepo::Registry {
                repository: from, ..
            },
        ) = (dst, src)
            && src.same_registry(dst)
            && from != repository
        {
            match client
                .start_upload(repository, Some((&blob.digest, from)))
                .await
            {
                Ok(UploadStart::Mounted) => return Ok(BlobStatus::Mounted),
                Ok(UploadStart::Session(url)) => session = Some(url),
                Err(e) if !e.is_transient() => tracing::info!(
                    "mounting {} from {from} refused ({e}); copying",
                    blob.digest
                ),
                Err(e) => return Err(e),
            }
        }
        put_blob(
            dst,
            blob,
            session,
            self.options.chunk_bytes,
            open,
            &on_bytes,
            &src.label(),
        )
        .await?;
        Ok(BlobStatus::Copied)
    }
}

/// Writes blob `blob` to `dst` from the streams `open(offset)` gives, verified (see
/// [`upload_blob`] and [`OciLayout::write_blob`]); `session` is an upload session already
/// started, if any. `source` names the source in errors.
pub(crate) async fn put_blob<F, Fut>(
    dst: &OciRepo,
    blob: &Descriptor,
    session: Option<reqwest::Url>,
    chunk_bytes: u64,
    open: F,
    on_bytes: &(dyn Fn(u64) + Send + Sync),
    source: &str,
) -> Result<()>
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = Result<super::client::ByteStream>>,
{
    match dst {
        OciRepo::Registry { client, repository } => {
            let session = match session {
                Some(url) => url,
                None => match client.start_upload(repository, None).await? {
                    UploadStart::Session(url) => url,
                    UploadStart::Mounted => return Ok(()),
                },
            };
            upload_blob(
                client,
                repository,
                blob,
                session,
                chunk_bytes,
                open,
                on_bytes,
                source,
            )
            .await
        }
        OciRepo::Layout(layout) => write_layout_blob(layout, blob, open, on_bytes, source).await,
    }
}

async fn write_layout_blob<F, Fut>(
    layout: &OciLayout,
    blob: &Descriptor,
    open: F,
    on_bytes: &(dyn Fn(u64) + Send + Sync),
    source: &str,
) -> Result<()>
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = Result<super::client::ByteStream>>,
{
    layout.init().await?;
    layout
        .write_blob(
            blob,
            crate::retry::RetryPolicy::default().max_attempts,
            open,
            on_bytes,
        )
        .await
        .map_err(|e| {
            if e.kind() == ErrorKind::DigestMismatch {
                e.or_endpoint(source)
            } else {
                e
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn host_limits_bound_each_host_separately() {
        let limits = HostLimits::new(2);
        let a = Some("a:5000".to_string());
        let b = Some("b:5000".to_string());
        let first = limits.acquire(&[a.clone(), b.clone()]).await;
        let second = limits.acquire(&[a.clone(), None]).await;
        assert_eq!((first.len(), second.len()), (2, 1));
        // Host a is full: a third transfer touching it waits, one touching only b does not.
        let blocked = tokio::time::timeout(
            Duration::from_millis(50),
            limits.acquire(&[b.clone(), a.clone()]),
        )
        .await;
        assert!(blocked.is_err(), "a third slot of host a was granted");
        let other = tokio::time::timeout(
            Duration::from_millis(50),
            limits.acquire(&[b.clone(), b.clone()]),
        )
        .await;
        assert_eq!(
            other.expect("host b has room").len(),
            1,
            "one slot per distinct host"
        );
        drop(second);
        let granted =
            tokio::time::timeout(Duration::from_millis(50), limits.acquire(&[a, None])).await;
        assert!(granted.is_ok(), "a freed slot is granted");
    }
}
