//! `arcd`: parses the command line and hands over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    arcd::cli::main(arcd::cli::Cli::parse())
}
