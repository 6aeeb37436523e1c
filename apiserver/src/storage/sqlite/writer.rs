//! The single writer with group commit.
//!
//! All writes go through one thread that owns the write connection. It takes the first queued
//! request, then everything else already queued (up to [`MAX_BATCH_WRITES`]), and applies them
//! in order inside ONE transaction with ONE fsync. Each write is checked on its own against the
//! state left by the writes before it, so a conflict or an existing key fails that write only;
//! a failure of the transaction itself (I/O, disk full) fails every write of the batch, none of
//! which is then stored. Callers are answered only after the commit is durable, and after the
//! batch's events have been published to the live watchers.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

use rusqlite::{Connection, Transaction, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use super::schema::{self, Head, head, key_value, set_meta};
use super::{CommittedBatch, Shared};
use crate::storage::{KeyValue, Revision, StorageError, WatchEvent};

/// At most this many writes share one transaction.
pub(super) const MAX_BATCH_WRITES: usize = 1024;

/// Requests that may wait for the writer before senders are slowed down.
const QUEUE_CAPACITY: usize = 4096;

/// One conditional write.
#[derive(Debug)]
pub(super) enum Write {
    /// Create-if-absent.
    Create { key: String, value: Vec<u8> },
    /// Compare-and-swap on the mod revision.
    Update {
        key: String,
        value: Vec<u8>,
        expected: Revision,
    },
    /// Delete if the mod revision matches.
    Delete { key: String, expected: Revision },
}

/// What the writer thread is asked to do.
enum Request {
    Write {
        write: Write,
        reply: oneshot::Sender<Result<Revision, StorageError>>,
    },
    Compact {
        revision: Revision,
        reply: oneshot::Sender<Result<(), StorageError>>,
    },
}

/// The handle to the writer thread. Dropping it lets the thread finish what is queued, then
/// waits for it to exit (so the database is closed when the store is dropped).
pub(super) struct Writer {
    requests: Option<mpsc::Sender<Request>>,
    thread: Option<JoinHandle<()>>,
    path: PathBuf,
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub fn spawn(
        conn: Connection,
        shared: Arc<Shared>,
        path: PathBuf,
    ) -> Result<Self, StorageError> {
        let (requests, queue) = mpsc::channel(QUEUE_CAPACITY);
        let thread_path = path.clone();
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(conn, queue, &shared, &thread_path))
            .map_err(|e| {
                StorageError::Internal(format!(
                    "cannot start the writer thread of {}: {e}",
                    path.display()
                ))
            })?;
        Ok(Self {
            requests: Some(requests),
            thread: Some(thread),
            path,
        })
    }

    /// Queues `write` and waits until it is durable (or failed).
    pub async fn write(&self, write: Write) -> Result<Revision, StorageError> {
        let (reply, answer) = oneshot::channel();
        self.send(Request::Write { write, reply }).await?;
        answer.await.map_err(|_| self.stopped())?
    }

    /// Compacts history before `revision` (see [`crate::storage::Store::compact`]).
    pub async fn compact(&self, revision: Revision) -> Result<(), StorageError> {
        let (reply, answer) = oneshot::channel();
        self.send(Request::Compact { revision, reply }).await?;
        answer.await.map_err(|_| self.stopped())?
    }

    /// Whether the writer thread still runs.
    pub fn is_running(&self) -> bool {
        self.requests.as_ref().is_some_and(|r| !r.is_closed())
    }

    async fn send(&self, request: Request) -> Result<(), StorageError> {
        let requests = self.requests.as_ref().ok_or_else(|| self.stopped())?;
        requests.send(request).await.map_err(|_| self.stopped())
    }

    fn stopped(&self) -> StorageError {
        StorageError::Unavailable(format!(
            "the writer of SQLite database {} has stopped",
            self.path.display()
        ))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.requests.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The outcome of each write of a batch, in order.
type Outcomes = Vec<Result<Revision, StorageError>>;

/// A write waiting in the current batch.
type Pending = (Write, oneshot::Sender<Result<Revision, StorageError>>);

/// The writer thread: batches queued writes into transactions until every sender is gone.
fn run(
    mut conn: Connection,
    mut queue: mpsc::Receiver<Request>,
    shared: &Shared,
    path: &std::path::Path,
) {
    let mut pending: Vec<Pending> = Vec::new();
    while let Some(first) = queue.blocking_recv() {
        let mut next = Some(first);
        while let Some(request) = next.take() {
            match request {
                Request::Write { write, reply } => pending.push((write, reply)),
                Request::Compact { revision, reply } => {
                    commit(&mut conn, shared, path, &mut pending);
                    let outcome = compact(&mut conn, shared, revision)
                        .unwrap_or_else(|e| Err(schema::storage_error(path, e)));
                    let _ = reply.send(outcome);
                }
            }
            if pending.len() >= MAX_BATCH_WRITES {
                commit(&mut conn, shared, path, &mut pending);
            }
            next = queue.try_recv().ok();
        }
        commit(&mut conn, shared, path, &mut pending);
    }
}

/// Commits `pending` as one transaction, publishes its events and answers every caller.
fn commit(
    conn: &mut Connection,
    shared: &Shared,
    path: &std::path::Path,
    pending: &mut Vec<Pending>,
) {
    if pending.is_empty() {
        return;
    }
    let (writes, replies): (Vec<Write>, Vec<_>) = std::mem::take(pending).into_iter().unzip();
    match apply_batch(conn, writes) {
        Ok((outcomes, committed)) => {
            if let Some(batch) = committed {
                shared.revision.store(batch.last, Ordering::SeqCst);
                // No receivers is fine: nobody watches.
                let _ = shared.events.send(Arc::new(batch));
            }
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(outcome);
            }
        }
        Err(e) => {
            let error = schema::storage_error(path, e);
            tracing::error!(%error, "a write transaction failed; none of its writes was stored");
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}

/// Applies `writes` in one transaction: per-write outcomes, and the committed batch if any write
/// succeeded. An `Err` means the transaction failed and nothing was stored.
fn apply_batch(
    conn: &mut Connection,
    writes: Vec<Write>,
) -> rusqlite::Result<(Outcomes, Option<CommittedBatch>)> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let base = schema::meta(&tx, "revision")?;
    let mut revision = base;
    let mut outcomes = Vec::with_capacity(writes.len());
    let mut events = Vec::new();
    for write in writes {
        match apply(&tx, write, revision + 1)? {
            Ok(event) => {
                revision += 1;
                outcomes.push(Ok(revision));
                events.push(event);
            }
            Err(refused) => outcomes.push(Err(refused)),
        }
    }
    if revision == base {
        tx.commit()?;
        return Ok((outcomes, None));
    }
    set_meta(&tx, "revision", revision)?;
    tx.commit()?;
    Ok((
        outcomes,
        Some(CommittedBatch {
            first: base + 1,
            last: revision,
            events,
        }),
    ))
}

/// Applies one write at `revision` if its condition holds. The outer `Result` is SQLite's, the
/// inner one the write's own outcome (the event it produced, or why it was refused).
fn apply(
    tx: &Transaction<'_>,
    write: Write,
    revision: Revision,
) -> rusqlite::Result<Result<WatchEvent, StorageError>> {
    let key = match &write {
        Write::Create { key, .. } | Write::Update { key, .. } | Write::Delete { key, .. } => {
            key.clone()
        }
    };
    let (current, tombstone) = match head(tx, &key)? {
        Some(Head {
            revision,
            create_revision,
            value: Some(value),
        }) => (
            Some(key_value(key.clone(), value, create_revision, revision)),
            None,
        ),
        Some(Head {
            revision,
            value: None,
            ..
        }) => (None, Some(revision)),
        None => (None, None),
    };
    match write {
        Write::Create { value, .. } => {
            if current.is_some() {
                return Ok(Err(StorageError::AlreadyExists { key }));
            }
            if let Some(tombstone) = tombstone {
                supersede(tx, tombstone, revision)?;
            }
            insert(tx, revision, &key, revision, 0, Some(&value))?;
            Ok(Ok(WatchEvent::Put {
                kv: key_value(key, value, revision, revision),
                prev: None,
            }))
        }
        Write::Update {
            value, expected, ..
        } => {
            let current = match check(current, &key, expected) {
                Ok(current) => current,
                Err(refused) => return Ok(Err(refused)),
            };
            supersede(tx, current.mod_revision, revision)?;
            insert(
                tx,
                revision,
                &key,
                current.create_revision,
                current.mod_revision,
                Some(&value),
            )?;
            let kv = key_value(key, value, current.create_revision, revision);
            Ok(Ok(WatchEvent::Put {
                kv,
                prev: Some(current),
            }))
        }
        Write::Delete { expected, .. } => {
            let current = match check(current, &key, expected) {
                Ok(current) => current,
                Err(refused) => return Ok(Err(refused)),
            };
            supersede(tx, current.mod_revision, revision)?;
            insert(
                tx,
                revision,
                &key,
                current.create_revision,
                current.mod_revision,
                None,
            )?;
            Ok(Ok(WatchEvent::Delete {
                prev: current,
                revision,
            }))
        }
    }
}

/// The precondition of update and delete: the key exists at mod revision `expected`.
fn check(
    current: Option<KeyValue>,
    key: &str,
    expected: Revision,
) -> Result<KeyValue, StorageError> {
    match current {
        None => Err(StorageError::NotFound {
            key: key.to_string(),
        }),
        Some(kv) if kv.mod_revision != expected => Err(StorageError::Conflict {
            key: key.to_string(),
            expected,
            current: Some(Box::new(kv)),
        }),
        Some(kv) => Ok(kv),
    }
}

fn supersede(tx: &Transaction<'_>, row: Revision, by: Revision) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE log SET next_revision = ?2 WHERE revision = ?1")?
        .execute([row, by])?;
    Ok(())
}

fn insert(
    tx: &Transaction<'_>,
    revision: Revision,
    key: &str,
    create_revision: Revision,
    prev_revision: Revision,
    value: Option<&[u8]>,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO log (revision, key, create_revision, prev_revision, next_revision, deleted, value)
         VALUES (?1, ?2, ?3, ?4, NULL, ?5, ?6)",
    )?
    .execute(rusqlite::params![revision, key.as_bytes(), create_revision, prev_revision, value.is_none(), value])?;
    Ok(())
}

/// Drops the history before `revision` (see the schema documentation for what survives).
fn compact(
    conn: &mut Connection,
    shared: &Shared,
    revision: Revision,
) -> rusqlite::Result<Result<(), StorageError>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (current, compacted) = schema::revisions(&tx)?;
    if revision > current {
        return Ok(Err(StorageError::FutureRevision {
            requested: revision,
            current,
        }));
    }
    if revision <= compacted {
        return Ok(Ok(()));
    }
    let superseded = tx.execute(
        "DELETE FROM log WHERE next_revision IS NOT NULL AND next_revision <= ?1",
        [revision],
    )?;
    let tombstones = tx.execute(
        "DELETE FROM log WHERE deleted = 1 AND revision <= ?1",
        [revision],
    )?;
    set_meta(&tx, "compacted", revision)?;
    tx.commit()?;
    shared.compacted.store(revision, Ordering::SeqCst);
    tracing::debug!(
        revision,
        removed = superseded + tombstones,
        "compacted the SQLite revision log"
    );
    Ok(Ok(()))
}
