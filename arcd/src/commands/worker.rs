//! `arcd worker`: moves one artifact with a built-in pipeline.

use std::process::ExitCode;

/// Arguments of `arcd worker`.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {}

/// Runs the worker.
pub fn run(_args: WorkerArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the worker is not wired into arcd yet")
}
