//! One module per `arcd` subcommand; each exposes its clap `Args` and a `run` function.

pub mod apiserver;
pub mod worker;
