//! Reverse indexes that route changes to exactly the Orders they concern: from an Endpoint,
//! Secret, ArtifactType or ClusterArtifactType to the Orders that refer to it, and from an Order
//! to the ArtifactWorkflows it owns. Each reconcile records what its Order refers to *before*
//! it reads the caches, so a change that lands in a cache after the read still finds the Order.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use apiserver::types::Order;
use kube::runtime::reflector::ObjectRef;

use super::resolve::References;

type Key = (String, String);

#[derive(Default)]
struct Inner {
    by_order: HashMap<ObjectRef<Order>, References>,
    endpoints: HashMap<Key, HashSet<ObjectRef<Order>>>,
    secrets: HashMap<Key, HashSet<ObjectRef<Order>>>,
    types: HashMap<String, HashSet<ObjectRef<Order>>>,
}

fn unlink<K: std::hash::Hash + Eq>(
    map: &mut HashMap<K, HashSet<ObjectRef<Order>>>,
    key: K,
    order: &ObjectRef<Order>,
) {
    if let Some(set) = map.get_mut(&key) {
        set.remove(order);
        if set.is_empty() {
            map.remove(&key);
        }
    }
}

impl Inner {
    fn remove(&mut self, order: &ObjectRef<Order>) {
        let Some(old) = self.by_order.remove(order) else {
            return;
        };
        let ns = order.namespace.clone().unwrap_or_default();
        for name in old.endpoints {
            unlink(&mut self.endpoints, (ns.clone(), name), order);
        }
        for name in old.secrets {
            unlink(&mut self.secrets, (ns.clone(), name), order);
        }
        for name in old.artifact_types {
            unlink(&mut self.types, name, order);
        }
    }
}

/// Which Orders refer to which objects.
#[derive(Default)]
pub struct ReferenceIndex {
    inner: Mutex<Inner>,
}

impl ReferenceIndex {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records everything `order` refers to, replacing what was recorded before.
    pub fn set(&self, order: &ObjectRef<Order>, refs: References) {
        let mut inner = self.lock();
        inner.remove(order);
        let ns = order.namespace.clone().unwrap_or_default();
        for name in &refs.endpoints {
            inner
                .endpoints
                .entry((ns.clone(), name.clone()))
                .or_default()
                .insert(order.clone());
        }
        for name in &refs.secrets {
            inner
                .secrets
                .entry((ns.clone(), name.clone()))
                .or_default()
                .insert(order.clone());
        }
        for name in &refs.artifact_types {
            inner
                .types
                .entry(name.clone())
                .or_default()
                .insert(order.clone());
        }
        inner.by_order.insert(order.clone(), refs);
    }

    /// What was recorded for `order`.
    pub fn get(&self, order: &ObjectRef<Order>) -> Option<References> {
        self.lock().by_order.get(order).cloned()
    }

    /// Forgets `order`.
    pub fn remove(&self, order: &ObjectRef<Order>) {
        self.lock().remove(order);
    }

    /// Orders using Endpoint `name` in `namespace`.
    pub fn orders_for_endpoint(&self, namespace: &str, name: &str) -> Vec<ObjectRef<Order>> {
        let inner = self.lock();
        inner
            .endpoints
            .get(&(namespace.to_string(), name.to_string()))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Orders using Secret `name` in `namespace`.
    pub fn orders_for_secret(&self, namespace: &str, name: &str) -> Vec<ObjectRef<Order>> {
        let inner = self.lock();
        inner
            .secrets
            .get(&(namespace.to_string(), name.to_string()))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Orders using artifact type `name`; with a namespace, only Orders in it (a namespaced
    /// ArtifactType), without one, Orders everywhere (a ClusterArtifactType).
    pub fn orders_for_type(&self, namespace: Option<&str>, name: &str) -> Vec<ObjectRef<Order>> {
        let inner = self.lock();
        inner
            .types
            .get(name)
            .map(|s| {
                s.iter()
                    .filter(|o| namespace.is_none() || o.namespace.as_deref() == namespace)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Number of Orders indexed.
    pub fn len(&self) -> usize {
        self.lock().by_order.len()
    }

    /// Whether no Order is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The ArtifactWorkflows each Order owns, by name. A superset: names are added whenever a
/// workflow is seen and dropped by [`OwnedIndex::retain`] once the cache no longer has them.
#[derive(Default)]
pub struct OwnedIndex {
    inner: Mutex<HashMap<ObjectRef<Order>, BTreeSet<String>>>,
}

impl OwnedIndex {
    fn lock(&self) -> MutexGuard<'_, HashMap<ObjectRef<Order>, BTreeSet<String>>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that `order` owns workflow `name`.
    pub fn add(&self, order: ObjectRef<Order>, name: String) {
        self.lock().entry(order).or_default().insert(name);
    }

    /// The names recorded for `order` that `still_exists` accepts; the others are forgotten.
    pub fn retain(
        &self,
        order: &ObjectRef<Order>,
        still_exists: impl Fn(&str) -> bool,
    ) -> BTreeSet<String> {
        let mut inner = self.lock();
        let Some(names) = inner.get_mut(order) else {
            return BTreeSet::new();
        };
        names.retain(|n| still_exists(n));
        let out = names.clone();
        if names.is_empty() {
            inner.remove(order);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(ns: &str, name: &str) -> ObjectRef<Order> {
        ObjectRef::new(name).within(ns)
    }

    fn refs(endpoints: &[&str], secrets: &[&str], types: &[&str]) -> References {
        References {
            endpoints: endpoints.iter().map(|s| s.to_string()).collect(),
            secrets: secrets.iter().map(|s| s.to_string()).collect(),
            artifact_types: types.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn routes_changes_to_exactly_the_orders_that_use_them() {
        let idx = ReferenceIndex::default();
        idx.set(
            &order("a", "o1"),
            refs(&["hub", "mirror"], &["creds"], &["oci"]),
        );
        idx.set(&order("a", "o2"), refs(&["hub"], &[], &["helm"]));
        idx.set(&order("b", "o3"), refs(&["hub"], &["creds"], &["oci"]));
        let mut got = idx.orders_for_endpoint("a", "hub");
        got.sort_by(|x, y| x.name.cmp(&y.name));
        assert_eq!(got, vec![order("a", "o1"), order("a", "o2")]);
        assert_eq!(idx.orders_for_secret("b", "creds"), vec![order("b", "o3")]);
        assert!(idx.orders_for_secret("a", "other").is_empty());
        assert_eq!(
            idx.orders_for_type(Some("a"), "oci"),
            vec![order("a", "o1")]
        );
        assert_eq!(idx.orders_for_type(None, "oci").len(), 2);

        // Replacing drops the old links; removing drops everything.
        idx.set(&order("a", "o1"), refs(&["mirror"], &[], &["oci"]));
        assert_eq!(idx.orders_for_endpoint("a", "hub"), vec![order("a", "o2")]);
        assert!(idx.orders_for_secret("a", "creds").is_empty());
        idx.remove(&order("a", "o2"));
        assert!(idx.orders_for_endpoint("a", "hub").is_empty());
        assert!(idx.orders_for_type(None, "helm").is_empty());
        assert_eq!(idx.len(), 2);
    }

    #[test]
    fn owned_index_forgets_workflows_that_are_gone() {
        let idx = OwnedIndex::default();
        idx.add(order("a", "o1"), "o1-1".into());
        idx.add(order("a", "o1"), "o1-2".into());
        assert_eq!(
            idx.retain(&order("a", "o1"), |n| n == "o1-2"),
            BTreeSet::from(["o1-2".to_string()])
        );
        assert_eq!(
            idx.retain(&order("a", "o1"), |_| true),
            BTreeSet::from(["o1-2".to_string()])
        );
        assert!(idx.retain(&order("a", "o1"), |_| false).is_empty());
        assert!(idx.retain(&order("a", "zzz"), |_| true).is_empty());
    }
}
