//! OCI side of the data plane: registry client, copy engine, OCI image layout, and the `arc-oci` pipeline.

use crate::error::{Error, ErrorKind, Result};
use crate::pipeline::Job;

/// Runs the `arc-oci` pipeline.
pub async fn run(_job: &Job) -> Result<()> {
    Err(Error::new(ErrorKind::Unsupported, "the arc-oci pipeline is not available in this build"))
}
