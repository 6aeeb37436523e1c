//! meta.k8s.io/v1 Table and PartialObjectMetadata conversions.
