//! `arcd kubeconfig`: prints the admin kubeconfig of the embedded server
//! (`DATA_DIR/admin.kubeconfig`), e.g. `arcd kubeconfig > ~/.kube/config`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::config;

/// Arguments of `arcd kubeconfig`.
#[derive(Debug, clap::Args)]
pub struct KubeconfigArgs {
    /// The configuration file (for `dataDir`).
    #[arg(long, value_name = "FILE", env = "ARCD_CONFIG")]
    pub config: Option<PathBuf>,
    /// The data directory (overrides the configuration file).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print the file's path instead of its content.
    #[arg(long)]
    pub path: bool,
}

/// The data directory chosen by `--data-dir`, else the configuration file.
pub fn data_dir(
    config_path: Option<&PathBuf>,
    data_dir: Option<&PathBuf>,
) -> anyhow::Result<PathBuf> {
    if let Some(dir) = data_dir {
        return Ok(std::path::absolute(dir)?);
    }
    let path = config_path
        .cloned()
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_CONFIG_PATH));
    let settings =
        config::load(&path, config_path.is_some()).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(settings.data_dir)
}

/// Runs `arcd kubeconfig`.
pub fn run(args: KubeconfigArgs) -> anyhow::Result<ExitCode> {
    let dir = data_dir(args.config.as_ref(), args.data_dir.as_ref())?;
    let path = dir.join("admin.kubeconfig");
    if args.path {
        println!("{}", path.display());
        return Ok(ExitCode::SUCCESS);
    }
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {} (has `arcd run` started with this data directory?)",
            path.display()
        )
    })?;
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}
