//! The server's shared state: the store, the table of served kinds and the options every
//! handler reads.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::registry::ResourceKind;
use crate::storage::Store;

/// Behaviour switches of one server instance.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Embedded mode: the server also owns core `v1` Namespaces and Secrets, runs garbage
    /// collection of ownerReferences itself and requires namespaces to exist.
    pub embedded: bool,
    /// A watch without `timeoutSeconds` is closed after a random time in `[min, 2×min)`.
    pub min_watch_timeout: Duration,
    /// How often an idle watch with `allowWatchBookmarks` gets a BOOKMARK.
    pub bookmark_interval: Duration,
    /// The `gitVersion` reported by `/version`.
    pub version: &'static str,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            embedded: true,
            min_watch_timeout: Duration::from_secs(1800),
            bookmark_interval: Duration::from_secs(10),
            version: concat!("v", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// Everything a handler needs; shared behind an `Arc`.
pub struct ApiState {
    /// Where objects live.
    pub store: Arc<dyn Store>,
    /// The served kinds (the registry rows).
    pub kinds: Vec<ResourceKind>,
    /// Behaviour switches.
    pub options: ServerOptions,
    /// Cancelled when the server shuts down; ends watch streams.
    pub shutdown: CancellationToken,
    /// The OpenAPI documents, rendered once at start.
    pub openapi: super::openapi::OpenApi,
    /// Namespaces recently seen active, with when: creates skip re-reading them for
    /// [`ACTIVE_NAMESPACE_CACHE`]. A namespace deleted meanwhile still gets its content removed
    /// by the namespace finalizer.
    active_namespaces: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
    /// Woken whenever something was deleted or got a deletion timestamp, so the garbage
    /// collector and namespace finalizer look again.
    pub deletions: Notify,
}

/// How long a namespace seen active is trusted without reading it again.
pub const ACTIVE_NAMESPACE_CACHE: Duration = Duration::from_secs(1);

impl ApiState {
    /// Whether `namespace` was seen active within [`ACTIVE_NAMESPACE_CACHE`].
    pub fn namespace_recently_active(&self, namespace: &str) -> bool {
        let cache = self
            .active_namespaces
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        cache
            .get(namespace)
            .is_some_and(|at| at.elapsed() < ACTIVE_NAMESPACE_CACHE)
    }

    /// Records that `namespace` exists and is not terminating.
    pub fn remember_active_namespace(&self, namespace: &str) {
        let mut cache = self
            .active_namespaces
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        cache.insert(namespace.to_string(), std::time::Instant::now());
    }

    /// Forgets `namespace` (it is being deleted).
    pub fn forget_namespace(&self, namespace: &str) {
        let mut cache = self
            .active_namespaces
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        cache.remove(namespace);
    }

    /// New state over `store` serving `kinds`.
    pub fn new(
        store: Arc<dyn Store>,
        kinds: Vec<ResourceKind>,
        options: ServerOptions,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let openapi = super::openapi::OpenApi::new(&kinds);
        Arc::new(Self {
            store,
            kinds,
            options,
            shutdown,
            openapi,
            active_namespaces: Default::default(),
            deletions: Notify::new(),
        })
    }

    /// The kind serving `group`/`plural` (any version), if any.
    pub fn kind_by_plural(&self, group: &str, plural: &str) -> Option<&ResourceKind> {
        self.kinds
            .iter()
            .find(|k| k.group == group && k.plural == plural)
    }

    /// The kind for an `apiVersion` and `kind`, if served.
    pub fn kind_by_gvk(&self, api_version: &str, kind: &str) -> Option<&ResourceKind> {
        self.kinds
            .iter()
            .find(|k| k.kind == kind && k.api_version() == api_version)
    }
}
