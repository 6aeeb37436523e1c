//! S3-compatible object storage (`object_store`, AWS S3 client) as a file source and destination.
//!
//! # `remoteURL` forms
//!
//! - `s3://BUCKET[/PREFIX][?endpoint=URL&region=REGION&pathStyle=true|false]` — AWS S3, or any
//!   S3-compatible server when `endpoint` is given (e.g.
//!   `s3://artifacts/incoming?endpoint=http://127.0.0.1:9000&region=us-east-1&pathStyle=true`).
//!   `pathStyle` defaults to `true` with a custom endpoint (what MinIO, Ceph RGW and most
//!   appliances expect) and to `false` on AWS (virtual-hosted style).
//! - `http(s)://HOST[:PORT]/BUCKET[/PREFIX][?region=REGION]` — an S3-compatible server at
//!   that address, path-style requests. `http://` is plain HTTP, `https://` TLS.
//!
//! `region` defaults to `us-east-1`. Object keys are `PREFIX/<key>`. Credentials come from the
//! Endpoint's Secret: `accessKeyID` and `secretAccessKey` (without them requests are unsigned,
//! i.e. anonymous), and `ca.crt` for a private CA.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::client::{HttpClient, HttpConnector};
use object_store::path::Path as ObjectPath;
use object_store::{
    ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt as _, RetryConfig,
};
use url::Url;

use crate::error::{Error, ErrorKind, Result};
use crate::http::{ByteStream, Opened};
use crate::retry::RetryPolicy;
use crate::secrets::Credentials;

/// The region used when the URL names none.
pub const DEFAULT_REGION: &str = "us-east-1";

/// Where objects live: a bucket and key prefix on an S3 endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix without leading or trailing `/` (may be empty).
    pub prefix: String,
    /// A custom endpoint (`scheme://host:port`), or `None` for AWS.
    pub endpoint: Option<Url>,
    /// Signing region.
    pub region: String,
    /// Path-style (`host/bucket/key`) rather than virtual-hosted (`bucket.host/key`) requests.
    pub path_style: bool,
}

impl S3Location {
    /// Parses a `remoteURL` (see the module docs).
    pub fn parse(remote_url: &str) -> Result<Self> {
        let invalid = |reason: &str| {
            Error::invalid_parameter(format!("S3 remote URL `{remote_url}`: {reason}"))
                .with_endpoint(remote_url)
        };
        let url = Url::parse(remote_url.trim()).map_err(|e| invalid(&e.to_string()))?;
        let mut region = DEFAULT_REGION.to_string();
        let mut endpoint = None;
        let mut path_style = None;
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "region" if !value.is_empty() => region = value.into_owned(),
                "endpoint" if url.scheme() == "s3" => {
                    let ep = Url::parse(&value).map_err(|e| invalid(&format!("endpoint: {e}")))?;
                    if !matches!(ep.scheme(), "http" | "https") || ep.host_str().is_none() {
                        return Err(invalid("endpoint must be an http:// or https:// URL"));
                    }
                    endpoint = Some(ep);
                }
                "pathStyle" => {
                    path_style = Some(match value.as_ref() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(invalid("pathStyle must be true or false")),
                    })
                }
                other => {
                    return Err(invalid(&format!(
                        "unknown query parameter `{other}` (known: endpoint, region, pathStyle)"
                    )));
                }
            }
        }
        let segments: Vec<&str> = url.path().split('/').filter(|s| !s.is_empty()).collect();
        let (bucket, prefix) = match url.scheme() {
            "s3" => {
                let bucket = url
                    .host_str()
                    .filter(|h| !h.is_empty())
                    .ok_or_else(|| invalid("no bucket"))?;
                (bucket.to_string(), segments.join("/"))
            }
            "http" | "https" => {
                let host = url.host_str().ok_or_else(|| invalid("no host"))?;
                let mut ep = Url::parse(&format!("{}://{host}", url.scheme()))
                    .map_err(|e| invalid(&e.to_string()))?;
                let _ = ep.set_port(url.port());
                endpoint = Some(ep);
                let (bucket, rest) = segments
                    .split_first()
                    .ok_or_else(|| invalid("no bucket in the path"))?;
                path_style = Some(path_style.unwrap_or(true));
                ((*bucket).to_string(), rest.join("/"))
            }
            other => {
                return Err(invalid(&format!(
                    "scheme `{other}` is not s3, http or https"
                )));
            }
        };
        let path_style = path_style.unwrap_or(endpoint.is_some());
        Ok(Self {
            bucket,
            prefix,
            endpoint,
            region,
            path_style,
        })
    }

    /// The object key for `key` under the prefix.
    pub fn key(&self, key: &str) -> String {
        let key = key.trim_start_matches('/');
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }

    /// The endpoint as a URL for messages: `http://host:port/bucket/prefix` for a custom
    /// endpoint, `s3://bucket/prefix` on AWS.
    pub fn describe(&self) -> String {
        let mut s = match &self.endpoint {
            Some(ep) => format!("{}/{}", ep.as_str().trim_end_matches('/'), self.bucket),
            None => format!("s3://{}", self.bucket),
        };
        if !self.prefix.is_empty() {
            s.push('/');
            s.push_str(&self.prefix);
        }
        s
    }

    /// The `s3://bucket/key` URL of an object key.
    pub fn object_url(&self, full_key: &str) -> String {
        format!("s3://{}/{full_key}", self.bucket)
    }
}

/// Gives `object_store` our HTTP client (rustls on ring, the Endpoint's `ca.crt`).
#[derive(Debug)]
struct Connector(reqwest::Client);

impl HttpConnector for Connector {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(self.0.clone()))
    }
}

/// An S3 bucket opened with one side's credentials.
#[derive(Debug, Clone)]
pub struct S3Bucket {
    /// Where.
    pub location: S3Location,
    store: Arc<AmazonS3>,
}

impl S3Bucket {
    /// Opens `location` with `credentials`; transient failures are retried per `retry`.
    pub fn connect(
        location: S3Location,
        credentials: &Credentials,
        retry: &RetryPolicy,
    ) -> Result<Self> {
        let client = crate::http::build_client(credentials.ca_cert_pem.as_deref())?;
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&location.bucket)
            .with_region(&location.region)
            .with_virtual_hosted_style_request(!location.path_style)
            .with_http_connector(Connector(client))
            .with_retry(RetryConfig {
                max_retries: retry.max_attempts.saturating_sub(1) as usize,
                retry_timeout: Duration::from_secs(300),
                backoff: object_store::BackoffConfig {
                    init_backoff: retry.initial_delay,
                    max_backoff: retry.max_delay,
                    base: 2.0,
                },
            });
        if let Some(endpoint) = &location.endpoint {
            builder = builder
                .with_endpoint(endpoint.as_str().trim_end_matches('/'))
                .with_allow_http(endpoint.scheme() == "http");
        }
        match (&credentials.access_key_id, &credentials.secret_access_key) {
            (Some(id), Some(secret)) => {
                builder = builder
                    .with_access_key_id(id)
                    .with_secret_access_key(secret.expose());
            }
            (None, None) => builder = builder.with_skip_signature(true),
            _ => {
                return Err(Error::invalid_parameter(
                    "the Secret has only one of accessKeyID and secretAccessKey; S3 needs both (or neither for anonymous access)",
                )
                .with_endpoint(location.describe()));
            }
        }
        let store = builder.build().map_err(|e| {
            Error::invalid_parameter(format!("S3 client setup: {e}"))
                .with_endpoint(location.describe())
        })?;
        Ok(Self {
            location,
            store: Arc::new(store),
        })
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<AmazonS3> {
        &self.store
    }

    /// Maps an `object_store` error on `full_key` to ours, naming the endpoint and object.
    pub fn map_error(&self, error: object_store::Error, full_key: &str) -> Error {
        let object = self.location.object_url(full_key);
        let endpoint = self.location.describe();
        let (kind, transient) = match &error {
            object_store::Error::NotFound { .. } => (ErrorKind::NotFound, false),
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => (ErrorKind::Unauthorized, false),
            object_store::Error::InvalidPath { .. } => (ErrorKind::InvalidParameter, false),
            _ => (ErrorKind::Transport, false),
        };
        Error::new(kind, format!("{object}: {}", error_chain(&error)))
            .with_transient(transient)
            .with_endpoint(endpoint)
    }

    /// Reads `full_key` from byte `offset` on.
    pub async fn open(&self, full_key: &str, offset: u64) -> Result<Opened> {
        let path = ObjectPath::from(full_key);
        let options = GetOptions {
            range: (offset > 0).then_some(GetRange::Offset(offset)),
            ..GetOptions::default()
        };
        let result = self
            .store
            .get_opts(&path, options)
            .await
            .map_err(|e| self.map_error(e, full_key))?;
        let total = result.meta.size;
        let this = self.clone();
        let key = full_key.to_string();
        let stream: ByteStream = result
            .into_stream()
            .map(move |chunk| chunk.map_err(|e| this.map_error(e, &key).with_transient(true)))
            .boxed();
        Ok(Opened {
            stream,
            total_bytes: Some(total),
        })
    }

    /// The user metadata value `name` of `full_key`, `Ok(None)` if the object or the value
    /// does not exist.
    pub async fn metadata(&self, full_key: &str, name: &str) -> Result<Option<String>> {
        let path = ObjectPath::from(full_key);
        let options = GetOptions {
            head: true,
            ..GetOptions::default()
        };
        match self.store.get_opts(&path, options).await {
            Ok(result) => Ok(result
                .attributes
                .get(&object_store::Attribute::Metadata(name.to_string().into()))
                .map(|v| v.to_string())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.map_error(e, full_key)),
        }
    }

    /// Deletes `full_key` (absent is fine).
    pub async fn delete(&self, full_key: &str) -> Result<()> {
        match self.store.delete(&ObjectPath::from(full_key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.map_error(e, full_key)),
        }
    }
}

/// An error with its causes, one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_scheme_with_custom_endpoint() {
        let l =
            S3Location::parse("s3://bkt/a/b?endpoint=http://127.0.0.1:9000&region=eu-1").unwrap();
        assert_eq!(
            (l.bucket.as_str(), l.prefix.as_str(), l.region.as_str()),
            ("bkt", "a/b", "eu-1")
        );
        assert_eq!(l.endpoint.unwrap().as_str(), "http://127.0.0.1:9000/");
        assert!(l.path_style);
    }

    #[test]
    fn aws_defaults_to_virtual_hosted() {
        let l = S3Location::parse("s3://bkt").unwrap();
        assert!(!l.path_style && l.endpoint.is_none() && l.prefix.is_empty());
        assert_eq!(l.region, DEFAULT_REGION);
        assert_eq!(l.key("/x/y"), "x/y");
    }

    #[test]
    fn http_form_is_path_style_endpoint() {
        let l = S3Location::parse("http://127.0.0.1:9000/bkt/in/coming").unwrap();
        assert_eq!(l.bucket, "bkt");
        assert_eq!(l.prefix, "in/coming");
        assert_eq!(l.key("f.bin"), "in/coming/f.bin");
        assert!(l.path_style);
        assert_eq!(l.describe(), "http://127.0.0.1:9000/bkt/in/coming");
    }

    #[test]
    fn bad_urls_are_named() {
        for bad in [
            "ftp://h/b",
            "http://127.0.0.1:9000/",
            "s3://b?foo=1",
            "s3://b?pathStyle=yes",
            "s3://b?endpoint=ftp://x",
        ] {
            let e = S3Location::parse(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidParameter, "{bad}");
            assert!(e.to_string().contains(bad), "{e}");
        }
    }
}
