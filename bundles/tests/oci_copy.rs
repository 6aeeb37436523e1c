//! `arc-oci` against real registries (Debian `docker-registry`, one anonymous, one with basic
//! auth), with skopeo seeding a 3-platform index and checking the destination byte for byte.

mod oci_support;

use arc_tests::registry::{self, Registry};
use arc_tests::skopeo;
use bundles::pipeline::Template;
use oci_support::{basic_secret, events, fast_retry, run_pipeline};

const PLATFORMS: [&str; 3] = ["linux/amd64", "linux/arm64", "linux/s390x"];

struct Setup {
    skopeo: std::path::PathBuf,
    src: Registry,
    dst: Registry,
    seed: skopeo::SeedImage,
    _work: tempfile::TempDir,
}

/// Two registries (the destination with basic auth) and a 3-platform image in the source.
fn setup(test: &str, layer_size: u64) -> Option<Setup> {
    let bin = registry::require(test)?;
    let skopeo = skopeo::require(test)?;
    let src = Registry::start(&bin);
    let dst = Registry::start_with_basic_auth(&bin, "arc", "s3cret");
    let work = tempfile::tempdir().unwrap();
    let seed = skopeo::build_layout(
        &work.path().join("seed"),
        "1.0",
        &PLATFORMS,
        3,
        layer_size,
        7,
    );
    skopeo::copy_all(
        &skopeo,
        &seed.oci_ref(),
        &format!("docker://{}/library/app:1.0", src.host()),
        &[],
    );
    Some(Setup {
        skopeo,
        src,
        dst,
        seed,
        _work: work,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_a_multi_platform_index_digest_exact_and_skips_everything_on_rerun() {
    let Some(s) = setup("arc-oci copy between registries", 300 * 1024) else {
        return;
    };
    let secret = basic_secret("arc", "s3cret");
    let params = [
        ("srcType", "oci"),
        ("srcRemoteURL", &s.src.url() as &str),
        ("dstType", "oci"),
        ("dstRemoteURL", &format!("{}/mirror", s.dst.url())),
        ("dstSecret", "true"),
        ("specImage", "library/app:1.0"),
    ];
    let (result, captured) = run_pipeline(
        Template::Oci,
        &params,
        None,
        Some(secret.path()),
        fast_retry(),
    )
    .await;
    let summary = result.unwrap_or_else(|e| panic!("copy failed: {e}\n{}", s.dst.log()));
    // 3 platforms × 3 layers + 3 configs.
    assert_eq!(summary.blobs, 12, "{:?}", captured.events());
    assert_eq!(summary.skipped, 0);
    assert!(summary.bytes >= s.seed.layer_bytes());

    let creds = s.dst.skopeo_creds("");
    let raw = skopeo::inspect_raw(
        &s.skopeo,
        &format!("docker://{}/mirror/library/app:1.0", s.dst.host()),
        &creds,
    );
    assert_eq!(
        skopeo::digest_of(&raw),
        s.seed.index_digest,
        "the index keeps its digest"
    );
    for manifest in &s.seed.manifests {
        let raw = skopeo::inspect_raw(
            &s.skopeo,
            &format!("docker://{}/mirror/library/app@{manifest}", s.dst.host()),
            &creds,
        );
        assert_eq!(&skopeo::digest_of(&raw), manifest);
    }
    let pushed = events(&captured, "pushed");
    assert_eq!(pushed.len(), 1);
    assert_eq!(pushed[0]["digest"], s.seed.index_digest.as_str());

    // Warm: the destination holds everything; nothing moves.
    let (result, _) = run_pipeline(
        Template::Oci,
        &params,
        None,
        Some(secret.path()),
        fast_retry(),
    )
    .await;
    let summary = result.unwrap();
    assert_eq!((summary.blobs, summary.bytes), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mounts_blobs_across_repositories_of_the_same_registry() {
    let Some(s) = setup("arc-oci cross-repository mount", 64 * 1024) else {
        return;
    };
    let params = [
        ("srcType", "oci"),
        ("srcRemoteURL", &s.src.url() as &str),
        ("dstType", "oci"),
        ("dstRemoteURL", &s.src.url()),
        ("specImage", "library/app:1.0"),
        ("specOverride", "copies/app"),
    ];
    let (result, captured) = run_pipeline(Template::Oci, &params, None, None, fast_retry()).await;
    let summary = result.unwrap();
    let mounted = events(&captured, "blob")
        .iter()
        .filter(|e| e["status"] == "mounted")
        .count();
    assert_eq!(mounted, 12, "every blob mounted, none copied");
    assert_eq!(summary.bytes, 0);
    let raw = skopeo::inspect_raw(
        &s.skopeo,
        &format!("docker://{}/copies/app:1.0", s.src.host()),
        &[],
    );
    assert_eq!(skopeo::digest_of(&raw), s.seed.index_digest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_subset_builds_a_new_index_and_reports_old_to_new() {
    let Some(s) = setup("arc-oci platform subset", 32 * 1024) else {
        return;
    };
    let params = [
        ("srcType", "oci"),
        ("srcRemoteURL", &s.src.url() as &str),
        ("dstType", "oci"),
        ("dstRemoteURL", &s.src.url()),
        ("specImage", "library/app:1.0"),
        ("specOverride", "subset/app:arm"),
        ("specPlatforms", "linux/arm64,linux/s390x"),
    ];
    let (result, captured) = run_pipeline(Template::Oci, &params, None, None, fast_retry()).await;
    result.unwrap();
    let raw = skopeo::inspect_raw(
        &s.skopeo,
        &format!("docker://{}/subset/app:arm", s.src.host()),
        &[],
    );
    let index: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    let archs: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(archs, ["arm64", "s390x"]);
    let changed = events(&captured, "digest_changed");
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0]["from"], s.seed.index_digest.as_str());
    assert_eq!(changed[0]["to"], skopeo::digest_of(&raw).as_str());
    assert_ne!(skopeo::digest_of(&raw), s.seed.index_digest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oci_layouts_round_trip_with_skopeo() {
    let Some(s) = setup("arc-oci OCI image layouts", 48 * 1024) else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let dir_url = out.path().display().to_string();
    // Registry → layout; skopeo reads the layout.
    let params = [
        ("srcType", "oci"),
        ("srcRemoteURL", &s.src.url() as &str),
        ("dstType", "dir"),
        ("dstRemoteURL", &dir_url),
        ("specImage", "library/app:1.0"),
    ];
    let (result, _) = run_pipeline(Template::Oci, &params, None, None, fast_retry()).await;
    result.unwrap();
    let layout = out.path().join("library/app");
    let raw = skopeo::inspect_raw(&s.skopeo, &format!("oci:{}:1.0", layout.display()), &[]);
    assert_eq!(skopeo::digest_of(&raw), s.seed.index_digest);
    assert_eq!(
        layout
            .join(".partial")
            .read_dir()
            .map(|d| d.count())
            .unwrap_or(0),
        0,
        "no partial blobs left"
    );
    // skopeo's own layout → registry through our reader.
    let params = [
        ("srcType", "dir"),
        (
            "srcRemoteURL",
            &s.seed.dir.parent().unwrap().display().to_string() as &str,
        ),
        ("dstType", "oci"),
        ("dstRemoteURL", &s.src.url()),
        ("specImage", "seed:1.0"),
        ("specOverride", "from-layout/app"),
    ];
    let (result, _) = run_pipeline(Template::Oci, &params, None, None, fast_retry()).await;
    result.unwrap();
    let raw = skopeo::inspect_raw(
        &s.skopeo,
        &format!("docker://{}/from-layout/app:1.0", s.src.host()),
        &[],
    );
    assert_eq!(skopeo::digest_of(&raw), s.seed.index_digest);
    // A layout skopeo writes is read back by us, and ours by skopeo: copy our layout with skopeo.
    let copy = out.path().join("skopeo-copy");
    skopeo::copy_all(
        &s.skopeo,
        &format!("oci:{}:1.0", layout.display()),
        &format!("oci:{}:again", copy.display()),
        &[],
    );
    let raw = skopeo::inspect_raw(&s.skopeo, &format!("oci:{}:again", copy.display()), &[]);
    assert_eq!(skopeo::digest_of(&raw), s.seed.index_digest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scanner_sees_the_staged_image_and_can_refuse_it() {
    use bundles::pipeline::Settings;
    use bundles::scan::ScanCommand;
    let Some(s) = setup("arc-oci scanning", 16 * 1024) else {
        return;
    };
    let staging = tempfile::tempdir().unwrap();
    let settings = |command: &str| Settings {
        retry: fast_retry(),
        staging_dir: Some(staging.path().to_path_buf()),
        scanner: Some(ScanCommand::parse(command, std::time::Duration::from_secs(30)).unwrap()),
    };
    let src_url = s.src.url();
    let params = |target: &'static str| {
        vec![
            ("srcType", "oci"),
            ("srcRemoteURL", src_url.as_str()),
            ("dstType", "oci"),
            ("dstRemoteURL", src_url.as_str()),
            ("specImage", "library/app:1.0"),
            ("specOverride", target),
        ]
    };
    // The scanner gets the staged OCI layout: it must hold index.json.
    let (result, _) = oci_support::run_pipeline_with(
        Template::Oci,
        &params("scanned/app"),
        None,
        None,
        settings("test -f {path}/index.json"),
    )
    .await;
    result.unwrap();
    let raw = skopeo::inspect_raw(
        &s.skopeo,
        &format!("docker://{}/scanned/app:1.0", s.src.host()),
        &[],
    );
    assert_eq!(skopeo::digest_of(&raw), s.seed.index_digest);
    // A scanner that fails refuses the image; nothing is pushed.
    let (result, _) = oci_support::run_pipeline_with(
        Template::Oci,
        &params("infected/app"),
        None,
        None,
        settings("false"),
    )
    .await;
    assert_eq!(
        result.unwrap_err().kind(),
        bundles::error::ErrorKind::ScanFailed
    );
    let out = std::process::Command::new(&s.skopeo)
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{}/infected/app:1.0", s.src.host()),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "a refused image is not pushed");
    assert_eq!(
        std::fs::read_dir(staging.path()).unwrap().count(),
        0,
        "the staging directory is cleaned up"
    );
}
