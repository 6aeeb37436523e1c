//! S3-compatible object storage as a source and destination (`object_store`).
