//! kube-rs against the real API server: typed CRUD and error reasons, watcher/reflector,
//! a Controller using the finalizer helper end to end, and a watch that survives a restart.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use apiserver::server::testing::TestServer;
use apiserver::types::{Order, OrderSpec, OrderStatus};
use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::watcher::{self, Event, watcher};
use kube::runtime::{WatchStreamExt, reflector};
use kube::{Client, ResourceExt};
use serde_json::json;

fn order(name: &str) -> Order {
    let mut o = Order::new(name, OrderSpec::default());
    o.metadata.labels = Some([("tier".to_string(), "a".to_string())].into());
    o
}

#[tokio::test]
async fn typed_crud_and_error_reasons() {
    let server = TestServer::start().await;
    let orders: Api<Order> = Api::namespaced(server.client().await, "default");

    let created = orders
        .create(&PostParams::default(), &order("o1"))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.metadata.uid.is_some());
    let dup = orders
        .create(&PostParams::default(), &order("o1"))
        .await
        .unwrap_err();
    assert!(
        matches!(&dup, kube::Error::Api(s) if s.is_already_exists()),
        "{dup:?}"
    );
    assert!(orders.get_opt("missing").await.unwrap().is_none());

    // Replace with the current RV works and bumps generation for spec changes; a stale RV conflicts.
    let mut changed = created.clone();
    changed.spec.ttl_seconds_after_completion = Some(5);
    let replaced = orders
        .replace("o1", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_eq!(replaced.metadata.generation, Some(2));
    let stale = orders
        .replace("o1", &PostParams::default(), &changed)
        .await
        .unwrap_err();
    assert!(
        matches!(&stale, kube::Error::Api(s) if s.is_conflict()),
        "{stale:?}"
    );

    // Status: SSA with force and merge patch; spec untouched, generation unchanged.
    let status = json!({"apiVersion": "arc.opendefense.cloud/v1alpha1", "kind": "Order", "status": {"message": "hello"}});
    let patched = orders
        .patch_status(
            "o1",
            &PatchParams::apply("test").force(),
            &Patch::Apply(&status),
        )
        .await
        .unwrap();
    assert_eq!(patched.status.as_ref().unwrap().message, "hello");
    assert_eq!(patched.metadata.generation, Some(2));
    let merged = orders
        .patch_status(
            "o1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"message": "bye"}})),
        )
        .await
        .unwrap();
    assert_eq!(merged.status.unwrap().message, "bye");
    assert_eq!(merged.spec.ttl_seconds_after_completion, Some(5));

    // Invalid names are 422 Invalid.
    let invalid = orders
        .create(&PostParams::default(), &order("Bad_Name"))
        .await
        .unwrap_err();
    assert!(
        matches!(&invalid, kube::Error::Api(s) if s.is_invalid()),
        "{invalid:?}"
    );

    // Selectors.
    orders
        .create(&PostParams::default(), &order("o2"))
        .await
        .unwrap();
    let listed = orders
        .list(
            &ListParams::default()
                .labels("tier=a")
                .fields("metadata.name=o2"),
        )
        .await
        .unwrap();
    assert_eq!(
        listed
            .items
            .iter()
            .map(|o| o.name_any())
            .collect::<Vec<_>>(),
        ["o2"]
    );

    // Delete without finalizers → Right(Status); with a finalizer → Left(object) terminating.
    assert!(
        orders
            .delete("o2", &DeleteParams::default())
            .await
            .unwrap()
            .is_right()
    );
    orders
        .patch(
            "o1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["arc.test/x"]}})),
        )
        .await
        .unwrap();
    let pending = orders.delete("o1", &DeleteParams::default()).await.unwrap();
    let left = pending
        .left()
        .expect("object returned while finalizers remain");
    assert!(left.metadata.deletion_timestamp.is_some());
    orders
        .patch(
            "o1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    assert!(orders.get_opt("o1").await.unwrap().is_none());
    server.shutdown().await;
}

#[tokio::test]
async fn watcher_and_reflector_follow_churn() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let orders: Api<Order> = Api::namespaced(client.clone(), "default");
    for i in 0..30 {
        orders
            .create(&PostParams::default(), &order(&format!("seed-{i:02}")))
            .await
            .unwrap();
    }
    let (reader, writer) = reflector::store();
    let stream = reflector(
        writer,
        watcher(orders.clone(), watcher::Config::default().page_size(7)),
    )
    .applied_objects()
    .boxed();
    let handle = tokio::spawn(async move { stream.try_for_each(|_| async { Ok(()) }).await });
    reader.wait_until_ready().await.unwrap();
    assert_eq!(reader.state().len(), 30);
    for i in 0..10 {
        orders
            .delete(&format!("seed-{i:02}"), &DeleteParams::default())
            .await
            .unwrap();
        orders
            .create(&PostParams::default(), &order(&format!("new-{i:02}")))
            .await
            .unwrap();
    }
    let expected: std::collections::BTreeSet<String> = orders
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|o| o.name_any())
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let seen: std::collections::BTreeSet<String> =
            reader.state().iter().map(|o| o.name_any()).collect();
        if seen == expected {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "reflector {seen:?} != list {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    handle.abort();
    server.shutdown().await;
}

#[tokio::test]
async fn streaming_list_watcher_gets_initial_events_end() {
    let server = TestServer::start().await;
    let orders: Api<Order> = Api::namespaced(server.client().await, "default");
    for i in 0..5 {
        orders
            .create(&PostParams::default(), &order(&format!("s{i}")))
            .await
            .unwrap();
    }
    let mut stream = watcher(orders.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut init_applied = 0;
    let result = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(event) = stream.try_next().await.unwrap() {
            match event {
                Event::InitApply(_) => init_applied += 1,
                Event::InitDone => return,
                _ => {}
            }
        }
    })
    .await;
    assert!(result.is_ok(), "no InitDone from a streaming list");
    assert_eq!(init_applied, 5);
    server.shutdown().await;
}

#[derive(Debug, thiserror::Error)]
enum ReconcileError {
    #[error(transparent)]
    Finalizer(#[from] Box<kube::runtime::finalizer::Error<kube::Error>>),
}

struct Ctx {
    client: Client,
    applied: AtomicUsize,
    cleaned: AtomicUsize,
}

const TEST_FINALIZER: &str = "arc.opendefense.cloud/test-cleanup";

async fn reconcile(order: Arc<Order>, ctx: Arc<Ctx>) -> Result<Action, ReconcileError> {
    let api: Api<Order> =
        Api::namespaced(ctx.client.clone(), &order.namespace().unwrap_or_default());
    finalizer(&api, TEST_FINALIZER, order, |event| async {
        match event {
            FinalizerEvent::Apply(o) => {
                ctx.applied.fetch_add(1, Ordering::SeqCst);
                let status = json!({"status": {"message": "reconciled"}});
                api.patch_status(
                    &o.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(status),
                )
                .await?;
                Ok(Action::await_change())
            }
            FinalizerEvent::Cleanup(_) => {
                ctx.cleaned.fetch_add(1, Ordering::SeqCst);
                Ok(Action::await_change())
            }
        }
    })
    .await
    .map_err(|e| ReconcileError::Finalizer(Box::new(e)))
}

fn error_policy(_: Arc<Order>, _: &ReconcileError, _: Arc<Ctx>) -> Action {
    Action::requeue(Duration::from_millis(200))
}

#[tokio::test]
async fn controller_with_finalizer_helper_runs_end_to_end() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let orders: Api<Order> = Api::namespaced(client.clone(), "default");
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        applied: AtomicUsize::new(0),
        cleaned: AtomicUsize::new(0),
    });
    let controller = Controller::new(orders.clone(), watcher::Config::default())
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|_| async {});
    let handle = tokio::spawn(controller);

    orders
        .create(&PostParams::default(), &order("fin"))
        .await
        .unwrap();
    let reconciled = wait_for(|| async {
        let o = orders.get("fin").await.unwrap();
        o.finalizers().contains(&TEST_FINALIZER.to_string())
            && o.status.as_ref().map(|s: &OrderStatus| s.message.as_str()) == Some("reconciled")
    })
    .await;
    assert!(reconciled, "finalizer added and status written");
    orders
        .delete("fin", &DeleteParams::default())
        .await
        .unwrap();
    let gone = wait_for(|| async { orders.get_opt("fin").await.unwrap().is_none() }).await;
    assert!(gone, "object deleted after cleanup");
    assert_eq!(ctx.cleaned.load(Ordering::SeqCst), 1);
    handle.abort();
    server.shutdown().await;
}

async fn wait_for<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn watch_survives_server_restart_without_losing_events() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_in(dir.path(), Vec::new()).await;
    let kubeconfig = server.kubeconfig_path().to_path_buf();
    let client = server.client().await;
    let orders: Api<Order> = Api::namespaced(client, "default");
    orders
        .create(&PostParams::default(), &order("before"))
        .await
        .unwrap();

    let (reader, writer) = reflector::store();
    let stream = reflector(writer, watcher(orders.clone(), watcher::Config::default()))
        .applied_objects()
        .boxed();
    let handle = tokio::spawn(async move { stream.for_each(|_| async {}).await });
    reader.wait_until_ready().await.unwrap();

    // Restart on the same data dir and port-independent kubeconfig: the client follows the file,
    // so restart on the same address.
    let addr: std::net::SocketAddr = server.url().trim_start_matches("https://").parse().unwrap();
    server.stop().await;
    let mut config = apiserver::server::embedded::ServerConfig::embedded(dir.path(), addr);
    config.options.min_watch_timeout = Duration::from_secs(60);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let restarted = apiserver::server::embedded::start(config, shutdown.clone())
        .await
        .unwrap();
    assert_eq!(restarted.admin_kubeconfig, kubeconfig);
    let orders2: Api<Order> = Api::namespaced(
        apiserver::server::testing::client_from(&kubeconfig).await,
        "default",
    );
    orders2
        .create(&PostParams::default(), &order("after"))
        .await
        .unwrap();
    let seen = wait_for(|| async {
        reader.state().iter().any(|o| o.name_any() == "after")
            && reader.state().iter().any(|o| o.name_any() == "before")
    })
    .await;
    assert!(
        seen,
        "the watcher re-watched after the restart and saw the new object"
    );
    handle.abort();
    shutdown.cancel();
}
