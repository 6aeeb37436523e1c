//! Workflow parameters, as the original ARC hands them to every workflow: `srcType`,
//! `srcRemoteURL`, `srcSecret` (`"true"`/`"false"`), `dstType`, `dstRemoteURL`, `dstSecret`, and the
//! artifact's `spec` flattened to camelCase (`specImage`, `specPath`, `specSha256`, `specOverride`,
//! `specName`, `specVersion`, ...). Values are strings; this module gives typed access with errors
//! that name the parameter.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Well-known parameter names.
pub mod names {
    /// Source Endpoint type.
    pub const SRC_TYPE: &str = "srcType";
    /// Source Endpoint `remoteURL`.
    pub const SRC_REMOTE_URL: &str = "srcRemoteURL";
    /// Whether the source has a Secret (`"true"`/`"false"`).
    pub const SRC_SECRET: &str = "srcSecret";
    /// Destination Endpoint type.
    pub const DST_TYPE: &str = "dstType";
    /// Destination Endpoint `remoteURL`.
    pub const DST_REMOTE_URL: &str = "dstRemoteURL";
    /// Whether the destination has a Secret (`"true"`/`"false"`).
    pub const DST_SECRET: &str = "dstSecret";
    /// OCI image reference (tag or digest), relative to the source endpoint.
    pub const SPEC_IMAGE: &str = "specImage";
    /// File path relative to the source endpoint, or a full URL.
    pub const SPEC_PATH: &str = "specPath";
    /// Expected SHA-256 of a file (64 hex digits, optionally prefixed `sha256:`).
    pub const SPEC_SHA256: &str = "specSha256";
    /// Destination path/key override.
    pub const SPEC_OVERRIDE: &str = "specOverride";
    /// Helm chart name.
    pub const SPEC_NAME: &str = "specName";
    /// Helm chart version.
    pub const SPEC_VERSION: &str = "specVersion";
}

/// Which side of a transfer an Endpoint is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Where the artifact comes from.
    Src,
    /// Where the artifact goes.
    Dst,
}

impl Side {
    /// The parameter name prefix: `src` or `dst`.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Src => "src",
            Self::Dst => "dst",
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Src => "source",
            Self::Dst => "destination",
        })
    }
}

/// An Endpoint's `spec.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndpointType {
    /// An OCI distribution registry.
    Oci,
    /// An HTTP Helm repository (index.yaml + chart archives).
    Helm,
    /// Plain HTTP(S) files.
    Http,
    /// S3-compatible object storage.
    S3,
    /// A local directory (plain files or an OCI image layout).
    Dir,
    /// An offline bundle.
    Bundle,
}

impl EndpointType {
    /// Every Endpoint type, in documentation order.
    pub const ALL: [EndpointType; 6] = [
        Self::Oci,
        Self::Helm,
        Self::Http,
        Self::S3,
        Self::Dir,
        Self::Bundle,
    ];

    /// The name used in `spec.type` and the `srcType`/`dstType` parameters.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Oci => "oci",
            Self::Helm => "helm",
            Self::Http => "http",
            Self::S3 => "s3",
            Self::Dir => "dir",
            Self::Bundle => "bundle",
        }
    }
}

impl fmt::Display for EndpointType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EndpointType {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<_> = Self::ALL.iter().map(|t| t.as_str()).collect();
                Error::invalid_parameter(format!(
                    "unknown endpoint type `{s}`; known types: {}",
                    known.join(", ")
                ))
            })
    }
}

/// One side's Endpoint as the parameters describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointParams {
    /// Source or destination.
    pub side: Side,
    /// The Endpoint's type.
    pub kind: EndpointType,
    /// The Endpoint's `remoteURL` (may be empty for types that do not need one).
    pub remote_url: String,
    /// Whether a Secret is mounted for this side.
    pub has_secret: bool,
}

/// A validated SHA-256 digest (64 lowercase hex digits).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sha256Hex(String);

impl Sha256Hex {
    /// Parses `hex` or `sha256:hex` (hex digits in either case).
    pub fn parse(value: &str) -> Option<Self> {
        let hex = value
            .strip_prefix("sha256:")
            .unwrap_or(value)
            .to_ascii_lowercase();
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(Self(hex))
    }

    /// From a finished SHA-256 hash.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(hex::encode(bytes))
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        &self.0
    }

    /// The OCI digest form, `sha256:<hex>`.
    pub fn digest(&self) -> String {
        format!("sha256:{}", self.0)
    }
}

impl fmt::Display for Sha256Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.0)
    }
}

/// The workflow parameters: unique names, string values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    values: BTreeMap<String, String>,
}

impl Params {
    /// Parses `name=value` arguments (the value may contain `=` and be empty). A missing `=`,
    /// an empty or malformed name, or a repeated name is an error naming the argument.
    pub fn from_args<I, S>(args: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut values = BTreeMap::new();
        for arg in args {
            let arg = arg.as_ref();
            let Some((name, value)) = arg.split_once('=') else {
                return Err(Error::invalid_parameter(format!(
                    "parameter `{arg}` is not of the form name=value"
                )));
            };
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
            {
                return Err(Error::invalid_parameter(format!(
                    "parameter name `{name}` is empty or has characters other than letters, digits, `_`, `-`, `.`"
                )));
            }
            if values.insert(name.to_string(), value.to_string()).is_some() {
                return Err(Error::invalid_parameter(format!(
                    "parameter `{name}` is given twice"
                )));
            }
        }
        Ok(Self { values })
    }

    /// Builds parameters from pairs (tests, embedding).
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            values: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Sets one parameter.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.values.insert(name.into(), value.into());
    }

    /// All parameters, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The raw value, even if empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The value if present and not empty (Argo passes unset optional parameters as `""`).
    pub fn optional(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// The value, or an error naming the missing parameter.
    pub fn required(&self, name: &str) -> Result<&str> {
        self.optional(name).ok_or_else(|| {
            Error::invalid_parameter(format!("required parameter `{name}` is missing or empty"))
        })
    }

    /// A boolean parameter (`"true"` / `"false"`, case-insensitive); absent or empty → `default`.
    pub fn bool_or(&self, name: &str, default: bool) -> Result<bool> {
        match self.optional(name) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(Error::invalid_parameter(format!(
                "parameter `{name}` must be \"true\" or \"false\", not `{v}`"
            ))),
        }
    }

    /// A SHA-256 parameter (64 hex digits, optionally `sha256:`-prefixed), if present.
    pub fn sha256(&self, name: &str) -> Result<Option<Sha256Hex>> {
        self.optional(name)
            .map(|v| {
                Sha256Hex::parse(v).ok_or_else(|| {
                    Error::invalid_parameter(format!(
                        "parameter `{name}` must be a SHA-256 (64 hex digits, optionally prefixed `sha256:`), not `{v}`"
                    ))
                })
            })
            .transpose()
    }

    /// One side's Endpoint: `<side>Type` (required), `<side>RemoteURL`, `<side>Secret`.
    pub fn endpoint(&self, side: Side) -> Result<EndpointParams> {
        let p = side.prefix();
        let type_name = format!("{p}Type");
        let kind = self
            .required(&type_name)?
            .parse::<EndpointType>()
            .map_err(|e| {
                Error::invalid_parameter(format!("parameter `{type_name}`: {}", e.reason()))
            })?;
        Ok(EndpointParams {
            side,
            kind,
            remote_url: self
                .get(&format!("{p}RemoteURL"))
                .unwrap_or_default()
                .to_string(),
            has_secret: self.bool_or(&format!("{p}Secret"), false)?,
        })
    }

    /// A short description of the artifact for messages: `image <specImage>`,
    /// `chart <specName>@<specVersion>`, `file <specPath>`, or `artifact` if none is set.
    pub fn artifact_label(&self) -> String {
        if let Some(image) = self.optional(names::SPEC_IMAGE) {
            return format!("image {image}");
        }
        if let Some(name) = self.optional(names::SPEC_NAME) {
            return match self.optional(names::SPEC_VERSION) {
                Some(v) => format!("chart {name}@{v}"),
                None => format!("chart {name}"),
            };
        }
        if let Some(path) = self.optional(names::SPEC_PATH) {
            return format!("file {path}");
        }
        "artifact".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn parses_name_value_pairs() {
        let p = Params::from_args(["srcType=http", "specPath=a=b", "specOverride="]).unwrap();
        assert_eq!(p.required("srcType").unwrap(), "http");
        assert_eq!(p.get("specPath"), Some("a=b"));
        assert_eq!(p.get("specOverride"), Some(""));
        assert_eq!(p.optional("specOverride"), None);
    }

    #[test]
    fn rejects_malformed_and_duplicate() {
        for bad in [
            vec!["novalue"],
            vec!["=x"],
            vec!["a b=1"],
            vec!["a=1", "a=2"],
        ] {
            let e = Params::from_args(bad.clone()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidParameter, "{bad:?}");
        }
    }

    #[test]
    fn missing_required_names_it() {
        let e = Params::default().required("specPath").unwrap_err();
        assert!(e.to_string().contains("`specPath`"), "{e}");
    }

    #[test]
    fn endpoint_and_bool() {
        let p = Params::from_pairs([
            ("srcType", "s3"),
            ("srcRemoteURL", "s3://b"),
            ("srcSecret", "TRUE"),
        ]);
        let ep = p.endpoint(Side::Src).unwrap();
        assert_eq!(ep.kind, EndpointType::S3);
        assert!(ep.has_secret);
        let bad = Params::from_pairs([("dstType", "ftp")])
            .endpoint(Side::Dst)
            .unwrap_err();
        assert!(
            bad.to_string().contains("dstType") && bad.to_string().contains("s3"),
            "{bad}"
        );
        let bad = Params::from_pairs([("srcType", "dir"), ("srcSecret", "yes")])
            .endpoint(Side::Src)
            .unwrap_err();
        assert!(bad.to_string().contains("srcSecret"), "{bad}");
    }

    #[test]
    fn sha256_forms() {
        let hex = "A".repeat(64);
        let p = Params::from_pairs([("a", format!("sha256:{hex}")), ("b", "123".to_string())]);
        assert_eq!(p.sha256("a").unwrap().unwrap().hex(), "a".repeat(64));
        assert!(p.sha256("b").is_err());
        assert!(p.sha256("c").unwrap().is_none());
    }

    #[test]
    fn artifact_label_prefers_image_then_chart_then_file() {
        assert_eq!(
            Params::from_pairs([("specPath", "x")]).artifact_label(),
            "file x"
        );
        assert_eq!(
            Params::from_pairs([("specName", "c"), ("specVersion", "1.0")]).artifact_label(),
            "chart c@1.0"
        );
        assert_eq!(
            Params::from_pairs([("specImage", "i:1")]).artifact_label(),
            "image i:1"
        );
    }
}
