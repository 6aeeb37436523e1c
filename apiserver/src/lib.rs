//! The ARC API: the `arc.opendefense.cloud/v1alpha1` resource types and, with the `server`
//! feature, a Kubernetes-compatible API server that stores and serves them.
//!
//! Controllers and tools depend on this crate without the `server` feature to get the typed
//! resources; `arcd` enables it to run the server.

pub mod types;

#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub mod storage;
