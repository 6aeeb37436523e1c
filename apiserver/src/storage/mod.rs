//! Storage with etcd semantics: the one interface the API server persists objects through.
//!
//! Every backend presents the same model, the one etcd has:
//! - one global, strictly increasing **revision**, bumped by every successful write;
//! - per key a `create_revision` and a `mod_revision` (the revision of its last write), which the
//!   server exposes as `metadata.resourceVersion`;
//! - conditional writes: create-if-absent, compare-and-swap and delete on `mod_revision`;
//! - consistent **range reads at a revision** (snapshot reads, for paginated lists);
//! - **watches** of a key prefix from a revision, replaying history and then following live;
//! - **compaction**: history before the compacted revision is gone, and reads or watches that need
//!   it fail with [`StorageError::Compacted`] (the server turns that into HTTP 410 / an in-stream
//!   410 ERROR event).
//!
//! Backends: [`sqlite::SqliteStore`] (embedded default) and [`etcd::EtcdStore`]. One conformance
//! suite ([`conformance`]) runs against both.

use std::pin::Pin;
use std::time::Duration;

use futures::Stream;

pub mod conformance;
pub mod etcd;
pub(crate) mod keys;
pub mod sqlite;

/// How often an otherwise idle watch reports [`WatchEvent::Progress`] (every backend).
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(2);

/// A store revision. Revisions start at 1; 0 means "none" (e.g. a key that does not exist).
pub type Revision = i64;

/// One stored key with its value and revisions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    /// The full key, e.g. `/registry/arc.opendefense.cloud/orders/default/o1`.
    pub key: String,
    /// The stored bytes (the server stores JSON objects without `metadata.resourceVersion`).
    pub value: Vec<u8>,
    /// The revision that created this key (since its last deletion).
    pub create_revision: Revision,
    /// The revision of the key's last write.
    pub mod_revision: Revision,
}

/// One page of a range read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    /// The keys, in ascending byte order of key.
    pub items: Vec<KeyValue>,
    /// The revision the page was read at (for a read at "latest", the store's revision then).
    pub revision: Revision,
    /// How many keys under the prefix, after the last returned one, exist at that revision.
    pub remaining: u64,
}

/// What a range read asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListRequest {
    /// Return keys that start with this prefix.
    pub prefix: String,
    /// Return only keys strictly greater than this one (the continue position); `None` = from the start.
    pub start_after: Option<String>,
    /// At most this many keys; 0 = no limit.
    pub limit: usize,
    /// Read at this revision; `None` = at the current revision.
    pub revision: Option<Revision>,
}

/// A change seen by a watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchEvent {
    /// A key was created or updated. `prev` is its value before, if it existed.
    Put {
        /// The key as written; `kv.mod_revision` is the event's revision.
        kv: KeyValue,
        /// The previous state of the key, when it existed before this write.
        prev: Option<KeyValue>,
    },
    /// A key was deleted.
    Delete {
        /// The key's last state before deletion (its own revisions unchanged).
        prev: KeyValue,
        /// The revision of the deletion.
        revision: Revision,
    },
    /// Progress: every change under the prefix up to and including this revision has been delivered.
    /// Backends send one at least every few seconds while the watch is otherwise idle.
    Progress(Revision),
}

impl WatchEvent {
    /// The revision this event happened at.
    pub fn revision(&self) -> Revision {
        match self {
            Self::Put { kv, .. } => kv.mod_revision,
            Self::Delete { revision, .. } => *revision,
            Self::Progress(rev) => *rev,
        }
    }
}

/// A live watch: events in strictly increasing revision order, never skipping one. It ends with an
/// `Err` when the watch cannot continue (e.g. [`StorageError::Compacted`]); the consumer re-watches.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, StorageError>> + Send>>;

/// Why a storage operation failed.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum StorageError {
    /// `create` found the key already present.
    #[error("key {key} already exists")]
    AlreadyExists {
        /// The key.
        key: String,
    },
    /// A conditional write or delete found the key missing.
    #[error("key {key} not found")]
    NotFound {
        /// The key.
        key: String,
    },
    /// A compare-and-swap found another `mod_revision`; `current` is what is stored now.
    #[error("key {key} was modified (expected revision {expected})")]
    Conflict {
        /// The key.
        key: String,
        /// The mod revision the caller expected.
        expected: Revision,
        /// The current state, if the key still exists.
        current: Option<Box<KeyValue>>,
    },
    /// The requested revision is older than the compacted revision.
    #[error("revision {requested} has been compacted (compacted up to {compacted})")]
    Compacted {
        /// The revision asked for.
        requested: Revision,
        /// The store's compacted revision.
        compacted: Revision,
    },
    /// The requested revision is newer than the store's current revision.
    #[error("revision {requested} is newer than the current revision {current}")]
    FutureRevision {
        /// The revision asked for.
        requested: Revision,
        /// The store's current revision.
        current: Revision,
    },
    /// The value exceeds what the backend accepts.
    #[error("value of {size} bytes exceeds the storage limit of {limit} bytes")]
    TooLarge {
        /// The value's size.
        size: usize,
        /// The backend's limit.
        limit: usize,
    },
    /// The backend cannot be reached or is not healthy; retrying later may succeed.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Any other backend failure.
    #[error("storage error: {0}")]
    Internal(String),
}

/// Storage with etcd semantics (see the module documentation). All methods are safe to call
/// concurrently; writers are serialised by the backend. Values are limited to 1.5 MiB
/// ([`StorageError::TooLarge`]) on every backend.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// The key at the current revision, or `None`.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StorageError>;

    /// Creates `key` if absent; returns the new revision (= its create and mod revision).
    /// Fails with [`StorageError::AlreadyExists`] if present.
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<Revision, StorageError>;

    /// Replaces `key` if its `mod_revision` equals `expected`; returns the new revision.
    /// Fails with [`StorageError::NotFound`] or [`StorageError::Conflict`].
    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: Revision,
    ) -> Result<Revision, StorageError>;

    /// Deletes `key` if its `mod_revision` equals `expected`; returns the deletion revision.
    /// Fails with [`StorageError::NotFound`] or [`StorageError::Conflict`].
    async fn delete(&self, key: &str, expected: Revision) -> Result<Revision, StorageError>;

    /// A range read (see [`ListRequest`]). Reading at a revision older than the compacted one
    /// fails with [`StorageError::Compacted`] (at the compacted revision itself it works); at a
    /// future one with [`StorageError::FutureRevision`]. `revision: Some(r)` with `r <= 0` reads
    /// at the current revision, like `None`.
    async fn list(&self, request: ListRequest) -> Result<ListPage, StorageError>;

    /// Watches keys under `prefix` for every change with revision **greater than** `after`.
    /// If `after` is older than the compacted revision the stream yields
    /// [`StorageError::Compacted`] (before any event) and ends (etcd also serves `after` =
    /// compacted − 1; do not rely on either answer there). A future `after` is allowed: events
    /// start once the store gets there, and no progress is reported before that.
    /// The stream also ends with an error when the backend fails or is closed; the consumer then
    /// re-watches from the last revision it saw.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StorageError>;

    /// The current revision: that of the last write (SQLite: 0 for a new store; etcd: 1).
    async fn current_revision(&self) -> Result<Revision, StorageError>;

    /// Discards history before `revision`: afterwards reads at and watches from older revisions fail
    /// with [`StorageError::Compacted`]. The latest state of every key is kept. Compacting at or
    /// below the compacted revision is a no-op; beyond the current revision fails with
    /// [`StorageError::FutureRevision`].
    async fn compact(&self, revision: Revision) -> Result<(), StorageError>;

    /// The revision history has been compacted up to (0 if never).
    async fn compacted_revision(&self) -> Result<Revision, StorageError>;

    /// Whether the backend is reachable and healthy (for `/readyz`).
    async fn health(&self) -> Result<(), StorageError>;
}
