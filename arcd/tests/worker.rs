//! `arcd worker` end to end: the built binary moves files between a real HTTP server, a real
//! S3 server (`s3s-fs`) and directories; checks exit codes, the JSON progress lines on stdout
//! and the reason on the last stderr line.

use std::path::Path;
use std::process::{Command, Output};

use arc_tests::http_server::HttpFileServer;
use arc_tests::s3::S3Server;

fn worker(
    template: &str,
    params: &[(&str, String)],
    extra: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_arcd"));
    command.arg("worker").arg(template);
    for (name, value) in params {
        command.arg("--param").arg(format!("{name}={value}"));
    }
    command
        .args(extra)
        .env_remove("ARC_SCANNER_COMMAND")
        .env_remove("RUST_LOG");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("run arcd worker")
}

fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8(output.stdout.clone())
        .expect("stdout is UTF-8")
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"))
        })
        .collect()
}

fn last_stderr_line(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

/// SHA-256 by `sha256sum`, independent of the code under test.
fn sha256_hex(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new("sha256sum")
        .arg(&path)
        .output()
        .expect("sha256sum");
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn content(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

struct Http {
    server: HttpFileServer,
    _root: tempfile::TempDir,
    data: Vec<u8>,
}

fn http_with_file() -> Http {
    let root = tempfile::tempdir().unwrap();
    let data = content(1_500_000);
    std::fs::write(root.path().join("data.bin"), &data).unwrap();
    Http {
        server: HttpFileServer::start(root.path()),
        _root: root,
        data,
    }
}

fn http_to_dir(http: &Http, dst: &Path, sha: &str) -> Vec<(&'static str, String)> {
    vec![
        ("srcType", "http".into()),
        ("srcRemoteURL", http.server.url("")),
        ("srcSecret", "false".into()),
        ("dstType", "dir".into()),
        ("dstRemoteURL", dst.display().to_string()),
        ("dstSecret", "false".into()),
        ("specPath", "data.bin".into()),
        ("specSha256", sha.into()),
    ]
}

#[test]
fn http_to_dir_succeeds_with_progress_on_stdout() {
    let http = http_with_file();
    let dst = tempfile::tempdir().unwrap();
    let sha = sha256_hex(&http.data);
    let out = worker("arc-file", &http_to_dir(&http, dst.path(), &sha), &[], &[]);
    assert!(
        out.status.success(),
        "exit {:?}, stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(dst.path().join("data.bin")).unwrap(),
        http.data
    );
    let lines = json_lines(&out);
    assert_eq!(lines.first().unwrap()["event"], "start");
    assert_eq!(lines.first().unwrap()["template"], "arc-file");
    let blob = lines
        .iter()
        .find(|l| l["event"] == "blob")
        .expect("blob line");
    assert_eq!(blob["digest"], format!("sha256:{sha}"));
    assert_eq!(blob["bytes"], http.data.len() as u64);
    let summary = lines.last().unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["ok"], true);
    assert_eq!(summary["bytes"], http.data.len() as u64);
    assert_eq!(summary["pushed"][0]["digest"], format!("sha256:{sha}"));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("published"),
        "human log on stderr"
    );
}

#[test]
fn checksum_mismatch_exits_non_zero_with_the_reason_last() {
    let http = http_with_file();
    let dst = tempfile::tempdir().unwrap();
    let wrong = "0".repeat(64);
    let out = worker(
        "arc-file",
        &http_to_dir(&http, dst.path(), &wrong),
        &[],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let last = last_stderr_line(&out);
    assert!(
        last.starts_with("arcd worker: checksum mismatch: file data.bin at "),
        "{last}"
    );
    assert!(last.contains(&http.server.url("data.bin")), "{last}");
    assert!(
        files_in(dst.path()).is_empty(),
        "nothing published: {:?}",
        files_in(dst.path())
    );
    let summary = json_lines(&out).pop().unwrap();
    assert_eq!(summary["ok"], false);
    assert_eq!(summary["error"]["kind"], "checksum_mismatch");
}

#[test]
fn unknown_template_lists_the_built_in_ones() {
    let out = worker("arc-ftp", &[("specPath", "x".into())], &[], &[]);
    assert_eq!(out.status.code(), Some(2));
    let last = last_stderr_line(&out);
    assert!(
        last.contains("unknown workflow template `arc-ftp`"),
        "{last}"
    );
    assert!(last.contains("arc-oci, arc-helm, arc-file"), "{last}");
}

#[test]
fn missing_parameter_is_named() {
    let dst = tempfile::tempdir().unwrap();
    let params = vec![
        ("srcType", "dir".to_string()),
        ("srcRemoteURL", dst.path().display().to_string()),
        ("dstType", "dir".to_string()),
        ("dstRemoteURL", dst.path().display().to_string()),
    ];
    let out = worker("arc-file", &params, &[], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        last_stderr_line(&out).contains("`specPath`"),
        "{}",
        last_stderr_line(&out)
    );
    let out = worker("arc-file", &[], &["--param", "novalue"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        last_stderr_line(&out).contains("`novalue` is not of the form name=value"),
        "{}",
        last_stderr_line(&out)
    );
}

#[test]
fn scanner_from_the_environment_rejects() {
    let http = http_with_file();
    let dst = tempfile::tempdir().unwrap();
    let sha = sha256_hex(&http.data);
    let scanner = "sh -c 'echo infected: $0 >&2; exit 3' {path}";
    let out = worker(
        "arc-file",
        &http_to_dir(&http, dst.path(), &sha),
        &[],
        &[("ARC_SCANNER_COMMAND", scanner)],
    );
    assert_eq!(out.status.code(), Some(1));
    let last = last_stderr_line(&out);
    assert!(
        last.starts_with("arcd worker: scan failed: file data.bin"),
        "{last}"
    );
    assert!(last.contains("infected:"), "{last}");
    assert!(
        files_in(dst.path()).is_empty(),
        "{:?}",
        files_in(dst.path())
    );
}

#[test]
fn dir_to_s3_with_secret_files_and_wrong_credentials() {
    let Some(s3) = S3Server::start("arcd worker S3 end-to-end", &["drop"]) else {
        return;
    };
    let src = tempfile::tempdir().unwrap();
    let data = content(7 * 1024 * 1024 + 11);
    std::fs::write(src.path().join("image.qcow2"), &data).unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let good = secrets.path().join("good");
    s3.write_credentials(&good);
    let params = vec![
        ("srcType", "dir".to_string()),
        ("srcRemoteURL", src.path().display().to_string()),
        ("srcSecret", "false".to_string()),
        ("dstType", "s3".to_string()),
        (
            "dstRemoteURL",
            format!("s3://drop/vm?endpoint={}", s3.endpoint()),
        ),
        ("dstSecret", "true".to_string()),
        ("specPath", "image.qcow2".to_string()),
        ("specSha256", sha256_hex(&data)),
    ];
    let empty = secrets.path().join("none");
    let args = [
        "--secrets-src",
        empty.to_str().unwrap(),
        "--secrets-dst",
        good.to_str().unwrap(),
    ];
    let out = worker("arc-file", &params, &args, &[]);
    assert!(
        out.status.success(),
        "stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // s3s-fs keeps objects as plain files: what landed is exactly the source.
    assert_eq!(
        std::fs::read(s3.object_path("drop", "vm/image.qcow2")).unwrap(),
        data
    );
    let summary = json_lines(&out).pop().unwrap();
    assert_eq!(
        summary["pushed"][0]["reference"],
        "s3://drop/vm/image.qcow2"
    );

    let bad = secrets.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("accessKeyID"), "nobody").unwrap();
    std::fs::write(bad.join("secretAccessKey"), "wrong-secret-value").unwrap();
    let mut params = params;
    params.push(("specOverride", "other.qcow2".to_string()));
    let args = [
        "--secrets-src",
        empty.to_str().unwrap(),
        "--secrets-dst",
        bad.to_str().unwrap(),
    ];
    let out = worker("arc-file", &params, &args, &[]);
    assert_eq!(out.status.code(), Some(1));
    let last = last_stderr_line(&out);
    assert!(
        last.starts_with("arcd worker: unauthorized: file image.qcow2 at "),
        "{last}"
    );
    assert!(last.contains(&s3.endpoint()), "names the endpoint: {last}");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("wrong-secret-value"),
        "the secret never appears"
    );
    assert!(!s3.object_path("drop", "vm/other.qcow2").exists());
}

#[test]
fn sigterm_cancels_with_exit_130() {
    use arc_tests::http_server::Fault;
    let http = http_with_file();
    http.server.inject(
        "/data.bin",
        Fault::Status {
            status: 429,
            retry_after_secs: Some(60),
        },
    );
    let dst = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_arcd"));
    command.arg("worker").arg("arc-file");
    for (name, value) in http_to_dir(&http, dst.path(), &sha256_hex(&http.data)) {
        command.arg("--param").arg(format!("{name}={value}"));
    }
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn arcd worker");
    // Wait until the worker got its 429 and is waiting out the Retry-After.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while http.server.requests("/data.bin").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the worker never asked"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("worker exits");
    assert_eq!(
        out.status.code(),
        Some(130),
        "stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        last_stderr_line(&out).starts_with("arcd worker: cancelled"),
        "{}",
        last_stderr_line(&out)
    );
    assert!(files_in(dst.path()).is_empty());
    assert_eq!(
        json_lines(&out).pop().unwrap()["error"]["kind"],
        "cancelled"
    );
}
