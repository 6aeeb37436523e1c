//! `arcd kubeconfig`: prints the admin kubeconfig of the embedded server.

use std::process::ExitCode;

/// Arguments of `arcd kubeconfig`.
#[derive(Debug, clap::Args)]
pub struct KubeconfigArgs {}

/// Runs `arcd kubeconfig`.
pub fn run(_args: KubeconfigArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`arcd kubeconfig` is not available yet")
}
