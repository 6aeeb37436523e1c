//! `arcd apiserver` as operators and scripts use it: the kubeconfig exists before the port
//! answers, kubectl works with it, SIGTERM stops it cleanly, and bad input fails fast with one
//! line naming the problem.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ARCD: &str = env!("CARGO_BIN_EXE_arcd");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_file(path: &Path, timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn serves_with_kubeconfig_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(ARCD)
        .args(["apiserver", "--data-dir"])
        .arg(dir.path())
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let kubeconfig = dir.path().join("admin.kubeconfig");
    assert!(
        wait_for_file(&kubeconfig, Duration::from_secs(20)),
        "admin.kubeconfig was not written"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&kubeconfig).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    if let Some(kubectl) = arc_tests::tools::require("kubectl", "arcd apiserver with kubectl") {
        let out = Command::new(kubectl)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["get", "namespaces", "-o", "name"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let names = String::from_utf8_lossy(&out.stdout);
        assert!(
            names.contains("namespace/default") && names.contains("namespace/arc-system"),
            "{names}"
        );
    }
    let start = Instant::now();
    // SAFETY-free signal: use the kill command to send SIGTERM.
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status after SIGTERM: {status}");
    assert!(start.elapsed() < Duration::from_secs(10));
}

fn fails_with_one_line(args: &[&str], expect: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(ARCD)
        .args(["apiserver", "--data-dir"])
        .arg(dir.path())
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{args:?} should fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or("");
    assert!(
        last.contains(expect),
        "{args:?}: last stderr line {last:?} lacks {expect:?}\nfull: {stderr}"
    );
}

#[test]
fn port_in_use_is_a_one_line_error() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    fails_with_one_line(&["--listen", &addr], &format!("cannot listen on {addr}"));
}

#[test]
fn unreachable_etcd_is_a_one_line_error() {
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    fails_with_one_line(
        &[
            "--listen",
            "127.0.0.1:0",
            "--storage",
            "etcd",
            "--etcd-endpoints",
            &endpoint,
        ],
        &format!("127.0.0.1:{port}"),
    );
}

#[test]
fn bad_flags_fail() {
    fails_with_one_line(&["--listen", "not-an-address"], "invalid value");
    fails_with_one_line(&["--storage", "etcd"], "--etcd-endpoints");
}
