//! A real S3 server for tests: `s3s-fs` (`cargo install s3s-fs --features binary`, see
//! tests/install-deps.sh) serving a per-test directory on a free loopback port, with static
//! credentials. Buckets are directories under its root and objects are files, so tests can
//! also check what landed (or did not) directly on disk.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::ports::free_port;
use crate::process::ServerProcess;
use crate::tools;

/// The access key every test server accepts.
pub const ACCESS_KEY_ID: &str = "arc-test-access";
/// The secret key every test server accepts.
pub const SECRET_ACCESS_KEY: &str = "arc-test-secret-key";

/// A running S3 server; killed on drop, its data removed with its temp dir.
#[derive(Debug)]
pub struct S3Server {
    /// The server process.
    pub process: ServerProcess,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The data root (one directory per bucket).
    pub root: PathBuf,
    _dir: tempfile::TempDir,
}

impl S3Server {
    /// Starts `s3s-fs` with buckets `buckets`; `None` (after a loud skip message) when the tool
    /// is missing outside CI. `test` says what needs it.
    pub fn start(test: &str, buckets: &[&str]) -> Option<Self> {
        // `cargo install` puts it in ~/.cargo/bin, which may not be on PATH.
        let installed = std::env::var_os("HOME")
            .map(|home| PathBuf::from(home).join(".cargo/bin/s3s-fs"))
            .filter(|p| p.is_file());
        let binary = match tools::find("s3s-fs").or(installed) {
            Some(binary) => binary,
            None => tools::require("s3s-fs", test)?,
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("data");
        std::fs::create_dir_all(&root).expect("s3 root");
        for bucket in buckets {
            std::fs::create_dir_all(root.join(bucket)).expect("bucket dir");
        }
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let mut command = Command::new(binary);
        command
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--access-key",
                ACCESS_KEY_ID,
                "--secret-key",
                SECRET_ACCESS_KEY,
            ])
            .arg(&root);
        let mut process = ServerProcess::spawn("s3s-fs", command, &dir.path().join("s3s-fs.log"))
            .expect("spawn s3s-fs");
        process.wait_for_port(addr, Duration::from_secs(20));
        Some(Self {
            process,
            addr,
            root,
            _dir: dir,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The file backing `bucket`/`key`.
    pub fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.root.join(bucket).join(key)
    }

    /// Every file under `bucket` (relative paths), sorted — what a client could list, plus any
    /// server bookkeeping files (tests filter as needed).
    pub fn files(&self, bucket: &str) -> Vec<String> {
        let mut out = Vec::new();
        collect(&self.root.join(bucket), Path::new(""), &mut out);
        out.sort();
        out
    }

    /// Writes credential files for this server (`accessKeyID`, `secretAccessKey`) into `dir`,
    /// as a mounted Secret would hold them.
    pub fn write_credentials(&self, dir: &Path) {
        std::fs::create_dir_all(dir).expect("secret dir");
        std::fs::write(dir.join("accessKeyID"), ACCESS_KEY_ID).expect("accessKeyID");
        std::fs::write(dir.join("secretAccessKey"), SECRET_ACCESS_KEY).expect("secretAccessKey");
    }
}

fn collect(dir: &Path, prefix: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let rel = prefix.join(entry.file_name());
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            collect(&entry.path(), &rel, out);
        } else {
            out.push(rel.display().to_string());
        }
    }
}
