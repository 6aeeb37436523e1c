//! API server benchmark (figures for docs/benchmarks.md):
//! - creates/s with 16 concurrent clients through the API (SQLite and etcd), and the same load
//!   against the raw store, reported as the apiserver/raw ratio;
//! - LIST of 10,000 Orders;
//! - watch delivery latency p50/p99 with 100 watchers;
//! - resident memory of `arcd apiserver` holding 100,000 Orders.
//!
//! Run: `cargo build --release -p arcd && cargo bench -p apiserver --bench apiserver`
//! (`ARCD_BIN` overrides the binary; `ARC_BENCH_QUICK=1` shrinks the counts for a smoke run).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apiserver::server::embedded::{ServerConfig, StorageBackend, start};
use apiserver::storage::Store;
use apiserver::types::{Order, OrderArtifact, OrderSpec};
use futures::StreamExt;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use tokio_util::sync::CancellationToken;

const CLIENTS: usize = 16;

struct Sizes {
    creates: usize,
    list_objects: usize,
    watchers: usize,
    watch_events: usize,
    rss_objects: usize,
}

fn sizes() -> Sizes {
    if std::env::var_os("ARC_BENCH_QUICK").is_some() {
        Sizes {
            creates: 800,
            list_objects: 2_000,
            watchers: 20,
            watch_events: 50,
            rss_objects: 5_000,
        }
    } else {
        Sizes {
            creates: 8_000,
            list_objects: 10_000,
            watchers: 100,
            watch_events: 200,
            rss_objects: 100_000,
        }
    }
}

fn order(name: &str) -> Order {
    Order::new(
        name,
        OrderSpec {
            artifacts: vec![OrderArtifact {
                type_: "oci".into(),
                spec: serde_json::json!({"image": format!("library/{name}:1.0")}),
                ..Default::default()
            }],
            ..Default::default()
        },
    )
}

async fn client_for(kubeconfig: &std::path::Path) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

/// Creates `total` Orders with CLIENTS concurrent tasks; returns creates per second.
async fn api_creates(api: Api<Order>, prefix: &str, total: usize) -> f64 {
    let start = Instant::now();
    let per = total / CLIENTS;
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let api = api.clone();
        let prefix = prefix.to_string();
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                api.create(&PostParams::default(), &order(&format!("{prefix}-{c}-{i}")))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (per * CLIENTS) as f64 / start.elapsed().as_secs_f64()
}

/// The same load against the raw store: values of the same size, CLIENTS concurrent tasks.
async fn raw_creates(store: Arc<dyn Store>, prefix: &str, total: usize) -> f64 {
    let value = serde_json::to_vec(&serde_json::json!({
        "apiVersion": "arc.opendefense.cloud/v1alpha1", "kind": "Order",
        "metadata": {"name": "x", "namespace": "default", "uid": uuid_like(), "creationTimestamp": "2026-01-01T00:00:00Z", "generation": 1},
        "spec": {"artifacts": [{"type": "oci", "spec": {"image": "library/x:1.0"}}]}
    }))
    .unwrap();
    let start = Instant::now();
    let per = total / CLIENTS;
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let store = store.clone();
        let value = value.clone();
        let prefix = prefix.to_string();
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                store
                    .create(&format!("/bench/{prefix}/{c}/{i}"), value.clone())
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (per * CLIENTS) as f64 / start.elapsed().as_secs_f64()
}

fn uuid_like() -> &'static str {
    "6f0c7a52-1d1e-4a8b-9a55-3f0a1f1f2b7c"
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn backend_round(name: &str, backend: StorageBackend, sizes: &Sizes) {
    let dir = tempfile::tempdir().unwrap();
    let shutdown = CancellationToken::new();
    let mut config = ServerConfig::embedded(dir.path(), "127.0.0.1:0".parse().unwrap());
    config.storage = backend;
    let server = start(config, shutdown.clone()).await.unwrap();
    let client = client_for(&server.admin_kubeconfig).await;
    let api: Api<Order> = Api::namespaced(client, "default");

    let raw = raw_creates(server.state.store.clone(), name, sizes.creates).await;
    let via_api = api_creates(api.clone(), "create", sizes.creates).await;
    println!("| {name} | creates/s, 16 clients, through the API | {via_api:.0} |");
    println!("| {name} | creates/s, 16 clients, raw store | {raw:.0} |");
    println!("| {name} | apiserver/raw ratio | {:.2} |", via_api / raw);
    shutdown.cancel();
}

async fn list_and_watch(sizes: &Sizes) {
    let dir = tempfile::tempdir().unwrap();
    let shutdown = CancellationToken::new();
    let server = start(
        ServerConfig::embedded(dir.path(), "127.0.0.1:0".parse().unwrap()),
        shutdown.clone(),
    )
    .await
    .unwrap();
    let client = client_for(&server.admin_kubeconfig).await;
    let api: Api<Order> = Api::namespaced(client.clone(), "default");
    api_creates(api.clone(), "list", sizes.list_objects).await;
    // Server side: the whole HTTP response of a LIST, as kubectl receives it.
    let mut times = Vec::new();
    for _ in 0..5 {
        let request =
            http::Request::get("/apis/arc.opendefense.cloud/v1alpha1/namespaces/default/orders")
                .body(Vec::new())
                .unwrap();
        let t = Instant::now();
        let body = client.request_text(request).await.unwrap();
        times.push(t.elapsed());
        assert!(body.len() > sizes.list_objects * 100);
    }
    times.sort();
    println!(
        "| sqlite | LIST of {} Orders, whole HTTP response (median of 5) | {:.0} ms |",
        sizes.list_objects,
        percentile(&times, 0.5).as_secs_f64() * 1e3
    );
    // Client side included: kube-rs decoding every item into a typed Order.
    let mut typed = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let list = api.list(&ListParams::default()).await.unwrap();
        typed.push(t.elapsed());
        assert_eq!(list.items.len(), sizes.list_objects / CLIENTS * CLIENTS);
    }
    typed.sort();
    println!(
        "| sqlite | LIST of {} Orders decoded into typed kube-rs objects (median of 3) | {:.0} ms |",
        sizes.list_objects,
        percentile(&typed, 0.5).as_secs_f64() * 1e3
    );

    // Watch latency: each event carries its creation instant in a label-free way (the name).
    let watch_api: Api<Order> = Api::namespaced(client.clone(), "watch");
    let ns =
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "watch"}});
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .create(&PostParams::default(), &serde_json::from_value(ns).unwrap())
        .await
        .unwrap();
    let rv = watch_api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let started = Arc::new(std::sync::Mutex::new(std::collections::HashMap::<
        String,
        Instant,
    >::new()));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Duration>();
    for _ in 0..sizes.watchers {
        let api = watch_api.clone();
        let rv = rv.clone();
        let started = started.clone();
        let tx = tx.clone();
        let expected = sizes.watch_events;
        tokio::spawn(async move {
            let mut stream = api
                .watch(&WatchParams::default().timeout(120), &rv)
                .await
                .unwrap()
                .boxed();
            let mut seen = 0;
            while let Some(Ok(event)) = stream.next().await {
                if let WatchEvent::Added(o) = event {
                    let at = started
                        .lock()
                        .unwrap()
                        .get(o.metadata.name.as_deref().unwrap_or(""))
                        .copied();
                    if let Some(at) = at {
                        let _ = tx.send(at.elapsed());
                    }
                    seen += 1;
                    if seen == expected {
                        return;
                    }
                }
            }
        });
    }
    drop(tx);
    tokio::time::sleep(Duration::from_secs(1)).await;
    for i in 0..sizes.watch_events {
        let name = format!("w-{i}");
        started.lock().unwrap().insert(name.clone(), Instant::now());
        watch_api
            .create(&PostParams::default(), &order(&name))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut latencies = Vec::new();
    while let Ok(Some(l)) = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
        latencies.push(l);
    }
    latencies.sort();
    println!(
        "| sqlite | watch delivery latency, {} watchers × {} events: p50 / p99 | {:.1} ms / {:.1} ms ({} deliveries) |",
        sizes.watchers,
        sizes.watch_events,
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.len()
    );
    shutdown.cancel();
}

fn arcd_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ARCD_BIN") {
        return Some(PathBuf::from(p));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    let candidate = target.join("release/arcd");
    candidate.is_file().then_some(candidate)
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn rss_with_many_orders(sizes: &Sizes) {
    let Some(arcd) = arcd_binary() else {
        println!(
            "| sqlite | RSS with {} Orders | skipped: build `cargo build --release -p arcd` or set ARCD_BIN |",
            sizes.rss_objects
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(&arcd)
        .args(["apiserver", "--data-dir"])
        .arg(dir.path())
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let kubeconfig = dir.path().join("admin.kubeconfig");
    for _ in 0..200 {
        if kubeconfig.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let api: Api<Order> = Api::namespaced(client_for(&kubeconfig).await, "default");
    let t = Instant::now();
    let rate = api_creates(api.clone(), "rss", sizes.rss_objects).await;
    // One full list, as a controller's initial sync would do, then measure.
    let _ = api.list(&ListParams::default().limit(500)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = rss_kib(child.id(), "VmRSS:");
    let hwm = rss_kib(child.id(), "VmHWM:");
    println!(
        "| sqlite | `arcd apiserver` RSS holding {} Orders (loaded in {:.0} s at {rate:.0}/s): current / peak | {} MiB / {} MiB |",
        sizes.rss_objects,
        t.elapsed().as_secs_f64(),
        rss / 1024,
        hwm / 1024
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let sizes = sizes();
    println!("| backend | measure | result |\n|---|---|---|");
    backend_round("sqlite", StorageBackend::Sqlite, &sizes).await;
    match arc_tests::etcd::EtcdServer::start() {
        Some(etcd) => {
            backend_round(
                "etcd",
                StorageBackend::Etcd {
                    endpoints: vec![etcd.endpoint()],
                },
                &sizes,
            )
            .await
        }
        None => println!("| etcd | creates/s | skipped: etcd not installed |"),
    }
    list_and_watch(&sizes).await;
    rss_with_many_orders(&sizes).await;
}
