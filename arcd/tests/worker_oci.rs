//! `arcd worker arc-oci` / `arc-helm` end to end: the built binary copies a 3-platform image
//! between two real `docker-registry` instances (the destination with basic auth, credentials
//! from a secret directory), reports JSON progress on stdout, and fails with the reason on the
//! last stderr line and a non-zero exit status.

use std::path::Path;
use std::process::{Command, Output};

use arc_tests::registry::{self, Registry};
use arc_tests::skopeo;

fn worker(template: &str, params: &[(&str, String)], secrets_dst: &Path) -> Output {
    let empty = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_arcd"));
    command.arg("worker").arg(template);
    for (name, value) in params {
        command.arg("--param").arg(format!("{name}={value}"));
    }
    command
        .arg("--secrets-src")
        .arg(empty.path().join("none"))
        .arg("--secrets-dst")
        .arg(secrets_dst)
        .env_remove("ARC_SCANNER_COMMAND")
        .env_remove("RUST_LOG");
    command.output().expect("run arcd worker")
}

fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn secret_dir(user: &str, pass: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("username"), user).unwrap();
    std::fs::write(dir.path().join("password"), pass).unwrap();
    dir
}

#[test]
fn arc_oci_copies_an_index_between_registries_and_reports_it() {
    let test = "arcd worker arc-oci";
    let (Some(bin), Some(skopeo_bin)) = (registry::require(test), skopeo::require(test)) else {
        return;
    };
    let src = Registry::start(&bin);
    let dst = Registry::start_with_basic_auth(&bin, "arc", "pw");
    let work = tempfile::tempdir().unwrap();
    let seed = skopeo::build_layout(
        &work.path().join("seed"),
        "2.1",
        &["linux/amd64", "linux/arm64", "linux/riscv64"],
        2,
        40 * 1024,
        5,
    );
    skopeo::copy_all(
        &skopeo_bin,
        &seed.oci_ref(),
        &format!("docker://{}/team/app:2.1", src.host()),
        &[],
    );
    let params = vec![
        ("srcType", "oci".to_string()),
        ("srcRemoteURL", src.url()),
        ("srcSecret", "false".to_string()),
        ("dstType", "oci".to_string()),
        ("dstRemoteURL", format!("{}/mirror", dst.url())),
        ("dstSecret", "true".to_string()),
        ("specImage", "team/app:2.1".to_string()),
    ];
    let secret = secret_dir("arc", "pw");
    let output = worker("arc-oci", &params, secret.path());
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let events = json_lines(&output);
    let summary = events.last().unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["ok"], true);
    assert_eq!(summary["blobs"], 9, "3 × (2 layers + config)");
    assert_eq!(summary["pushed"][0]["digest"], seed.index_digest.as_str());
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "blob" && e["status"] == "copied")
    );
    let raw = skopeo::inspect_raw(
        &skopeo_bin,
        &format!("docker://{}/mirror/team/app:2.1", dst.host()),
        &dst.skopeo_creds(""),
    );
    assert_eq!(skopeo::digest_of(&raw), seed.index_digest);

    // Wrong credentials: exit 1, the reason (kind, image, endpoint) on the last stderr line.
    let wrong = secret_dir("arc", "nope");
    let output = worker("arc-oci", &params, wrong.path());
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("unauthorized")
            && last.contains("team/app:2.1")
            && last.contains(&dst.host()),
        "{last}"
    );
    assert_eq!(
        json_lines(&output).last().unwrap()["error"]["kind"],
        "unauthorized"
    );
}
