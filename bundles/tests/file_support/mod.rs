//! Shared helpers of the `arc-file` integration tests: jobs, test data, and an independent S3
//! client (plain `object_store`) to seed and read back buckets.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bundles::progress::Captured;
use bundles::retry::RetryPolicy;
use bundles::scan::ScanCommand;
use bundles::{Job, Params, Reporter, Secrets, Settings, Template};
use object_store::ObjectStoreExt as _;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use sha2::{Digest as _, Sha256};
use tokio_util::sync::CancellationToken;

/// Deterministic pseudo-random bytes (xorshift), so every test has its own content.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Retries fast enough for tests.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        max_retry_after: Duration::from_secs(5),
    }
}

/// A job for `arc-file` with `params`; `scanner` is a command line.
pub fn file_job(
    params: &[(&str, String)],
    secrets: Secrets,
    scanner: Option<&str>,
    staging: &Path,
) -> (Job, Captured) {
    let (reporter, captured): (Reporter, Captured) = Reporter::capture();
    let settings = Settings {
        scanner: scanner.map(|s| ScanCommand::parse(s, Duration::from_secs(60)).unwrap()),
        retry: fast_retry(),
        staging_dir: Some(staging.to_path_buf()),
    };
    let job = Job {
        template: Template::File,
        params: Params::from_pairs(params.iter().map(|(k, v)| (k.to_string(), v.clone()))),
        secrets,
        settings,
        reporter,
        cancel: CancellationToken::new(),
    };
    (job, captured)
}

/// Every file in `dir`, recursively, relative, sorted (hidden staging files included).
pub fn files_in(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, base, out);
            } else {
                out.push(path.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// An S3 client that is not ours, for seeding and reading back.
pub fn s3_client(server: &arc_tests::s3::S3Server, bucket: &str) -> Arc<AmazonS3> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Arc::new(
        AmazonS3Builder::new()
            .with_endpoint(server.endpoint())
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_bucket_name(bucket)
            .with_access_key_id(arc_tests::s3::ACCESS_KEY_ID)
            .with_secret_access_key(arc_tests::s3::SECRET_ACCESS_KEY)
            .build()
            .expect("test S3 client"),
    )
}

/// Puts an object.
pub async fn s3_put(client: &AmazonS3, key: &str, bytes: Vec<u8>) {
    client
        .put(&ObjectPath::from(key), bytes.into())
        .await
        .expect("seed object");
}

/// Reads an object, `None` if absent.
pub async fn s3_get(client: &AmazonS3, key: &str) -> Option<Vec<u8>> {
    match client.get(&ObjectPath::from(key)).await {
        Ok(result) => Some(result.bytes().await.expect("object body").to_vec()),
        Err(object_store::Error::NotFound { .. }) => None,
        Err(e) => panic!("GET {key}: {e}"),
    }
}

/// Every key in the bucket.
pub async fn s3_keys(client: &AmazonS3) -> Vec<String> {
    use futures::TryStreamExt as _;
    use object_store::ObjectStore as _;
    let mut keys: Vec<String> = client
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .expect("list bucket");
    keys.sort();
    keys
}

/// Writes S3 credentials for `server` into a fresh directory and loads them as the `side`.
pub fn s3_secrets(server: &arc_tests::s3::S3Server, dir: &Path, src: bool, dst: bool) -> Secrets {
    let src_dir = dir.join("src");
    let dst_dir = dir.join("dst");
    if src {
        server.write_credentials(&src_dir);
    }
    if dst {
        server.write_credentials(&dst_dir);
    }
    Secrets::load(&src_dir, &dst_dir).unwrap()
}

/// The names of the JSON events.
pub fn event_names(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap_or("?").to_string())
        .collect()
}
