//! The Kubernetes-compatible API server: a table of served kinds ([`registry`]) and generic
//! handlers over a [`crate::storage::Store`].

pub mod auth;
pub mod discovery;
pub mod kubeconfig;
pub mod openapi;
pub mod pki;
pub mod registry;
pub mod selectors;
pub mod table;
pub mod tls;
pub mod validation;
