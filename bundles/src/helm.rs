//! The `arc-helm` pipeline: a chart from a Helm repository pushed as a Helm OCI artifact.

use crate::error::{Error, ErrorKind, Result};
use crate::pipeline::Job;

/// Runs the `arc-helm` pipeline.
pub async fn run(_job: &Job) -> Result<()> {
    Err(Error::new(ErrorKind::Unsupported, "the arc-helm pipeline is not available in this build"))
}
