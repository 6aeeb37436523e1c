//! Referrers (signatures, SBOMs, attestations) travelling with their image: found through the
//! OCI referrers API, else through the tag scheme (`sha256-<hex>.sig`, `.att`, `.sbom`), and
//! copied the same way. A destination without the referrers API gets the OCI 1.1 fallback: an
//! index tagged `sha256-<hex>` listing the subject's referrers.

use std::collections::HashSet;

use bytes::Bytes;

use super::copy::{Copier, CopyOptions};
use super::digest::Digest;
use super::manifest::{Descriptor, OCI_INDEX};
use super::repo::OciRepo;
use crate::error::Result;

/// Suffixes of the tag scheme cosign and others use for artifacts about `sha256-<hex>`.
pub const TAG_SCHEME_SUFFIXES: [&str; 3] = ["sig", "att", "sbom"];

/// Copies the referrers of every digest in `subjects`; returns the referrer manifests copied.
pub(crate) async fn copy_referrers(
    copier: &Copier,
    src: &OciRepo,
    dst: &OciRepo,
    subjects: &[Digest],
) -> Result<Vec<Digest>> {
    let plain = copier.with_options(CopyOptions {
        platforms: None,
        referrers: false,
        ..copier.options().clone()
    });
    let mut copied = Vec::new();
    let mut done = HashSet::new();
    for subject in subjects {
        if !done.insert(subject.clone()) {
            continue;
        }
        if let Some(list) = src.referrers(subject).await? {
            let mut added = Vec::new();
            for referrer in list {
                plain
                    .copy(src, None, Some(&referrer.digest), dst, None)
                    .await?;
                copied.push(referrer.digest.clone());
                added.push(referrer);
            }
            if !added.is_empty() && dst.referrers(subject).await?.is_none() {
                update_fallback_index(dst, subject, &added).await?;
            }
        }
        for suffix in TAG_SCHEME_SUFFIXES {
            let tag = format!("{}.{suffix}", subject.tag_form());
            if let Some(digest) = src.tag_digest(&tag).await? {
                plain.copy(src, Some(&tag), None, dst, Some(&tag)).await?;
                tracing::info!("copied {tag} ({digest})");
                copied.push(digest);
            }
        }
    }
    Ok(copied)
}

/// Adds `referrers` to the `sha256-<hex>` index of `subject` at `dst`.
async fn update_fallback_index(
    dst: &OciRepo,
    subject: &Digest,
    referrers: &[Descriptor],
) -> Result<()> {
    let tag = subject.tag_form();
    let mut index: serde_json::Value = match dst.tag_digest(&tag).await? {
        Some(digest) => serde_json::from_slice(&dst.fetch_root(None, Some(&digest)).await?.bytes)
            .unwrap_or_default(),
        None => serde_json::Value::Null,
    };
    if !index.get("manifests").is_some_and(|m| m.is_array()) {
        index = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []});
    }
    let entries = index["manifests"].as_array_mut().expect("just ensured");
    let mut changed = false;
    for referrer in referrers {
        if !entries
            .iter()
            .any(|e| e["digest"].as_str() == Some(referrer.digest.as_str()))
        {
            let mut entry = referrer.clone();
            entry.platform = None;
            entries.push(serde_json::to_value(&entry).unwrap_or_default());
            changed = true;
        }
    }
    if changed {
        let bytes = Bytes::from(serde_json::to_vec(&index).unwrap_or_default());
        dst.push_manifest(&bytes, OCI_INDEX, Some(&tag)).await?;
    }
    Ok(())
}
