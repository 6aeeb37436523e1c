//! Shared helpers of the OCI and Helm integration tests: running a pipeline in-process with
//! parameters and secret directories, and reading what it reported.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use bundles::error::Result;
use bundles::params::Params;
use bundles::pipeline::{Job, Settings, Template};
use bundles::progress::{Captured, Reporter, Summary};
use bundles::retry::RetryPolicy;
use bundles::secrets::{Credentials, Secrets};
use tokio_util::sync::CancellationToken;

/// A quick retry policy for tests (faults are injected on purpose).
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(400),
        max_retry_after: Duration::from_secs(5),
    }
}

/// Writes `username`/`password` into a fresh secret directory.
pub fn basic_secret(user: &str, pass: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("username"), user).unwrap();
    std::fs::write(dir.path().join("password"), pass).unwrap();
    dir
}

/// Runs `template` with `params`, secrets from `src`/`dst` directories (if any).
pub async fn run_pipeline(
    template: Template,
    params: &[(&str, &str)],
    src: Option<&Path>,
    dst: Option<&Path>,
    retry: RetryPolicy,
) -> (Result<Summary>, Captured) {
    run_pipeline_with(
        template,
        params,
        src,
        dst,
        Settings {
            retry,
            ..Settings::default()
        },
    )
    .await
}

/// Like [`run_pipeline`], with all operator settings given.
pub async fn run_pipeline_with(
    template: Template,
    params: &[(&str, &str)],
    src: Option<&Path>,
    dst: Option<&Path>,
    settings: Settings,
) -> (Result<Summary>, Captured) {
    let load = |dir: Option<&Path>| {
        dir.map(|d| Credentials::load(d).unwrap())
            .unwrap_or_default()
    };
    let secrets = Secrets {
        src: load(src),
        dst: load(dst),
    };
    let (reporter, captured) = Reporter::capture();
    let job = Job {
        template,
        params: Params::from_pairs(params.iter().map(|(k, v)| (k.to_string(), v.to_string()))),
        secrets,
        settings,
        reporter,
        cancel: CancellationToken::new(),
    };
    let result = bundles::pipeline::run(&job).await;
    (result, captured)
}

/// The events named `name` among `captured`'s.
pub fn events(captured: &Captured, name: &str) -> Vec<serde_json::Value> {
    captured
        .events()
        .into_iter()
        .filter(|e| e["event"] == name)
        .collect()
}
