//! `arc-oci` under faults, against real `docker-registry` instances: wrong credentials, a
//! missing tag, a 429 with `Retry-After`, a corrupted byte, a registry killed in the middle of a
//! blob, and a destination that already holds every blob. A counting proxy
//! (`arc_tests::fault_proxy`) sits between the worker and a registry where the test needs it.

mod oci_support;

use std::time::{Duration, Instant};

use arc_tests::fault_proxy::FaultProxy;
use arc_tests::registry::{self, Registry};
use arc_tests::skopeo;
use bundles::error::ErrorKind;
use bundles::pipeline::Template;
use bundles::retry::RetryPolicy;
use oci_support::{basic_secret, fast_retry, run_pipeline};

const MIB: u64 = 1024 * 1024;

struct Setup {
    bin: std::path::PathBuf,
    skopeo: std::path::PathBuf,
    src: Registry,
    seed: skopeo::SeedImage,
    _work: tempfile::TempDir,
}

fn setup(test: &str, layer_sizes: &[u64]) -> Option<Setup> {
    let bin = registry::require(test)?;
    let skopeo = skopeo::require(test)?;
    let src = Registry::start(&bin);
    let work = tempfile::tempdir().unwrap();
    let seed = skopeo::build_layout_sized(
        &work.path().join("seed"),
        "1.0",
        &["linux/amd64", "linux/arm64"],
        layer_sizes,
        11,
    );
    skopeo::copy_all(
        &skopeo,
        &seed.oci_ref(),
        &format!("docker://{}/library/app:1.0", src.host()),
        &[],
    );
    Some(Setup {
        bin,
        skopeo,
        src,
        seed,
        _work: work,
    })
}

fn params<'a>(src: &'a str, dst: &'a str, image: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("srcType", "oci"),
        ("srcRemoteURL", src),
        ("dstType", "oci"),
        ("dstRemoteURL", dst),
        ("specImage", image),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_fail_clearly() {
    let Some(s) = setup("arc-oci wrong credentials", &[16 * 1024]) else {
        return;
    };
    let dst = Registry::start_with_basic_auth(&s.bin, "arc", "right");
    let secret = basic_secret("arc", "wrong");
    let (result, _) = run_pipeline(
        Template::Oci,
        &params(&s.src.url(), &dst.url(), "library/app:1.0"),
        None,
        Some(secret.path()),
        fast_retry(),
    )
    .await;
    let error = result.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized, "{error}");
    let message = error.to_string();
    assert!(
        message.contains(&dst.host()) && message.contains("library/app"),
        "{message}"
    );
    // Without any credentials the message says none are configured.
    let (result, _) = run_pipeline(
        Template::Oci,
        &params(&s.src.url(), &dst.url(), "library/app:1.0"),
        None,
        None,
        fast_retry(),
    )
    .await;
    let message = result.unwrap_err().to_string();
    assert!(message.contains("none are configured"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_tag_is_not_found_naming_image_and_endpoint() {
    let Some(s) = setup("arc-oci missing tag", &[16 * 1024]) else {
        return;
    };
    let (result, _) = run_pipeline(
        Template::Oci,
        &params(&s.src.url(), &s.src.url(), "library/app:2.0"),
        None,
        None,
        fast_retry(),
    )
    .await;
    let error = result.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
    let message = error.to_string();
    assert!(
        message.contains("library/app:2.0") && message.contains(&s.src.host()),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_retry_after_is_honoured() {
    let Some(s) = setup("arc-oci 429 Retry-After", &[16 * 1024]) else {
        return;
    };
    let proxy = FaultProxy::start(&s.src.url()).await;
    proxy.throttle("GET /v2/library/app/manifests/1.0", 1, 1);
    let started = Instant::now();
    let (result, _) = run_pipeline(
        Template::Oci,
        &params(&proxy.url(), &s.src.url(), "library/app:1.0"),
        None,
        None,
        fast_retry(),
    )
    .await;
    let elapsed = started.elapsed();
    let summary = result.unwrap();
    assert!(summary.ok);
    let manifest_requests: Vec<String> = proxy
        .requests()
        .into_iter()
        .filter(|l| l.starts_with("GET /v2/library/app/manifests/1.0"))
        .collect();
    assert_eq!(
        manifest_requests,
        [
            "GET /v2/library/app/manifests/1.0 -> 429",
            "GET /v2/library/app/manifests/1.0 -> 200"
        ]
    );
    assert!(
        elapsed >= Duration::from_secs(1),
        "the retry waited for Retry-After ({elapsed:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_byte_fails_with_digest_mismatch_and_publishes_nothing() {
    let Some(s) = setup("arc-oci corrupted blob", &[2 * MIB, 64 * 1024]) else {
        return;
    };
    let dst = Registry::start(&s.bin);
    let proxy = FaultProxy::start(&s.src.url()).await;
    let (victim, _) = s.seed.layers[0].clone();
    proxy.corrupt(&format!("/blobs/{victim}"), 1_000_000);
    let (result, _) = run_pipeline(
        Template::Oci,
        &params(&proxy.url(), &dst.url(), "library/app:1.0"),
        None,
        None,
        fast_retry(),
    )
    .await;
    let error = result.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::DigestMismatch, "{error}");
    assert!(error.to_string().contains(victim.as_str()), "{error}");
    let client = reqwest_client();
    let head = client
        .head(format!("{}/v2/library/app/blobs/{victim}", dst.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 404, "the corrupted blob was not published");
    let manifest = client
        .head(format!("{}/v2/library/app/manifests/1.0", dst.url()))
        .header("accept", "application/vnd.oci.image.index.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(manifest.status(), 404, "no manifest was published");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_holding_every_blob_gets_no_upload() {
    let Some(s) = setup(
        "arc-oci destination already complete",
        &[256 * 1024, 128 * 1024],
    ) else {
        return;
    };
    let dst = Registry::start(&s.bin);
    skopeo::copy_all(
        &s.skopeo,
        &s.seed.oci_ref(),
        &format!("docker://{}/library/app:1.0", dst.host()),
        &[],
    );
    // Remove the index: the blobs and platform manifests stay, so every blob must be found by HEAD.
    let client = reqwest_client();
    let deleted = client
        .delete(format!(
            "{}/v2/library/app/manifests/{}",
            dst.url(),
            s.seed.index_digest
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 202);
    let proxy = FaultProxy::start(&dst.url()).await;
    let (result, captured) = run_pipeline(
        Template::Oci,
        &params(&s.src.url(), &proxy.url(), "library/app:1.0"),
        None,
        None,
        fast_retry(),
    )
    .await;
    let summary = result.unwrap();
    assert_eq!(
        summary.skipped,
        6,
        "2 platforms × (2 layers + config) skipped: {:?}",
        captured.events()
    );
    assert_eq!((summary.blobs, summary.bytes), (0, 0));
    assert_eq!(
        proxy.count("POST", "/blobs/uploads/"),
        0,
        "{:?}",
        proxy.requests()
    );
    assert_eq!(proxy.count("PATCH", "/blobs/uploads/"), 0);
    assert_eq!(proxy.upload_bytes(), 0);
    let raw = skopeo::inspect_raw(
        &s.skopeo,
        &format!("docker://{}/library/app:1.0", dst.host()),
        &[],
    );
    assert_eq!(skopeo::digest_of(&raw), s.seed.index_digest);
}

/// Kills the destination registry once `proxy` has seen `threshold` upload bytes and
/// `completed` blob uploads finish.
async fn kill_after(proxy: &FaultProxy, registry: &mut Registry, threshold: u64, completed: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while proxy.upload_bytes() < threshold || proxy.count("PUT", "/blobs/uploads/") < completed {
        assert!(
            Instant::now() < deadline,
            "the upload never reached {threshold} bytes"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    registry.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_killed_mid_blob_is_resumed_by_a_rerun() {
    let Some(s) = setup(
        "arc-oci registry killed mid-blob, rerun",
        &[48 * MIB, 512 * 1024],
    ) else {
        return;
    };
    let mut dst = Registry::start(&s.bin);
    let proxy = FaultProxy::start(&dst.url()).await;
    let (src_url, proxy_url) = (s.src.url(), proxy.url());
    let p = params(&src_url, &proxy_url, "library/app:1.0");
    let run = tokio::spawn({
        let p: Vec<(String, String)> = p
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        async move {
            let p: Vec<(&str, &str)> = p.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
            run_pipeline(Template::Oci, &p, None, None, fast_retry()).await
        }
    });
    kill_after(&proxy, &mut dst, 20 * MIB, 1).await;
    let (result, _) = run.await.unwrap();
    let error = result.unwrap_err();
    assert!(
        error.is_transient(),
        "a dead registry is a transient failure: {error}"
    );

    dst.restart();
    proxy.reset_counts();
    let (result, _) = run_pipeline(Template::Oci, &p, None, None, fast_retry()).await;
    let summary = result.unwrap_or_else(|e| panic!("rerun failed: {e}\n{}", dst.log()));
    assert!(
        summary.skipped > 0,
        "blobs finished before the crash are skipped: {summary:?}"
    );
    for (digest, _) in &s.seed.layers {
        let completed = proxy.count("PUT", &format!("digest={}", digest.replace(':', "%3A")));
        assert!(completed <= 1, "{digest} completed {completed} times");
    }
    let raw = skopeo::inspect_raw(
        &s.skopeo,
        &format!("docker://{}/library/app:1.0", dst.host()),
        &[],
    );
    assert_eq!(skopeo::digest_of(&raw), s.seed.index_digest);
}

/// A registry restarted while blobs stream in: the worker retries and finishes in the same
/// run. Distribution 2.8 drops an upload session whose last request broke off (its signed
/// state no longer matches the bytes on disk), so the interrupted blobs start over; blobs
/// already complete are not sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_restarted_mid_blob_is_survived_in_the_same_run() {
    let Some(s) = setup("arc-oci registry restarted mid-blob", &[48 * MIB]) else {
        return;
    };
    let mut dst = Registry::start(&s.bin);
    let proxy = FaultProxy::start(&dst.url()).await;
    let patient = RetryPolicy {
        max_attempts: 10,
        initial_delay: Duration::from_millis(200),
        max_delay: Duration::from_secs(2),
        max_retry_after: Duration::from_secs(5),
    };
    let p: Vec<(String, String)> = params(&s.src.url(), &proxy.url(), "library/app:1.0")
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let run = tokio::spawn(async move {
        let p: Vec<(&str, &str)> = p.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        run_pipeline(Template::Oci, &p, None, None, patient).await
    });
    kill_after(&proxy, &mut dst, 24 * MIB, 0).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    dst.restart();
    let (result, _) = run.await.unwrap();
    result.unwrap_or_else(|e| panic!("the run did not survive the restart: {e}\n{}", dst.log()));
    let raw = skopeo::inspect_raw(
        &s.skopeo,
        &format!("docker://{}/library/app:1.0", dst.host()),
        &[],
    );
    assert_eq!(skopeo::digest_of(&raw), s.seed.index_digest);
    for (digest, _) in &s.seed.layers {
        let completed = proxy
            .requests()
            .iter()
            .filter(|l| {
                l.starts_with("PUT ")
                    && l.contains(&format!("digest={}", digest.replace(':', "%3A")))
                    && l.ends_with("201")
            })
            .count();
        assert_eq!(completed, 1, "{digest} published once");
    }
    let sent = proxy.upload_bytes();
    assert!(
        sent < 2 * s.seed.layer_bytes(),
        "{sent} bytes sent for {} bytes of layers",
        s.seed.layer_bytes()
    );
}

fn reqwest_client() -> reqwest::Client {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_are_fetched_per_scope_and_reused() {
    let Some(s) = setup("arc-oci bearer token auth", &[64 * 1024, 32 * 1024]) else {
        return;
    };
    let dst = Registry::start(&s.bin);
    let front = FaultProxy::start(&dst.url()).await;
    front.require_bearer("robot", "t0ken");
    let secret = basic_secret("robot", "t0ken");
    let dst_url = format!("{}/mirror", front.url());
    let src_url = s.src.url();
    let p = params(&src_url, &dst_url, "library/app:1.0");
    let (result, _) =
        run_pipeline(Template::Oci, &p, None, Some(secret.path()), fast_retry()).await;
    result.unwrap_or_else(|e| panic!("copy through token auth failed: {e}"));
    let scopes = front.token_requests();
    assert!(
        scopes
            .iter()
            .any(|s| s == "repository:mirror/library/app:pull,push"),
        "{scopes:?}"
    );
    assert!(scopes.len() <= 3, "tokens are cached per scope: {scopes:?}");
    let raw = skopeo::inspect_raw(
        &s.skopeo,
        &format!("docker://{}/mirror/library/app:1.0", dst.host()),
        &[],
    );
    assert_eq!(skopeo::digest_of(&raw), s.seed.index_digest);

    // A wrong password: the token endpoint refuses, and the message says so.
    let wrong = basic_secret("robot", "nope");
    let (result, _) = run_pipeline(
        Template::Oci,
        &params(&s.src.url(), &dst_url, "library/app:1.0"),
        None,
        Some(wrong.path()),
        fast_retry(),
    )
    .await;
    let error = result.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized, "{error}");
    assert!(error.to_string().contains("token endpoint"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_config_json_credentials_are_matched_by_host() {
    use base64::Engine as _;
    let Some(s) = setup("arc-oci .dockerconfigjson", &[16 * 1024]) else {
        return;
    };
    let dst = Registry::start_with_basic_auth(&s.bin, "arc", "pw");
    let secret = tempfile::tempdir().unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode("arc:pw");
    let config = format!(
        r#"{{"auths":{{"other.example":{{"auth":"eDp5"}},"http://{}":{{"auth":"{auth}"}}}}}}"#,
        dst.host()
    );
    std::fs::write(secret.path().join(".dockerconfigjson"), config).unwrap();
    let (result, _) = run_pipeline(
        Template::Oci,
        &params(&s.src.url(), &dst.url(), "library/app:1.0"),
        None,
        Some(secret.path()),
        fast_retry(),
    )
    .await;
    result.unwrap();
    let raw = skopeo::inspect_raw(
        &s.skopeo,
        &format!("docker://{}/library/app:1.0", dst.host()),
        &dst.skopeo_creds(""),
    );
    assert_eq!(skopeo::digest_of(&raw), s.seed.index_digest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_registries_are_trusted_through_ca_crt() {
    let Some(s) = setup("arc-oci TLS with a custom CA", &[16 * 1024]) else {
        return;
    };
    let dst = Registry::start_with_tls(&s.bin);
    let secret = tempfile::tempdir().unwrap();
    std::fs::write(secret.path().join("ca.crt"), dst.ca_pem().unwrap()).unwrap();
    // `https://` and no scheme both mean TLS.
    for url in [dst.url(), dst.host()] {
        let (result, _) = run_pipeline(
            Template::Oci,
            &params(&s.src.url(), &url, "library/app:1.0"),
            None,
            Some(secret.path()),
            fast_retry(),
        )
        .await;
        result.unwrap_or_else(|e| panic!("{url}: {e}"));
    }
    let raw = skopeo::inspect_raw(
        &s.skopeo,
        &format!("docker://{}/library/app:1.0", dst.host()),
        &[],
    );
    assert_eq!(skopeo::digest_of(&raw), s.seed.index_digest);
    // Without the CA the certificate is not trusted.
    let (result, _) = run_pipeline(
        Template::Oci,
        &params(&s.src.url(), &dst.url(), "library/app:1.0"),
        None,
        None,
        RetryPolicy::none(),
    )
    .await;
    let error = result.unwrap_err();
    assert!(
        error.to_string().to_lowercase().contains("certificate"),
        "{error}"
    );
}
