//! `arcd apiserver`: the API server on its own.

use std::process::ExitCode;

/// Arguments of `arcd apiserver`.
#[derive(Debug, clap::Args)]
pub struct ApiserverArgs {}

/// Runs the API server until SIGTERM.
pub fn run(_args: ApiserverArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the API server is not wired into arcd yet")
}
