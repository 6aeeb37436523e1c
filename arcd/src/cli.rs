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
    /// Serve the ARC API (embedded storage or etcd) until SIGTERM.
    Apiserver(commands::apiserver::ApiserverArgs),
    /// Run the data-plane worker for one artifact (used by executors).
    Worker(commands::worker::WorkerArgs),
}

/// Runs the chosen subcommand and maps its outcome to the process exit code.
pub fn main(cli: Cli) -> ExitCode {
    let result = match cli.command {
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
