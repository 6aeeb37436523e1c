//! Shared plumbing for watching objects: one watch per kind feeds both a reflector cache (what
//! reconciles read) and the trigger stream (what wakes reconciles), and per-object backoff for
//! requeues after errors and while an Order stays invalid.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

/// A watched kind: its cache and the stream of touched objects (applied and deleted) that keeps
/// the cache up to date as it is polled.
pub struct Reflected<K: Resource + 'static>
where
    K::DynamicType: Hash + Eq,
{
    /// The cache.
    pub store: Store<K>,
    /// Touched objects, after the cache saw them.
    pub stream: BoxStream<'static, Result<K, watcher::Error>>,
}

/// Watches `api`, dropping `managedFields` and applying `trim` to every object before it is
/// cached, so the cache holds only what the controllers read.
pub fn reflect<K>(api: Api<K>, config: watcher::Config, trim: fn(&mut K)) -> Reflected<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let stream = watcher(api, config)
        .default_backoff()
        .modify(move |obj: &mut K| {
            obj.meta_mut().managed_fields = None;
            trim(obj);
        })
        .reflect(writer)
        .touched_objects()
        .boxed();
    Reflected { store, stream }
}

/// Leaves an object as it is.
pub fn keep_all<K>(_: &mut K) {}

/// Whether a cache has received its initial list.
pub fn is_ready<K>(store: &Store<K>) -> bool
where
    K: kube::runtime::reflector::Lookup + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    store.wait_until_ready().now_or_never().is_some()
}

/// Exponential backoff per key: `first`, doubling up to `max`, reset by [`Backoff::reset`].
pub struct Backoff<T: Hash + Eq> {
    first: Duration,
    max: Duration,
    attempts: Mutex<HashMap<T, u32>>,
}

impl<T: Hash + Eq> Backoff<T> {
    /// A backoff from `first` to `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            attempts: Mutex::new(HashMap::new()),
        }
    }

    /// The next delay for `key`.
    pub fn next(&self, key: T) -> Duration {
        let mut attempts = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
        let n = attempts.entry(key).or_insert(0);
        let delay = self
            .first
            .saturating_mul(1u32 << (*n).min(16))
            .min(self.max);
        *n = n.saturating_add(1);
        delay
    }

    /// Forgets `key`'s failures.
    pub fn reset(&self, key: &T) {
        self.attempts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        let got: Vec<u64> = (0..5).map(|_| b.next("a").as_secs()).collect();
        assert_eq!(got, vec![1, 2, 4, 5, 5]);
        assert_eq!(b.next("b").as_secs(), 1, "keys are independent");
        b.reset(&"a");
        assert_eq!(b.next("a").as_secs(), 1);
    }
}
