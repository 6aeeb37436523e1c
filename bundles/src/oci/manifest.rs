//! Manifests and indexes as far as copying needs them: their media types, the descriptors they
//! point to, platforms, and building a platform subset of an index. Manifests are always kept
//! as their raw bytes; these types only read them.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use crate::error::{Error, ErrorKind, Result};

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest v2 schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// The empty config of OCI artifacts (`{}`).
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// Every manifest media type we accept, for `Accept` headers.
pub const ACCEPTED_MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// A content descriptor (OCI image spec).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// The platform, for index entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// The artifact type, for referrers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    /// A descriptor for `bytes` of type `media_type`.
    pub fn for_bytes(media_type: &str, bytes: &[u8]) -> Self {
        Descriptor {
            media_type: media_type.to_string(),
            digest: Digest::of(bytes),
            size: bytes.len() as u64,
            platform: None,
            artifact_type: None,
            annotations: BTreeMap::new(),
        }
    }
}

/// A platform (`os/architecture[/variant]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// Architecture (`amd64`, `arm64`, ...).
    pub architecture: String,
    /// Operating system (`linux`, ...).
    pub os: String,
    /// CPU variant (`v8`, `v7`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// OS version, if any.
    #[serde(
        default,
        rename = "os.version",
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
}

impl Platform {
    /// Parses `os/arch[/variant]`.
    pub fn parse(input: &str) -> Result<Self> {
        let parts: Vec<&str> = input.trim().split('/').collect();
        let valid = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
        };
        match parts.as_slice() {
            [os, arch] if valid(os) && valid(arch) => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: None,
                os_version: None,
            }),
            [os, arch, variant] if valid(os) && valid(arch) && valid(variant) => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: Some(variant.to_string()),
                os_version: None,
            }),
            _ => Err(Error::invalid_parameter(format!(
                "platform `{input}`: expected os/architecture[/variant], e.g. linux/arm64/v8"
            ))),
        }
    }

    /// Parses a comma-separated list of platforms.
    pub fn parse_list(input: &str) -> Result<Vec<Self>> {
        input
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(Platform::parse)
            .collect()
    }

    /// Whether an index entry's platform is selected by this wanted platform (a wanted platform
    /// without a variant matches every variant).
    pub fn selects(&self, candidate: &Platform) -> bool {
        self.os == candidate.os
            && self.architecture == candidate.architecture
            && (self.variant.is_none() || self.variant == candidate.variant)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// What a manifest's bytes say, as far as copying needs it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    blobs: Option<Vec<Descriptor>>,
    #[serde(default)]
    subject: Option<Descriptor>,
}

/// A parsed manifest or index: its kind and what it points to.
#[derive(Debug, Clone)]
pub struct ManifestInfo {
    /// The media type (from the transport, else from the `mediaType` field).
    pub media_type: String,
    /// Child manifests (indexes only).
    pub manifests: Vec<Descriptor>,
    /// Blobs: config then layers (image manifests only).
    pub blobs: Vec<Descriptor>,
    /// The subject, for referrers.
    pub subject: Option<Descriptor>,
}

impl ManifestInfo {
    /// Whether this is an index / manifest list.
    pub fn is_index(&self) -> bool {
        is_index_type(&self.media_type)
    }
}

/// Whether `media_type` names an index or manifest list.
pub fn is_index_type(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// Parses manifest bytes. `transport_type` is the Content-Type (or descriptor media type) the
/// bytes arrived with, if any; `endpoint`/`reference` go into errors.
pub fn parse_manifest(
    bytes: &[u8],
    transport_type: Option<&str>,
    endpoint: &str,
    reference: &str,
) -> Result<ManifestInfo> {
    let invalid = |reason: String| {
        Error::new(
            ErrorKind::Unsupported,
            format!("invalid manifest: {reason}"),
        )
        .with_endpoint(endpoint)
        .with_artifact(reference)
    };
    let raw: RawManifest =
        serde_json::from_slice(bytes).map_err(|e| invalid(format!("not a JSON manifest: {e}")))?;
    if raw.schema_version != Some(2) {
        return Err(invalid(format!(
            "schemaVersion {:?} is not supported (Docker schema 1 manifests cannot be copied digest-exactly)",
            raw.schema_version
        )));
    }
    let transport = transport_type
        .map(|t| t.split(';').next().unwrap_or(t).trim().to_string())
        .filter(|t| {
            matches!(
                t.as_str(),
                OCI_MANIFEST | OCI_INDEX | DOCKER_MANIFEST | DOCKER_MANIFEST_LIST
            )
        });
    let media_type = match (raw.media_type.clone(), transport) {
        (Some(m), _) => m,
        (None, Some(t)) => t,
        (None, None) if raw.manifests.is_some() => OCI_INDEX.to_string(),
        (None, None) => OCI_MANIFEST.to_string(),
    };
    if is_index_type(&media_type) {
        let manifests = raw
            .manifests
            .ok_or_else(|| invalid("index without manifests".into()))?;
        Ok(ManifestInfo {
            media_type,
            manifests,
            blobs: Vec::new(),
            subject: raw.subject,
        })
    } else if media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST {
        let mut blobs = Vec::new();
        blobs.extend(raw.config);
        blobs.extend(raw.layers.unwrap_or_default());
        blobs.extend(raw.blobs.unwrap_or_default());
        if blobs.is_empty() {
            return Err(invalid("manifest without config or layers".into()));
        }
        Ok(ManifestInfo {
            media_type,
            manifests: Vec::new(),
            blobs,
            subject: raw.subject,
        })
    } else {
        Err(invalid(format!(
            "unsupported manifest media type {media_type}"
        )))
    }
}

/// Builds the bytes of a new index that keeps only the entries whose platform one of `wanted`
/// selects. Every other field of the original index is kept as it was. Returns the new bytes
/// and how many entries were kept.
pub fn subset_index(bytes: &[u8], wanted: &[Platform]) -> Result<(Vec<u8>, usize), String> {
    let mut value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let entries = value
        .get_mut("manifests")
        .and_then(|m| m.as_array_mut())
        .ok_or_else(|| "index without manifests".to_string())?;
    entries.retain(|entry| {
        entry
            .get("platform")
            .and_then(|p| serde_json::from_value::<Platform>(p.clone()).ok())
            .is_some_and(|p| wanted.iter().any(|w| w.selects(&p)))
    });
    let kept = entries.len();
    if kept == 0 {
        let list: Vec<String> = wanted.iter().map(|p| p.to_string()).collect();
        return Err(format!(
            "no entry of the index matches the platforms {}",
            list.join(", ")
        ));
    }
    let out = serde_json::to_vec(&value).map_err(|e| e.to_string())?;
    Ok((out, kept))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_index_and_subset() {
        let child = Digest::of(b"m");
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[
            {{"mediaType":"{OCI_MANIFEST}","digest":"{child}","size":1,"platform":{{"os":"linux","architecture":"amd64"}}}},
            {{"mediaType":"{OCI_MANIFEST}","digest":"{child}","size":1,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}}],
            "annotations":{{"a":"b"}}}}"#
        );
        let info = parse_manifest(index.as_bytes(), None, "e", "r").unwrap();
        assert!(info.is_index());
        assert_eq!(info.manifests.len(), 2);
        let (bytes, kept) = subset_index(
            index.as_bytes(),
            &Platform::parse_list("linux/arm64").unwrap(),
        )
        .unwrap();
        assert_eq!(kept, 1);
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["annotations"]["a"], "b");
        assert_eq!(v["manifests"][0]["platform"]["variant"], "v8");
        assert!(
            subset_index(
                index.as_bytes(),
                &Platform::parse_list("linux/s390x").unwrap()
            )
            .is_err()
        );
    }

    #[test]
    fn rejects_schema1_and_garbage() {
        assert!(parse_manifest(br#"{"schemaVersion":1}"#, None, "e", "r").is_err());
        assert!(parse_manifest(b"nope", None, "e", "r").is_err());
        assert!(Platform::parse("linux").is_err());
    }
}
