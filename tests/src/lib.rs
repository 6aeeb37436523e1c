//! Fixtures for ARC's integration and end-to-end tests: they find the real tools the tests need
//! and start real servers (etcd, OCI registries, S3, HTTP) on loopback with per-test ports and
//! directories, stopped when the test ends.
//!
//! A test that needs a missing tool fails under CI (`CI` set in the environment) and is skipped
//! with a loud message elsewhere: see [`tools::require`].

pub mod etcd;
pub mod fault_proxy;
pub mod http_server;
pub mod ports;
pub mod process;
pub mod registry;
pub mod s3;
pub mod skopeo;
pub mod tools;
