//! The Order controller: turns each artifact of an Order into an ArtifactWorkflow and reports
//! their progress in the Order's status.
//!
//! Pure parts — [`params`], [`naming`], [`resolve`], [`plan`], [`index`] — decide; the
//! [`controller`] module reads caches and performs the plan against the API server.

pub mod controller;
pub mod index;
pub mod naming;
pub mod params;
pub mod plan;
pub mod resolve;
