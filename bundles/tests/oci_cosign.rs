//! Cosign verification and referrers in `arc-oci`, against a real `docker-registry`: the test
//! signs an image's digest with an ECDSA P-256 key and pushes the signature the way cosign
//! does (`sha256-<hex>.sig`, a simple-signing payload layer with the
//! `dev.cosignproject.cosign/signature` annotation).

mod oci_support;

use std::collections::BTreeMap;

use arc_tests::registry::{self, Registry};
use arc_tests::skopeo;
use base64::Engine as _;
use bundles::error::ErrorKind;
use bundles::oci::{
    Digest, LayerFile, OciRepo, RegistryAuth, RegistryClient, RegistryEndpoint, push_artifact,
};
use bundles::pipeline::Template;
use bundles::progress::Reporter;
use oci_support::{fast_retry, run_pipeline};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey as _, LineEnding};

struct Setup {
    skopeo: std::path::PathBuf,
    registry: Registry,
    seed: skopeo::SeedImage,
    work: tempfile::TempDir,
}

fn setup(test: &str) -> Option<Setup> {
    let bin = registry::require(test)?;
    let skopeo = skopeo::require(test)?;
    let registry = Registry::start(&bin);
    let work = tempfile::tempdir().unwrap();
    let seed = skopeo::build_layout(
        &work.path().join("seed"),
        "1.0",
        &["linux/amd64", "linux/arm64"],
        1,
        32 * 1024,
        3,
    );
    skopeo::copy_all(
        &skopeo,
        &seed.oci_ref(),
        &format!("docker://{}/library/app:1.0", registry.host()),
        &[],
    );
    Some(Setup {
        skopeo,
        registry,
        seed,
        work,
    })
}

fn key(byte: u8) -> SigningKey {
    SigningKey::from_slice(&[byte; 32]).unwrap()
}

fn public_pem(key: &SigningKey) -> String {
    key.verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap()
}

/// Pushes a cosign signature of `digest` by `key` into `repository` of `registry`.
async fn sign(s: &Setup, repository: &str, digest: &str, key: &SigningKey) {
    let payload = serde_json::json!({
        "critical": {
            "identity": {"docker-reference": format!("{}/{repository}", s.registry.host())},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature"
        },
        "optional": null
    });
    let payload = serde_json::to_vec(&payload).unwrap();
    let signature: Signature = key.sign(&payload);
    let path = s.work.path().join(format!("payload-{}", rand_suffix()));
    std::fs::write(&path, &payload).unwrap();
    let mut annotations = BTreeMap::new();
    annotations.insert(
        "dev.cosignproject.cosign/signature".to_string(),
        base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes()),
    );
    let layer = LayerFile {
        path,
        media_type: "application/vnd.dev.cosign.simplesigning.v1+json".into(),
        annotations,
    };
    let client = RegistryClient::new(
        RegistryEndpoint::parse(&s.registry.url()).unwrap(),
        RegistryAuth::Anonymous,
        None,
        fast_retry(),
        Default::default(),
    )
    .unwrap();
    let repo = OciRepo::registry(client, repository);
    let tag = format!("{}.sig", Digest::parse(digest).unwrap().tag_form());
    let config = bytes::Bytes::from_static(
        br#"{"architecture":"","config":{},"os":"","rootfs":{"type":"layers","diff_ids":[]}}"#,
    );
    push_artifact(
        &repo,
        Some(&tag),
        ("application/vnd.oci.image.config.v1+json", config),
        &[layer],
        None,
        BTreeMap::new(),
        &Reporter::discard(),
    )
    .await
    .unwrap();
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn params<'a>(
    url: &'a str,
    target: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut p = vec![
        ("srcType", "oci"),
        ("srcRemoteURL", url),
        ("dstType", "oci"),
        ("dstRemoteURL", url),
        ("specImage", "library/app:1.0"),
        ("specOverride", target),
    ];
    p.extend_from_slice(extra);
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_image_passes_and_its_signature_travels_with_it() {
    let Some(s) = setup("arc-oci cosign verification") else {
        return;
    };
    let signer = key(7);
    sign(&s, "library/app", &s.seed.index_digest, &signer).await;
    let pem = public_pem(&signer);
    let url = s.registry.url();
    let p = params(
        &url,
        "verified/app",
        &[("cosignPublicKey", &pem), ("specReferrers", "true")],
    );
    let (result, _) = run_pipeline(Template::Oci, &p, None, None, fast_retry()).await;
    result.unwrap();
    let sig_tag = format!(
        "{}.sig",
        Digest::parse(&s.seed.index_digest).unwrap().tag_form()
    );
    let original = skopeo::inspect_raw(
        &s.skopeo,
        &format!("docker://{}/library/app:{sig_tag}", s.registry.host()),
        &[],
    );
    let copied = skopeo::inspect_raw(
        &s.skopeo,
        &format!("docker://{}/verified/app:{sig_tag}", s.registry.host()),
        &[],
    );
    assert_eq!(
        skopeo::digest_of(&copied),
        skopeo::digest_of(&original),
        "the signature was copied as is"
    );
    // The copied signature verifies at the destination too.
    let p = params(&url, "again/app", &[("cosignPublicKey", &pem)]);
    let p: Vec<(&str, &str)> = p
        .into_iter()
        .map(|(k, v)| {
            if k == "specImage" {
                (k, "verified/app:1.0")
            } else {
                (k, v)
            }
        })
        .collect();
    let (result, _) = run_pipeline(Template::Oci, &p, None, None, fast_retry()).await;
    result.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_or_wrongly_signed_images_are_refused_and_nothing_is_pushed() {
    let Some(s) = setup("arc-oci cosign policy") else {
        return;
    };
    let url = s.registry.url();
    let pem = public_pem(&key(7));
    // Unsigned, policy requires a signature.
    let p = params(&url, "refused/app", &[("cosignPublicKey", &pem)]);
    let (result, _) = run_pipeline(Template::Oci, &p, None, None, fast_retry()).await;
    let error = result.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PolicyRefused, "{error}");
    assert!(error.to_string().contains("unsigned"), "{error}");
    // Unsigned, policy verifies only what is signed: accepted.
    let p = params(
        &url,
        "lenient/app",
        &[
            ("cosignPublicKey", &pem),
            ("cosignPolicy", "verify-if-signed"),
        ],
    );
    let (result, _) = run_pipeline(Template::Oci, &p, None, None, fast_retry()).await;
    result.unwrap();
    // Signed by another key: refused even under verify-if-signed.
    sign(&s, "library/app", &s.seed.index_digest, &key(9)).await;
    let p = params(
        &url,
        "refused/app",
        &[
            ("cosignPublicKey", &pem),
            ("cosignPolicy", "verify-if-signed"),
        ],
    );
    let (result, _) = run_pipeline(Template::Oci, &p, None, None, fast_retry()).await;
    let error = result.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PolicyRefused, "{error}");
    assert!(error.to_string().contains("does not verify"), "{error}");
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(
            rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
        )
        .build()
        .unwrap();
    let head = client
        .head(format!("{url}/v2/refused/app/manifests/1.0"))
        .header("accept", "application/vnd.oci.image.index.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 404, "nothing was pushed for a refused image");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_key_is_an_invalid_parameter() {
    let Some(s) = setup("arc-oci cosign key parameter") else {
        return;
    };
    let url = s.registry.url();
    let p = params(
        &url,
        "x/app",
        &[(
            "cosignPublicKey",
            "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----",
        )],
    );
    let (result, _) = run_pipeline(Template::Oci, &p, None, None, fast_retry()).await;
    assert_eq!(result.unwrap_err().kind(), ErrorKind::InvalidParameter);
}
