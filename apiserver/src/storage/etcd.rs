//! The etcd backend (`etcd-client`), for cluster mode: a thin mapping of the [`Store`] model onto
//! etcd's own, which it mirrors.
//!
//! - Keys are used exactly as given (the server passes full keys such as
//!   `/registry/arc.opendefense.cloud/orders/<namespace>/<name>`).
//! - Writes are transactions comparing `create_revision` (create-if-absent) or `mod_revision`
//!   (update, delete); a failed comparison reads the key to tell "missing" from "modified".
//! - Lists are range reads of `[prefix, prefix_end)` at a revision, with a limit; pagination
//!   resumes at `start_after + "\0"`; `remaining` comes from etcd's count of the range.
//! - Watches ask for `prev_kv` and start at `after + 1`; a compacted start ends the stream with
//!   [`StorageError::Compacted`]. Idle watches request progress every
//!   [`PROGRESS_INTERVAL`] and report it as
//!   [`WatchEvent::Progress`].
//! - [`Store::compact`] compacts etcd and records the revision under [`COMPACT_REVISION_KEY`]
//!   (kube-apiserver's key and format), from which [`Store::compacted_revision`] reads it.
//!
//! Caveat: etcd releases before 3.4.24 / 3.5.8 answer a progress request at once, not ordered
//! with the events the watcher still has queued (etcd issue 15220). This store requests progress
//! only after [`PROGRESS_INTERVAL`] without any answer and holds each
//! answer back for 100 ms, reporting events that arrive meanwhile first;
//! events are never dropped because of a progress answer. A watcher still replaying a very long
//! history when the request is answered could, on those releases, still see a progress revision
//! ahead of an event that follows it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, KvClient, Txn, TxnOp,
    TxnOpResponse, WatchClient, WatchOptions,
};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::keys::KeyRange;
use super::{
    KeyValue, ListPage, ListRequest, PROGRESS_INTERVAL, Revision, StorageError, Store, WatchEvent,
    WatchStream,
};

/// etcd's default `--max-request-bytes`: larger writes are refused.
pub const REQUEST_LIMIT_BYTES: usize = 1536 * 1024;

/// The key recording the compacted revision (decimal), as kube-apiserver's compactor writes it.
pub const COMPACT_REVISION_KEY: &str = "compact_rev_key";

/// How long [`EtcdStore::connect`] waits for etcd to answer.
pub const CONNECT_TIMEOUT_SECS: u64 = 5;

/// How long one request may take before the store reports etcd unavailable.
pub const REQUEST_TIMEOUT_SECS: u64 = 30;

/// How long a health check waits.
const HEALTH_TIMEOUT_SECS: u64 = 3;

/// Largest response accepted (a list of many objects can be large).
const RESPONSE_LIMIT_BYTES: usize = 1 << 30;

/// How long a progress answer is held back before it is reported: events etcd queued before
/// answering can still arrive first (etcd before 3.4.24 / 3.5.8 does not order them).
const PROGRESS_SETTLE_MILLIS: u64 = 100;

/// Events buffered between a watch task and its consumer.
const STREAM_BUFFER_EVENTS: usize = 256;

// gRPC status codes (tonic's `Code` discriminants).
const GRPC_CANCELLED: i32 = 1;
const GRPC_DEADLINE_EXCEEDED: i32 = 4;
const GRPC_RESOURCE_EXHAUSTED: i32 = 8;
const GRPC_UNAVAILABLE: i32 = 14;

/// Storage in an etcd cluster (see the module documentation).
#[derive(Clone)]
pub struct EtcdStore {
    kv: KvClient,
    watch: WatchClient,
    /// The endpoints, for error messages.
    endpoints: Arc<str>,
    /// The highest compacted revision this store has observed.
    compacted: Arc<AtomicI64>,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

/// What an etcd failure means for the caller.
enum Failure {
    TooLarge,
    Compacted,
    FutureRevision,
    Unavailable(String),
    Other(String),
}

impl EtcdStore {
    /// Connects to etcd at `endpoints` (URLs such as `http://127.0.0.1:2379`) and checks that it
    /// answers; fails within about [`CONNECT_TIMEOUT_SECS`] with [`StorageError::Unavailable`]
    /// naming the endpoints if it does not.
    pub async fn connect(endpoints: &[String]) -> Result<Self, StorageError> {
        let names: Arc<str> = endpoints.join(",").into();
        if endpoints.is_empty() {
            return Err(StorageError::Unavailable("no etcd endpoints given".into()));
        }
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(CONNECT_TIMEOUT_SECS))
            .with_timeout(Duration::from_secs(REQUEST_TIMEOUT_SECS))
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        let connecting = Client::connect(endpoints, Some(options));
        let client = tokio::time::timeout(Duration::from_secs(CONNECT_TIMEOUT_SECS), connecting)
            .await
            .map_err(|_| unreachable_error(&names, "no answer"))?
            .map_err(|e| unreachable_error(&names, &describe(&e)))?;
        let store = Self {
            kv: client
                .kv_client()
                .max_decoding_message_size(RESPONSE_LIMIT_BYTES),
            watch: client
                .watch_client()
                .max_decoding_message_size(RESPONSE_LIMIT_BYTES),
            endpoints: names,
            compacted: Arc::new(AtomicI64::new(0)),
        };
        tokio::time::timeout(Duration::from_secs(CONNECT_TIMEOUT_SECS), store.revision())
            .await
            .map_err(|_| unreachable_error(&store.endpoints, "no answer"))?
            .map_err(|e| unreachable_error(&store.endpoints, &describe(&e)))?;
        Ok(store)
    }

    /// The endpoints this store talks to, comma-separated.
    pub fn endpoints(&self) -> &str {
        &self.endpoints
    }

    /// The store's current revision, as etcd reports it in a response header.
    async fn revision(&self) -> Result<Revision, etcd_client::Error> {
        let options = GetOptions::new().with_count_only();
        let response = self
            .kv
            .clone()
            .get(COMPACT_REVISION_KEY, Some(options))
            .await?;
        Ok(response.header().map_or(0, |h| h.revision()))
    }

    fn classify(&self, error: &etcd_client::Error) -> Failure {
        let text = describe(error);
        match error {
            etcd_client::Error::GRpcStatus(status) => {
                let message = status.message();
                if message.contains("request is too large")
                    || message.contains("larger than max")
                    || status.code() as i32 == GRPC_RESOURCE_EXHAUSTED
                {
                    Failure::TooLarge
                } else if message.contains("required revision has been compacted") {
                    Failure::Compacted
                } else if message.contains("required revision is a future revision") {
                    Failure::FutureRevision
                } else if matches!(
                    status.code() as i32,
                    GRPC_UNAVAILABLE | GRPC_DEADLINE_EXCEEDED | GRPC_CANCELLED
                ) || message.contains("no leader")
                    // A connection lost mid-request surfaces as a status with code Unknown.
                    || message.contains("transport error")
                    || message.contains("connection error")
                    || message.contains("broken pipe")
                {
                    Failure::Unavailable(format!("etcd at {}: {text}", self.endpoints))
                } else {
                    Failure::Other(format!("etcd at {}: {text}", self.endpoints))
                }
            }
            etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => {
                Failure::Unavailable(format!("etcd at {}: {text}", self.endpoints))
            }
            _ => Failure::Other(format!("etcd at {}: {text}", self.endpoints)),
        }
    }

    /// The generic mapping of an error of a request that carries no value or revision.
    fn error(&self, error: &etcd_client::Error) -> StorageError {
        match self.classify(error) {
            Failure::Unavailable(message) => StorageError::Unavailable(message),
            Failure::TooLarge | Failure::Compacted | Failure::FutureRevision => {
                StorageError::Internal(format!("etcd at {}: {error}", self.endpoints))
            }
            Failure::Other(message) => StorageError::Internal(message),
        }
    }

    fn write_error(&self, error: &etcd_client::Error, size: usize) -> StorageError {
        match self.classify(error) {
            Failure::TooLarge => StorageError::TooLarge {
                size,
                limit: REQUEST_LIMIT_BYTES,
            },
            _ => self.error(error),
        }
    }

    /// Maps an error of a read or compaction at `revision`.
    async fn revision_error(&self, error: &etcd_client::Error, revision: Revision) -> StorageError {
        match self.classify(error) {
            Failure::Compacted => StorageError::Compacted {
                requested: revision,
                compacted: self
                    .compacted_revision()
                    .await
                    .unwrap_or(0)
                    .max(revision + 1),
            },
            Failure::FutureRevision => StorageError::FutureRevision {
                requested: revision,
                current: self.current_revision().await.unwrap_or(0),
            },
            _ => self.error(error),
        }
    }

    /// A conditional write: `compare` guards `operation`; on failure the key is read back.
    async fn conditional(
        &self,
        key: &str,
        compare: Vec<Compare>,
        operation: TxnOp,
        size: usize,
    ) -> Result<Result<Revision, Option<KeyValue>>, StorageError> {
        let txn = Txn::new()
            .when(compare)
            .and_then(vec![operation])
            .or_else(vec![TxnOp::get(key, None)]);
        let response = self
            .kv
            .clone()
            .txn(txn)
            .await
            .map_err(|e| self.write_error(&e, size))?;
        let revision = response.header().map_or(0, |h| h.revision());
        if response.succeeded() {
            return Ok(Ok(revision));
        }
        let current = response.op_responses().into_iter().find_map(|op| match op {
            TxnOpResponse::Get(get) => get.kvs().first().map(|kv| convert(kv, &self.endpoints)),
            _ => None,
        });
        Ok(Err(current.transpose()?))
    }
}

fn unreachable_error(endpoints: &str, reason: &str) -> StorageError {
    StorageError::Unavailable(format!(
        "etcd at {endpoints} is unreachable (gave up after at most {CONNECT_TIMEOUT_SECS} s): {reason}"
    ))
}

/// An etcd client error as one line: the gRPC message and its causes, without repetitions.
fn describe(error: &etcd_client::Error) -> String {
    let (first, mut source) = match error {
        etcd_client::Error::GRpcStatus(status) => (
            status.message().to_string(),
            std::error::Error::source(status),
        ),
        etcd_client::Error::TransportError(e) => (e.to_string(), std::error::Error::source(e)),
        other => (other.to_string(), None),
    };
    let mut parts = vec![first];
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

/// Converts an etcd key-value, whose key must be UTF-8 (all keys this store writes are).
fn convert(kv: &etcd_client::KeyValue, endpoints: &str) -> Result<KeyValue, StorageError> {
    let key = kv.key_str().map_err(|e| {
        StorageError::Internal(format!(
            "etcd at {endpoints} holds a key that is not UTF-8: {e}"
        ))
    })?;
    Ok(KeyValue {
        key: key.to_string(),
        value: kv.value().to_vec(),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
    })
}

/// The outcome of an update or delete whose comparison failed.
fn refused(key: &str, expected: Revision, current: Option<KeyValue>) -> StorageError {
    match current {
        None => StorageError::NotFound {
            key: key.to_string(),
        },
        Some(kv) => StorageError::Conflict {
            key: key.to_string(),
            expected,
            current: Some(Box::new(kv)),
        },
    }
}

/// The etcd range end for a [`KeyRange`]'s end (`"\0"` = unbounded).
fn range_end(range: &KeyRange) -> Vec<u8> {
    range.end.clone().unwrap_or_else(|| vec![0])
}

#[async_trait::async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StorageError> {
        let response = self
            .kv
            .clone()
            .get(key, None)
            .await
            .map_err(|e| self.error(&e))?;
        response
            .kvs()
            .first()
            .map(|kv| convert(kv, &self.endpoints))
            .transpose()
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<Revision, StorageError> {
        let size = value.len();
        let compare = vec![Compare::create_revision(key, CompareOp::Equal, 0)];
        match self
            .conditional(key, compare, TxnOp::put(key, value, None), size)
            .await?
        {
            Ok(revision) => Ok(revision),
            Err(_) => Err(StorageError::AlreadyExists {
                key: key.to_string(),
            }),
        }
    }

    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: Revision,
    ) -> Result<Revision, StorageError> {
        let size = value.len();
        let compare = vec![
            Compare::mod_revision(key, CompareOp::Equal, expected),
            Compare::create_revision(key, CompareOp::Greater, 0),
        ];
        match self
            .conditional(key, compare, TxnOp::put(key, value, None), size)
            .await?
        {
            Ok(revision) => Ok(revision),
            Err(current) => Err(refused(key, expected, current)),
        }
    }

    async fn delete(&self, key: &str, expected: Revision) -> Result<Revision, StorageError> {
        let compare = vec![
            Compare::mod_revision(key, CompareOp::Equal, expected),
            Compare::create_revision(key, CompareOp::Greater, 0),
        ];
        match self
            .conditional(key, compare, TxnOp::delete(key, None), 0)
            .await?
        {
            Ok(revision) => Ok(revision),
            Err(current) => Err(refused(key, expected, current)),
        }
    }

    async fn list(&self, request: ListRequest) -> Result<ListPage, StorageError> {
        let range = KeyRange::new(&request.prefix, request.start_after.as_deref());
        let mut start = range.start.clone();
        if !range.start_inclusive || start.is_empty() {
            // After `start_after` comes `start_after + "\0"`; etcd spells "from the first key" "\0".
            start.push(0);
        }
        let revision = request.revision.filter(|r| *r > 0);
        let mut options = GetOptions::new().with_range(range_end(&range));
        if request.limit > 0 {
            options = options.with_limit(i64::try_from(request.limit).unwrap_or(i64::MAX));
        }
        if let Some(revision) = revision {
            options = options.with_revision(revision);
        }
        let response = match self.kv.clone().get(start, Some(options)).await {
            Ok(response) => response,
            Err(e) => return Err(self.revision_error(&e, revision.unwrap_or(0)).await),
        };
        let items = response
            .kvs()
            .iter()
            .map(|kv| convert(kv, &self.endpoints))
            .collect::<Result<Vec<_>, _>>()?;
        let total = u64::try_from(response.count()).unwrap_or(0);
        let remaining = total.saturating_sub(items.len() as u64);
        let revision = revision.unwrap_or_else(|| response.header().map_or(0, |h| h.revision()));
        Ok(ListPage {
            items,
            revision,
            remaining,
        })
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StorageError> {
        let range = KeyRange::new(prefix, None);
        let options = WatchOptions::new()
            .with_range(range_end(&range))
            .with_start_revision(after.max(0) + 1)
            .with_prev_key()
            .with_progress_notify();
        let key = if prefix.is_empty() {
            vec![0]
        } else {
            prefix.as_bytes().to_vec()
        };
        let stream = self
            .watch
            .clone()
            .watch(key, Some(options))
            .await
            .map_err(|e| self.error(&e))?;
        let (sender, receiver) = mpsc::channel(STREAM_BUFFER_EVENTS);
        let watch = EtcdWatch {
            store: self.clone(),
            after,
            sender,
        };
        tokio::spawn(watch.run(stream));
        Ok(Box::pin(futures::stream::unfold(
            receiver,
            |mut receiver| async move { receiver.recv().await.map(|item| (item, receiver)) },
        )))
    }

    async fn current_revision(&self) -> Result<Revision, StorageError> {
        self.revision().await.map_err(|e| self.error(&e))
    }

    async fn compact(&self, revision: Revision) -> Result<(), StorageError> {
        match self.kv.clone().compact(revision, None).await {
            Ok(_) => {}
            Err(e) => match self.classify(&e) {
                // Already compacted at or past `revision`: nothing to do.
                Failure::Compacted => return Ok(()),
                _ => return Err(self.revision_error(&e, revision).await),
            },
        }
        self.compacted.fetch_max(revision, Ordering::SeqCst);
        if self.compacted_revision().await? <= revision {
            let put = self
                .kv
                .clone()
                .put(COMPACT_REVISION_KEY, revision.to_string(), None)
                .await;
            put.map_err(|e| self.error(&e))?;
        }
        Ok(())
    }

    async fn compacted_revision(&self) -> Result<Revision, StorageError> {
        let response = self
            .kv
            .clone()
            .get(COMPACT_REVISION_KEY, None)
            .await
            .map_err(|e| self.error(&e))?;
        let recorded = response
            .kvs()
            .first()
            .and_then(|kv| {
                kv.value_str()
                    .ok()
                    .and_then(|v| v.trim().parse::<Revision>().ok())
            })
            .unwrap_or(0);
        Ok(self
            .compacted
            .fetch_max(recorded, Ordering::SeqCst)
            .max(recorded))
    }

    async fn health(&self) -> Result<(), StorageError> {
        tokio::time::timeout(
            Duration::from_secs(HEALTH_TIMEOUT_SECS),
            self.current_revision(),
        )
        .await
        .map_err(|_| {
            StorageError::Unavailable(format!(
                "etcd at {} did not answer within {HEALTH_TIMEOUT_SECS} s",
                self.endpoints
            ))
        })?
        .map(|_| ())
    }
}

/// One watch: forwards etcd's watch responses as [`WatchEvent`]s and asks for progress while idle.
struct EtcdWatch {
    store: EtcdStore,
    after: Revision,
    sender: mpsc::Sender<Result<WatchEvent, StorageError>>,
}

impl EtcdWatch {
    async fn run(self, stream: etcd_client::WatchStream) {
        if let Err(Some(error)) = self.follow(stream).await {
            let _ = self.sender.send(Err(error)).await;
        }
    }

    /// Runs until the consumer goes away (`Err(None)`) or the watch fails (`Err(Some)`).
    async fn follow(&self, stream: etcd_client::WatchStream) -> Result<(), Option<StorageError>> {
        let (mut requests, mut responses) = stream.split();
        // The revision of the last event delivered (or `after`).
        let mut position = self.after;
        // The last progress reported: reports never go backwards.
        let mut progress = self.after;
        // A progress answer held back briefly (see `PROGRESS_SETTLE_MILLIS`) and when it is due.
        let mut held: Option<(Revision, Instant)> = None;
        let mut idle_until = Instant::now() + PROGRESS_INTERVAL;
        loop {
            let settle = async {
                match held {
                    Some((_, due)) => tokio::time::sleep_until(due).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = self.sender.closed() => return Err(None),
                () = settle => {
                    if let Some((revision, _)) = held.take()
                        && revision >= position
                        && revision >= progress
                    {
                        self.send(WatchEvent::Progress(revision)).await?;
                        progress = revision;
                    }
                    idle_until = Instant::now() + PROGRESS_INTERVAL;
                }
                () = tokio::time::sleep_until(idle_until), if held.is_none() => {
                    requests.request_progress().await.map_err(|e| Some(self.store.error(&e)))?;
                    idle_until = Instant::now() + PROGRESS_INTERVAL;
                }
                response = responses.next() => {
                    let response = match response {
                        Some(Ok(response)) => response,
                        Some(Err(e)) => return Err(Some(self.store.error(&e))),
                        None => {
                            return Err(Some(StorageError::Unavailable(format!(
                                "etcd at {} ended the watch stream",
                                self.store.endpoints
                            ))));
                        }
                    };
                    if response.compact_revision() > 0 {
                        let compacted = response.compact_revision();
                        self.store.compacted.fetch_max(compacted, Ordering::SeqCst);
                        return Err(Some(StorageError::Compacted { requested: position, compacted }));
                    }
                    if response.canceled() {
                        return Err(Some(StorageError::Unavailable(format!(
                            "etcd at {} cancelled the watch: {}",
                            self.store.endpoints,
                            response.cancel_reason()
                        ))));
                    }
                    if response.created() {
                        continue;
                    }
                    if response.events().is_empty() {
                        let revision = response.header().map_or(0, |h| h.revision());
                        let due = Instant::now() + Duration::from_millis(PROGRESS_SETTLE_MILLIS);
                        held = Some((revision, held.map_or(due, |(_, earlier)| earlier)));
                        continue;
                    }
                    for event in response.events() {
                        let event = self.convert(event, position)?;
                        if event.revision() <= position {
                            continue;
                        }
                        position = event.revision();
                        self.send(event).await?;
                    }
                    // Events past a held progress answer make it pointless.
                    if held.is_some_and(|(revision, _)| revision < position) {
                        held = None;
                    }
                    idle_until = Instant::now() + PROGRESS_INTERVAL;
                }
            }
        }
    }

    fn convert(
        &self,
        event: &etcd_client::Event,
        position: Revision,
    ) -> Result<WatchEvent, Option<StorageError>> {
        let endpoints = &self.store.endpoints;
        let malformed = || {
            Some(StorageError::Internal(format!(
                "etcd at {endpoints} sent a watch event without a key"
            )))
        };
        let kv = convert(event.kv().ok_or_else(malformed)?, endpoints).map_err(Some)?;
        let prev = event
            .prev_kv()
            .map(|kv| convert(kv, endpoints))
            .transpose()
            .map_err(Some)?;
        match event.event_type() {
            EventType::Put => Ok(WatchEvent::Put { kv, prev }),
            EventType::Delete => match prev {
                Some(prev) => Ok(WatchEvent::Delete {
                    prev,
                    revision: kv.mod_revision,
                }),
                // The deleted version is gone: history this watch needs was compacted.
                None => Err(Some(StorageError::Compacted {
                    requested: position,
                    compacted: kv.mod_revision,
                })),
            },
        }
    }

    async fn send(&self, event: WatchEvent) -> Result<(), Option<StorageError>> {
        self.sender.send(Ok(event)).await.map_err(|_| None)
    }
}
