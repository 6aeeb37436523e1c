//! `arcd run`: the all-in-one daemon.

use std::process::ExitCode;

/// Arguments of `arcd run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {}

/// Runs `arcd run`.
pub fn run(_args: RunArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`arcd run` is not available yet")
}
