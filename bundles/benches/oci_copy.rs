//! Benchmark of the OCI copy engine against `skopeo copy --all`, on local `docker-registry`
//! instances (loopback, plain HTTP):
//!
//! 1. a 1 GiB 3-platform image (3 × 8 layers of random data), cold (empty destination) and warm
//!    (destination complete), ours and skopeo's, each cold copy into a fresh registry;
//! 2. the peak RSS of a worker copying a single 2 GiB layer.
//!
//! Every copy runs in a child process (this binary re-executed with `ARC_BENCH_CHILD` set), so
//! wall times include process start like skopeo's, and the child reports its own peak RSS
//! (`VmHWM`). Both tools copy digest-exactly (skopeo with `--preserve-digests`).
//!
//! Run: `cargo bench -p bundles --bench oci_copy` (needs docker-registry and skopeo).
//! `ARC_BENCH_IMAGE_MIB` and `ARC_BENCH_BIG_LAYER_MIB` shrink the images for a quick run;
//! `ARC_BENCH_BLOB_CONCURRENCY` overrides the engine's blob concurrency (and per-host limit).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use arc_tests::registry::Registry;
use arc_tests::skopeo;

const MIB: u64 = 1024 * 1024;
const CHILD_ENV: &str = "ARC_BENCH_CHILD";
const PLATFORMS: [&str; 3] = ["linux/amd64", "linux/arm64", "linux/ppc64le"];
const LAYERS_PER_PLATFORM: usize = 8;
/// Cold runs of each tool (alternating, each into a fresh registry).
const COLD_ROUNDS: usize = 2;

fn env_mib(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if std::env::var_os(CHILD_ENV).is_some() {
        child();
        return;
    }
    let (Some(registry_bin), Some(skopeo_bin)) = (
        arc_tests::registry::require("the OCI copy benchmark"),
        skopeo::require("the OCI copy benchmark"),
    ) else {
        return;
    };
    let image_mib = env_mib("ARC_BENCH_IMAGE_MIB", 1024);
    let big_layer_mib = env_mib("ARC_BENCH_BIG_LAYER_MIB", 2048);
    let work = tempfile::Builder::new()
        .prefix("arc-bench-")
        .tempdir()
        .expect("work dir");
    println!(
        "machine: {} cores, load average {}",
        cores(),
        load_average()
    );

    // 1. The 1 GiB 3-platform image.
    let layer_size = image_mib * MIB / (PLATFORMS.len() * LAYERS_PER_PLATFORM) as u64;
    let seed = skopeo::build_layout(
        &work.path().join("image"),
        "1.0",
        &PLATFORMS,
        LAYERS_PER_PLATFORM,
        layer_size,
        42,
    );
    let src = Registry::start(&registry_bin);
    skopeo::copy_all(
        &skopeo_bin,
        &seed.oci_ref(),
        &format!("docker://{}/bench/app:1.0", src.host()),
        &[],
    );
    println!(
        "image: {} platforms x {LAYERS_PER_PLATFORM} layers of {:.1} MiB = {:.0} MiB",
        PLATFORMS.len(),
        layer_size as f64 / MIB as f64,
        seed.layer_bytes() as f64 / MIB as f64
    );

    let mut ours_cold = Vec::new();
    let mut ours_cpu = Vec::new();
    let mut skopeo_cpu = Vec::new();
    let mut skopeo_cold = Vec::new();
    let mut ours_rss = 0;
    let mut warm_ours = Duration::ZERO;
    let mut warm_skopeo = Duration::ZERO;
    for round in 0..COLD_ROUNDS {
        let dst = Registry::start(&registry_bin);
        let cpu_before = children_cpu();
        let (t, rss) = run_child(&src.url(), "bench/app", &dst.url(), "bench/app", "1.0");
        ours_cpu.push(children_cpu() - cpu_before);
        check_digest(&skopeo_bin, &dst, "bench/app", &seed.index_digest);
        ours_cold.push(t);
        ours_rss = ours_rss.max(rss);
        if round == 0 {
            let (t, _) = run_child(&src.url(), "bench/app", &dst.url(), "bench/app", "1.0");
            warm_ours = t;
        }
        drop(dst);

        let dst = Registry::start(&registry_bin);
        let target = format!("docker://{}/bench/app:1.0", dst.host());
        let source = format!("docker://{}/bench/app:1.0", src.host());
        let cpu_before = children_cpu();
        let t = timed(|| skopeo::copy_all(&skopeo_bin, &source, &target, &[]));
        skopeo_cpu.push(children_cpu() - cpu_before);
        check_digest(&skopeo_bin, &dst, "bench/app", &seed.index_digest);
        skopeo_cold.push(t);
        if round == 0 {
            warm_skopeo = timed(|| skopeo::copy_all(&skopeo_bin, &source, &target, &[]));
        }
    }
    let best = |v: &[Duration]| v.iter().min().copied().unwrap_or_default();
    let (ours, theirs) = (best(&ours_cold), best(&skopeo_cold));
    println!(
        "cold, ours:    {} (best of {COLD_ROUNDS}), {:.0} MiB/s, peak RSS {} KiB",
        fmt(&ours_cold),
        mib_per_s(seed.layer_bytes(), ours),
        ours_rss
    );
    println!(
        "cold, skopeo:  {} (best of {COLD_ROUNDS}), {:.0} MiB/s",
        fmt(&skopeo_cold),
        mib_per_s(seed.layer_bytes(), theirs)
    );
    println!(
        "cold, CPU time of the copying process: ours {}, skopeo {}",
        fmt(&ours_cpu),
        fmt(&skopeo_cpu)
    );
    println!(
        "cold ratio ours/skopeo: {:.2} (target <= 0.70)",
        ours.as_secs_f64() / theirs.as_secs_f64()
    );
    println!(
        "warm, ours:    {:.3} s (target <= 0.2 s)",
        warm_ours.as_secs_f64()
    );
    println!("warm, skopeo:  {:.3} s", warm_skopeo.as_secs_f64());
    println!(
        "warm ratio ours/skopeo: {:.2}",
        warm_ours.as_secs_f64() / warm_skopeo.as_secs_f64()
    );
    drop(src);
    std::fs::remove_dir_all(work.path().join("image")).ok();

    // 2. Peak RSS copying one big layer.
    let big = skopeo::build_layout(
        &work.path().join("big"),
        "1.0",
        &["linux/amd64"],
        1,
        big_layer_mib * MIB,
        43,
    );
    let src = Registry::start(&registry_bin);
    skopeo::copy_all(
        &skopeo_bin,
        &big.oci_ref(),
        &format!("docker://{}/bench/big:1.0", src.host()),
        &[],
    );
    std::fs::remove_dir_all(work.path().join("big")).ok();
    let dst = Registry::start(&registry_bin);
    let (t, rss) = run_child(&src.url(), "bench/big", &dst.url(), "bench/big", "1.0");
    check_digest(&skopeo_bin, &dst, "bench/big", &big.index_digest);
    println!(
        "single {big_layer_mib} MiB layer: {:.2} s, {:.0} MiB/s, peak RSS {:.1} MiB (target <= 64 MiB)",
        t.as_secs_f64(),
        mib_per_s(big.layer_bytes(), t),
        rss as f64 / 1024.0
    );
    println!("load average after: {}", load_average());
}

/// CPU time (user + system) of the children this process has waited for, from
/// `/proc/self/stat` (`cutime`, `cstime`, in clock ticks of 1/100 s).
fn children_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // After the command name: state is field 3, cutime 16 and cstime 17 (1-based).
    let ticks = |i: usize| {
        fields
            .get(i - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(16) + ticks(17)) * 10)
}

fn timed(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn fmt(v: &[Duration]) -> String {
    v.iter()
        .map(|d| format!("{:.2} s", d.as_secs_f64()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn mib_per_s(bytes: u64, t: Duration) -> f64 {
    bytes as f64 / MIB as f64 / t.as_secs_f64()
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn check_digest(skopeo_bin: &Path, registry: &Registry, repo: &str, expected: &str) {
    let raw = skopeo::inspect_raw(
        skopeo_bin,
        &format!("docker://{}/{repo}:1.0", registry.host()),
        &[],
    );
    assert_eq!(
        skopeo::digest_of(&raw),
        expected,
        "the copy is digest-exact"
    );
}

/// Runs one copy in a child process; returns its wall time and peak RSS (KiB).
fn run_child(src: &str, src_repo: &str, dst: &str, dst_repo: &str, tag: &str) -> (Duration, u64) {
    let start = Instant::now();
    let output = Command::new(std::env::current_exe().expect("own path"))
        .env(CHILD_ENV, "1")
        .env("ARC_BENCH_SRC", src)
        .env("ARC_BENCH_SRC_REPO", src_repo)
        .env("ARC_BENCH_DST", dst)
        .env("ARC_BENCH_DST_REPO", dst_repo)
        .env("ARC_BENCH_TAG", tag)
        .output()
        .expect("run child");
    let elapsed = start.elapsed();
    assert!(
        output.status.success(),
        "child copy failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    if std::env::var_os("ARC_BENCH_VERBOSE").is_some() {
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
    }
    let rss = String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|l| {
            l.strip_prefix("peak_rss_kib=")
                .and_then(|v| v.trim().parse().ok())
        })
        .expect("child reports its peak RSS");
    (elapsed, rss)
}

/// The child: one copy with the engine, then its own peak RSS.
fn child() {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} not set"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let cancel = tokio_util::sync::CancellationToken::new();
        let creds = bundles::secrets::Credentials::default();
        let retry = bundles::retry::RetryPolicy::default();
        let src = bundles::oci::open_repo(
            bundles::params::EndpointType::Oci,
            &var("ARC_BENCH_SRC"),
            &creds,
            &var("ARC_BENCH_SRC_REPO"),
            retry.clone(),
            cancel.clone(),
        )
        .expect("source");
        let dst = bundles::oci::open_repo(
            bundles::params::EndpointType::Oci,
            &var("ARC_BENCH_DST"),
            &creds,
            &var("ARC_BENCH_DST_REPO"),
            retry,
            cancel,
        )
        .expect("destination");
        let tag = var("ARC_BENCH_TAG");
        let copier = bundles::oci::Copier::new(
            bundles::oci::CopyOptions::default(),
            bundles::progress::Reporter::discard(),
        );
        copier
            .copy(&src, Some(&tag), None, &dst, Some(&tag))
            .await
            .expect("copy");
    });
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    println!("peak_rss_kib={hwm}");
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    eprintln!(
        "child cpu: user {}0 ms, system {}0 ms",
        fields.get(11).unwrap_or(&"?"),
        fields.get(12).unwrap_or(&"?")
    );
}
