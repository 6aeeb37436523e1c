//! The storage conformance suite: one set of checks every [`super::Store`] backend must pass.
