//! OCI side of the data plane: a registry client, the copy engine, OCI image layouts, cosign
//! verification, OCI artifacts, and the `arc-oci` pipeline.
//!
//! The registry client is our own, on reqwest: streaming every blob with its SHA-256 checked on
//! the fly, resumable chunked uploads completed only after the digest matched (and abandoned
//! otherwise), HEAD / cross-repo mount / copy per blob, per-host limits and retries honouring
//! `Retry-After` need control over each request that general-purpose clients do not give.
//!
//! Entry points for other code:
//! - [`Copier::copy`] / [`Copier::copy_root`]: copy an image between two [`OciRepo`]s;
//! - [`open_repo`]: an [`OciRepo`] from an Endpoint's type, `remoteURL` and credentials;
//! - [`push_file_artifact`] / [`push_artifact`]: publish local files as an OCI artifact;
//! - [`CosignVerifier`]: check a cosign signature;
//! - [`run`]: the `arc-oci` pipeline.

pub mod artifact;
pub mod auth;
pub mod client;
pub mod copy;
pub mod cosign;
pub mod digest;
pub(crate) mod http;
pub mod layout;
pub mod manifest;
pub mod pipeline;
pub mod reference;
pub mod referrers;
pub mod repo;
pub mod upload;

pub use artifact::{LayerFile, PushedArtifact, push_artifact, push_file_artifact};
pub use auth::RegistryAuth;
pub use client::RegistryClient;
pub use copy::{Copier, CopyOptions, CopyOutcome};
pub use cosign::{CosignVerifier, SignaturePolicy, Verification};
pub use digest::Digest;
pub use layout::OciLayout;
pub use manifest::{Descriptor, Platform};
pub use pipeline::{open_repo, run};
pub use reference::{ImageRef, RegistryEndpoint};
pub use repo::OciRepo;
