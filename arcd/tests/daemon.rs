//! The real `arcd run` binary under a fake systemd: a `NOTIFY_SOCKET` datagram socket the test
//! binds, `WATCHDOG_USEC` set. Checks READY/STATUS/WATCHDOG, `/readyz` and `/metrics`, file
//! sync, SIGHUP with a valid and an invalid configuration, `arcd status`/`arcd kubeconfig`, and
//! SIGTERM → STOPPING and exit 0 within the deadline.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ARCD: &str = env!("CARGO_BIN_EXE_arcd");

/// The fake service manager's end of `NOTIFY_SOCKET`.
struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
    seen: Vec<String>,
}

impl NotifySocket {
    fn bind(dir: &Path) -> Self {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Self {
            socket,
            path,
            seen: Vec::new(),
        }
    }

    /// Waits for a datagram containing `needle` (looking at what arrived since the last match).
    fn expect(&mut self, needle: &str, timeout: Duration, child: &mut Child, log: &Path) -> String {
        let start = Instant::now();
        let mut buffer = [0u8; 4096];
        while start.elapsed() < timeout {
            if let Some(index) = self.seen.iter().position(|m| m.contains(needle)) {
                let message = self.seen[index].clone();
                self.seen.drain(..=index);
                return message;
            }
            match self.socket.recv(&mut buffer) {
                Ok(n) => self
                    .seen
                    .push(String::from_utf8_lossy(&buffer[..n]).into_owned()),
                Err(_) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        panic!(
                            "arcd exited with {status} while waiting for {needle}:\n{}",
                            std::fs::read_to_string(log).unwrap_or_default()
                        );
                    }
                }
            }
        }
        panic!(
            "no {needle} datagram within {timeout:?}; got {:?}\nlog:\n{}",
            self.seen,
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} failed");
}

fn config(data: &Path, orders: &Path, api: u16, health: u16, rescan: &str) -> String {
    format!(
        "dataDir: {}\napi:\n  listen: 127.0.0.1:{api}\nhealth:\n  listen: 127.0.0.1:{health}\nresources:\n  directories: [{}]\n  rescanInterval: {rescan}\n  debounce: 50ms\nlog:\n  format: text\n  level: info\nshutdown:\n  deadline: 5s\n",
        data.display(),
        orders.display()
    )
}

const ORDER: &str = "apiVersion: arc.opendefense.cloud/v1alpha1\nkind: Order\nmetadata:\n  name: nightly\nspec:\n  artifacts:\n    - type: oci\n      srcRef: {name: nowhere}\n      dstRef: {name: nowhere}\n      spec: {image: library/alpine:3.20}\n";

#[test]
fn runs_under_a_fake_systemd_reloads_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let orders = dir.path().join("orders");
    std::fs::create_dir(&orders).unwrap();
    std::fs::write(orders.join("nightly.yaml"), ORDER).unwrap();
    let (api_port, health_port) = (free_port(), free_port());
    let config_path = dir.path().join("arcd.yaml");
    std::fs::write(
        &config_path,
        config(&data, &orders, api_port, health_port, "5m"),
    )
    .unwrap();
    let mut notify = NotifySocket::bind(dir.path());
    let log = dir.path().join("arcd.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(ARCD)
        .args(["run", "--config"])
        .arg(&config_path)
        .env("NOTIFY_SOCKET", &notify.path)
        .env("WATCHDOG_USEC", "2000000")
        .env_remove("JOURNAL_STREAM")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .unwrap();
    let guard = KillOnDrop(child.id());

    let ready = notify.expect("READY=1", Duration::from_secs(90), &mut child, &log);
    assert!(
        ready.contains(&format!("STATUS=serving 127.0.0.1:{api_port}; 1 orders")),
        "{ready}"
    );
    notify.expect("WATCHDOG=1", Duration::from_secs(3), &mut child, &log);
    notify.expect("WATCHDOG=1", Duration::from_secs(3), &mut child, &log);

    let health: SocketAddr = format!("127.0.0.1:{health_port}").parse().unwrap();
    assert_eq!(http_get(health, "/readyz"), (200, "ok\n".to_string()));
    assert_eq!(http_get(health, "/healthz").0, 200);
    let (code, metrics) = http_get(health, "/metrics");
    assert_eq!(code, 200);
    assert!(metrics.contains("arc_sync_objects 1"), "{metrics}");
    assert!(metrics.contains("arc_orders{phase="), "{metrics}");

    // The admin kubeconfig and `arcd status` work against the running daemon.
    let kubeconfig = Command::new(ARCD)
        .args(["kubeconfig", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(kubeconfig.status.success());
    let text = String::from_utf8_lossy(&kubeconfig.stdout);
    assert!(
        text.contains(&format!("127.0.0.1:{api_port}")) && text.contains("client-certificate-data"),
        "{text}"
    );
    let status = Command::new(ARCD)
        .args(["status", "-o", "json", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&status.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&status.stderr)));
    assert_eq!(json["orders"][0]["name"], "nightly", "{json}");
    assert_eq!(json["sync"]["objects"], 1, "{json}");

    // SIGHUP with a valid, changed configuration: RELOADING (with MONOTONIC_USEC), then READY.
    std::fs::write(
        &config_path,
        config(&data, &orders, api_port, health_port, "1m"),
    )
    .unwrap();
    signal(&child, "HUP");
    let reloading = notify.expect("RELOADING=1", Duration::from_secs(10), &mut child, &log);
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    notify.expect("READY=1", Duration::from_secs(10), &mut child, &log);

    // A file with an error shows up in `arcd status` with its position.
    std::fs::write(orders.join("broken.yaml"), "apiVersion: arc.opendefense.cloud/v1alpha1\nkind: Order\nmetadata: {name: b}\nspec:\n  artifacts: [{tpye: oci}]\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = Command::new(ARCD)
            .args(["status", "--data-dir"])
            .arg(&data)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&status.stdout).into_owned();
        if text.contains(&format!("{}:5:", orders.join("broken.yaml").display())) {
            assert!(
                !status.status.success(),
                "a file with errors makes `arcd status` fail"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "broken.yaml never showed up in arcd status:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // SIGHUP with an invalid configuration: refused, the daemon keeps running and says READY.
    std::fs::write(
        &config_path,
        format!(
            "{}bogusKey: 1\n",
            config(&data, &orders, api_port, health_port, "1m")
        ),
    )
    .unwrap();
    signal(&child, "HUP");
    notify.expect("RELOADING=1", Duration::from_secs(10), &mut child, &log);
    notify.expect("READY=1", Duration::from_secs(10), &mut child, &log);
    assert!(
        child.try_wait().unwrap().is_none(),
        "arcd must survive an invalid reload"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("reload refused"), "{text}");
    assert!(
        text.contains(&format!(
            "{}:15:1: unknown field `bogusKey`",
            config_path.display()
        )),
        "{text}"
    );
    assert_eq!(http_get(health, "/readyz").0, 200);

    // SIGTERM: STOPPING=1 and exit 0 within the deadline (5s) plus start-up slack.
    let stopping_at = Instant::now();
    signal(&child, "TERM");
    notify.expect("STOPPING=1", Duration::from_secs(5), &mut child, &log);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            stopping_at.elapsed() < Duration::from_secs(12),
            "arcd did not exit within the deadline"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "exit status {status}:\n{}",
        std::fs::read_to_string(&log).unwrap()
    );
    std::mem::forget(guard);
}

#[test]
fn a_port_in_use_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let config_path = dir.path().join("arcd.yaml");
    std::fs::write(
        &config_path,
        config(
            &dir.path().join("data"),
            &dir.path().join("orders"),
            free_port(),
            port,
            "5m",
        ),
    )
    .unwrap();
    let output = Command::new(ARCD)
        .args(["run", "--config"])
        .arg(&config_path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot listen on 127.0.0.1:{port} (health.listen)"
        )),
        "{stderr}"
    );
}

#[test]
fn an_invalid_configuration_stops_the_start_with_every_error() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("arcd.yaml");
    std::fs::write(&config_path, "dataDir: relative\napi:\n  listen: nowhere\n").unwrap();
    let output = Command::new(ARCD)
        .args(["run", "--config"])
        .arg(&config_path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{}:1:10: dataDir:", config_path.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{}:3:11: api.listen:", config_path.display())),
        "{stderr}"
    );
}

/// Kills the daemon if a test fails half-way.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg(self.0.to_string())
            .status();
    }
}
