//! Conformance checks of range reads (prefix, pagination, reads at a revision) and compaction.

use super::*;

/// A list returns exactly the keys under the prefix, in key order, at a revision covering them.
pub async fn list_by_prefix(store: &dyn Store, prefix: &str) {
    let empty = store
        .list(ListRequest {
            prefix: format!("{prefix}nothing/"),
            ..ListRequest::default()
        })
        .await
        .expect("list an empty prefix");
    assert!(empty.items.is_empty() && empty.remaining == 0);
    assert!(
        empty.revision > 0 || store.current_revision().await.expect("revision") == 0,
        "list revision unset"
    );

    let mut last = 0;
    for name in ["c", "a", "b", "a/nested"] {
        last = store
            .create(&format!("{prefix}ns/{name}"), value(name))
            .await
            .expect("create");
    }
    // Neighbours that must not show up: a sibling sharing the prefix's text, and a parent key.
    store
        .create(&format!("{prefix}ns0/x"), value("x"))
        .await
        .expect("create sibling");
    store
        .create(&format!("{prefix}ns"), value("parent"))
        .await
        .expect("create parent");

    let page = store
        .list(ListRequest {
            prefix: format!("{prefix}ns/"),
            ..ListRequest::default()
        })
        .await
        .expect("list");
    let keys: Vec<_> = page
        .items
        .iter()
        .map(|kv| kv.key.trim_start_matches(prefix))
        .collect();
    assert_eq!(keys, ["ns/a", "ns/a/nested", "ns/b", "ns/c"]);
    assert_eq!(page.remaining, 0);
    assert!(
        page.revision >= last,
        "list revision {} older than the last write {last}",
        page.revision
    );
    for kv in &page.items {
        assert_eq!(
            kv.value,
            value(kv.key.trim_start_matches(&format!("{prefix}ns/")))
        );
    }
}

/// Paginated lists: `limit` + `start_after` walk the keys, `remaining` counts the rest, and pages
/// read at the first page's revision form one consistent snapshot while writes happen.
pub async fn list_pagination_snapshot(store: &dyn Store, prefix: &str) {
    let keys: Vec<String> = (0..25).map(|i| format!("{prefix}k{i:02}")).collect();
    let mut revisions = Vec::new();
    for key in &keys {
        revisions.push(store.create(key, value("original")).await.expect("create"));
    }
    let first = store
        .list(ListRequest {
            prefix: prefix.to_string(),
            limit: 10,
            ..ListRequest::default()
        })
        .await
        .expect("first page");
    assert_eq!(first.items.len(), 10);
    assert_eq!(first.remaining, 15);
    let snapshot = first.revision;

    // Writes between pages: update, delete and add keys in both seen and unseen parts.
    store
        .update(&keys[3], value("changed"), revisions[3])
        .await
        .expect("update");
    store
        .update(&keys[17], value("changed"), revisions[17])
        .await
        .expect("update");
    store
        .delete(&keys[20], revisions[20])
        .await
        .expect("delete");
    store
        .create(&format!("{prefix}k12a"), value("new"))
        .await
        .expect("create");
    store
        .create(&format!("{prefix}k99"), value("new"))
        .await
        .expect("create");

    let mut items = first.items;
    let mut remaining = Vec::new();
    loop {
        let start_after = items.last().map(|kv| kv.key.clone());
        let page = store
            .list(ListRequest {
                prefix: prefix.to_string(),
                start_after,
                limit: 10,
                revision: Some(snapshot),
            })
            .await
            .expect("next page at the snapshot revision");
        assert_eq!(
            page.revision, snapshot,
            "a page at revision {snapshot} reports another revision"
        );
        remaining.push(page.remaining);
        let done = page.items.len() < 10 || page.remaining == 0;
        items.extend(page.items);
        if done {
            break;
        }
    }
    assert_eq!(
        remaining,
        [5, 0],
        "remaining counts of the pages after the first"
    );
    let listed: Vec<_> = items.iter().map(|kv| kv.key.clone()).collect();
    assert_eq!(
        listed, keys,
        "the pages do not form the snapshot at {snapshot}"
    );
    assert!(
        items.iter().all(|kv| kv.value == value("original")),
        "a page showed a write after its revision"
    );

    // The current state shows every change.
    let now = list_all(store, prefix, None).await;
    assert_eq!(now.len(), 26);
    assert!(
        now.iter()
            .any(|kv| kv.key == keys[3] && kv.value == value("changed"))
    );
    assert!(!now.iter().any(|kv| kv.key == keys[20]));
}

/// A read at an older revision shows the state at that revision (MVCC).
pub async fn list_at_old_revision(store: &dyn Store, prefix: &str) {
    let a = format!("{prefix}a");
    let b = format!("{prefix}b");
    let a1 = store.create(&a, value("a1")).await.expect("create a");
    let b1 = store.create(&b, value("b1")).await.expect("create b");
    let a2 = store.update(&a, value("a2"), a1).await.expect("update a");
    let b_deleted = store.delete(&b, b1).await.expect("delete b");
    let c = store
        .create(&format!("{prefix}c"), value("c1"))
        .await
        .expect("create c");

    let state = |items: Vec<KeyValue>| -> Vec<(String, String)> {
        items
            .into_iter()
            .map(|kv| {
                (
                    kv.key.trim_start_matches(prefix).to_string(),
                    String::from_utf8_lossy(&kv.value).into_owned(),
                )
            })
            .collect()
    };
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        state(list_all(store, prefix, Some(a1)).await),
        pairs(&[("a", "a1")])
    );
    assert_eq!(
        state(list_all(store, prefix, Some(b1)).await),
        pairs(&[("a", "a1"), ("b", "b1")])
    );
    assert_eq!(
        state(list_all(store, prefix, Some(a2)).await),
        pairs(&[("a", "a2"), ("b", "b1")])
    );
    assert_eq!(
        state(list_all(store, prefix, Some(b_deleted)).await),
        pairs(&[("a", "a2")])
    );
    assert_eq!(
        state(list_all(store, prefix, Some(c)).await),
        pairs(&[("a", "a2"), ("c", "c1")])
    );
    let old = list_all(store, prefix, Some(a1)).await;
    assert_eq!((old[0].create_revision, old[0].mod_revision), (a1, a1));
}

/// A list at a revision the store has not reached fails with `FutureRevision`.
pub async fn list_future_revision(store: &dyn Store, prefix: &str) {
    store
        .create(&format!("{prefix}k"), value("v"))
        .await
        .expect("create");
    let current = store.current_revision().await.expect("current revision");
    let requested = current + 1000;
    match store
        .list(ListRequest {
            prefix: prefix.to_string(),
            revision: Some(requested),
            ..ListRequest::default()
        })
        .await
    {
        Err(StorageError::FutureRevision {
            requested: r,
            current: c,
        }) => {
            assert_eq!(r, requested);
            assert!(
                c >= current && c < requested,
                "FutureRevision reports current revision {c}"
            );
        }
        other => {
            panic!("list at future revision {requested}: expected FutureRevision, got {other:?}")
        }
    }
}

/// Compaction (needs a store nobody else uses meanwhile): reads and watches from before the
/// compacted revision fail with `Compacted`, from it onwards they work, and every key's latest
/// state survives.
pub async fn compaction(store: &dyn Store, prefix: &str) {
    let stable = format!("{prefix}stable");
    let changing = format!("{prefix}changing");
    let doomed = format!("{prefix}doomed");
    let stable_rev = store
        .create(&stable, value("never changes"))
        .await
        .expect("create");
    let mut changing_rev = store.create(&changing, value("0")).await.expect("create");
    let doomed_rev = store
        .create(&doomed, value("deleted later"))
        .await
        .expect("create");
    for i in 1..=5 {
        changing_rev = store
            .update(&changing, value(&i.to_string()), changing_rev)
            .await
            .expect("update");
    }
    let deleted_rev = store.delete(&doomed, doomed_rev).await.expect("delete");
    let before_compaction = changing_rev;
    let mid = store
        .update(&changing, value("6"), changing_rev)
        .await
        .expect("update");
    let after = store
        .update(&changing, value("7"), mid)
        .await
        .expect("update");
    assert!(deleted_rev < mid);

    store.compact(mid).await.expect("compact");
    assert!(
        store
            .compacted_revision()
            .await
            .expect("compacted revision")
            >= mid
    );
    store
        .compact(mid)
        .await
        .expect("compacting again at the same revision is a no-op");

    // Reads before the compacted revision are gone.
    let old = ListRequest {
        prefix: prefix.to_string(),
        revision: Some(before_compaction - 1),
        ..ListRequest::default()
    };
    match store.list(old).await {
        Err(StorageError::Compacted {
            requested,
            compacted,
        }) => {
            assert_eq!(requested, before_compaction - 1);
            assert!(
                compacted > requested,
                "Compacted reports compacted revision {compacted}"
            );
        }
        other => panic!("list at a compacted revision: expected Compacted, got {other:?}"),
    }
    let mut stream = store
        .watch(prefix, before_compaction - 1)
        .await
        .expect("watch returns a stream");
    assert!(
        matches!(
            next_change(&mut stream).await,
            Err(StorageError::Compacted { .. })
        ),
        "a watch from a compacted revision must end with Compacted"
    );

    // At and after the compacted revision everything still works.
    let at_mid = list_all(store, prefix, Some(mid)).await;
    let values: Vec<_> = at_mid
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.clone()))
        .collect();
    assert_eq!(
        values,
        [
            (changing.clone(), value("6")),
            (stable.clone(), value("never changes"))
        ]
    );
    let now = list_all(store, prefix, None).await;
    assert_eq!(now.len(), 2);
    assert_eq!(
        must_get(store, &stable).await.mod_revision,
        stable_rev,
        "the latest state of every key survives"
    );
    assert_eq!(must_get(store, &changing).await.mod_revision, after);

    let mut stream = store
        .watch(prefix, mid)
        .await
        .expect("watch from the compacted revision");
    match next_change(&mut stream).await {
        Ok(WatchEvent::Put {
            kv,
            prev: Some(prev),
        }) => {
            assert_eq!(
                (kv.mod_revision, prev.mod_revision, prev.value),
                (after, mid, value("6"))
            );
        }
        other => panic!(
            "watch from the compacted revision: expected the update at {after}, got {other:?}"
        ),
    }
    // The store keeps accepting writes and watches see them.
    let next = store
        .update(&changing, value("8"), after)
        .await
        .expect("update after compaction");
    assert!(
        matches!(next_change(&mut stream).await, Ok(WatchEvent::Put { kv, .. }) if kv.mod_revision == next)
    );
}
