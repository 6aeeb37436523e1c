//! Referrers found through the OCI referrers API travel with their image. The source is a small
//! in-test registry that offers `/v2/<name>/referrers/<digest>` (Debian's distribution 2.8 does
//! not); the destination is a real `docker-registry` without the API, so the referrer is pushed
//! by digest and listed in the OCI 1.1 fallback index tagged `sha256-<hex>`.

mod oci_support;

use std::collections::HashMap;
use std::sync::Arc;

use arc_tests::registry::{self, Registry};
use arc_tests::skopeo;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bundles::pipeline::Template;
use oci_support::{fast_retry, run_pipeline};
use sha2::{Digest as _, Sha256};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

struct Content {
    /// Manifests by digest and by tag: (media type, bytes).
    manifests: HashMap<String, (String, Vec<u8>)>,
    blobs: HashMap<String, Vec<u8>>,
    /// Referrers index by subject digest.
    referrers: HashMap<String, Vec<u8>>,
}

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn descriptor(media_type: &str, bytes: &[u8]) -> serde_json::Value {
    serde_json::json!({"mediaType": media_type, "digest": digest(bytes), "size": bytes.len()})
}

async fn serve(State(content): State<Arc<Content>>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    let head = request.method() == "HEAD";
    let found: Option<(String, Vec<u8>)> = if let Some(reference) =
        path.strip_prefix("/v2/app/manifests/")
    {
        content.manifests.get(reference).cloned()
    } else if let Some(d) = path.strip_prefix("/v2/app/blobs/") {
        content
            .blobs
            .get(d)
            .map(|b| ("application/octet-stream".to_string(), b.clone()))
    } else if let Some(d) = path.strip_prefix("/v2/app/referrers/") {
        let empty = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#.to_vec();
        Some((
            "application/vnd.oci.image.index.v1+json".to_string(),
            content.referrers.get(d).cloned().unwrap_or(empty),
        ))
    } else {
        None
    };
    match found {
        Some((media_type, bytes)) => Response::builder()
            .status(200)
            .header("content-type", media_type)
            .header("content-length", bytes.len())
            .header("docker-content-digest", digest(&bytes))
            .body(if head {
                Body::empty()
            } else {
                Body::from(bytes)
            })
            .unwrap(),
        None => Response::builder().status(404).body(Body::empty()).unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn referrers_from_the_api_are_copied_and_indexed_by_the_fallback_tag() {
    let test = "arc-oci referrers API";
    let (Some(bin), Some(skopeo_bin)) = (registry::require(test), skopeo::require(test)) else {
        return;
    };
    // An image and an SBOM about it.
    let layer = b"layer bytes".to_vec();
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let image = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": MANIFEST,
        "config": descriptor("application/vnd.oci.image.config.v1+json", &config),
        "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", &layer)],
    }))
    .unwrap();
    let sbom = br#"{"spdxVersion":"SPDX-2.3"}"#.to_vec();
    let empty = b"{}".to_vec();
    let referrer = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": MANIFEST, "artifactType": "application/spdx+json",
        "config": descriptor("application/vnd.oci.empty.v1+json", &empty),
        "layers": [descriptor("application/spdx+json", &sbom)],
        "subject": descriptor(MANIFEST, &image),
    }))
    .unwrap();
    let mut referrer_entry = descriptor(MANIFEST, &referrer);
    referrer_entry["artifactType"] = "application/spdx+json".into();
    let referrers_index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [referrer_entry],
    }))
    .unwrap();
    let content = Content {
        manifests: HashMap::from([
            ("1.0".to_string(), (MANIFEST.to_string(), image.clone())),
            (digest(&image), (MANIFEST.to_string(), image.clone())),
            (digest(&referrer), (MANIFEST.to_string(), referrer.clone())),
        ]),
        blobs: [&layer, &config, &sbom, &empty]
            .into_iter()
            .map(|b| (digest(b), b.clone()))
            .collect(),
        referrers: HashMap::from([(digest(&image), referrers_index)]),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let src_url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .fallback(serve)
        .with_state(Arc::new(content));
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dst = Registry::start(&bin);
    let params = [
        ("srcType", "oci"),
        ("srcRemoteURL", src_url.as_str()),
        ("dstType", "oci"),
        ("dstRemoteURL", &dst.url()),
        ("specImage", "app:1.0"),
        ("specReferrers", "true"),
    ];
    let (result, _) = run_pipeline(Template::Oci, &params, None, None, fast_retry()).await;
    server.abort();
    result.unwrap();

    let raw = skopeo::inspect_raw(
        &skopeo_bin,
        &format!("docker://{}/app@{}", dst.host(), digest(&referrer)),
        &[],
    );
    assert_eq!(raw, referrer, "the referrer arrives byte for byte");
    let fallback_tag = format!("sha256-{}", &digest(&image)["sha256:".len()..]);
    let raw = skopeo::inspect_raw(
        &skopeo_bin,
        &format!("docker://{}/app:{fallback_tag}", dst.host()),
        &[],
    );
    let index: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(index["manifests"][0]["digest"], digest(&referrer).as_str());
    assert_eq!(
        index["manifests"][0]["artifactType"],
        "application/spdx+json"
    );
}
