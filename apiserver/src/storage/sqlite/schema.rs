//! The SQLite schema of the revision log, connection settings, and the row helpers the reader
//! and the writer share.
//!
//! Everything lives in one table, `log`: one row per write, its `revision` (the global revision,
//! also the rowid) and the key's state after the write. A delete writes a **tombstone** row
//! (`deleted = 1`, no value). Each row points back to the key's previous live version
//! (`prev_revision`, 0 if none) and forward to the row that superseded it (`next_revision`,
//! NULL while it is the key's newest row, the "head"). So:
//! - the current state of a key is its head row, if that is not a tombstone;
//! - the state at revision R is the row with `revision <= R < next_revision` (NULL = infinity);
//! - the watch events after revision A are the rows with `revision > A` in revision order, the
//!   previous value of each being the row at its `prev_revision`.
//!
//! Compaction to C deletes rows that no read at or after C can see: rows superseded at or before
//! C and tombstones written at or before C. Each key's latest state and every row an event after
//! C refers to survive.

use rusqlite::{Connection, OptionalExtension, Transaction};

use crate::storage::{KeyValue, Revision, StorageError};

/// The schema version this code reads and writes (stored in `meta`).
pub(super) const SCHEMA_VERSION: i64 = 1;

/// How long a connection waits for a lock held by another connection before failing.
pub(super) const BUSY_TIMEOUT_MILLIS: u64 = 10_000;

/// Page cache per connection (SQLite's negative `cache_size` is KiB).
const CACHE_SIZE_KIB: i64 = 16 * 1024;

const CREATE_SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS log (
        revision        INTEGER PRIMARY KEY,
        key             BLOB    NOT NULL,
        create_revision INTEGER NOT NULL,
        prev_revision   INTEGER NOT NULL,
        next_revision   INTEGER,
        deleted         INTEGER NOT NULL,
        value           BLOB
    );
    -- The newest row of every key: current reads and conditional writes.
    CREATE UNIQUE INDEX IF NOT EXISTS log_head ON log(key) WHERE next_revision IS NULL;
    -- Reads at an older revision.
    CREATE INDEX IF NOT EXISTS log_key_revision ON log(key, revision);
    -- Compaction.
    CREATE INDEX IF NOT EXISTS log_superseded ON log(next_revision) WHERE next_revision IS NOT NULL;
    CREATE INDEX IF NOT EXISTS log_tombstone ON log(revision) WHERE deleted = 1;
    CREATE TABLE IF NOT EXISTS meta (
        name  TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO meta (name, value) VALUES ('schema_version', 1), ('revision', 0), ('compacted', 0);
";

/// Settings every connection gets.
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MILLIS))?;
    conn.pragma_update(None, "cache_size", -CACHE_SIZE_KIB)?;
    Ok(())
}

/// Opens the writer's connection: WAL, `synchronous=FULL` (every commit is fsynced before it is
/// acknowledged), and creates the schema if the file is new.
pub(super) fn open_writer(path: &std::path::Path) -> Result<Connection, StorageError> {
    let fail = |what: &str, e: rusqlite::Error| {
        StorageError::Unavailable(format!("{what} SQLite database {}: {e}", path.display()))
    };
    let mut conn = Connection::open(path).map_err(|e| fail("cannot open", e))?;
    configure(&conn).map_err(|e| fail("cannot configure", e))?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(|e| fail("cannot switch to WAL mode:", e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StorageError::Unavailable(format!(
            "SQLite database {} refuses WAL mode (journal_mode is {mode})",
            path.display()
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(|e| fail("cannot set synchronous=FULL on", e))?;
    let tx = conn
        .transaction()
        .map_err(|e| fail("cannot initialise", e))?;
    tx.execute_batch(CREATE_SCHEMA)
        .map_err(|e| fail("cannot create the schema of", e))?;
    let version = meta(&tx, "schema_version").map_err(|e| fail("cannot read", e))?;
    if version != SCHEMA_VERSION {
        return Err(StorageError::Internal(format!(
            "SQLite database {} has schema version {version}; this build supports {SCHEMA_VERSION}",
            path.display()
        )));
    }
    tx.commit().map_err(|e| fail("cannot initialise", e))?;
    Ok(conn)
}

/// Opens a connection for reads (never writes; WAL lets it read while the writer commits).
pub(super) fn open_reader(path: &std::path::Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    configure(&conn)?;
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

/// One integer from the `meta` table.
pub(super) fn meta(conn: &Connection, name: &str) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT value FROM meta WHERE name = ?1")?
        .query_row([name], |row| row.get(0))
}

/// The store's current and compacted revision, read in the caller's transaction.
pub(super) fn revisions(tx: &Transaction<'_>) -> rusqlite::Result<(Revision, Revision)> {
    Ok((meta(tx, "revision")?, meta(tx, "compacted")?))
}

/// Sets one integer in the `meta` table.
pub(super) fn set_meta(conn: &Connection, name: &str, value: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE meta SET value = ?2 WHERE name = ?1")?
        .execute(rusqlite::params![name, value])?;
    Ok(())
}

/// A key's newest row (live or tombstone).
#[derive(Debug)]
pub(super) struct Head {
    /// The row's revision.
    pub revision: Revision,
    /// The key's create revision (for a tombstone: of the deleted version).
    pub create_revision: Revision,
    /// The value, `None` for a tombstone.
    pub value: Option<Vec<u8>>,
}

/// The newest row of `key`, if the key was ever written (and not compacted away).
pub(super) fn head(conn: &Connection, key: &str) -> rusqlite::Result<Option<Head>> {
    conn.prepare_cached(
        "SELECT revision, create_revision, CASE deleted WHEN 0 THEN value END
         FROM log WHERE key = ?1 AND next_revision IS NULL",
    )?
    .query_row([key.as_bytes()], |row| {
        Ok(Head {
            revision: row.get(0)?,
            create_revision: row.get(1)?,
            value: row.get(2)?,
        })
    })
    .optional()
}

/// Decodes a stored key (always written from a `String`).
pub(super) fn key_from_blob(bytes: Vec<u8>) -> rusqlite::Result<String> {
    String::from_utf8(bytes).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Blob, e.into())
    })
}

/// Builds a [`KeyValue`].
pub(super) fn key_value(
    key: String,
    value: Vec<u8>,
    create_revision: Revision,
    mod_revision: Revision,
) -> KeyValue {
    KeyValue {
        key,
        value,
        create_revision,
        mod_revision,
    }
}

/// Maps a SQLite error to a [`StorageError`] naming the database.
pub(super) fn storage_error(path: &std::path::Path, e: rusqlite::Error) -> StorageError {
    use rusqlite::ErrorCode;
    let transient = matches!(
        e.sqlite_error_code(),
        Some(
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::DiskFull
                | ErrorCode::SystemIoFailure
                | ErrorCode::CannotOpen
        )
    );
    let message = format!("SQLite database {}: {e}", path.display());
    if transient {
        StorageError::Unavailable(message)
    } else {
        StorageError::Internal(message)
    }
}
