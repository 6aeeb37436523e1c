//! Authentication (client certificates) and authorization (admin and read-only groups).
