//! The `arc-file` pipeline: one file or object from `http`, `s3` or `dir` to `s3`, `dir` or an
//! OCI registry, verified against its expected SHA-256 before anything is published.

use crate::error::{Error, ErrorKind, Result};
use crate::pipeline::Job;

/// Runs the `arc-file` pipeline.
pub async fn run(_job: &Job) -> Result<()> {
    Err(Error::new(ErrorKind::Unsupported, "the arc-file pipeline is being built"))
}
