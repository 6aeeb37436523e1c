//! `arcd run`: the all-in-one daemon ([`crate::daemon`]), or with `--once` a single batch run
//! ([`crate::daemon::once`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::{self, Overrides};
use crate::daemon::{self, ConfigSource};

/// Arguments of `arcd run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The configuration file.
    #[arg(long, value_name = "FILE", env = "ARCD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Overrides `dataDir`.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Overrides `resources.directories` (repeat for several).
    #[arg(long = "resource-dir", value_name = "DIR")]
    pub resource_dirs: Vec<PathBuf>,
    /// Overrides `api.listen`.
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<SocketAddr>,
    /// Overrides `health.listen`.
    #[arg(long, value_name = "HOST:PORT")]
    pub health_listen: Option<SocketAddr>,
    /// Sync the files, run every Order to completion, print a summary and exit (0 only if every
    /// artifact succeeded).
    #[arg(long)]
    pub once: bool,
    /// With `--once`: how long to wait for the Orders to finish.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = config::parse_duration, requires = "once")]
    pub timeout: std::time::Duration,
}

/// Runs `arcd run`.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let source = ConfigSource {
        explicit: args.config.is_some(),
        path: args
            .config
            .clone()
            .unwrap_or_else(|| PathBuf::from(config::DEFAULT_CONFIG_PATH)),
        overrides: Overrides {
            data_dir: args.data_dir.clone(),
            resource_dirs: args.resource_dirs.clone(),
            api_listen: args.listen,
            health_listen: args.health_listen,
        },
    };
    let settings = match source.load() {
        Ok(settings) => settings,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(ExitCode::FAILURE);
        }
    };
    crate::logging::init(&settings.log);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("arcd")
        .build()?;
    let result = if args.once {
        runtime.block_on(daemon::once::run(settings, args.timeout))
    } else {
        runtime.block_on(daemon::run(source, settings))
    };
    // Do not wait for blocking tasks (file watchers, stuck reads) beyond a moment.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    result
}
