//! The SQLite backend, the embedded default: one database file holding a revision log, in the
//! manner of k3s' kine.
//!
//! - **Durability**: WAL journal with `synchronous=FULL`; a write is acknowledged only after the
//!   transaction holding it is committed and fsynced.
//! - **Group commit**: one writer thread applies all queued writes in one transaction and one fsync
//!   (module `writer`); every write still gets its own outcome.
//! - **MVCC**: every write appends a row to the log; reads at older revisions, paginated snapshot
//!   lists and watch replay read the log (module `schema` describes the layout).
//! - **Reads** use a pool of separate connections and never wait for the writer (module `reader`).
//! - **Watches** replay from the log, then follow an in-process broadcast of committed batches;
//!   a watcher that falls behind re-reads the log instead of missing events (module `watch`).
//! - **Compaction** removes history before a revision, keeping every key's latest state.
//!
//! One process owns a database at a time: [`SqliteStore::open`] takes an exclusive lock on
//! `<path>.lock` and fails if another store holds it.

mod reader;
mod schema;
mod watch;
mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use self::reader::ReadPool;
use self::writer::{Write, Writer};
use super::{
    KeyValue, ListPage, ListRequest, Revision, StorageError, Store, WatchEvent, WatchStream,
};

/// The largest value accepted, in bytes: etcd's default request limit, so that both backends
/// refuse the same objects.
pub const VALUE_LIMIT_BYTES: usize = 1536 * 1024;

/// Committed batches kept for live watchers; one that falls further behind re-reads the log.
const LIVE_BATCHES_CAPACITY: usize = 256;

/// The writes of one committed transaction, as published to live watchers.
#[derive(Debug)]
pub(crate) struct CommittedBatch {
    /// The revision of the first write.
    pub first: Revision,
    /// The revision of the last write (revisions `first..=last` are all in `events`).
    pub last: Revision,
    /// One event per write, in revision order.
    pub events: Vec<WatchEvent>,
}

/// State shared by the store, its writer thread and its watch tasks.
pub(crate) struct Shared {
    /// The revision of the last committed write.
    revision: AtomicI64,
    /// The revision history has been compacted to.
    compacted: AtomicI64,
    /// Committed batches, for live watchers.
    events: broadcast::Sender<Arc<CommittedBatch>>,
    /// Cancelled when the store is dropped: watches end.
    closed: CancellationToken,
}

/// Storage in a SQLite database file (see the module documentation).
pub struct SqliteStore {
    path: PathBuf,
    shared: Arc<Shared>,
    reads: Arc<ReadPool>,
    /// Declared before `_lock`: dropping it waits for the writer thread, then the lock is released.
    writer: Writer,
    _lock: File,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (or creates) the database at `path`; its directory must exist. Fails if another
    /// store has the database open, or if the file is not a database of this layout.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StorageError> {
        let path = path.as_ref().to_path_buf();
        let lock = lock(&path)?;
        let conn = schema::open_writer(&path)?;
        let revision =
            schema::meta(&conn, "revision").map_err(|e| schema::storage_error(&path, e))?;
        let compacted =
            schema::meta(&conn, "compacted").map_err(|e| schema::storage_error(&path, e))?;
        let shared = Arc::new(Shared {
            revision: AtomicI64::new(revision),
            compacted: AtomicI64::new(compacted),
            events: broadcast::channel(LIVE_BATCHES_CAPACITY).0,
            closed: CancellationToken::new(),
        });
        let writer = Writer::spawn(conn, Arc::clone(&shared), path.clone())?;
        let reads = Arc::new(ReadPool::new(path.clone()));
        tracing::debug!(path = %path.display(), revision, compacted, "opened the SQLite store");
        Ok(Self {
            path,
            shared,
            reads,
            writer,
            _lock: lock,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn check_size(value: &[u8]) -> Result<(), StorageError> {
        if value.len() > VALUE_LIMIT_BYTES {
            return Err(StorageError::TooLarge {
                size: value.len(),
                limit: VALUE_LIMIT_BYTES,
            });
        }
        Ok(())
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.shared.closed.cancel();
    }
}

/// Takes the exclusive lock on `<path>.lock`.
fn lock(path: &Path) -> Result<File, StorageError> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| {
            StorageError::Unavailable(format!(
                "cannot open lock file {}: {e}",
                lock_path.display()
            ))
        })?;
    file.try_lock().map_err(|e| match e {
        std::fs::TryLockError::WouldBlock => StorageError::Unavailable(format!(
            "SQLite database {} is in use by another process (lock {} is held)",
            path.display(),
            lock_path.display()
        )),
        std::fs::TryLockError::Error(e) => {
            StorageError::Unavailable(format!("cannot lock {}: {e}", lock_path.display()))
        }
    })?;
    Ok(file)
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StorageError> {
        let key = key.to_string();
        self.reads.run(move |conn| reader::get(conn, &key)).await
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<Revision, StorageError> {
        Self::check_size(&value)?;
        self.writer
            .write(Write::Create {
                key: key.to_string(),
                value,
            })
            .await
    }

    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: Revision,
    ) -> Result<Revision, StorageError> {
        Self::check_size(&value)?;
        self.writer
            .write(Write::Update {
                key: key.to_string(),
                value,
                expected,
            })
            .await
    }

    async fn delete(&self, key: &str, expected: Revision) -> Result<Revision, StorageError> {
        self.writer
            .write(Write::Delete {
                key: key.to_string(),
                expected,
            })
            .await
    }

    async fn list(&self, request: ListRequest) -> Result<ListPage, StorageError> {
        self.reads
            .run(move |conn| reader::list(conn, &request))
            .await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StorageError> {
        Ok(watch::start(
            Arc::clone(&self.shared),
            Arc::clone(&self.reads),
            prefix.to_string(),
            after,
        ))
    }

    async fn current_revision(&self) -> Result<Revision, StorageError> {
        Ok(self.shared.revision.load(Ordering::SeqCst))
    }

    async fn compact(&self, revision: Revision) -> Result<(), StorageError> {
        self.writer.compact(revision).await
    }

    async fn compacted_revision(&self) -> Result<Revision, StorageError> {
        Ok(self.shared.compacted.load(Ordering::SeqCst))
    }

    async fn health(&self) -> Result<(), StorageError> {
        if !self.writer.is_running() {
            return Err(StorageError::Unavailable(format!(
                "the writer of SQLite database {} has stopped",
                self.path.display()
            )));
        }
        self.reads
            .run(|conn| {
                Ok(conn.query_row("SELECT count(*) FROM meta", [], |row| row.get::<_, i64>(0))?)
            })
            .await
            .map(|_| ())
    }
}
