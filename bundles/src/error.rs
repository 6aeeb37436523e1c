//! The data plane's error taxonomy: every failure has a [`ErrorKind`], names the artifact, the
//! endpoint (URL) and the reason, and says whether it is transient (worth retrying) or terminal.
//!
//! Low-level code creates an [`Error`] with the endpoint it talked to; the pipeline fills in the
//! artifact ([`Error::or_artifact`]) before it reaches the worker's last stderr line.

use std::fmt;
use std::time::Duration;

/// A boxed underlying cause.
pub type BoxedSource = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with the data plane's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in terms an operator acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The endpoint refused the credentials (HTTP 401/403, S3 access denied).
    Unauthorized,
    /// The artifact (tag, blob, file, object, chart) does not exist at the endpoint.
    NotFound,
    /// Content did not match the digest it is addressed by (OCI blobs and manifests).
    DigestMismatch,
    /// A file did not match the expected checksum (`specSha256`).
    ChecksumMismatch,
    /// A policy refused the artifact (e.g. a missing or invalid signature).
    PolicyRefused,
    /// The configured scanner rejected the artifact.
    ScanFailed,
    /// A workflow parameter is missing or invalid, or the template is unknown.
    InvalidParameter,
    /// The combination of source, destination and template is not supported.
    Unsupported,
    /// Local I/O failed (staging directory, destination directory).
    Io,
    /// Talking to the endpoint failed (connection, TLS, protocol, unexpected status).
    Transport,
    /// The work was cancelled (shutdown).
    Cancelled,
}

impl ErrorKind {
    /// The short human name, as used in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::NotFound => "not found",
            Self::DigestMismatch => "digest mismatch",
            Self::ChecksumMismatch => "checksum mismatch",
            Self::PolicyRefused => "refused by policy",
            Self::ScanFailed => "scan failed",
            Self::InvalidParameter => "invalid parameter",
            Self::Unsupported => "not supported",
            Self::Io => "I/O error",
            Self::Transport => "transport error",
            Self::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A data-plane failure: kind, artifact, endpoint, reason, and whether retrying may help.
///
/// Display: `<kind>: <artifact> at <endpoint>: <reason>`, e.g.
/// `not found: file data/a.bin at http://127.0.0.1:8080/files: HTTP 404 Not Found`.
#[derive(Debug, thiserror::Error)]
pub struct Error {
    kind: ErrorKind,
    artifact: Option<String>,
    endpoint: Option<String>,
    reason: String,
    transient: bool,
    retry_after: Option<Duration>,
    #[source]
    source: Option<BoxedSource>,
}

impl Error {
    /// A terminal error of `kind` with `reason`; add the artifact and endpoint with the builders.
    pub fn new(kind: ErrorKind, reason: impl Into<String>) -> Self {
        Self {
            kind,
            artifact: None,
            endpoint: None,
            reason: reason.into(),
            transient: false,
            retry_after: None,
            source: None,
        }
    }

    /// A transient transport error (connection reset, 5xx, 429): retrying may succeed.
    pub fn transient(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::Transport, reason).with_transient(true)
    }

    /// Shorthand for an [`ErrorKind::InvalidParameter`] error.
    pub fn invalid_parameter(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidParameter, reason)
    }

    /// Shorthand for an [`ErrorKind::Io`] error on `path` with its cause.
    pub fn io(what: impl fmt::Display, path: &std::path::Path, source: std::io::Error) -> Self {
        Self::new(
            ErrorKind::Io,
            format!("{what} {}: {source}", path.display()),
        )
        .with_source(source)
    }

    /// Shorthand for an [`ErrorKind::Cancelled`] error.
    pub fn cancelled() -> Self {
        Self::new(ErrorKind::Cancelled, "cancelled before completion")
    }

    /// Names the artifact (e.g. `image library/nginx:1.27`, `file data/a.bin`).
    pub fn with_artifact(mut self, artifact: impl Into<String>) -> Self {
        self.artifact = Some(artifact.into());
        self
    }

    /// Names the artifact unless one is already named.
    pub fn or_artifact(mut self, artifact: impl Into<String>) -> Self {
        if self.artifact.is_none() {
            self.artifact = Some(artifact.into());
        }
        self
    }

    /// Names the endpoint (a URL or a directory), replacing any earlier one.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Names the endpoint unless one is already named.
    pub fn or_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        if self.endpoint.is_none() {
            self.endpoint = Some(endpoint.into());
        }
        self
    }

    /// Marks the error transient (retry may help) or terminal.
    pub fn with_transient(mut self, transient: bool) -> Self {
        self.transient = transient;
        self
    }

    /// Sets how long the server asked us to wait (HTTP `Retry-After`); implies transient.
    pub fn with_retry_after(mut self, delay: Option<Duration>) -> Self {
        if delay.is_some() {
            self.transient = true;
        }
        self.retry_after = delay;
        self
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl Into<BoxedSource>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The artifact, if named.
    pub fn artifact(&self) -> Option<&str> {
        self.artifact.as_deref()
    }

    /// The endpoint, if named.
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// The reason, without kind, artifact or endpoint.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Whether retrying may succeed.
    pub fn is_transient(&self) -> bool {
        self.transient
    }

    /// The delay the server asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The process exit code `arcd worker` uses for this error: 2 for invalid parameters,
    /// 75 (`EX_TEMPFAIL`) for transient errors that outlived their retries, 130 when cancelled,
    /// 1 for every other terminal failure.
    pub fn exit_code(&self) -> u8 {
        match self.kind {
            ErrorKind::InvalidParameter => 2,
            ErrorKind::Cancelled => 130,
            _ if self.transient => 75,
            _ => 1,
        }
    }

    /// Classifies an HTTP status from `endpoint` (401/403 unauthorized, 404 not found, 408, 429
    /// and 5xx transient, anything else a terminal transport error).
    pub fn from_http_status(
        status: u16,
        endpoint: impl Into<String>,
        retry_after: Option<Duration>,
    ) -> Self {
        let reason = format!("HTTP {status}{}", status_text(status));
        let error = match status {
            401 | 403 => Self::new(ErrorKind::Unauthorized, reason),
            404 | 410 => Self::new(ErrorKind::NotFound, reason),
            408 | 429 | 500 | 502 | 503 | 504 => {
                Self::transient(reason).with_retry_after(retry_after)
            }
            _ => Self::new(ErrorKind::Transport, reason),
        };
        error.with_endpoint(endpoint)
    }
}

fn status_text(status: u16) -> String {
    http_reason(status)
        .map(|r| format!(" {r}"))
        .unwrap_or_default()
}

fn http_reason(status: u16) -> Option<&'static str> {
    Some(match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        413 => "Payload Too Large",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => return None,
    })
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.kind)?;
        match (&self.artifact, &self.endpoint) {
            (Some(a), Some(e)) => write!(f, "{a} at {e}: ")?,
            (Some(a), None) => write!(f, "{a}: ")?,
            (None, Some(e)) => write!(f, "at {e}: ")?,
            (None, None) => {}
        }
        f.write_str(&self.reason)?;
        if self.transient {
            f.write_str(" (transient)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_kind_artifact_endpoint_and_reason() {
        let e = Error::new(ErrorKind::NotFound, "HTTP 404 Not Found")
            .with_artifact("file a.bin")
            .with_endpoint("http://127.0.0.1:1/files/a.bin");
        assert_eq!(
            e.to_string(),
            "not found: file a.bin at http://127.0.0.1:1/files/a.bin: HTTP 404 Not Found"
        );
        assert!(!e.is_transient());
        assert_eq!(e.exit_code(), 1);
    }

    #[test]
    fn http_status_classification() {
        assert_eq!(
            Error::from_http_status(401, "u", None).kind(),
            ErrorKind::Unauthorized
        );
        assert_eq!(
            Error::from_http_status(404, "u", None).kind(),
            ErrorKind::NotFound
        );
        let e = Error::from_http_status(503, "u", None);
        assert!(e.is_transient());
        assert_eq!(e.exit_code(), 75);
        let e = Error::from_http_status(429, "u", Some(Duration::from_secs(2)));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));
        assert!(!Error::from_http_status(400, "u", None).is_transient());
    }

    #[test]
    fn or_artifact_keeps_the_first_name() {
        let e = Error::invalid_parameter("x")
            .with_artifact("a")
            .or_artifact("b");
        assert_eq!(e.artifact(), Some("a"));
        assert_eq!(e.exit_code(), 2);
    }
}
