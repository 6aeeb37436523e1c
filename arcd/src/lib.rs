//! The ARC appliance daemon as a library: the command line ([`cli`]) and one module per
//! subcommand ([`commands`]). `main.rs` only parses arguments and calls [`cli::main`].

pub mod cli;
pub mod commands;
