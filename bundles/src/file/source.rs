//! Where an `arc-file` artifact comes from: an HTTP(S) URL, an S3 object, or a file in a local
//! directory, resolved from the source Endpoint and `specPath`, and opened at any byte offset
//! so an interrupted transfer resumes.

use std::path::{Path, PathBuf};

use tokio::io::AsyncSeekExt as _;
use url::Url;

use crate::error::{Error, ErrorKind, Result};
use crate::http::{ByteStream, HttpSource, Opened};
use crate::params::{EndpointParams, EndpointType};
use crate::retry::RetryPolicy;
use crate::s3::{S3Bucket, S3Location};
use crate::secrets::Credentials;

/// Read buffer for local files.
const FILE_READ_CHUNK_BYTES: usize = 256 * 1024;

/// A resolved file source.
#[derive(Debug, Clone)]
pub enum FileSource {
    /// An HTTP(S) URL.
    Http(HttpSource),
    /// An object in a bucket.
    S3 {
        /// The bucket.
        bucket: S3Bucket,
        /// The full object key.
        key: String,
    },
    /// A local file.
    Local {
        /// The file.
        path: PathBuf,
    },
}

impl FileSource {
    /// Resolves `spec_path` against the source Endpoint:
    /// - `http`: a path relative to `remoteURL`, or a full `http(s)://` URL that lies under
    ///   `remoteURL` (any URL when `remoteURL` is empty) — credentials never go elsewhere;
    /// - `s3`: a key relative to the bucket and prefix, or `s3://<same bucket>/<key>`;
    /// - `dir`: a path relative to the directory (no `..`).
    pub fn resolve(
        endpoint: &EndpointParams,
        spec_path: &str,
        credentials: &Credentials,
        retry: &RetryPolicy,
    ) -> Result<Self> {
        match endpoint.kind {
            EndpointType::Http => {
                let url = resolve_http_url(&endpoint.remote_url, spec_path)?;
                Ok(Self::Http(HttpSource::new(url, credentials)?))
            }
            EndpointType::S3 => {
                let location = S3Location::parse(&endpoint.remote_url)?;
                let key = if let Some(rest) = spec_path.strip_prefix("s3://") {
                    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
                    if bucket != location.bucket {
                        return Err(Error::invalid_parameter(format!(
                            "specPath `{spec_path}` is in bucket `{bucket}`, but the source endpoint is bucket `{}`",
                            location.bucket
                        ))
                        .with_endpoint(location.describe()));
                    }
                    relative_path("specPath", key)?
                } else {
                    location.key(&relative_path("specPath", spec_path)?)
                };
                Ok(Self::S3 {
                    bucket: S3Bucket::connect(location, credentials, retry)?,
                    key,
                })
            }
            EndpointType::Dir => {
                let root = local_dir(&endpoint.remote_url, "srcRemoteURL")?;
                Ok(Self::Local {
                    path: root.join(relative_path("specPath", spec_path)?),
                })
            }
            other => Err(Error::new(
                ErrorKind::Unsupported,
                format!("arc-file cannot read from `{other}` endpoints; sources: http, s3, dir"),
            )),
        }
    }

    /// The endpoint for messages (URL, bucket, or directory).
    pub fn endpoint(&self) -> String {
        match self {
            Self::Http(http) => http.endpoint(),
            Self::S3 { bucket, key } => format!(
                "{} ({})",
                bucket.location.describe(),
                bucket.location.object_url(key)
            ),
            Self::Local { path } => path.display().to_string(),
        }
    }

    /// The file name, the default destination key.
    pub fn file_name(&self) -> Option<String> {
        let name = match self {
            Self::Http(http) => {
                let url = Url::parse(&http.endpoint()).ok()?;
                url.path_segments()?
                    .rev()
                    .find(|s| !s.is_empty())?
                    .to_string()
            }
            Self::S3 { key, .. } => key.rsplit('/').find(|s| !s.is_empty())?.to_string(),
            Self::Local { path } => path.file_name()?.to_string_lossy().into_owned(),
        };
        Some(name)
    }

    /// Opens the file at byte `offset`.
    pub async fn open(&self, offset: u64) -> Result<Opened> {
        match self {
            Self::Http(http) => http.open(offset).await,
            Self::S3 { bucket, key } => bucket.open(key, offset).await,
            Self::Local { path } => open_local(path, offset).await,
        }
    }
}

async fn open_local(path: &Path, offset: u64) -> Result<Opened> {
    let mut file = tokio::fs::File::open(path).await.map_err(|e| {
        let kind = match e.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::PermissionDenied => ErrorKind::Unauthorized,
            _ => ErrorKind::Io,
        };
        Error::new(kind, format!("cannot open {}: {e}", path.display()))
            .with_endpoint(path.display().to_string())
    })?;
    let meta = file
        .metadata()
        .await
        .map_err(|e| Error::io("cannot stat", path, e))?;
    if !meta.is_file() {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("{} is not a regular file", path.display()),
        )
        .with_endpoint(path.display().to_string()));
    }
    if offset > 0 {
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(|e| Error::io("cannot seek in", path, e))?;
    }
    let shown = path.to_path_buf();
    let stream: ByteStream = futures::StreamExt::boxed(futures::StreamExt::map(
        tokio_util::io::ReaderStream::with_capacity(file, FILE_READ_CHUNK_BYTES),
        move |chunk| chunk.map_err(|e| Error::io("cannot read", &shown, e)),
    ));
    Ok(Opened {
        stream,
        total_bytes: Some(meta.len()),
    })
}

/// A local directory from an Endpoint's `remoteURL`: an absolute path or a `file://` URL.
pub fn local_dir(remote_url: &str, parameter: &str) -> Result<PathBuf> {
    let path = if let Some(rest) = remote_url.strip_prefix("file://") {
        PathBuf::from(rest)
    } else {
        PathBuf::from(remote_url)
    };
    if !path.is_absolute() {
        return Err(Error::invalid_parameter(format!(
            "{parameter} `{remote_url}` must be an absolute directory path (or file:///path) for a dir endpoint"
        )));
    }
    Ok(path)
}

/// Normalises a relative path (`specPath`, `specOverride`): `/`-separated, leading `/` and
/// `.` segments dropped, `..` refused, not empty.
pub fn relative_path(parameter: &str, value: &str) -> Result<String> {
    let mut parts = Vec::new();
    for segment in value.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                return Err(Error::invalid_parameter(format!(
                    "{parameter} `{value}` must not contain `..`"
                )));
            }
            s if s.contains('\0') || s.contains('\\') => {
                return Err(Error::invalid_parameter(format!(
                    "{parameter} `{value}` contains a NUL or backslash"
                )));
            }
            s => parts.push(s),
        }
    }
    if parts.is_empty() {
        return Err(Error::invalid_parameter(format!(
            "{parameter} `{value}` names no file"
        )));
    }
    Ok(parts.join("/"))
}

/// Resolves an HTTP `specPath` against the Endpoint's `remoteURL`.
fn resolve_http_url(remote_url: &str, spec_path: &str) -> Result<Url> {
    let full = Url::parse(spec_path)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"));
    if remote_url.trim().is_empty() {
        return full.ok_or_else(|| {
            Error::invalid_parameter(format!(
                "specPath `{spec_path}` must be a full http(s):// URL when the source endpoint has no remoteURL"
            ))
        });
    }
    let mut base = Url::parse(remote_url.trim()).map_err(|e| {
        Error::invalid_parameter(format!("srcRemoteURL `{remote_url}` is not a URL: {e}"))
    })?;
    if !matches!(base.scheme(), "http" | "https") {
        return Err(Error::invalid_parameter(format!(
            "srcRemoteURL `{remote_url}` is not an http(s):// URL"
        )));
    }
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    match full {
        Some(url) => {
            let inside = url.scheme() == base.scheme()
                && url.host_str() == base.host_str()
                && url.port_or_known_default() == base.port_or_known_default()
                && url.path().starts_with(base.path())
                && !url.path().split('/').any(|s| s == "..");
            if !inside {
                return Err(Error::invalid_parameter(format!(
                    "specPath `{spec_path}` is outside the source endpoint {remote_url}"
                )));
            }
            Ok(url)
        }
        None => {
            let (path, query) = spec_path
                .split_once('?')
                .map_or((spec_path, None), |(p, q)| (p, Some(q)));
            let mut url = base
                .join(&relative_path("specPath", path)?)
                .map_err(|e| Error::invalid_parameter(format!("specPath `{spec_path}`: {e}")))?;
            if query.is_some() {
                url.set_query(query);
            }
            Ok(url)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(relative_path("p", "/a/./b//c").unwrap(), "a/b/c");
        assert!(relative_path("p", "a/../b").is_err());
        assert!(relative_path("p", "/").is_err());
    }

    #[test]
    fn http_urls_stay_under_the_endpoint() {
        let u = resolve_http_url("http://127.0.0.1:8080/files", "sub/a.bin").unwrap();
        assert_eq!(u.as_str(), "http://127.0.0.1:8080/files/sub/a.bin");
        let u = resolve_http_url(
            "http://127.0.0.1:8080/files/",
            "http://127.0.0.1:8080/files/x",
        )
        .unwrap();
        assert_eq!(u.path(), "/files/x");
        assert!(
            resolve_http_url(
                "http://127.0.0.1:8080/files",
                "http://127.0.0.2:8080/files/x"
            )
            .is_err()
        );
        assert!(
            resolve_http_url(
                "http://127.0.0.1:8080/files",
                "http://127.0.0.1:8080/other/x"
            )
            .is_err()
        );
        assert!(resolve_http_url("http://127.0.0.1:8080/files", "../etc/passwd").is_err());
        assert!(resolve_http_url("", "http://h/x").is_ok());
        assert!(resolve_http_url("", "x").is_err());
    }

    #[test]
    fn dir_endpoints_are_absolute() {
        assert_eq!(
            local_dir("file:///srv/a", "p").unwrap(),
            PathBuf::from("/srv/a")
        );
        assert!(local_dir("srv/a", "p").is_err());
    }
}
