//! Server-side validation of objects against their schema and the metadata rules.
