//! The storage conformance suite against the SQLite backend, plus what only an embedded store has
//! to prove: acknowledged writes survive `kill -9`, a reopened database keeps its revisions and
//! values, and one database is used by one process at a time.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use apiserver::storage::sqlite::SqliteStore;
use apiserver::storage::{ListRequest, StorageError, Store, WatchEvent, conformance};

const PREFIX: &str = "/registry/arc.opendefense.cloud/conformance/";

fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("arc.db");
    (dir, path)
}

macro_rules! conformance_tests {
    ($($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let (_dir, path) = temp_db();
                let store = SqliteStore::open(&path).expect("open store");
                conformance::$check(&store, PREFIX).await;
            }
        )*

        #[test]
        fn every_shared_check_runs() {
            let here: Vec<&str> = vec![$(stringify!($check)),*];
            for check in conformance::SHARED_CHECKS {
                assert!(here.contains(check), "conformance check {check} is not run against SQLite");
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

/// All shared checks on one store at once: they must not see each other's keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_checks_on_one_store() {
    let (_dir, path) = temp_db();
    let store = SqliteStore::open(&path).expect("open store");
    conformance::run_shared(&store, PREFIX).await;
}

/// Reopening a database keeps every key with its revisions, the current and compacted revision,
/// and the history a watch replays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_revisions_and_values() {
    let (_dir, path) = temp_db();
    let key = |name: &str| format!("{PREFIX}{name}");
    let (listed, current, replayed) = {
        let store = SqliteStore::open(&path).expect("open store");
        let a = store
            .create(&key("a"), b"a1".to_vec())
            .await
            .expect("create");
        let b = store
            .create(&key("b"), b"b1".to_vec())
            .await
            .expect("create");
        let a2 = store
            .update(&key("a"), b"a2".to_vec(), a)
            .await
            .expect("update");
        store.delete(&key("b"), b).await.expect("delete");
        store
            .create(&key("c"), b"c1".to_vec())
            .await
            .expect("create");
        store.compact(a2).await.expect("compact");
        let listed = store
            .list(ListRequest {
                prefix: PREFIX.into(),
                ..ListRequest::default()
            })
            .await
            .expect("list");
        let current = store.current_revision().await.expect("revision");
        let replayed = replay(&store, a2, current).await;
        (listed, current, replayed)
    };

    let store = SqliteStore::open(&path).expect("reopen store");
    assert_eq!(store.current_revision().await.expect("revision"), current);
    let relisted = store
        .list(ListRequest {
            prefix: PREFIX.into(),
            ..ListRequest::default()
        })
        .await
        .expect("list");
    assert_eq!(
        relisted, listed,
        "the reopened store lists other keys, values or revisions"
    );
    assert_eq!(
        replay(&store, relisted.items[0].mod_revision, current).await,
        replayed,
        "history changed"
    );
    let compacted = store.compacted_revision().await.expect("compacted");
    assert_eq!(
        compacted, listed.items[0].mod_revision,
        "the compacted revision survives a restart"
    );
    let next = store
        .create(&key("d"), b"d1".to_vec())
        .await
        .expect("create after reopen");
    assert_eq!(next, current + 1, "revisions continue where they stopped");
}

async fn replay(store: &SqliteStore, after: i64, until: i64) -> Vec<WatchEvent> {
    let mut stream = store.watch(PREFIX, after).await.expect("watch");
    let mut events = Vec::new();
    while events
        .last()
        .is_none_or(|e: &WatchEvent| e.revision() < until)
    {
        events.push(
            conformance::next_change(&mut stream)
                .await
                .expect("replayed event"),
        );
    }
    events
}

/// A second store on an open database is refused with an error naming it.
#[tokio::test]
async fn a_database_has_one_owner() {
    let (_dir, path) = temp_db();
    let _store = SqliteStore::open(&path).expect("open store");
    match SqliteStore::open(&path) {
        Err(StorageError::Unavailable(message)) => {
            assert!(
                message.contains(&path.display().to_string()),
                "error does not name the database: {message}"
            );
        }
        other => panic!("second open: expected Unavailable, got {other:?}"),
    }
}

/// A file that is not a database is refused with an error naming it, and left untouched.
#[test]
fn a_foreign_file_is_refused() {
    let (_dir, path) = temp_db();
    std::fs::write(&path, b"this is not a database, and must stay as it is").expect("write file");
    match SqliteStore::open(&path) {
        Err(StorageError::Unavailable(message) | StorageError::Internal(message)) => {
            assert!(
                message.contains(&path.display().to_string()),
                "error does not name the file: {message}"
            );
        }
        other => panic!("open of a foreign file: expected an error, got {other:?}"),
    }
    assert_eq!(
        std::fs::read(&path).expect("read file"),
        b"this is not a database, and must stay as it is"
    );
}

// ----- Durability: kill -9 a writer process and check every acknowledged write. -----

/// The environment variable that turns [`durability_writer_child`] on and names its database.
const CHILD_DB_ENV: &str = "ARC_TEST_DURABILITY_DB";
/// Writers in the child process.
const CHILD_WRITERS: usize = 16;
/// Acknowledgements to see before the kill.
const ACKS_BEFORE_KILL: usize = 600;

/// The writer process of [`acknowledged_writes_survive_kill_9`]: 16 tasks create keys forever
/// and print `ACK <key> <revision> END` once each create is acknowledged.
#[test]
#[ignore = "child process of acknowledged_writes_survive_kill_9, started by it"]
fn durability_writer_child() {
    let Ok(path) = std::env::var(CHILD_DB_ENV) else {
        eprintln!(
            "durability_writer_child only writes when started by acknowledged_writes_survive_kill_9"
        );
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let store = std::sync::Arc::new(SqliteStore::open(&path).expect("open store"));
        let writers = (0..CHILD_WRITERS).map(|writer| {
            let store = std::sync::Arc::clone(&store);
            tokio::spawn(async move {
                for i in 0.. {
                    let key = format!("{PREFIX}w{writer:02}-{i:08}");
                    let revision = store
                        .create(&key, key.as_bytes().to_vec())
                        .await
                        .expect("create");
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {key} {revision} END").expect("write ack");
                    out.flush().expect("flush ack");
                }
            })
        });
        futures_join(writers.collect()).await;
    });
}

async fn futures_join(handles: Vec<tokio::task::JoinHandle<()>>) {
    for handle in handles {
        handle.await.expect("writer task");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let (_dir, path) = temp_db();
    let acks = run_and_kill_writer(&path);
    assert!(
        acks.len() >= ACKS_BEFORE_KILL,
        "only {} acknowledgements before the kill",
        acks.len()
    );

    let store = SqliteStore::open(&path).expect("reopen after kill -9");
    let mut missing = Vec::new();
    for (key, revision) in &acks {
        match store.get(key).await.expect("get") {
            Some(kv) if kv.mod_revision == *revision && kv.value == key.as_bytes() => {}
            other => missing.push(format!("{key}@{revision}: {other:?}")),
        }
    }
    assert!(
        missing.is_empty(),
        "{} acknowledged writes lost after kill -9: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let highest = acks.iter().map(|(_, r)| *r).max().unwrap_or(0);
    assert!(store.current_revision().await.expect("revision") >= highest);
    // The reopened store takes writes again.
    store
        .create(&format!("{PREFIX}after-restart"), b"x".to_vec())
        .await
        .expect("create after restart");
}

/// Runs [`durability_writer_child`] on `db`, SIGKILLs it after [`ACKS_BEFORE_KILL`]
/// acknowledgements, and returns every acknowledgement it printed.
fn run_and_kill_writer(db: &Path) -> Vec<(String, i64)> {
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = Command::new(exe)
        .args([
            "durability_writer_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DB_ENV, db)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the writer process");
    let stdout = child.stdout.take().expect("child stdout");
    let mut acks = Vec::new();
    let mut killed = false;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        // A line cut short by the kill has no END and is not an acknowledgement.
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let ["ACK", key, revision, "END"] = fields[..] {
            acks.push((key.to_string(), revision.parse().expect("revision")));
        }
        if !killed && acks.len() >= ACKS_BEFORE_KILL {
            child.kill().expect("kill -9 the writer");
            killed = true;
        }
    }
    let status = child.wait().expect("reap the writer");
    assert!(
        killed,
        "the writer process ended by itself ({status}) after {} acknowledgements",
        acks.len()
    );
    acks
}
