//! `arc-file` into a real OCI registry (Debian `docker-registry`): the file becomes an OCI
//! artifact that `skopeo inspect --raw` shows, whose layer is exactly the file; a wrong checksum
//! pushes nothing; a registry with basic auth takes the Secret's credentials.

mod file_support;

use std::path::{Path, PathBuf};

use arc_tests::http_server::HttpFileServer;
use arc_tests::registry::Registry;
use bundles::file::dest::FILE_ARTIFACT_TYPE;
use bundles::{ErrorKind, Secrets};
use file_support::*;

fn tools() -> Option<(PathBuf, PathBuf)> {
    let registry = arc_tests::registry::require("arc-file to OCI registries")?;
    let skopeo = arc_tests::skopeo::require("arc-file to OCI registries")?;
    Some((registry, skopeo))
}

/// The registry's stored copy of blob `hex` (distribution's filesystem layout).
fn stored_blob(registry: &Registry, hex: &str) -> PathBuf {
    registry.storage().join(format!(
        "docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ))
}

fn params(
    http: &HttpFileServer,
    registry: &Registry,
    file: &str,
    sha: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("srcType", "http".into()),
        ("srcRemoteURL", http.url("dl")),
        ("dstType", "oci".into()),
        ("dstRemoteURL", registry.url()),
        ("specPath", file.into()),
        ("specSha256", sha.into()),
    ]
}

fn serve(file: &str, content: &[u8]) -> (HttpFileServer, tempfile::TempDir) {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("dl")).unwrap();
    std::fs::write(root.path().join("dl").join(file), content).unwrap();
    (HttpFileServer::start(root.path()), root)
}

fn manifest(skopeo: &Path, reference: &str, extra: &[String]) -> serde_json::Value {
    serde_json::from_slice(&arc_tests::skopeo::inspect_raw(skopeo, reference, extra))
        .expect("manifest JSON")
}

#[tokio::test]
async fn http_file_becomes_an_oci_artifact() {
    let Some((registry_bin, skopeo)) = tools() else {
        return;
    };
    let registry = Registry::start(&registry_bin);
    let content = data(2 * 1024 * 1024 + 99, 31);
    let sha = sha256_hex(&content);
    let (http, _root) = serve("tool.tar.gz", &content);
    let staging = tempfile::tempdir().unwrap();
    let mut p = params(&http, &registry, "tool.tar.gz", &sha);
    p.push(("specOverride", "files/tool:1.0".into()));
    let (job, events) = file_job(&p, Secrets::default(), None, staging.path());
    let summary = bundles::run(&job).await.expect("http → oci");

    let m = manifest(
        &skopeo,
        &format!("docker://{}/files/tool:1.0", registry.host()),
        &[],
    );
    assert_eq!(m["artifactType"], FILE_ARTIFACT_TYPE);
    assert_eq!(m["layers"].as_array().unwrap().len(), 1);
    let layer = &m["layers"][0];
    assert_eq!(layer["digest"], format!("sha256:{sha}"));
    assert_eq!(layer["size"], content.len() as u64);
    assert_eq!(
        layer["annotations"]["org.opencontainers.image.title"],
        "tool.tar.gz"
    );
    assert_eq!(
        std::fs::read(stored_blob(&registry, &sha)).unwrap(),
        content,
        "the layer is the file"
    );
    assert!(
        summary
            .pushed
            .iter()
            .any(|p| p.reference.contains("files/tool:1.0")),
        "{:?}",
        summary.pushed
    );
    assert!(
        events
            .events()
            .iter()
            .any(|e| e["event"] == "blob" && e["digest"] == format!("sha256:{sha}"))
    );
    assert!(
        files_in(staging.path()).is_empty(),
        "staging cleaned up: {:?}",
        files_in(staging.path())
    );

    // A re-run finds config and layer in place and uploads nothing.
    let (job, _) = file_job(&p, Secrets::default(), None, staging.path());
    let summary = bundles::run(&job).await.expect("re-run");
    assert_eq!((summary.skipped, summary.blobs), (2, 0), "{summary:?}");

    // Without specOverride the repository is named after the file, tag `latest`.
    let p = params(&http, &registry, "tool.tar.gz", &sha);
    let (job, _) = file_job(&p, Secrets::default(), None, staging.path());
    bundles::run(&job).await.expect("default repository");
    let m = manifest(
        &skopeo,
        &format!("docker://{}/tool.tar.gz:latest", registry.host()),
        &[],
    );
    assert_eq!(m["layers"][0]["digest"], format!("sha256:{sha}"));
}

#[tokio::test]
async fn wrong_checksum_pushes_nothing() {
    let Some((registry_bin, _)) = tools() else {
        return;
    };
    let registry = Registry::start(&registry_bin);
    let content = data(500_000, 32);
    let (http, _root) = serve("x.bin", &content);
    let staging = tempfile::tempdir().unwrap();
    let mut p = params(&http, &registry, "x.bin", &sha256_hex(b"other"));
    p.push(("specOverride", "files/x:1".into()));
    let (job, _) = file_job(&p, Secrets::default(), None, staging.path());
    let error = bundles::run(&job).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ChecksumMismatch, "{error}");
    assert!(
        !registry
            .storage()
            .join("docker/registry/v2/repositories")
            .exists(),
        "no repository was created"
    );
    assert!(
        !stored_blob(&registry, &sha256_hex(&content)).exists(),
        "no blob was pushed"
    );
}

#[tokio::test]
async fn basic_auth_registry_takes_the_secret() {
    let Some((registry_bin, skopeo)) = tools() else {
        return;
    };
    let registry = Registry::start_with_basic_auth(&registry_bin, "pusher", "s3cret");
    let content = data(40_000, 33);
    let sha = sha256_hex(&content);
    let (http, _root) = serve("c.txt", &content);
    let staging = tempfile::tempdir().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let dst = secrets.path().join("dst");
    std::fs::create_dir_all(&dst).unwrap();
    std::fs::write(dst.join("username"), "pusher").unwrap();
    std::fs::write(dst.join("password"), "s3cret").unwrap();
    let mut p = params(&http, &registry, "c.txt", &sha);
    p.push(("dstSecret", "true".into()));
    p.push(("specOverride", "files/c:2".into()));
    let (job, _) = file_job(
        &p,
        Secrets::load(&secrets.path().join("src"), &dst).unwrap(),
        None,
        staging.path(),
    );
    bundles::run(&job).await.expect("push with credentials");
    let m = manifest(
        &skopeo,
        &format!("docker://{}/files/c:2", registry.host()),
        &registry.skopeo_creds(""),
    );
    assert_eq!(m["layers"][0]["digest"], format!("sha256:{sha}"));

    let (job, _) = file_job(&p, Secrets::default(), None, staging.path());
    let error = bundles::run(&job).await.unwrap_err();
    assert_eq!(
        error.kind(),
        ErrorKind::InvalidParameter,
        "dstSecret=true without credentials: {error}"
    );
}
