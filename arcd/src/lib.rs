//! The ARC appliance daemon as a library: the command line ([`cli`]) and one module per
//! subcommand ([`commands`]). `main.rs` only parses arguments and calls [`cli::main`].

pub mod cli;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod diagnostic;
pub mod health;
pub mod logging;
pub mod metrics;
pub mod resources;
pub mod shutdown;
pub mod summary;
pub mod syncer;
pub mod systemd;
pub mod yaml;
