//! The embedded PKI: CA, serving and client certificates created on first start.
