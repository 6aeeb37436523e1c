//! Raw-store benchmark: creates per second with 16 concurrent writers, and listing 10,000 keys,
//! on the SQLite backend and on a real etcd (started here; skipped with a message if `etcd` is
//! not installed). Run with `cargo bench -p apiserver --bench storage [-- sqlite|etcd]`.
//!
//! Values are 1 KiB, about the size of a stored Order. Both backends write durably (SQLite:
//! WAL + synchronous=FULL; etcd: its default fsync per raft entry).

use std::sync::Arc;
use std::time::{Duration, Instant};

use apiserver::storage::etcd::EtcdStore;
use apiserver::storage::sqlite::SqliteStore;
use apiserver::storage::{ListRequest, Store};

/// Concurrent writers in the create benchmark.
const WRITERS: usize = 16;
/// Creates per backend in the create benchmark.
const CREATES: usize = 20_000;
/// Keys in the list benchmark.
const LIST_KEYS: usize = 10_000;
/// Page size of the paginated list (what kubectl asks for).
const PAGE_SIZE: usize = 500;
/// Timed repetitions of each list (the median is reported).
const LIST_RUNS: usize = 9;
/// Size of each value.
const VALUE_BYTES: usize = 1024;

/// One backend's figures.
struct Figures {
    backend: &'static str,
    creates_per_sec: f64,
    create_p99: Duration,
    list_all: Duration,
    list_paged: Duration,
    list_old_revision: Duration,
}

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut results = Vec::new();

    if wanted("sqlite") {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path().join("bench.db")).expect("open SQLite store");
        results.push(runtime.block_on(measure("sqlite", Arc::new(store))));
    }
    if wanted("etcd") {
        match arc_tests::etcd::EtcdServer::start_for("the etcd storage benchmark") {
            Some(etcd) => {
                let store = runtime
                    .block_on(EtcdStore::connect(&[etcd.endpoint()]))
                    .expect("connect to the benchmark's etcd");
                results.push(runtime.block_on(measure("etcd", Arc::new(store))));
                drop(etcd);
            }
            None => eprintln!("etcd benchmark skipped: etcd is not installed"),
        }
    }

    println!();
    println!(
        "Raw store ({WRITERS} concurrent writers, {CREATES} creates of {VALUE_BYTES} B; lists of {LIST_KEYS} keys, median of {LIST_RUNS})"
    );
    println!(
        "| backend | creates/s | create p99 | list 10k (one read) | list 10k (pages of {PAGE_SIZE}) | list 10k at an older revision |"
    );
    println!("|---|---|---|---|---|---|");
    for f in &results {
        println!(
            "| {} | {:.0} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |",
            f.backend,
            f.creates_per_sec,
            ms(f.create_p99),
            ms(f.list_all),
            ms(f.list_paged),
            ms(f.list_old_revision),
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn measure(backend: &'static str, store: Arc<dyn Store>) -> Figures {
    eprintln!("{backend}: {CREATES} creates with {WRITERS} writers ...");
    let (creates_per_sec, create_p99) = creates(&store).await;
    eprintln!("{backend}: filling {LIST_KEYS} keys for the list benchmark ...");
    let prefix = "/registry/arc.opendefense.cloud/orders/list-bench/";
    fill(&store, prefix, LIST_KEYS).await;
    let old_revision = store.current_revision().await.expect("current revision");
    // Churn after the snapshot, so the older revision is really older for every key it has.
    let page = store
        .list(ListRequest {
            prefix: prefix.into(),
            limit: 1000,
            ..ListRequest::default()
        })
        .await
        .expect("list");
    for kv in page.items {
        store
            .update(&kv.key, kv.value, kv.mod_revision)
            .await
            .expect("update");
    }
    eprintln!("{backend}: lists ...");
    let list_all = median_of(|| list(&store, prefix, 0, None)).await;
    let list_paged = median_of(|| list(&store, prefix, PAGE_SIZE, None)).await;
    let list_old_revision = median_of(|| list(&store, prefix, 0, Some(old_revision))).await;
    Figures {
        backend,
        creates_per_sec,
        create_p99,
        list_all,
        list_paged,
        list_old_revision,
    }
}

fn value(key: &str) -> Vec<u8> {
    let mut value = format!("{{\"kind\":\"Order\",\"metadata\":{{\"name\":\"{key}\"}},\"spec\":\"")
        .into_bytes();
    value.resize(VALUE_BYTES - 2, b'x');
    value.extend_from_slice(b"\"}");
    value
}

/// Creates [`CREATES`] keys from [`WRITERS`] tasks; returns creates/s and the p99 latency.
async fn creates(store: &Arc<dyn Store>) -> (f64, Duration) {
    let started = Instant::now();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let store = Arc::clone(store);
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(CREATES / WRITERS);
                for i in 0..CREATES / WRITERS {
                    let key = format!(
                        "/registry/arc.opendefense.cloud/orders/bench-{writer:02}/order-{i:06}"
                    );
                    let value = value(&key);
                    let t = Instant::now();
                    store.create(&key, value).await.expect("create");
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("writer task"));
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    (latencies.len() as f64 / elapsed.as_secs_f64(), p99)
}

async fn fill(store: &Arc<dyn Store>, prefix: &str, count: usize) {
    let tasks: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let store = Arc::clone(store);
            let prefix = prefix.to_string();
            tokio::spawn(async move {
                for i in (writer..count).step_by(WRITERS) {
                    let key = format!("{prefix}order-{i:06}");
                    store.create(&key, value(&key)).await.expect("create");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("fill task");
    }
}

/// Lists every key under `prefix` (in pages of `limit`, 0 = one read) at `revision`.
async fn list(
    store: &Arc<dyn Store>,
    prefix: &str,
    limit: usize,
    revision: Option<i64>,
) -> Duration {
    let started = Instant::now();
    let mut request = ListRequest {
        prefix: prefix.into(),
        limit,
        revision,
        start_after: None,
    };
    let mut total = 0;
    loop {
        let page = store.list(request.clone()).await.expect("list");
        total += page.items.len();
        if page.remaining == 0 || page.items.is_empty() {
            break;
        }
        request.start_after = page.items.last().map(|kv| kv.key.clone());
        request.revision = Some(page.revision);
    }
    let elapsed = started.elapsed();
    assert_eq!(total, LIST_KEYS, "the list returned {total} keys");
    elapsed
}

async fn median_of<F, Fut>(run: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Duration>,
{
    run().await; // warm-up
    let mut times = Vec::with_capacity(LIST_RUNS);
    for _ in 0..LIST_RUNS {
        times.push(run().await);
    }
    times.sort();
    times[LIST_RUNS / 2]
}
