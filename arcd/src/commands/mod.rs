//! One module per `arcd` subcommand; each exposes its clap `Args` and a `run` function.

pub mod apiserver;
pub mod controllers;
pub mod kubeconfig;
pub mod run;
pub mod status;
pub mod validate;
pub mod worker;
