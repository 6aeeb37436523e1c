//! A real OCI registry for tests: Debian's `docker-registry` (distribution 2.8) with a config of
//! our own — filesystem storage in a per-test directory, listening on 127.0.0.1 only, deletes
//! enabled, and optionally htpasswd basic auth with a bcrypt file generated here. (The
//! packaged default config turns on htpasswd and listens on all interfaces.)
//!
//! The registry can be killed and restarted on the same port and storage, which keeps its
//! upload sessions valid (the HTTP secret that signs them is fixed in the config).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::ports::free_port;
use crate::process::ServerProcess;
use crate::tools;

/// The registry binary's name on Debian.
pub const REGISTRY_BIN: &str = "docker-registry";
/// How long a registry may take to listen.
const START_TIMEOUT_SECS: u64 = 30;

/// Finds `docker-registry` for `test` (see [`tools::require`]).
pub fn require(test: &str) -> Option<PathBuf> {
    tools::require(REGISTRY_BIN, test)
}

/// A running registry, stopped (SIGKILL) when dropped.
#[derive(Debug)]
pub struct Registry {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    credentials: Option<(String, String)>,
    ca_pem: Option<String>,
    process: Option<ServerProcess>,
    starts: u32,
}

impl Registry {
    /// Starts an anonymous registry.
    pub fn start(bin: &Path) -> Self {
        Self::start_inner(bin, None, false)
    }

    /// Starts a registry that requires HTTP basic auth as `username`/`password`.
    pub fn start_with_basic_auth(bin: &Path, username: &str, password: &str) -> Self {
        Self::start_inner(
            bin,
            Some((username.to_string(), password.to_string())),
            false,
        )
    }

    /// Starts an anonymous registry serving HTTPS with a certificate for 127.0.0.1 issued by a
    /// CA made for it ([`Registry::ca_pem`]).
    pub fn start_with_tls(bin: &Path) -> Self {
        Self::start_inner(bin, None, true)
    }

    fn start_inner(bin: &Path, credentials: Option<(String, String)>, tls: bool) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("arc-registry-")
            .tempdir()
            .expect("registry temp dir");
        let port = free_port();
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).expect("registry storage dir");
        let mut auth = String::new();
        if let Some((user, pass)) = &credentials {
            let hash = bcrypt::hash(pass, 5).expect("bcrypt");
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{user}:{hash}\n")).expect("write htpasswd");
            auth = format!(
                "auth:\n  htpasswd:\n    realm: arc-test\n    path: {}\n",
                htpasswd.display()
            );
        }
        let mut ca_pem = None;
        let mut http_tls = String::new();
        if tls {
            let (ca, cert, key) = test_certificates();
            std::fs::write(dir.path().join("server.crt"), cert).expect("write certificate");
            std::fs::write(dir.path().join("server.key"), key).expect("write key");
            http_tls = format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                dir.path().join("server.crt").display(),
                dir.path().join("server.key").display()
            );
            ca_pem = Some(ca);
        }
        let config = format!(
            "version: 0.1\n\
             log:\n  level: info\n  formatter: text\n\
             storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n  \
             maintenance:\n    uploadpurging:\n      enabled: false\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: arc-test-registry-secret\n{http_tls}\
             health:\n  storagedriver:\n    enabled: false\n\
             {auth}",
            storage = storage.display(),
        );
        std::fs::write(dir.path().join("config.yml"), config).expect("write registry config");
        let mut registry = Self {
            bin: bin.to_path_buf(),
            dir,
            port,
            credentials,
            ca_pem,
            process: None,
            starts: 0,
        };
        registry.restart();
        registry
    }

    /// (Re)starts the process on the same port and storage.
    pub fn restart(&mut self) {
        self.kill();
        self.starts += 1;
        let mut command = Command::new(&self.bin);
        command.arg("serve").arg(self.dir.path().join("config.yml"));
        let log = self
            .dir
            .path()
            .join(format!("registry-{}.log", self.starts));
        let mut process =
            ServerProcess::spawn("docker-registry", command, &log).expect("spawn docker-registry");
        process.wait_for_port(self.addr(), Duration::from_secs(START_TIMEOUT_SECS));
        self.process = Some(process);
    }

    /// Kills the process (SIGKILL); the storage stays.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:<port>` (`https://` for a TLS registry).
    pub fn url(&self) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.host())
    }

    /// The PEM of the CA that issued a TLS registry's certificate.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// The basic-auth credentials, if the registry requires them.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// Credential flags for skopeo, if any: `prefix` `--src` or `--dest` gives
    /// `--src-creds=user:pass`, an empty prefix gives `--creds=user:pass`.
    pub fn skopeo_creds(&self, prefix: &str) -> Vec<String> {
        match &self.credentials {
            Some((u, p)) if prefix.is_empty() => vec![format!("--creds={u}:{p}")],
            Some((u, p)) => vec![format!("{prefix}-creds={u}:{p}")],
            None => Vec::new(),
        }
    }

    /// The storage directory.
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Every log line the registry wrote so far (all starts).
    pub fn log(&self) -> String {
        (1..=self.starts)
            .filter_map(|n| {
                std::fs::read_to_string(self.dir.path().join(format!("registry-{n}.log"))).ok()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A CA and a server certificate for 127.0.0.1 and localhost it issued: (CA PEM, certificate
/// PEM, key PEM).
fn test_certificates() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ARC test registry CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA certificate");
    let key = rcgen::KeyPair::generate().expect("server key");
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("server params");
    let cert = params.signed_by(&key, &ca).expect("server certificate");
    (ca.pem(), cert.pem(), key.serialize_pem())
}
