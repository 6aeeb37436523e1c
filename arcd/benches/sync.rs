//! Benchmark of the file syncer against the real embedded API server (SQLite, TLS), in one
//! process as in `arcd run`:
//!
//! 1. initial sync of N resource files (default 10,000; one Order each): time and peak RSS;
//! 2. a full rescan with nothing changed (what the periodic rescan costs);
//! 3. latency from a file write to the updated object in the API (p50/p99 over 100 edits), with
//!    the watcher and the default 200 ms debounce;
//! 4. CPU use at idle over 60 s (API server and syncer, no changes).
//!
//! Targets: initial sync < 30 s, p99 latency < 1 s, idle CPU < 1 %.
//! Run: `cargo bench -p arcd --bench sync` (env `ARC_BENCH_FILES`, `ARC_BENCH_IDLE_SECS`,
//! `ARC_BENCH_EDITS` to scale it down).

use std::path::Path;
use std::time::{Duration, Instant};

use apiserver::server::testing::TestServer;
use apiserver::types::Order;
use arcd::syncer::{Syncer, SyncerSettings};
use kube::api::{Api, ListParams};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn order(name: &str, image: &str) -> String {
    format!(
        "apiVersion: arc.opendefense.cloud/v1alpha1\nkind: Order\nmetadata:\n  name: {name}\n  labels: {{bench: sync}}\nspec:\n  defaults:\n    srcRef: {{name: upstream}}\n    dstRef: {{name: mirror}}\n  artifacts:\n    - type: oci\n      spec:\n        image: {image}\n    - type: file\n      spec:\n        path: files/{name}.tar.gz\n        sha256: 75140c16f0bac95447cf59175f63c46eaeb1b00601e6a75cdfccb1476dd9aff8\n"
    )
}

/// Peak resident set size of this process, in MiB (`VmHWM`).
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Current resident set size of this process, in MiB (`VmRSS`).
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// CPU time (user + system) this process has used.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is field 14, stime 15.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    let per_sec = 100; // USER_HZ on Linux
    Duration::from_millis(ticks * 1000 / per_sec)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn write_atomically(path: &Path, text: &str) {
    let temporary = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&temporary, text).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let files = env_or("ARC_BENCH_FILES", 10_000);
    let edits = env_or("ARC_BENCH_EDITS", 100);
    let idle_secs = env_or("ARC_BENCH_IDLE_SECS", 60);
    let dir = tempfile::tempdir().unwrap();
    let orders_dir = dir.path().join("orders");
    for i in 0..files {
        // 100 files per subdirectory, as operators tend to group them.
        let sub = orders_dir.join(format!("team-{:03}", i / 100));
        if i % 100 == 0 {
            std::fs::create_dir_all(&sub).unwrap();
        }
        std::fs::write(
            sub.join(format!("order-{i:05}.yaml")),
            order(&format!("order-{i:05}"), &format!("library/app-{i}:1.0")),
        )
        .unwrap();
    }
    println!("files: {files} (one Order with two artifacts each, 100 per directory)");

    let server = TestServer::start().await;
    let client = server.client().await;
    let settings = SyncerSettings {
        directories: vec![orders_dir.clone()],
        default_namespace: "default".into(),
        rescan_interval: Duration::from_secs(300),
        debounce: Duration::from_millis(arcd::config::defaults::DEBOUNCE_MILLIS),
    };
    let rss_before = rss_mib();

    // 1. Initial sync, through the spawned syncer (watcher set up included).
    let cancel = tokio_util::sync::CancellationToken::new();
    let started = Instant::now();
    let (handle, task) = Syncer::new(client.clone(), settings.clone()).spawn(cancel.clone());
    let mut reports = handle.reports();
    let report = reports
        .wait_for(Option::is_some)
        .await
        .unwrap()
        .clone()
        .unwrap();
    let initial = started.elapsed();
    assert!(
        report.is_clean(),
        "initial sync had errors: {:?}",
        report.errors.first()
    );
    assert_eq!(report.objects as u64, files);
    let orders: Api<Order> = Api::namespaced(client.clone(), "default");
    let listed = orders
        .list(&ListParams::default().labels("bench=sync"))
        .await
        .unwrap()
        .items
        .len();
    assert_eq!(listed as u64, files);
    println!(
        "initial sync: {:.2} s ({:.0} objects/s), peak RSS {:.0} MiB, RSS after {:.0} MiB (API server started, before the sync: {:.0} MiB)",
        initial.as_secs_f64(),
        files as f64 / initial.as_secs_f64(),
        peak_rss_mib(),
        rss_mib(),
        rss_before
    );

    // 2. A full rescan with nothing changed.
    let started = Instant::now();
    let report = handle.resync(None).await.unwrap();
    println!(
        "full rescan, nothing changed: {:.2} s ({} updated)",
        started.elapsed().as_secs_f64(),
        report.updated
    );

    // 3. Latency from a file write to the updated object.
    let mut latencies = Vec::new();
    for edit in 0..edits {
        let i = (edit * 97) % files;
        let name = format!("order-{i:05}");
        let path = orders_dir
            .join(format!("team-{:03}", i / 100))
            .join(format!("{name}.yaml"));
        let image = format!("library/app-{i}:edit-{edit}");
        let written = Instant::now();
        write_atomically(&path, &order(&name, &image));
        loop {
            let current = orders.get(&name).await.unwrap();
            if current.spec.artifacts[0].spec["image"] == image.as_str() {
                break;
            }
            assert!(
                written.elapsed() < Duration::from_secs(30),
                "edit {edit} never arrived"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        latencies.push(written.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    latencies.sort();
    println!(
        "write → updated object ({} edits, debounce {} ms): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        latencies.len(),
        settings.debounce.as_millis(),
        percentile(&latencies, 0.50).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        latencies.last().unwrap().as_secs_f64() * 1000.0
    );

    // 4. Idle CPU.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu_before = cpu_time();
    let wall = Instant::now();
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    let used = cpu_time() - cpu_before;
    println!(
        "idle CPU over {} s: {:.2} % of one core ({} ms CPU)",
        idle_secs,
        used.as_secs_f64() / wall.elapsed().as_secs_f64() * 100.0,
        used.as_millis()
    );
    println!("peak RSS overall: {:.0} MiB", peak_rss_mib());
    cancel.cancel();
    task.await.unwrap();
    drop(server);
}
