//! Where an artifact lives: a registry endpoint (from an Endpoint's `remoteURL`) and an image
//! reference (`repo:tag`, `repo@digest`) relative to the endpoint's path.

use std::fmt;

use reqwest::Url;

use super::digest::Digest;
use crate::error::{Error, Result};

/// A registry endpoint parsed from a `remoteURL`: `http://host:port/prefix` is plain HTTP,
/// anything else (`https://`, `oci://`, no scheme) is TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryEndpoint {
    /// `scheme://host[:port]` (no path).
    pub base: Url,
    /// Repository path prefix from the URL's path (no leading or trailing `/`), maybe empty.
    pub prefix: String,
}

impl RegistryEndpoint {
    /// Parses a `remoteURL`.
    pub fn parse(remote_url: &str) -> Result<Self> {
        let trimmed = remote_url.trim();
        if trimmed.is_empty() {
            return Err(invalid("remote URL", remote_url, "empty"));
        }
        let (plain, rest) = if let Some(rest) = trimmed.strip_prefix("http://") {
            (true, rest)
        } else if let Some(rest) = trimmed.strip_prefix("https://") {
            (false, rest)
        } else if let Some(rest) = trimmed.strip_prefix("oci://") {
            (false, rest)
        } else if trimmed.contains("://") {
            return Err(invalid(
                "remote URL",
                remote_url,
                "scheme must be http, https or oci",
            ));
        } else {
            (false, trimmed)
        };
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        if host.is_empty() {
            return Err(invalid("remote URL", remote_url, "no host"));
        }
        let scheme = if plain { "http" } else { "https" };
        let base = Url::parse(&format!("{scheme}://{host}"))
            .map_err(|e| invalid("remote URL", remote_url, e.to_string()))?;
        if base.host_str().is_none() || base.username() != "" || base.password().is_some() {
            return Err(invalid(
                "remote URL",
                remote_url,
                "expected scheme://host[:port]/path, no credentials",
            ));
        }
        let prefix = path.trim_matches('/').to_string();
        if !prefix.is_empty() {
            validate_repository(&prefix).map_err(|r| invalid("remote URL", remote_url, r))?;
        }
        Ok(Self { base, prefix })
    }

    /// `host[:port]` as written in credentials files and messages.
    pub fn host(&self) -> String {
        match self.base.port() {
            Some(port) => format!("{}:{port}", self.base.host_str().unwrap_or_default()),
            None => self.base.host_str().unwrap_or_default().to_string(),
        }
    }

    /// Whether connections use plain HTTP.
    pub fn is_plain_http(&self) -> bool {
        self.base.scheme() == "http"
    }

    /// The full repository path for `repository` below this endpoint's prefix.
    pub fn repository(&self, repository: &str) -> String {
        if self.prefix.is_empty() {
            repository.to_string()
        } else {
            format!("{}/{repository}", self.prefix)
        }
    }
}

impl fmt::Display for RegistryEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let base = self.base.as_str().trim_end_matches('/');
        if self.prefix.is_empty() {
            f.write_str(base)
        } else {
            write!(f, "{base}/{}", self.prefix)
        }
    }
}

/// An image reference relative to an endpoint: a repository path with a tag, a digest or both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// The repository path (`library/nginx`).
    pub repository: String,
    /// The tag, if given.
    pub tag: Option<String>,
    /// The digest, if given (it wins over the tag when both are given).
    pub digest: Option<Digest>,
}

impl ImageRef {
    /// Parses `repo:tag`, `repo@sha256:...` or `repo:tag@sha256:...`.
    pub fn parse(input: &str) -> Result<Self> {
        let input_trimmed = input.trim().trim_start_matches('/');
        let (name_tag, digest) = match input_trimmed.split_once('@') {
            Some((n, d)) => (
                n,
                Some(Digest::parse(d).map_err(|e| invalid("image reference", input, e.reason()))?),
            ),
            None => (input_trimmed, None),
        };
        // A ':' after the last '/' separates the tag (a ':' before it belongs to a host:port).
        let last_slash = name_tag.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (repository, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => (
                &name_tag[..last_slash + i],
                Some(name_tag[last_slash + i + 1..].to_string()),
            ),
            None => (name_tag, None),
        };
        validate_repository(repository).map_err(|r| invalid("image reference", input, r))?;
        if let Some(tag) = &tag {
            validate_tag(tag).map_err(|r| invalid("image reference", input, r))?;
        }
        if tag.is_none() && digest.is_none() {
            return Err(invalid(
                "image reference",
                input,
                "needs a :tag or an @sha256:digest",
            ));
        }
        Ok(Self {
            repository: repository.to_string(),
            tag,
            digest,
        })
    }

    /// The manifest reference to ask a registry for: the digest if known, else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => String::new(),
        }
    }

    /// The same reference in another repository.
    pub fn with_repository(&self, repository: &str) -> Self {
        Self {
            repository: repository.to_string(),
            ..self.clone()
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn invalid(what: &str, input: &str, reason: impl std::fmt::Display) -> Error {
    Error::invalid_parameter(format!("{what} `{input}`: {reason}"))
}

/// Checks a repository path against the distribution grammar (lowercase path components of
/// alphanumerics separated by `.`, `_`, `__` or dashes).
pub fn validate_repository(repository: &str) -> Result<(), String> {
    if repository.is_empty() {
        return Err("empty repository name".into());
    }
    if repository.len() > 255 {
        return Err("repository name longer than 255 characters".into());
    }
    for component in repository.split('/') {
        let bytes = component.as_bytes();
        let ok = !bytes.is_empty()
            && bytes
                .first()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && bytes
                .last()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && bytes.iter().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            })
            && !component.contains("..")
            && !component.contains("___");
        if !ok {
            return Err(format!(
                "repository path component {component:?} must be lowercase letters and digits separated by '.', '_' or '-'"
            ));
        }
    }
    Ok(())
}

/// Checks a tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<(), String> {
    let bytes = tag.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag {tag:?} must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = RegistryEndpoint::parse("http://127.0.0.1:5000/mirror/a").unwrap();
        assert!(e.is_plain_http());
        assert_eq!(e.host(), "127.0.0.1:5000");
        assert_eq!(e.repository("nginx"), "mirror/a/nginx");
        let e = RegistryEndpoint::parse("registry.example.com").unwrap();
        assert!(!e.is_plain_http());
        assert_eq!(e.repository("x/y"), "x/y");
        assert_eq!(e.to_string(), "https://registry.example.com");
        assert!(RegistryEndpoint::parse("ftp://x").is_err());
        assert!(RegistryEndpoint::parse("https://u:p@x").is_err());
        assert!(RegistryEndpoint::parse("https://x/UPPER").is_err());
    }

    #[test]
    fn references() {
        let r = ImageRef::parse("library/nginx:1.25").unwrap();
        assert_eq!(
            (r.repository.as_str(), r.tag.as_deref()),
            ("library/nginx", Some("1.25"))
        );
        let d = Digest::of(b"x");
        let r = ImageRef::parse(&format!("a/b:t@{d}")).unwrap();
        assert_eq!(r.manifest_reference(), d.to_string());
        assert_eq!(r.to_string(), format!("a/b:t@{d}"));
        assert!(ImageRef::parse("nginx").is_err());
        assert!(ImageRef::parse("Nginx:1").is_err());
        assert!(ImageRef::parse("nginx:-bad").is_err());
        assert!(ImageRef::parse("nginx@sha256:zz").is_err());
    }
}
