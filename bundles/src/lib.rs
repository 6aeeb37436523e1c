//! ARC data plane: sources, destinations and pipelines that move artifacts digest-exactly.
//!
//! `arcd worker` is this crate's command-line face: it parses the workflow parameters
//! ([`params::Params`]), reads the credentials ([`secrets::Secrets`]), picks the pipeline by
//! template name ([`pipeline::Template`]) and calls [`pipeline::run`], which reports progress as
//! JSON lines ([`progress::Reporter`]) and fails with an [`error::Error`] that names the
//! artifact, the endpoint and the reason. The crate knows nothing of Kubernetes.

pub mod error;
pub mod file;
pub mod helm;
pub mod http;
pub mod oci;
pub mod params;
pub mod pipeline;
pub mod progress;
pub mod retry;
pub mod s3;
pub mod scan;
pub mod secrets;

pub use error::{Error, ErrorKind, Result};
pub use params::Params;
pub use pipeline::{Job, Settings, Template, run};
pub use progress::{Reporter, Summary};
pub use secrets::Secrets;
