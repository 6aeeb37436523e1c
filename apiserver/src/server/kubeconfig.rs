//! Writing the admin kubeconfig for the embedded server.
//!
//! A kubeconfig here is self-contained: the CA certificate, the client certificate and its key
//! are embedded (base64 of the PEM, the `*-data` fields), so the file works wherever it is
//! copied. It is written with mode 0600 through a temporary file and a rename, so a reader
//! never sees half of one. kubectl and kube-rs (rustls) both accept it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::server::pki::{CertAndKey, Pki, write_private_file_atomically};

/// Cluster, user and context name in the admin kubeconfig.
pub const ADMIN_NAME: &str = "arc";
/// User and context name in the read-only kubeconfig (its cluster is [`ADMIN_NAME`]).
pub const VIEWER_NAME: &str = "arc-viewer";

/// A failure to write a kubeconfig.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    /// Writing the file failed.
    #[error("writing kubeconfig {path}: {source}")]
    Write {
        /// The kubeconfig path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The server URL is not an `https://` URL.
    #[error("kubeconfig {path}: server URL {url:?} must start with https://")]
    NotHttps {
        /// The kubeconfig path.
        path: PathBuf,
        /// The URL given.
        url: String,
    },
}

/// What goes into a kubeconfig with one cluster, one user and one context.
#[derive(Clone, Copy, Debug)]
pub struct KubeconfigSpec<'a> {
    /// `https://HOST:PORT` of the API server.
    pub server_url: &'a str,
    /// The CA certificate the server's certificate chains to, PEM.
    pub ca_cert_pem: &'a str,
    /// The client certificate and key.
    pub credentials: &'a CertAndKey,
    /// Name of the cluster entry.
    pub cluster_name: &'a str,
    /// Name of the user entry.
    pub user_name: &'a str,
    /// Name of the context (also the current context).
    pub context_name: &'a str,
}

/// The server URL for a listen address: `https://HOST:PORT`, with IPv6 in brackets and an
/// unspecified address (`0.0.0.0`, `::`) replaced by the loopback address of its family.
pub fn server_url(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("https://{}", SocketAddr::new(ip, listen.port()))
}

/// The kubeconfig document (YAML).
pub fn render(spec: &KubeconfigSpec<'_>) -> String {
    let quote = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
    format!(
        "apiVersion: v1\n\
         kind: Config\n\
         clusters:\n\
         - name: {cluster}\n  \
           cluster:\n    \
             server: {server}\n    \
             certificate-authority-data: {ca}\n\
         users:\n\
         - name: {user}\n  \
           user:\n    \
             client-certificate-data: {cert}\n    \
             client-key-data: {key}\n\
         contexts:\n\
         - name: {context}\n  \
           context:\n    \
             cluster: {cluster}\n    \
             user: {user}\n\
         current-context: {context}\n\
         preferences: {{}}\n",
        cluster = quote(spec.cluster_name),
        user = quote(spec.user_name),
        context = quote(spec.context_name),
        server = quote(spec.server_url),
        ca = BASE64.encode(spec.ca_cert_pem),
        cert = BASE64.encode(&spec.credentials.cert_pem),
        key = BASE64.encode(&spec.credentials.key_pem),
    )
}

/// Writes the kubeconfig for `spec` to `path` (mode 0600, atomically).
pub fn write(path: &Path, spec: &KubeconfigSpec<'_>) -> Result<(), KubeconfigError> {
    if !spec.server_url.starts_with("https://") {
        return Err(KubeconfigError::NotHttps {
            path: path.to_path_buf(),
            url: spec.server_url.to_owned(),
        });
    }
    write_private_file_atomically(path, render(spec).as_bytes()).map_err(|source| {
        KubeconfigError::Write {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// Writes the administrator's kubeconfig (cluster, user and context `arc`).
pub fn write_admin(path: &Path, pki: &Pki, server_url: &str) -> Result<(), KubeconfigError> {
    write_for(path, pki, server_url, pki.admin(), ADMIN_NAME)
}

/// Writes the read-only kubeconfig (cluster `arc`, user and context `arc-viewer`).
pub fn write_viewer(path: &Path, pki: &Pki, server_url: &str) -> Result<(), KubeconfigError> {
    write_for(path, pki, server_url, pki.viewer(), VIEWER_NAME)
}

/// Writes a kubeconfig for any client certificate issued by `pki` (see
/// [`Pki::issue_client_cert`]), with cluster `arc` and user and context `name`.
pub fn write_for(
    path: &Path,
    pki: &Pki,
    server_url: &str,
    credentials: &CertAndKey,
    name: &str,
) -> Result<(), KubeconfigError> {
    write(
        path,
        &KubeconfigSpec {
            server_url,
            ca_cert_pem: pki.ca_cert_pem(),
            credentials,
            cluster_name: ADMIN_NAME,
            user_name: name,
            context_name: name,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_bracket_ipv6_and_replace_unspecified_addresses() {
        assert_eq!(
            server_url("127.0.0.1:6443".parse().unwrap()),
            "https://127.0.0.1:6443"
        );
        assert_eq!(
            server_url("0.0.0.0:6443".parse().unwrap()),
            "https://127.0.0.1:6443"
        );
        assert_eq!(
            server_url("[::]:6443".parse().unwrap()),
            "https://[::1]:6443"
        );
        assert_eq!(
            server_url("[fd00::5]:1".parse().unwrap()),
            "https://[fd00::5]:1"
        );
    }

    #[test]
    fn rendered_kubeconfig_embeds_everything_base64() {
        let creds = CertAndKey {
            cert_pem: "CERT".into(),
            key_pem: "KEY".into(),
        };
        let text = render(&KubeconfigSpec {
            server_url: "https://[::1]:6443",
            ca_cert_pem: "CA",
            credentials: &creds,
            cluster_name: "arc",
            user_name: "arc",
            context_name: "arc",
        });
        assert!(text.contains("server: \"https://[::1]:6443\"\n"), "{text}");
        assert!(
            text.contains("certificate-authority-data: Q0E=\n"),
            "{text}"
        );
        assert!(
            text.contains("client-certificate-data: Q0VSVA==\n"),
            "{text}"
        );
        assert!(text.contains("client-key-data: S0VZ\n"), "{text}");
        assert!(text.contains("current-context: \"arc\"\n"), "{text}");
    }
}
