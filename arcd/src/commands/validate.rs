//! `arcd validate`: offline checks of configuration and resource files.

use std::process::ExitCode;

/// Arguments of `arcd validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {}

/// Runs `arcd validate`.
pub fn run(_args: ValidateArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`arcd validate` is not available yet")
}
