//! Seeding and checking registries with skopeo: OCI image layouts of random multi-platform
//! images built here (so tests need no image from outside), `skopeo copy --all` into a
//! registry, and `skopeo inspect --raw` to read back exactly what a registry holds.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest as _, Sha256};

use crate::tools;

/// Finds `skopeo` for `test` (see [`tools::require`]).
pub fn require(test: &str) -> Option<PathBuf> {
    tools::require("skopeo", test)
}

/// A multi-platform image written as an OCI image layout.
#[derive(Debug, Clone)]
pub struct SeedImage {
    /// The layout directory.
    pub dir: PathBuf,
    /// The tag (`org.opencontainers.image.ref.name`) of the index.
    pub tag: String,
    /// The index's digest.
    pub index_digest: String,
    /// Every layer digest with its size.
    pub layers: Vec<(String, u64)>,
    /// Platform manifest digests.
    pub manifests: Vec<String>,
}

impl SeedImage {
    /// `oci:<dir>:<tag>` for skopeo.
    pub fn oci_ref(&self) -> String {
        format!("oci:{}:{}", self.dir.display(), self.tag)
    }

    /// Total bytes of all layers.
    pub fn layer_bytes(&self) -> u64 {
        self.layers.iter().map(|(_, s)| s).sum()
    }
}

/// A fast deterministic pseudo-random byte source (xorshift64*), so layers do not compress.
struct Noise(u64);

impl Noise {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

fn write_blob(dir: &Path, bytes: &[u8]) -> (String, u64) {
    let hex = hex::encode(Sha256::digest(bytes));
    std::fs::write(dir.join("blobs/sha256").join(&hex), bytes).expect("write blob");
    (format!("sha256:{hex}"), bytes.len() as u64)
}

/// Writes a random layer of `size` bytes into the layout, streaming; returns digest and size.
fn write_random_layer(dir: &Path, size: u64, seed: u64) -> (String, u64) {
    let tmp = dir.join("blobs/sha256/.layer.tmp");
    let file = std::fs::File::create(&tmp).expect("create layer");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut hasher = Sha256::new();
    let mut noise = Noise(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        noise.fill(&mut buf[..n]);
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).expect("write layer");
        left -= n as u64;
    }
    out.flush().expect("flush layer");
    drop(out);
    let hex = hex::encode(hasher.finalize());
    std::fs::rename(&tmp, dir.join("blobs/sha256").join(&hex)).expect("rename layer");
    (format!("sha256:{hex}"), size)
}

/// Builds an OCI image layout at `dir` holding an index tagged `tag` with one image manifest
/// per platform (`os/arch`), each with `layers_per_platform` random layers of `layer_size`
/// bytes. `seed` makes different images differ.
pub fn build_layout(
    dir: &Path,
    tag: &str,
    platforms: &[&str],
    layers_per_platform: usize,
    layer_size: u64,
    seed: u64,
) -> SeedImage {
    build_layout_sized(
        dir,
        tag,
        platforms,
        &vec![layer_size; layers_per_platform],
        seed,
    )
}

/// Like [`build_layout`], with the layer sizes of each platform's image given one by one.
pub fn build_layout_sized(
    dir: &Path,
    tag: &str,
    platforms: &[&str],
    layer_sizes: &[u64],
    seed: u64,
) -> SeedImage {
    std::fs::create_dir_all(dir.join("blobs/sha256")).expect("layout dirs");
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("oci-layout");
    let mut entries = Vec::new();
    let mut layers_all = Vec::new();
    let mut manifests = Vec::new();
    for (p, platform) in platforms.iter().enumerate() {
        let (os, arch) = platform.split_once('/').expect("platform os/arch");
        let mut layers = Vec::new();
        for (l, size) in layer_sizes.iter().enumerate() {
            let layer_seed = seed * 1_000_003 + (p * 1000 + l) as u64 + 1;
            layers.push(write_random_layer(dir, *size, layer_seed));
        }
        let diff_ids: Vec<&str> = layers.iter().map(|(d, _)| d.as_str()).collect();
        let config = serde_json::json!({
            "architecture": arch, "os": os,
            "config": {"Env": [format!("SEED={seed}")]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let (config_digest, config_size) = write_blob(dir, &serde_json::to_vec(&config).unwrap());
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
            "layers": layers.iter().map(|(d, s)| serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": s
            })).collect::<Vec<_>>(),
        });
        let (m_digest, m_size) = write_blob(dir, &serde_json::to_vec(&manifest).unwrap());
        entries.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": m_digest, "size": m_size,
            "platform": {"os": os, "architecture": arch},
        }));
        manifests.push(m_digest);
        layers_all.extend(layers);
    }
    let index = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries,
    });
    let (index_digest, index_size) = write_blob(dir, &serde_json::to_vec(&index).unwrap());
    let top = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": index_digest, "size": index_size,
            "annotations": {"org.opencontainers.image.ref.name": tag}}],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&top).unwrap()).expect("index.json");
    SeedImage {
        dir: dir.to_path_buf(),
        tag: tag.to_string(),
        index_digest,
        layers: layers_all,
        manifests,
    }
}

/// Runs skopeo with `args` (TLS verification off: test registries are plain HTTP) and returns
/// stdout; panics with stderr when it fails.
pub fn run(skopeo: &Path, args: &[&str]) -> Vec<u8> {
    let output = Command::new(skopeo)
        .args(["--insecure-policy"])
        .args(args)
        .output()
        .expect("run skopeo");
    assert!(
        output.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// `skopeo copy --all --preserve-digests` from `src` to `dst` (e.g. `oci:DIR:TAG`,
/// `docker://HOST/REPO:TAG`); `extra` adds flags such as `--dest-creds=u:p`.
pub fn copy_all(skopeo: &Path, src: &str, dst: &str, extra: &[String]) {
    let mut args: Vec<&str> = vec![
        "copy",
        "--all",
        "--preserve-digests",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--quiet",
    ];
    args.extend(extra.iter().map(String::as_str));
    args.push(src);
    args.push(dst);
    run(skopeo, &args);
}

/// `skopeo inspect --raw` of `reference` (`docker://…` or `oci:…`): the exact manifest bytes.
pub fn inspect_raw(skopeo: &Path, reference: &str, extra: &[String]) -> Vec<u8> {
    let mut args: Vec<&str> = vec!["inspect", "--raw", "--tls-verify=false"];
    if reference.starts_with("oci:") {
        args.pop();
    }
    args.extend(extra.iter().map(String::as_str));
    args.push(reference);
    run(skopeo, &args)
}

/// The SHA-256 digest (`sha256:<hex>`) of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}
