//! The `arcd` command line: one subcommand per role of the binary.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands;

/// ARC, the Artifact Conduit: moves OCI images, Helm charts, files and S3 objects across an air gap.
#[derive(Debug, Parser)]
#[command(name = "arcd", version, about, propagate_version = true)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The roles of the `arcd` binary.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run everything on this host: embedded API server, controllers, local executor, file syncer,
    /// health and metrics. With `--once`: sync, run every Order to completion, print a summary, exit.
    Run(commands::run::RunArgs),
    /// Check the configuration and resource files offline; print every error as `file:line:col: message`.
    Validate(commands::validate::ValidateArgs),
    /// Show Orders and their artifacts with phase and age.
    Status(commands::status::StatusArgs),
    /// Print the admin kubeconfig of the embedded API server.
    Kubeconfig(commands::kubeconfig::KubeconfigArgs),
    /// Run the controllers against an API server given by a kubeconfig (cluster mode).
    Controllers(commands::controllers::ControllersArgs),
    /// Serve the ARC API (embedded storage or etcd) until SIGTERM.
    Apiserver(commands::apiserver::ApiserverArgs),
    /// Run the data-plane worker for one artifact (used by executors).
    Worker(commands::worker::WorkerArgs),
}

/// Parses the command line. Help and version are printed as clap does; a usage error becomes
/// one line on stderr (`arcd: <problem>`) and exit code 2, so scripts and journals see one line.
pub fn parse() -> Result<Cli, ExitCode> {
    use clap::error::ErrorKind;
    match Cli::try_parse() {
        Ok(cli) => Ok(cli),
        Err(error)
            if matches!(
                error.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            let _ = error.print();
            Err(if error.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            })
        }
        Err(error) => {
            // clap's message up to its usage hint, folded onto one line.
            let rendered = error.to_string();
            let message: Vec<&str> = rendered
                .lines()
                .map(str::trim)
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .filter(|l| !l.is_empty())
                .collect();
            let message = message.join(" ");
            eprintln!(
                "arcd: {}",
                message.strip_prefix("error: ").unwrap_or(&message)
            );
            Err(ExitCode::from(2))
        }
    }
}

/// Runs the chosen subcommand and maps its outcome to the process exit code.
pub fn main(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Run(args) => commands::run::run(args),
        Command::Validate(args) => commands::validate::run(args),
        Command::Status(args) => commands::status::run(args),
        Command::Kubeconfig(args) => commands::kubeconfig::run(args),
        Command::Controllers(args) => commands::controllers::run(args),
        Command::Apiserver(args) => commands::apiserver::run(args),
        Command::Worker(args) => commands::worker::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("arcd: {error:#}");
            ExitCode::FAILURE
        }
    }
}
