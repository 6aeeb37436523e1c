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
    process: Option<ServerProcess>,
    starts: u32,
}

impl Registry {
    /// Starts an anonymous registry.
    pub fn start(bin: &Path) -> Self {
        Self::start_inner(bin, None)
    }

    /// Starts a registry that requires HTTP basic auth as `username`/`password`.
    pub fn start_with_basic_auth(bin: &Path, username: &str, password: &str) -> Self {
        Self::start_inner(bin, Some((username.to_string(), password.to_string())))
    }

    fn start_inner(bin: &Path, credentials: Option<(String, String)>) -> Self {
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
        let config = format!(
            "version: 0.1\n\
             log:\n  level: info\n  formatter: text\n\
             storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n  \
             maintenance:\n    uploadpurging:\n      enabled: false\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: arc-test-registry-secret\n\
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

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.host())
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
