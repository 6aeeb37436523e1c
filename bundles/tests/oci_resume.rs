//! Resuming an interrupted blob upload from the registry's reported range, against a small
//! in-test registry that keeps the bytes of a broken-off PATCH and reports them in `Range`
//! (as the distribution spec allows; Debian's distribution 2.8 instead drops such a session,
//! which the real-registry tests cover). The bytes the registry holds are not sent again.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use bundles::oci::{
    Copier, CopyOptions, OciLayout, OciRepo, RegistryAuth, RegistryClient, RegistryEndpoint,
};
use bundles::progress::Reporter;
use bundles::retry::RetryPolicy;
use futures::StreamExt as _;
use sha2::{Digest as _, Sha256};

#[derive(Default)]
struct Fake {
    data: Vec<u8>,
    /// Bytes after which the first PATCH is answered with a 503 (the rest of its body dropped).
    break_after: Option<usize>,
    /// `Content-Range` of every PATCH.
    patches: Vec<String>,
    blobs: Vec<String>,
    manifests: Vec<String>,
}

type Shared = Arc<Mutex<Fake>>;

async fn handle(State(fake): State<Shared>, request: Request) -> Response {
    let method = request.method().as_str().to_string();
    let uri = request.uri().to_string();
    let path = request.uri().path().to_string();
    let reply = |status: u16| Response::builder().status(status);
    let session = "/v2/app/blobs/uploads/s1";
    match (method.as_str(), path.as_str()) {
        ("HEAD", p) if p.contains("/blobs/") => {
            let digest = p.rsplit('/').next().unwrap().to_string();
            let status = if fake.lock().unwrap().blobs.contains(&digest) {
                200
            } else {
                404
            };
            reply(status).body(Body::empty()).unwrap()
        }
        ("HEAD", p) if p.contains("/manifests/") => reply(404).body(Body::empty()).unwrap(),
        ("POST", "/v2/app/blobs/uploads/") => {
            fake.lock().unwrap().data.clear();
            reply(202)
                .header("location", session)
                .header("range", "0-0")
                .body(Body::empty())
                .unwrap()
        }
        ("PATCH", p) if p == session => {
            let range = request
                .headers()
                .get("content-range")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            fake.lock().unwrap().patches.push(range);
            let limit = fake.lock().unwrap().break_after.take();
            let mut body = request.into_body().into_data_stream();
            let mut taken = 0usize;
            while let Some(chunk) = body.next().await {
                let Ok(chunk) = chunk else { break };
                let mut f = fake.lock().unwrap();
                match limit {
                    Some(l) if taken + chunk.len() >= l => {
                        let keep = l - taken;
                        f.data.extend_from_slice(&chunk[..keep]);
                        return reply(503).body(Body::from("storage hiccup")).unwrap();
                    }
                    _ => {
                        taken += chunk.len();
                        f.data.extend_from_slice(&chunk);
                    }
                }
            }
            let end = fake.lock().unwrap().data.len().saturating_sub(1);
            reply(202)
                .header("location", session)
                .header("range", format!("0-{end}"))
                .body(Body::empty())
                .unwrap()
        }
        ("GET", p) if p == session => {
            let end = fake.lock().unwrap().data.len().saturating_sub(1);
            reply(204)
                .header("location", session)
                .header("range", format!("0-{end}"))
                .body(Body::empty())
                .unwrap()
        }
        ("PUT", p) if p == session => {
            let digest = uri
                .split("digest=")
                .nth(1)
                .unwrap_or_default()
                .replace("%3A", ":");
            let mut f = fake.lock().unwrap();
            let actual = format!("sha256:{}", hex::encode(Sha256::digest(&f.data)));
            if actual != digest {
                return reply(400).body(Body::from("digest invalid")).unwrap();
            }
            f.blobs.push(digest);
            reply(201).body(Body::empty()).unwrap()
        }
        ("PUT", p) if p.contains("/manifests/") => {
            fake.lock().unwrap().manifests.push(p.to_string());
            reply(201).body(Body::empty()).unwrap()
        }
        _ => reply(StatusCode::NOT_FOUND.as_u16())
            .body(Body::empty())
            .unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_patch_resumes_at_the_reported_range() {
    // The source: an OCI layout with one image of one 3 MiB layer.
    let work = tempfile::tempdir().unwrap();
    let layer: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let layout_dir = work.path().join("src");
    let layout = OciLayout::new(&layout_dir);
    layout.init().await.unwrap();
    let write = |bytes: &[u8]| {
        let digest = format!("{:x}", Sha256::digest(bytes));
        std::fs::write(layout_dir.join("blobs/sha256").join(&digest), bytes).unwrap();
        (format!("sha256:{digest}"), bytes.len())
    };
    let (layer_digest, layer_size) = write(&layer);
    let (config_digest, config_size) = write(b"{}");
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{config_size}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer_digest}","size":{layer_size}}}]}}"#
    );
    let manifest_desc = bundles::oci::Descriptor::for_bytes(
        "application/vnd.oci.image.manifest.v1+json",
        manifest.as_bytes(),
    );
    layout.put_manifest(manifest.as_bytes()).await.unwrap();
    layout.set_tag(&manifest_desc, Some("1.0")).await.unwrap();

    // The destination: the fake registry; the config is already there, the layer's first
    // PATCH breaks off after 1 MiB.
    let fake: Shared = Arc::new(Mutex::new(Fake {
        break_after: Some(1024 * 1024),
        blobs: vec![config_digest.clone()],
        ..Fake::default()
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(fake.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let retry = RetryPolicy {
        max_attempts: 4,
        initial_delay: std::time::Duration::from_millis(20),
        ..RetryPolicy::default()
    };
    let client = RegistryClient::new(
        RegistryEndpoint::parse(&format!("http://{addr}")).unwrap(),
        RegistryAuth::Anonymous,
        None,
        retry,
        Default::default(),
    )
    .unwrap();
    let dst = OciRepo::registry(client, "app");
    let copier = Copier::new(
        CopyOptions {
            chunk_bytes: 2 * 1024 * 1024,
            ..CopyOptions::default()
        },
        Reporter::discard(),
    );
    let outcome = copier
        .copy(
            &OciRepo::Layout(layout),
            Some("1.0"),
            None,
            &dst,
            Some("1.0"),
        )
        .await
        .unwrap();
    server.abort();

    let f = fake.lock().unwrap();
    assert_eq!(f.data, layer, "the registry holds exactly the layer");
    assert!(f.blobs.contains(&layer_digest));
    // First PATCH 0-2MiB broke off at 1 MiB; the next one starts at 1 MiB, then the rest.
    assert_eq!(
        f.patches,
        ["0-2097151", "1048576-3145727"],
        "resumed at the reported range"
    );
    assert_eq!((outcome.blobs_copied, outcome.blobs_skipped), (1, 1));
    assert_eq!(f.manifests, ["/v2/app/manifests/1.0"]);
}
