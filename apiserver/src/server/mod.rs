//! The Kubernetes-compatible API server: a table of served kinds ([`registry`]) and generic
//! handlers over a [`crate::storage::Store`].

pub mod app;
pub mod auth;
pub mod background;
pub mod discovery;
pub mod embedded;
pub mod errors;
pub mod kinds;
pub mod kubeconfig;
pub mod negotiate;
pub mod object;
pub mod openapi;
pub mod pki;
pub mod protobuf;
pub mod registry;
pub mod request;
pub mod rest;
pub mod selectors;
pub mod state;
pub mod table;
pub mod testing;
pub mod tls;
pub mod validation;

pub use app::app;
pub use state::{ApiState, ServerOptions};
