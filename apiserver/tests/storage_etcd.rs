//! The storage conformance suite against the etcd backend and a real etcd (started per test by
//! the `arc_tests::etcd` fixture), plus how the backend behaves when etcd is unreachable or
//! goes away.

use std::time::{Duration, Instant};

use apiserver::storage::etcd::EtcdStore;
use apiserver::storage::{ListRequest, StorageError, Store, conformance};
use arc_tests::etcd::EtcdServer;
use futures::StreamExt;

const PREFIX: &str = "/registry/arc.opendefense.cloud/conformance/";

async fn start(test: &str) -> Option<(EtcdServer, EtcdStore)> {
    let etcd = EtcdServer::start_for(test)?;
    let store = EtcdStore::connect(&[etcd.endpoint()])
        .await
        .expect("connect to etcd");
    Some((etcd, store))
}

macro_rules! conformance_tests {
    ($($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let Some((_etcd, store)) = start(concat!("etcd conformance: ", stringify!($check))).await else { return };
                conformance::$check(&store, PREFIX).await;
            }
        )*

        #[test]
        fn every_shared_check_runs() {
            let here: Vec<&str> = vec![$(stringify!($check)),*];
            for check in conformance::SHARED_CHECKS {
                assert!(here.contains(check), "conformance check {check} is not run against etcd");
            }
        }
    };
}

conformance_tests!(
    create_if_absent,
    get_and_not_found,
    compare_and_swap,
    delete_with_precondition,
    list_by_prefix,
    list_pagination_snapshot,
    list_at_old_revision,
    list_future_revision,
    watch_replay_and_live,
    watch_progress,
    many_watchers,
    watch_slow_consumer,
    concurrent_cas_single_winner,
    concurrent_creates,
    value_too_large,
    compaction,
);

/// All shared checks on one etcd at once: they must not see each other's keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_checks_on_one_store() {
    let Some((_etcd, store)) = start("etcd conformance: all checks on one store").await else {
        return;
    };
    conformance::run_shared(&store, PREFIX).await;
}

/// Connecting to an address where no etcd listens fails within seconds, naming the endpoint.
#[tokio::test]
async fn connect_fails_fast_when_unreachable() {
    let endpoint = format!("http://127.0.0.1:{}", arc_tests::ports::free_port());
    let started = Instant::now();
    match EtcdStore::connect(std::slice::from_ref(&endpoint)).await {
        Err(StorageError::Unavailable(message)) => {
            assert!(
                message.contains(&endpoint),
                "error does not name the endpoint: {message}"
            );
        }
        other => panic!("connect to {endpoint}: expected Unavailable, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "connect took {:?} to fail",
        started.elapsed()
    );
}

/// While etcd is down, requests fail with `Unavailable`, health says so and watches end with an
/// error; after etcd is back, the same store works again without reconnecting, with the data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_down_then_back() {
    let Some((mut etcd, store)) = start("etcd outage handling").await else {
        return;
    };
    let key = format!("{PREFIX}survivor");
    let revision = store.create(&key, b"kept".to_vec()).await.expect("create");
    let mut watch = store.watch(PREFIX, revision).await.expect("watch");

    etcd.kill();
    let started = Instant::now();
    match store.get(&key).await {
        Err(StorageError::Unavailable(message)) => {
            assert!(message.contains(&etcd.endpoint()), "{message}")
        }
        other => panic!("get while etcd is down: expected Unavailable, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(35),
        "a request to a dead etcd took {:?}",
        started.elapsed()
    );
    assert!(
        matches!(store.health().await, Err(StorageError::Unavailable(_))),
        "health while etcd is down"
    );
    let ended = tokio::time::timeout(Duration::from_secs(40), async {
        loop {
            match watch.next().await {
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Some(e),
                None => return None,
            }
        }
    })
    .await
    .expect("the watch notices that etcd is gone");
    assert!(ended.is_some(), "the watch ended without an error");

    etcd.restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match store.get(&key).await {
            Ok(Some(kv)) => {
                assert_eq!(
                    (kv.value.as_slice(), kv.mod_revision),
                    (&b"kept"[..], revision)
                );
                break;
            }
            Ok(None) => panic!("{key} lost across an etcd restart"),
            Err(e) if Instant::now() < deadline => {
                eprintln!("waiting for etcd to come back: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the store did not recover after etcd restarted: {e}"),
        }
    }
    store.health().await.expect("healthy again");
    let page = store
        .list(ListRequest {
            prefix: PREFIX.into(),
            ..ListRequest::default()
        })
        .await
        .expect("list");
    assert_eq!(page.items.len(), 1);
}
