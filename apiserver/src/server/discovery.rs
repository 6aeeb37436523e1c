//! Legacy and aggregated discovery documents built from the registry.
