//! Conformance checks of single-key operations: create-if-absent, get, compare-and-swap, delete
//! with a precondition, racing writers and the value size limit.

use super::*;

/// Create-if-absent: a new key gets create = mod revision, a second create fails and changes
/// nothing, revisions increase, and the current revision covers every acknowledged write.
pub async fn create_if_absent(store: &dyn Store, prefix: &str) {
    let key = format!("{prefix}a");
    let before = store.current_revision().await.expect("current revision");
    let first = store
        .create(&key, value("one"))
        .await
        .expect("create a new key");
    assert!(
        first > before,
        "create returned revision {first}, not after the store's {before}"
    );
    let kv = must_get(store, &key).await;
    assert_eq!(
        kv,
        KeyValue {
            key: key.clone(),
            value: value("one"),
            create_revision: first,
            mod_revision: first
        }
    );

    let again = store.create(&key, value("two")).await;
    assert_eq!(
        again,
        Err(StorageError::AlreadyExists { key: key.clone() }),
        "second create of {key}"
    );
    assert_eq!(
        must_get(store, &key).await.value,
        value("one"),
        "a refused create changed the value"
    );

    let other = store
        .create(&format!("{prefix}b"), value("b"))
        .await
        .expect("create another key");
    assert!(
        other > first,
        "revisions must increase: {other} after {first}"
    );
    let current = store.current_revision().await.expect("current revision");
    assert!(
        current >= other,
        "current revision {current} is behind acknowledged write {other}"
    );
}

/// Get of a missing key is `None`; update and delete of a missing key are `NotFound`.
pub async fn get_and_not_found(store: &dyn Store, prefix: &str) {
    let key = format!("{prefix}missing");
    assert_eq!(store.get(&key).await.expect("get"), None);
    assert_eq!(
        store.update(&key, value("x"), 1).await,
        Err(StorageError::NotFound { key: key.clone() })
    );
    assert_eq!(
        store.update(&key, value("x"), 0).await,
        Err(StorageError::NotFound { key: key.clone() })
    );
    assert_eq!(
        store.delete(&key, 1).await,
        Err(StorageError::NotFound { key: key.clone() })
    );
    assert_eq!(
        store.get(&key).await.expect("get"),
        None,
        "a refused update must not create the key"
    );
}

/// Compare-and-swap on the mod revision.
pub async fn compare_and_swap(store: &dyn Store, prefix: &str) {
    let key = format!("{prefix}k");
    let created = store.create(&key, value("v1")).await.expect("create");
    let updated = store
        .update(&key, value("v2"), created)
        .await
        .expect("update at the current revision");
    assert!(updated > created);
    let kv = must_get(store, &key).await;
    assert_eq!(
        (kv.create_revision, kv.mod_revision, kv.value),
        (created, updated, value("v2"))
    );

    match store.update(&key, value("stale"), created).await {
        Err(StorageError::Conflict {
            key: k,
            expected,
            current,
        }) => {
            assert_eq!((k.as_str(), expected), (key.as_str(), created));
            let current = current.expect("a conflict reports the current state");
            assert_eq!(
                (current.mod_revision, current.value),
                (updated, value("v2"))
            );
        }
        other => panic!("update with stale revision {created}: expected Conflict, got {other:?}"),
    }
    assert_eq!(
        must_get(store, &key).await.value,
        value("v2"),
        "a refused update changed the value"
    );
}

/// Delete with a precondition; a deleted key can be created again with a new create revision.
pub async fn delete_with_precondition(store: &dyn Store, prefix: &str) {
    let key = format!("{prefix}k");
    let created = store.create(&key, value("v")).await.expect("create");
    let updated = store
        .update(&key, value("v2"), created)
        .await
        .expect("update");
    assert!(
        matches!(store.delete(&key, created).await, Err(StorageError::Conflict { expected, .. }) if expected == created),
        "delete at a stale revision must conflict"
    );
    assert!(
        store.get(&key).await.expect("get").is_some(),
        "a refused delete removed the key"
    );
    let deleted = store
        .delete(&key, updated)
        .await
        .expect("delete at the current revision");
    assert!(deleted > updated);
    assert_eq!(store.get(&key).await.expect("get"), None);
    assert_eq!(
        store.delete(&key, updated).await,
        Err(StorageError::NotFound { key: key.clone() })
    );
    let recreated = store
        .create(&key, value("again"))
        .await
        .expect("create after delete");
    let kv = must_get(store, &key).await;
    assert!(recreated > deleted);
    assert_eq!(
        (kv.create_revision, kv.mod_revision),
        (recreated, recreated),
        "a re-created key starts afresh"
    );
}

/// Of 20 concurrent updates at the same revision exactly one wins; the others conflict.
pub async fn concurrent_cas_single_winner(store: &dyn Store, prefix: &str) {
    let key = format!("{prefix}contended");
    let created = store.create(&key, value("start")).await.expect("create");
    let attempts = (0..20).map(|i| store.update(&key, value(&format!("writer {i}")), created));
    let outcomes = join_all(attempts).await;
    let winners: Vec<_> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, o)| o.is_ok())
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one CAS must win, outcomes: {outcomes:?}"
    );
    for outcome in &outcomes {
        assert!(
            matches!(outcome, Ok(_) | Err(StorageError::Conflict { .. })),
            "a losing CAS must conflict: {outcome:?}"
        );
    }
    let (index, winner) = winners[0];
    let kv = must_get(store, &key).await;
    assert_eq!(
        (kv.mod_revision, kv.value),
        (
            *winner.as_ref().expect("winner"),
            value(&format!("writer {index}"))
        )
    );

    // Racing creates of one key: one succeeds.
    let fresh = format!("{prefix}fresh");
    let creates = join_all((0..20).map(|_| store.create(&fresh, value("x")))).await;
    assert_eq!(
        creates.iter().filter(|o| o.is_ok()).count(),
        1,
        "exactly one create must win: {creates:?}"
    );
    assert!(
        creates
            .iter()
            .all(|o| matches!(o, Ok(_) | Err(StorageError::AlreadyExists { .. })))
    );
}

/// Concurrent creates of distinct keys all succeed with distinct revisions, and all are listed.
pub async fn concurrent_creates(store: &dyn Store, prefix: &str) {
    let revisions = write_many(store, prefix, 320, 16).await;
    assert_eq!(
        revisions.len(),
        320,
        "concurrent creates must get distinct revisions"
    );
    let listed = list_all(store, prefix, None).await;
    assert_eq!(listed.len(), 320);
    let listed_revisions: BTreeSet<_> = listed.iter().map(|kv| kv.mod_revision).collect();
    assert_eq!(listed_revisions, revisions);
}

/// A value over the backend's limit (etcd's default 1.5 MiB) is refused with `TooLarge`; the store
/// stays usable and the key absent.
pub async fn value_too_large(store: &dyn Store, prefix: &str) {
    let key = format!("{prefix}big");
    // Just over the limit, and far over it (etcd's gRPC layer refuses those before etcd does).
    for size in [1600 * 1024, 3 * 1024 * 1024] {
        match store.create(&key, vec![b'x'; size]).await {
            Err(StorageError::TooLarge {
                size: reported,
                limit,
            }) => {
                assert_eq!(reported, size);
                assert!(
                    limit < size,
                    "limit {limit} should be below the refused size {size}"
                );
            }
            other => panic!("create of a {size}-byte value: expected TooLarge, got {other:?}"),
        }
        let created = store
            .create(&format!("{prefix}small"), vec![b'y'; 10])
            .await;
        assert!(
            matches!(created, Ok(_) | Err(StorageError::AlreadyExists { .. })),
            "store unusable after TooLarge"
        );
    }
    assert_eq!(store.get(&key).await.expect("get"), None);
    let ok = vec![b'y'; 512 * 1024];
    store
        .create(&key, ok.clone())
        .await
        .expect("a 512 KiB value is accepted");
    assert_eq!(must_get(store, &key).await.value, ok);
}
