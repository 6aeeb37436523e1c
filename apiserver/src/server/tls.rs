//! The TLS listener: rustls, optional client certificates, HTTP/1.1 and HTTP/2.
