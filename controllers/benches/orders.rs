//! Benchmark: many Orders through the controllers against the embedded API server (SQLite,
//! TLS, in this process), with the local executor running a worker that succeeds at once.
//!
//! Measures the time until every Order is `Ready`, the API requests the controllers send (per
//! reconcile and per Order, by kind), the peak RSS of this process (API server + controllers;
//! the worker processes are separate), and the controllers' requests per second once everything
//! has settled.
//!
//! `cargo bench -p controllers --bench orders`; `ARC_BENCH_ORDERS` (default 1000) and
//! `ARC_BENCH_ARTIFACTS` (default 5) change the size, `ARC_BENCH_WORKERS` (default 16) the
//! number of worker processes at once, `ARC_BENCH_ORDER_CONCURRENCY` and
//! `ARC_BENCH_WORKFLOW_CONCURRENCY` the controllers' concurrency (default: the library's).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use apiserver::server::testing::TestServer;
use apiserver::types::{
    Endpoint, EndpointSpec, EndpointUsage, LocalObjectReference, Order, OrderArtifact,
    OrderDefaults, OrderSpec,
};
use controllers::request_counter::RequestCounter;
use controllers::{ExecutorSettings, LocalExecutorSettings, Settings};
use futures::StreamExt;
use kube::api::PostParams;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tokio_util::sync::CancellationToken;

const NS: &str = "default";
/// How long the benchmark waits for everything to be Ready before it gives up.
const READY_LIMIT: Duration = Duration::from_secs(600);
/// Quiet time after the last Order became Ready before idle traffic is measured.
const SETTLE: Duration = Duration::from_secs(5);
/// How long idle traffic is measured.
const IDLE_WINDOW: Duration = Duration::from_secs(20);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

async fn counting_client(server: &TestServer) -> (Client, RequestCounter) {
    let kubeconfig =
        kube::config::Kubeconfig::read_from(server.kubeconfig_path()).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("client config");
    let counter = RequestCounter::new();
    let client = kube::client::ClientBuilder::try_from(config)
        .expect("builder")
        .with_layer(&counter)
        .build();
    (client, counter)
}

fn main() {
    let orders_n = env_usize("ARC_BENCH_ORDERS", 1000);
    let artifacts_n = env_usize("ARC_BENCH_ARTIFACTS", 5);
    let workers = env_usize("ARC_BENCH_WORKERS", 16);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let server = TestServer::start().await;
        let admin = server.client().await;
        controllers::ensure_default_artifact_types(admin.clone()).await.expect("artifact types");
        let endpoints: Api<Endpoint> = Api::namespaced(admin.clone(), NS);
        for (name, usage) in [("src", EndpointUsage::PullOnly), ("dst", EndpointUsage::PushOnly)] {
            let spec = EndpointSpec { type_: "oci".into(), remote_url: format!("https://{name}.example"), secret_ref: None, usage };
            endpoints.create(&PostParams::default(), &Endpoint::new(name, spec)).await.expect("endpoint");
        }

        let (client, counter) = counting_client(&server).await;
        let runtime_dir = tempfile::tempdir().expect("runtime dir");
        let mut local = LocalExecutorSettings::with_worker(env!("CARGO_BIN_EXE_arc-test-worker"));
        local.runtime_dir = Some(runtime_dir.path().to_path_buf());
        local.max_parallel = workers;
        local.max_parallel_per_namespace = workers;
        let mut settings = Settings::new(ExecutorSettings::Local(local));
        settings.order_concurrency = env_usize("ARC_BENCH_ORDER_CONCURRENCY", settings.order_concurrency.into()) as u16;
        settings.workflow_concurrency =
            env_usize("ARC_BENCH_WORKFLOW_CONCURRENCY", settings.workflow_concurrency.into()) as u16;
        println!(
            "settings: {} Orders and {} ArtifactWorkflows reconciled at once",
            settings.order_concurrency, settings.workflow_concurrency
        );
        let cancel = CancellationToken::new();
        let controllers = tokio::spawn(controllers::run(client, settings, cancel.clone()));
        // Let the caches load before the clock starts.
        tokio::time::sleep(Duration::from_millis(500)).await;

        let orders: Api<Order> = Api::namespaced(admin.clone(), NS);
        let started = Instant::now();
        let creates = futures::stream::iter(0..orders_n)
            .map(|i| {
                let orders = orders.clone();
                async move {
                    let artifacts = (0..artifacts_n)
                        .map(|j| OrderArtifact {
                            type_: "oci".into(),
                            spec: serde_json::json!({"image": format!("library/image-{i}-{j}:1")}),
                            ..Default::default()
                        })
                        .collect();
                    let order = Order::new(
                        &format!("order-{i:05}"),
                        OrderSpec {
                            defaults: Some(OrderDefaults {
                                src_ref: Some(LocalObjectReference::new("src")),
                                dst_ref: Some(LocalObjectReference::new("dst")),
                            }),
                            artifacts,
                            ttl_seconds_after_completion: None,
                        },
                    );
                    orders.create(&PostParams::default(), &order).await.expect("create order");
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<()>>();
        creates.await;
        let created_after = started.elapsed();

        // Watch (not poll) the Orders: listing 1,000 Orders every few hundred milliseconds would
        // load the server more than the controllers do.
        let mut ready: HashSet<String> = HashSet::new();
        let mut stream = watcher(orders.clone(), watcher::Config::default()).applied_objects().boxed();
        while ready.len() < orders_n {
            let next = tokio::time::timeout(READY_LIMIT.saturating_sub(started.elapsed()), stream.next()).await;
            let order = match next {
                Ok(Some(Ok(order))) => order,
                Ok(Some(Err(e))) => panic!("watching Orders: {e}"),
                Ok(None) => panic!("the Order watch ended"),
                Err(_) => panic!("only {}/{orders_n} Ready after {READY_LIMIT:?}", ready.len()),
            };
            let is_ready = order
                .status
                .as_ref()
                .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            if is_ready {
                ready.insert(order.name_any());
            }
        }
        let all_ready = started.elapsed();
        drop(stream);
        let busy = counter.snapshot();
        let stats = controllers::stats::snapshot();
        let rss = peak_rss_mib();

        tokio::time::sleep(SETTLE).await;
        let idle_from = counter.snapshot();
        let idle_stats_from = controllers::stats::snapshot();
        tokio::time::sleep(IDLE_WINDOW).await;
        let idle = counter.snapshot().since(&idle_from);
        let idle_reconciles = controllers::stats::snapshot().reconciles() - idle_stats_from.reconciles();

        let per_reconcile = (busy.reads + busy.writes) as f64 / stats.reconciles().max(1) as f64;
        let per_order = (busy.reads + busy.writes) as f64 / orders_n as f64;
        println!("orders benchmark: {orders_n} Orders x {artifacts_n} artifacts, {workers} workers at once");
        println!("  all Orders created after        {:>8.2} s", created_after.as_secs_f64());
        println!("  all Orders Ready after          {:>8.2} s", all_ready.as_secs_f64());
        println!("  throughput                      {:>8.1} artifacts/s", (orders_n * artifacts_n) as f64 / all_ready.as_secs_f64());
        println!(
            "  reconciles                      {:>8} ({} Order, {} ArtifactWorkflow; {} + {} failed)",
            stats.reconciles(),
            stats.order_reconciles,
            stats.workflow_reconciles,
            stats.order_errors,
            stats.workflow_errors
        );
        println!(
            "  API requests until Ready        {:>8} ({} reads, {} writes, {} watches)",
            busy.total(),
            busy.reads,
            busy.writes,
            busy.watches
        );
        println!("  requests per reconcile          {per_reconcile:>8.2} (reads + writes)");
        println!("  requests per Order              {per_order:>8.2} (reads + writes)");
        println!("  peak RSS (server + controllers) {rss:>8.1} MiB");
        println!(
            "  idle: requests/s                {:>8.3} ({} reads, {} writes, {} watches, {} reconciles in {}s)",
            (idle.reads + idle.writes) as f64 / IDLE_WINDOW.as_secs_f64(),
            idle.reads,
            idle.writes,
            idle.watches,
            idle_reconciles,
            IDLE_WINDOW.as_secs()
        );
        cancel.cancel();
        let _ = controllers.await;
        server.shutdown().await;
    });
}
