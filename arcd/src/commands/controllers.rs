//! `arcd controllers`: the controllers against a kubeconfig (cluster mode).

use std::process::ExitCode;

/// Arguments of `arcd controllers`.
#[derive(Debug, clap::Args)]
pub struct ControllersArgs {}

/// Runs `arcd controllers`.
pub fn run(_args: ControllersArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`arcd controllers` is not available yet")
}
