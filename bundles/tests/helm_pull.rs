//! `arc-helm` with real parts: charts packaged and indexed by Helm 4 itself, served by a
//! static HTTP server as a Helm repository, pushed into a real `docker-registry`, and pulled
//! back with `helm pull oci://…`.

mod oci_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use arc_tests::http_server::HttpFileServer;
use arc_tests::registry::{self, Registry};
use arc_tests::tools;
use bundles::error::ErrorKind;
use bundles::pipeline::Template;
use oci_support::{fast_retry, run_pipeline};
use sha2::{Digest as _, Sha256};

struct Setup {
    helm: PathBuf,
    registry: Registry,
    server: HttpFileServer,
    work: tempfile::TempDir,
}

/// Runs helm with its cache/config/data homes inside `work`.
fn helm(s_helm: &Path, work: &Path, args: &[&str]) -> std::process::Output {
    let output = Command::new(s_helm)
        .args(args)
        .env("HELM_CACHE_HOME", work.join("helm-cache"))
        .env("HELM_CONFIG_HOME", work.join("helm-config"))
        .env("HELM_DATA_HOME", work.join("helm-data"))
        .output()
        .expect("run helm");
    assert!(
        output.status.success(),
        "helm {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn sha256_file(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// A Helm repository at `<work>/charts` with `mychart` 0.1.0 and 0.2.0+build.1, indexed by helm.
fn setup(test: &str) -> Option<Setup> {
    let helm_bin = tools::require("helm", test)?;
    let registry_bin = registry::require(test)?;
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    helm(
        &helm_bin,
        w,
        &["create", w.join("mychart").to_str().unwrap()],
    );
    let charts = w.join("charts");
    std::fs::create_dir_all(&charts).unwrap();
    helm(
        &helm_bin,
        w,
        &[
            "package",
            w.join("mychart").to_str().unwrap(),
            "-d",
            charts.to_str().unwrap(),
        ],
    );
    helm(
        &helm_bin,
        w,
        &[
            "package",
            w.join("mychart").to_str().unwrap(),
            "--version",
            "0.2.0+build.1",
            "-d",
            charts.to_str().unwrap(),
        ],
    );
    helm(&helm_bin, w, &["repo", "index", charts.to_str().unwrap()]);
    let server = HttpFileServer::start(w);
    let registry = Registry::start(&registry_bin);
    Some(Setup {
        helm: helm_bin,
        registry,
        server,
        work,
    })
}

fn params<'a>(
    src_type: &'a str,
    src: &'a str,
    dst: &'a str,
    version: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("srcType", src_type),
        ("srcRemoteURL", src),
        ("dstType", "oci"),
        ("dstRemoteURL", dst),
        ("specName", "mychart"),
        ("specVersion", version),
    ]
}

/// `helm pull oci://…` into a fresh directory; returns the pulled archive.
fn pull(s: &Setup, reference: &str, version: &str) -> PathBuf {
    let out = s.work.path().join(format!("pulled-{}", rand_suffix()));
    std::fs::create_dir_all(&out).unwrap();
    helm(
        &s.helm,
        s.work.path(),
        &[
            "pull",
            reference,
            "--version",
            version,
            "--plain-http",
            "-d",
            out.to_str().unwrap(),
        ],
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files.pop().unwrap()
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chart_from_a_helm_repository_is_pullable_with_helm() {
    let Some(s) = setup("arc-helm from a Helm repository") else {
        return;
    };
    let repo_url = s.server.url("charts");
    let dst = format!("{}/helm", s.registry.url());
    let (result, captured) = run_pipeline(
        Template::Helm,
        &params("helm", &repo_url, &dst, "0.1.0"),
        None,
        None,
        fast_retry(),
    )
    .await;
    result.unwrap();
    let pushed: Vec<_> = captured
        .events()
        .into_iter()
        .filter(|e| e["event"] == "pushed")
        .collect();
    assert_eq!(pushed.len(), 1);
    let pulled = pull(
        &s,
        &format!("oci://{}/helm/mychart", s.registry.host()),
        "0.1.0",
    );
    assert_eq!(pulled.file_name().unwrap(), "mychart-0.1.0.tgz");
    assert_eq!(
        sha256_file(&pulled),
        sha256_file(&s.work.path().join("charts/mychart-0.1.0.tgz")),
        "the archive arrives byte for byte"
    );

    // Build metadata: the tag is 0.2.0_build.1, helm finds it by the version.
    let (result, _) = run_pipeline(
        Template::Helm,
        &params("helm", &repo_url, &dst, "0.2.0+build.1"),
        None,
        None,
        fast_retry(),
    )
    .await;
    result.unwrap();
    let pulled = pull(
        &s,
        &format!("oci://{}/helm/mychart", s.registry.host()),
        "0.2.0+build.1",
    );
    assert_eq!(
        sha256_file(&pulled),
        sha256_file(&s.work.path().join("charts/mychart-0.2.0+build.1.tgz"))
    );

    // Registry to registry: the chart is copied as is, still pullable.
    let src = format!("{}/helm", s.registry.url());
    let registry_url = s.registry.url();
    let mut p = params("oci", &src, &registry_url, "0.1.0");
    p.push(("specOverride", "copied/mychart"));
    let (result, _) = run_pipeline(Template::Helm, &p, None, None, fast_retry()).await;
    result.unwrap();
    let pulled = pull(
        &s,
        &format!("oci://{}/copied/mychart", s.registry.host()),
        "0.1.0",
    );
    assert_eq!(
        sha256_file(&pulled),
        sha256_file(&s.work.path().join("charts/mychart-0.1.0.tgz"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_index_digest_or_a_missing_version_fails_clearly() {
    let Some(s) = setup("arc-helm faults") else {
        return;
    };
    let repo_url = s.server.url("charts");
    let dst = format!("{}/helm", s.registry.url());
    let (result, _) = run_pipeline(
        Template::Helm,
        &params("helm", &repo_url, &dst, "9.9.9"),
        None,
        None,
        fast_retry(),
    )
    .await;
    let error = result.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
    assert!(
        error.to_string().contains("0.1.0") && error.to_string().contains("index.yaml"),
        "{error}"
    );

    let index_path = s.work.path().join("charts/index.yaml");
    let index = std::fs::read_to_string(&index_path).unwrap();
    let real = sha256_file(&s.work.path().join("charts/mychart-0.1.0.tgz"));
    std::fs::write(&index_path, index.replace(&real, &"0".repeat(64))).unwrap();
    let (result, _) = run_pipeline(
        Template::Helm,
        &params("helm", &repo_url, &dst, "0.1.0"),
        None,
        None,
        fast_retry(),
    )
    .await;
    let error = result.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::DigestMismatch, "{error}");
    assert!(error.to_string().contains("mychart-0.1.0.tgz"), "{error}");
    let out = Command::new(&s.helm)
        .args([
            "show",
            "chart",
            &format!("oci://{}/helm/mychart", s.registry.host()),
            "--version",
            "0.1.0",
            "--plain-http",
        ])
        .env("HELM_CACHE_HOME", s.work.path().join("helm-cache"))
        .env("HELM_CONFIG_HOME", s.work.path().join("helm-config"))
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "nothing was pushed for the mismatching archive"
    );
}
