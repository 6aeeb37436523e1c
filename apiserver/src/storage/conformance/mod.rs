//! The storage conformance suite: one set of checks every [`Store`] backend must pass, run by the
//! integration tests against each backend (`apiserver/tests/storage_*.rs`).
//!
//! Each check is a public async function taking the store and a key prefix of its own (so checks
//! can share a store without seeing each other's keys); it panics on the first violation, naming
//! it. [`compaction`] changes the whole store's history and needs a store nobody else uses at the
//! same time. [`SHARED_CHECKS`] lists the others by name, for test generators.
//!
//! Checks never assume particular revision numbers (etcd starts at 1 and SQLite at 0), only the
//! relations between them.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt;
use futures::future::join_all;

mod lists;
mod watches;
mod writes;

pub use self::lists::{
    compaction, list_at_old_revision, list_by_prefix, list_future_revision,
    list_pagination_snapshot,
};
pub use self::watches::{
    many_watchers, watch_progress, watch_replay_and_live, watch_slow_consumer,
};
pub use self::writes::{
    compare_and_swap, concurrent_cas_single_winner, concurrent_creates, create_if_absent,
    delete_with_precondition, get_and_not_found, value_too_large,
};
use super::{KeyValue, ListRequest, Revision, StorageError, Store, WatchEvent, WatchStream};

/// How long a check waits for an expected watch event.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(15);

/// The names of the checks that can share a store (all but [`compaction`]).
pub const SHARED_CHECKS: &[&str] = &[
    "create_if_absent",
    "get_and_not_found",
    "compare_and_swap",
    "delete_with_precondition",
    "list_by_prefix",
    "list_pagination_snapshot",
    "list_at_old_revision",
    "list_future_revision",
    "watch_replay_and_live",
    "watch_progress",
    "many_watchers",
    "watch_slow_consumer",
    "concurrent_cas_single_winner",
    "concurrent_creates",
    "value_too_large",
];

/// Runs every check that can share a store, each under its own sub-prefix of `prefix`.
pub async fn run_shared(store: &dyn Store, prefix: &str) {
    create_if_absent(store, &format!("{prefix}create/")).await;
    get_and_not_found(store, &format!("{prefix}get/")).await;
    compare_and_swap(store, &format!("{prefix}cas/")).await;
    delete_with_precondition(store, &format!("{prefix}delete/")).await;
    list_by_prefix(store, &format!("{prefix}list/")).await;
    list_pagination_snapshot(store, &format!("{prefix}pages/")).await;
    list_at_old_revision(store, &format!("{prefix}mvcc/")).await;
    list_future_revision(store, &format!("{prefix}future/")).await;
    watch_replay_and_live(store, &format!("{prefix}watch/")).await;
    watch_progress(store, &format!("{prefix}progress/")).await;
    many_watchers(store, &format!("{prefix}watchers/")).await;
    watch_slow_consumer(store, &format!("{prefix}slow/")).await;
    concurrent_cas_single_winner(store, &format!("{prefix}race/")).await;
    concurrent_creates(store, &format!("{prefix}creates/")).await;
    value_too_large(store, &format!("{prefix}large/")).await;
}

fn value(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

async fn must_get(store: &dyn Store, key: &str) -> KeyValue {
    store
        .get(key)
        .await
        .unwrap_or_else(|e| panic!("get {key}: {e}"))
        .unwrap_or_else(|| panic!("{key} is missing"))
}

async fn list_all(store: &dyn Store, prefix: &str, revision: Option<Revision>) -> Vec<KeyValue> {
    let request = ListRequest {
        prefix: prefix.to_string(),
        revision,
        ..ListRequest::default()
    };
    store
        .list(request)
        .await
        .unwrap_or_else(|e| panic!("list {prefix}: {e}"))
        .items
}

/// The next non-progress item of a watch, failing the check after [`EVENT_TIMEOUT`].
pub async fn next_change(stream: &mut WatchStream) -> Result<WatchEvent, StorageError> {
    let deadline = tokio::time::Instant::now() + EVENT_TIMEOUT;
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => panic!("no watch event within {EVENT_TIMEOUT:?}"),
            Ok(None) => panic!("the watch stream ended without an error"),
            Ok(Some(Ok(WatchEvent::Progress(_)))) => {}
            Ok(Some(item)) => return item,
        }
    }
}

/// Writes `count` keys under `prefix` from `parallel` concurrent writers; returns the revisions.
async fn write_many(
    store: &dyn Store,
    prefix: &str,
    count: usize,
    parallel: usize,
) -> BTreeSet<Revision> {
    let mut revisions = BTreeSet::new();
    let keys: Vec<String> = (0..count).map(|i| format!("{prefix}{i:05}")).collect();
    for chunk in keys.chunks(parallel) {
        let done = join_all(chunk.iter().map(|key| store.create(key, value("v")))).await;
        for result in done {
            revisions.insert(result.expect("create"));
        }
    }
    revisions
}
