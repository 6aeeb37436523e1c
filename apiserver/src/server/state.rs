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
    /// Woken whenever something was deleted or got a deletion timestamp, so the garbage
    /// collector and namespace finalizer look again.
    pub deletions: Notify,
}

impl ApiState {
    /// New state over `store` serving `kinds`.
    pub fn new(
        store: Arc<dyn Store>,
        kinds: Vec<ResourceKind>,
        options: ServerOptions,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let openapi = super::openapi::OpenApi::new(&kinds);
        Arc::new(Self { store, kinds, options, shutdown, openapi, deletions: Notify::new() })
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
