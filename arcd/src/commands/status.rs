//! `arcd status`: a table of Orders and their artifacts.

use std::process::ExitCode;

/// Arguments of `arcd status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {}

/// Runs `arcd status`.
pub fn run(_args: StatusArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`arcd status` is not available yet")
}
