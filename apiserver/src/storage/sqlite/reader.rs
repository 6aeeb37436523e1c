//! Reads: a small pool of read-only connections used from blocking tasks, and the queries for
//! get, list (current or at a revision) and watch replay. WAL mode lets them run while the writer
//! commits; each multi-statement read runs in one read transaction, i.e. one consistent snapshot.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use rusqlite::types::Value;

use super::schema::{self, key_from_blob, key_value};
use crate::storage::keys::KeyRange;
use crate::storage::{KeyValue, ListPage, ListRequest, Revision, StorageError, WatchEvent};

/// Idle read connections kept open; more are opened on demand and closed after use.
const IDLE_CONNECTIONS: usize = 8;

/// A pool of read connections to one database.
pub(super) struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    /// A pool for the database at `path` (connections are opened lazily).
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `read` on a pooled connection in a blocking task.
    pub async fn run<T, F>(self: &Arc<Self>, read: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, Failure> + Send + 'static,
    {
        let pool = Arc::clone(self);
        let task = tokio::task::spawn_blocking(move || {
            let taken = pool.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let mut conn = match taken {
                Some(conn) => conn,
                None => schema::open_reader(&pool.path)
                    .map_err(|e| schema::storage_error(&pool.path, e))?,
            };
            let result = read(&mut conn).map_err(|failure| match failure {
                Failure::Sqlite(e) => schema::storage_error(&pool.path, e),
                Failure::Storage(e) => e,
            });
            let mut idle = pool.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < IDLE_CONNECTIONS {
                idle.push(conn);
            }
            result
        });
        task.await.map_err(|e| {
            StorageError::Internal(format!(
                "read of SQLite database {} failed: {e}",
                self.path.display()
            ))
        })?
    }
}

/// Why a read failed: SQLite itself, or a storage-level answer such as a compacted revision.
pub(super) enum Failure {
    /// An error from SQLite.
    Sqlite(rusqlite::Error),
    /// A refusal to report as is.
    Storage(StorageError),
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sqlite(e)
    }
}

impl From<StorageError> for Failure {
    fn from(e: StorageError) -> Self {
        Self::Storage(e)
    }
}

/// The current state of `key`.
pub(super) fn get(conn: &mut Connection, key: &str) -> Result<Option<KeyValue>, Failure> {
    use rusqlite::OptionalExtension;
    let row = conn
        .prepare_cached(
            "SELECT revision, create_revision, value FROM log
             WHERE key = ?1 AND next_revision IS NULL AND deleted = 0",
        )?
        .query_row([key.as_bytes()], |row| {
            Ok(key_value(
                key.to_string(),
                row.get(2)?,
                row.get(1)?,
                row.get(0)?,
            ))
        })
        .optional()?;
    Ok(row)
}

/// A range read, at the current revision or at `request.revision`.
pub(super) fn list(conn: &mut Connection, request: &ListRequest) -> Result<ListPage, Failure> {
    let tx = conn.transaction()?;
    let (current, compacted) = schema::revisions(&tx)?;
    let at = request.revision.filter(|r| *r > 0).unwrap_or(current);
    if at > current {
        return Err(StorageError::FutureRevision {
            requested: at,
            current,
        }
        .into());
    }
    if at < compacted {
        return Err(StorageError::Compacted {
            requested: at,
            compacted,
        }
        .into());
    }
    let range = KeyRange::new(&request.prefix, request.start_after.as_deref());
    let mut items = select(&tx, &range, at, at == current, request.limit)?;
    let mut remaining = 0;
    if request.limit > 0 && items.len() > request.limit {
        items.truncate(request.limit);
        let last = items
            .last()
            .map(|kv| kv.key.as_bytes().to_vec())
            .unwrap_or_default();
        let rest = KeyRange {
            start: last,
            start_inclusive: false,
            end: range.end,
        };
        remaining = count(&tx, &rest, at, at == current)?;
    }
    Ok(ListPage {
        items,
        revision: at,
        remaining,
    })
}

/// The SQL condition selecting rows visible at revision `at` (`?` = at, twice), or at the
/// current revision when `latest` (which lets SQLite use the index of key heads).
fn visible(latest: bool, at: Revision, params: &mut Vec<Value>) -> &'static str {
    if latest {
        "next_revision IS NULL AND deleted = 0"
    } else {
        params.push(Value::Integer(at));
        params.push(Value::Integer(at));
        "revision <= ? AND (next_revision IS NULL OR next_revision > ?) AND deleted = 0"
    }
}

/// The SQL condition for `range` on the column `column`.
fn in_range(column: &str, range: &KeyRange, params: &mut Vec<Value>) -> String {
    let op = if range.start_inclusive { ">=" } else { ">" };
    params.push(Value::Blob(range.start.clone()));
    match &range.end {
        Some(end) => {
            params.push(Value::Blob(end.clone()));
            format!("{column} {op} ? AND {column} < ?")
        }
        None => format!("{column} {op} ?"),
    }
}

/// Up to `limit + 1` keys of `range` visible at `at`, in key order (0 = no limit).
fn select(
    conn: &Connection,
    range: &KeyRange,
    at: Revision,
    latest: bool,
    limit: usize,
) -> rusqlite::Result<Vec<KeyValue>> {
    let mut params = Vec::new();
    let range_sql = in_range("key", range, &mut params);
    let visible_sql = visible(latest, at, &mut params);
    let limit = if limit == 0 {
        -1
    } else {
        i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1
    };
    params.push(Value::Integer(limit));
    let sql = format!(
        "SELECT key, value, create_revision, revision FROM log
         WHERE {range_sql} AND {visible_sql} ORDER BY key LIMIT ?"
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map(rusqlite::params_from_iter(params), |row| {
        Ok(key_value(
            key_from_blob(row.get(0)?)?,
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
        ))
    })?;
    rows.collect()
}

/// How many keys of `range` are visible at `at`.
fn count(conn: &Connection, range: &KeyRange, at: Revision, latest: bool) -> rusqlite::Result<u64> {
    let mut params = Vec::new();
    let range_sql = in_range("key", range, &mut params);
    let visible_sql = visible(latest, at, &mut params);
    let sql = format!("SELECT count(*) FROM log WHERE {range_sql} AND {visible_sql}");
    let n: i64 = conn
        .prepare_cached(&sql)?
        .query_row(rusqlite::params_from_iter(params), |row| row.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// A chunk of watch events read from the log.
pub(super) struct Replay {
    /// The events, in revision order.
    pub events: Vec<WatchEvent>,
    /// Every matching event up to this revision is in `events` (or was before `after`).
    pub reached: Revision,
    /// Whether the log was read up to the store's revision at the time of the read.
    pub complete: bool,
}

/// Up to `limit` events under `prefix` after revision `after`, from the log.
pub(super) fn replay(
    conn: &mut Connection,
    prefix: &str,
    after: Revision,
    limit: usize,
) -> Result<Replay, Failure> {
    let tx = conn.transaction()?;
    let (current, compacted) = schema::revisions(&tx)?;
    if after < compacted {
        return Err(StorageError::Compacted {
            requested: after,
            compacted,
        }
        .into());
    }
    let mut params = vec![Value::Integer(after), Value::Integer(current)];
    let range_sql = in_range("l.key", &KeyRange::new(prefix, None), &mut params);
    params.push(Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
    let sql = format!(
        "SELECT l.revision, l.key, l.create_revision, l.deleted, l.value, p.revision, p.create_revision, p.value
         FROM log l LEFT JOIN log p ON p.revision = l.prev_revision AND l.prev_revision != 0
         WHERE l.revision > ? AND l.revision <= ? AND {range_sql}
         ORDER BY l.revision LIMIT ?"
    );
    let mut statement = tx.prepare_cached(&sql)?;
    let rows = statement.query_map(rusqlite::params_from_iter(params), |row| {
        let revision: Revision = row.get(0)?;
        let key = key_from_blob(row.get(1)?)?;
        let create_revision: Revision = row.get(2)?;
        let deleted: bool = row.get(3)?;
        let prev_revision: Option<Revision> = row.get(5)?;
        let prev = match prev_revision {
            Some(prev_revision) => Some(key_value(
                key.clone(),
                row.get(7)?,
                row.get(6)?,
                prev_revision,
            )),
            None => None,
        };
        Ok(if deleted {
            prev.map(|prev| WatchEvent::Delete { prev, revision })
        } else {
            Some(WatchEvent::Put {
                kv: key_value(key, row.get(4)?, create_revision, revision),
                prev,
            })
        })
    })?;
    let mut events = Vec::new();
    for row in rows {
        match row? {
            Some(event) => events.push(event),
            None => {
                return Err(StorageError::Internal(
                    "revision log is inconsistent: a deletion without its previous version".into(),
                )
                .into());
            }
        }
    }
    drop(statement);
    let complete = events.len() < limit;
    let reached = if complete {
        current.max(after)
    } else {
        events.last().map_or(after, WatchEvent::revision)
    };
    Ok(Replay {
        events,
        reached,
        complete,
    })
}
