//! A real etcd for tests: the Debian `etcd` binary on free loopback ports with a temporary data
//! directory, killed when the fixture is dropped.
//!
//! ```ignore
//! let Some(etcd) = arc_tests::etcd::EtcdServer::start_for("storage conformance on etcd") else { return };
//! let store = EtcdStore::connect(&[etcd.endpoint()]).await?;
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::ports::free_port;
use crate::process::ServerProcess;
use crate::tools;

/// How long etcd may take to become healthy.
const START_TIMEOUT_SECS: u64 = 30;

/// A running single-member etcd owned by a test.
#[derive(Debug)]
pub struct EtcdServer {
    process: Option<ServerProcess>,
    binary: PathBuf,
    client_port: u16,
    peer_port: u16,
    extra_args: Vec<String>,
    dir: tempfile::TempDir,
}

impl EtcdServer {
    /// Starts etcd. Returns `None` when etcd is not installed outside CI (see
    /// [`tools::require`]); panics if it does not come up. [`EtcdServer::start_for`] names the
    /// test in the message about a missing etcd.
    pub fn start() -> Option<Self> {
        Self::start_for("a test or benchmark that runs against a real etcd")
    }

    /// Like [`EtcdServer::start`], naming `test` (what needs etcd) if etcd is missing.
    pub fn start_for(test: &str) -> Option<Self> {
        Self::start_with_args(test, &[])
    }

    /// Like [`EtcdServer::start`], with extra etcd flags (e.g. `--max-request-bytes=...`).
    pub fn start_with_args(test: &str, extra_args: &[&str]) -> Option<Self> {
        let binary = tools::require("etcd", test)?;
        let dir = tempfile::Builder::new()
            .prefix("arc-etcd-")
            .tempdir()
            .expect("create etcd temp dir");
        let mut server = Self {
            process: None,
            binary,
            client_port: free_port(),
            peer_port: free_port(),
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
            dir,
        };
        server.launch();
        Some(server)
    }

    /// The client URL, e.g. `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The log file etcd writes to.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    /// Kills etcd (SIGKILL), keeping its data, e.g. to test how clients behave while it is down.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    /// Starts etcd again on the same ports and data after [`EtcdServer::kill`].
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    fn launch(&mut self) {
        let client = format!("http://127.0.0.1:{}", self.client_port);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let mut command = Command::new(&self.binary);
        command
            .arg("--name=arc-test")
            .arg(format!("--data-dir={}", self.data_dir().display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=arc-test={peer}"))
            .arg("--initial-cluster-state=new")
            .arg("--log-level=warn")
            .args(&self.extra_args)
            // Never pick up configuration from the environment of the machine.
            .env_remove("ETCD_CONFIG_FILE")
            .env_remove("ETCDCTL_API");
        let log = self.log_path();
        let mut process =
            ServerProcess::spawn("etcd", command, &append_log(&log)).expect("spawn etcd");
        let addr: SocketAddr = ([127, 0, 0, 1], self.client_port).into();
        process.wait_for_port(addr, Duration::from_secs(START_TIMEOUT_SECS));
        wait_healthy(addr, &mut process, &log);
        self.process = Some(process);
    }
}

/// `ServerProcess::spawn` truncates its log; keep earlier runs' logs by rotating them.
fn append_log(log: &Path) -> PathBuf {
    if log.exists() {
        let mut n = 1;
        while log.with_extension(format!("log.{n}")).exists() {
            n += 1;
        }
        let _ = std::fs::rename(log, log.with_extension(format!("log.{n}")));
    }
    log.to_path_buf()
}

/// Polls `GET /health` until etcd reports itself healthy.
fn wait_healthy(addr: SocketAddr, process: &mut ServerProcess, log: &Path) {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < Duration::from_secs(START_TIMEOUT_SECS) {
        if let Ok(Some(status)) = process.child.try_wait() {
            panic!(
                "etcd exited with {status}; log {}:\n{}",
                log.display(),
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        match health(addr) {
            Ok(body) if body.contains("\"health\":\"true\"") => return,
            Ok(body) => last = body,
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "etcd on {addr} not healthy within {START_TIMEOUT_SECS} s (last answer: {last}); log {}",
        log.display()
    );
}

fn health(addr: SocketAddr) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(stream, "GET /health HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}
