//! Conformance checks of watches: replay and live events, progress, many and slow watchers.

use super::*;

/// A watch replays history after its revision, then follows live: puts with their previous
/// value, deletes with the deleted state and the deletion revision, in strictly increasing order,
/// without gaps, and nothing from outside its prefix.
pub async fn watch_replay_and_live(store: &dyn Store, prefix: &str) {
    let watched = format!("{prefix}in/");
    let outside = format!("{prefix}out/");
    let start = store
        .create(&format!("{watched}before"), value("not replayed"))
        .await
        .expect("create");

    let a = format!("{watched}a");
    let a1 = store.create(&a, value("a1")).await.expect("create a");
    store
        .create(&format!("{outside}x"), value("outside"))
        .await
        .expect("create outside");
    let a2 = store.update(&a, value("a2"), a1).await.expect("update a");
    let mut stream = store.watch(&watched, start).await.expect("watch");

    assert_eq!(
        next_change(&mut stream).await,
        Ok(WatchEvent::Put {
            kv: KeyValue {
                key: a.clone(),
                value: value("a1"),
                create_revision: a1,
                mod_revision: a1
            },
            prev: None
        }),
        "first replayed event"
    );
    let a1_kv = KeyValue {
        key: a.clone(),
        value: value("a1"),
        create_revision: a1,
        mod_revision: a1,
    };
    let a2_kv = KeyValue {
        key: a.clone(),
        value: value("a2"),
        create_revision: a1,
        mod_revision: a2,
    };
    assert_eq!(
        next_change(&mut stream).await,
        Ok(WatchEvent::Put {
            kv: a2_kv.clone(),
            prev: Some(a1_kv)
        }),
        "second replayed event"
    );

    // Live: delete, a write outside the prefix, then a create.
    let deleted = store.delete(&a, a2).await.expect("delete a");
    store
        .create(&format!("{outside}y"), value("outside"))
        .await
        .expect("create outside");
    let b = store
        .create(&format!("{watched}b"), value("b"))
        .await
        .expect("create b");
    assert_eq!(
        next_change(&mut stream).await,
        Ok(WatchEvent::Delete {
            prev: a2_kv,
            revision: deleted
        })
    );
    match next_change(&mut stream).await {
        Ok(WatchEvent::Put { kv, prev: None }) => {
            assert_eq!(
                (kv.key.as_str(), kv.mod_revision),
                (format!("{watched}b").as_str(), b)
            );
        }
        other => panic!("expected the live create of b, got {other:?}"),
    }

    // A watch from the middle sees exactly the later events.
    let mut middle = store
        .watch(&watched, a2)
        .await
        .expect("watch from the middle");
    assert!(
        matches!(next_change(&mut middle).await, Ok(WatchEvent::Delete { revision, .. }) if revision == deleted)
    );
    assert!(
        matches!(next_change(&mut middle).await, Ok(WatchEvent::Put { kv, .. }) if kv.mod_revision == b)
    );
}

/// An idle watch reports progress at least every few seconds, never going backwards, and at a
/// revision covering the writes before it.
pub async fn watch_progress(store: &dyn Store, prefix: &str) {
    let written = store
        .create(&format!("{prefix}k"), value("v"))
        .await
        .expect("create");
    let mut stream = store.watch(prefix, written).await.expect("watch");
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(12);
    while seen.len() < 2 {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => panic!(
                "an idle watch sent {} progress reports within 12 s, expected 2",
                seen.len()
            ),
            Ok(Some(Ok(WatchEvent::Progress(revision)))) => seen.push(revision),
            Ok(other) => panic!("an idle watch sent {other:?}"),
        }
    }
    assert!(
        seen[0] >= written,
        "progress {} is behind the watch's start {written}",
        seen[0]
    );
    assert!(seen[1] >= seen[0], "progress went backwards: {seen:?}");
}

/// Reads `stream` until it has delivered the events at every revision in `expected` (in order,
/// nothing else); if the stream ends with an error, re-watches from the last delivered revision.
async fn collect_all(
    store: &dyn Store,
    prefix: &str,
    mut stream: WatchStream,
    after: Revision,
    expected: &BTreeSet<Revision>,
) {
    let mut last = after;
    let mut got = Vec::new();
    let until = *expected.last().expect("expected revisions");
    while last < until {
        match next_change(&mut stream).await {
            Ok(event) => {
                let revision = event.revision();
                assert!(
                    revision > last,
                    "watch revisions not strictly increasing: {revision} after {last}"
                );
                assert!(
                    expected.contains(&revision),
                    "unexpected event at revision {revision}"
                );
                got.push(revision);
                last = revision;
            }
            Err(StorageError::Compacted { .. }) => panic!("watch compacted without a compaction"),
            Err(error) => {
                stream = store
                    .watch(prefix, last)
                    .await
                    .unwrap_or_else(|e| panic!("re-watch after {error}: {e}"));
            }
        }
    }
    let wanted: Vec<_> = expected.iter().copied().collect();
    assert_eq!(got, wanted, "the watch missed or invented events");
}

/// Many watchers of one prefix each see every event, in order.
pub async fn many_watchers(store: &dyn Store, prefix: &str) {
    const WATCHERS: usize = 40;
    let start = store.current_revision().await.expect("current revision");
    let mut streams = Vec::new();
    for _ in 0..WATCHERS {
        streams.push(store.watch(prefix, start).await.expect("watch"));
    }
    let revisions = write_many(store, prefix, 200, 8).await;
    join_all(
        streams
            .into_iter()
            .map(|stream| collect_all(store, prefix, stream, start, &revisions)),
    )
    .await;
}

/// A watcher that does not read while many writes happen still gets every event afterwards
/// (or an error telling it to re-watch; never a silent gap).
pub async fn watch_slow_consumer(store: &dyn Store, prefix: &str) {
    let start = store.current_revision().await.expect("current revision");
    let stream = store.watch(prefix, start).await.expect("watch");
    let revisions = write_many(store, prefix, 3000, 4).await;
    collect_all(store, prefix, stream, start, &revisions).await;
}
