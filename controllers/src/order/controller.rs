//! The Order controller as a kube-runtime `Controller`: one watch per kind feeds the caches the
//! reconciler reads (Endpoints, Secrets, ArtifactTypes, ClusterArtifactTypes,
//! ArtifactWorkflows) and, through the reverse indexes, wakes exactly the Orders a change
//! concerns. The reconciler plans from the caches (no reads from the API server), writes the
//! status first under a `resourceVersion` precondition, then creates and deletes workflows.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use apiserver::types::{
    ArtifactType, ArtifactTypeSpec, ArtifactWorkflow, ClusterArtifactType, Endpoint,
    FORCE_AT_ANNOTATION, Order,
};
use futures::{Future, StreamExt};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Config, Controller};
use kube::runtime::finalizer::{self, finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};

use super::index::{OwnedIndex, ReferenceIndex};
use super::naming::{secret_data_digest, workflow_name};
use super::plan::{ExistingWorkflow, PlanInput, PlannedEvent, ReadyReason, Severity, plan};
use super::resolve::{
    DesiredWorkflow, EndpointInfo, Lookup, TypeScope, resolve, secret_references, spec_references,
};
use crate::events::EventPublisher;
use crate::patch::status_patch;
use crate::settings::Settings;
use crate::watch::{Backoff, Reflected, is_ready, keep_all, reflect};
use crate::workflow::WORKFLOW_FINALIZER;

/// The finalizer the Order controller puts on every Order, to delete its workflows first.
pub const ORDER_FINALIZER: &str = "arc.opendefense.cloud/order-cleanup";
/// Label on every ArtifactWorkflow: the Order's name (when it fits a label value).
pub const ORDER_LABEL: &str = "arc.opendefense.cloud/order";
/// Label on every ArtifactWorkflow: the artifact type (when it fits a label value).
pub const ARTIFACT_TYPE_LABEL: &str = "arc.opendefense.cloud/artifact-type";
/// Annotation that holds a Secret's data digest in the controller's cache, which keeps no
/// secret data. Never written to the API server.
const CACHED_DIGEST_ANNOTATION: &str = "arc.opendefense.cloud/cached-data-digest";
/// How soon to look again while the caches load.
const CACHE_WAIT: Duration = Duration::from_millis(200);
/// How soon to look again after a 409 Conflict on the status (the cache was behind).
const CONFLICT_RETRY: Duration = Duration::from_millis(200);
/// Look at every Order at least this often, in case an event was missed.
const RESYNC: Duration = Duration::from_secs(600);

/// What can go wrong while reconciling an Order.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// The Order has no namespace (the server always sets one).
    #[error("Order {0} has no namespace")]
    NoNamespace(String),
    /// Creating an ArtifactWorkflow failed.
    #[error("cannot create ArtifactWorkflow {namespace}/{name}: {source}")]
    Create {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// Cause.
        source: kube::Error,
    },
    /// Deleting an ArtifactWorkflow failed.
    #[error("cannot delete ArtifactWorkflow {namespace}/{name}: {source}")]
    Delete {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// Cause.
        source: kube::Error,
    },
    /// Writing the Order's status failed.
    #[error("cannot write the status of Order {namespace}/{name}: {source}")]
    Status {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// Cause.
        source: kube::Error,
    },
    /// The finalizer could not be added or removed.
    #[error("Order finalizer: {0}")]
    Finalizer(#[source] Box<finalizer::Error<OrderError>>),
}

/// The caches the Order reconciler reads.
#[derive(Clone)]
pub struct Stores {
    endpoints: Store<Endpoint>,
    secrets: Store<Secret>,
    types: Store<ArtifactType>,
    cluster_types: Store<ClusterArtifactType>,
    workflows: Store<ArtifactWorkflow>,
}

impl Stores {
    fn ready(&self) -> bool {
        is_ready(&self.endpoints)
            && is_ready(&self.secrets)
            && is_ready(&self.types)
            && is_ready(&self.cluster_types)
            && is_ready(&self.workflows)
    }

    fn workflow(&self, namespace: &str, name: &str) -> Option<Arc<ArtifactWorkflow>> {
        self.workflows.get(&ObjectRef::new(name).within(namespace))
    }
}

impl Lookup for Stores {
    fn endpoint(&self, namespace: &str, name: &str) -> Option<EndpointInfo> {
        self.endpoints
            .get(&ObjectRef::new(name).within(namespace))
            .map(|e| EndpointInfo {
                spec: e.spec.clone(),
                generation: e.metadata.generation.unwrap_or(0),
            })
    }

    fn secret_digest(&self, namespace: &str, name: &str) -> Option<String> {
        self.secrets
            .get(&ObjectRef::new(name).within(namespace))
            .and_then(|s| s.annotations().get(CACHED_DIGEST_ANNOTATION).cloned())
    }

    fn artifact_type(&self, namespace: &str, name: &str) -> Option<(ArtifactTypeSpec, TypeScope)> {
        if let Some(t) = self.types.get(&ObjectRef::new(name).within(namespace)) {
            return Some((t.spec.clone(), TypeScope::Namespaced));
        }
        self.cluster_types
            .get(&ObjectRef::new(name))
            .map(|t| (t.spec.inner.clone(), TypeScope::Cluster))
    }
}

/// Replaces a Secret's data by its digest before it is cached.
fn trim_secret(secret: &mut Secret) {
    let digest = secret_data_digest(secret.data.as_ref(), secret.string_data.as_ref());
    secret.data = None;
    secret.string_data = None;
    secret
        .annotations_mut()
        .insert(CACHED_DIGEST_ANNOTATION.to_string(), digest);
}

/// Everything the reconciler shares.
pub struct OrderContext {
    client: Client,
    stores: Stores,
    references: ReferenceIndex,
    owned: Arc<OwnedIndex>,
    events: EventPublisher,
    errors: Backoff<ObjectRef<Order>>,
    invalid: Backoff<ObjectRef<Order>>,
}

/// The `force-at` value in effect: the annotation when set, else the last one acted on.
fn effective_force_at(order: &Order) -> Option<String> {
    order
        .annotations()
        .get(FORCE_AT_ANNOTATION)
        .filter(|v| !v.trim().is_empty())
        .cloned()
        .or_else(|| order.status.as_ref().and_then(|s| s.last_force_at.clone()))
}

fn is_label_value(value: &str) -> bool {
    value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && value
            .bytes()
            .next()
            .is_none_or(|b| b.is_ascii_alphanumeric())
        && value
            .bytes()
            .last()
            .is_none_or(|b| b.is_ascii_alphanumeric())
}

fn owned_by(aw: &ArtifactWorkflow, uid: Option<&str>) -> bool {
    aw.owner_references()
        .iter()
        .any(|r| r.controller == Some(true) && Some(r.uid.as_str()) == uid)
}

fn new_workflow(order: &Order, desired: &DesiredWorkflow) -> ArtifactWorkflow {
    let mut labels = std::collections::BTreeMap::new();
    let order_name = order.name_any();
    if is_label_value(&order_name) {
        labels.insert(ORDER_LABEL.to_string(), order_name);
    }
    if is_label_value(&desired.artifact_type) {
        labels.insert(
            ARTIFACT_TYPE_LABEL.to_string(),
            desired.artifact_type.clone(),
        );
    }
    ArtifactWorkflow {
        metadata: ObjectMeta {
            name: Some(desired.name.clone()),
            namespace: order.namespace(),
            labels: Some(labels),
            owner_references: order.controller_owner_ref(&()).map(|r| vec![r]),
            // The workflow controller's finalizer, set at creation to save it a write.
            finalizers: Some(vec![WORKFLOW_FINALIZER.to_string()]),
            ..ObjectMeta::default()
        },
        spec: desired.spec.clone(),
        status: None,
    }
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

async fn apply(order: &Order, ctx: &OrderContext) -> Result<Action, OrderError> {
    let oref = ObjectRef::from_obj(order);
    let name = order.name_any();
    let ns = order
        .namespace()
        .ok_or_else(|| OrderError::NoNamespace(name.clone()))?;

    // Record what the Order refers to before reading the caches (see `index`).
    let mut refs = spec_references(order);
    refs.secrets = ctx
        .references
        .get(&oref)
        .map(|r| r.secrets)
        .unwrap_or_default();
    ctx.references.set(&oref, refs.clone());
    refs.secrets = secret_references(order, &ns, &ctx.stores);
    ctx.references.set(&oref, refs);

    let force_at = effective_force_at(order);
    let resolution = resolve(order, force_at.as_deref(), &ctx.stores);
    let uid = order.uid();
    let owned: BTreeSet<String> = ctx.owned.retain(&oref, |n| {
        ctx.stores
            .workflow(&ns, n)
            .is_some_and(|aw| owned_by(&aw, uid.as_deref()))
    });
    let existing = |n: &str| {
        ctx.stores.workflow(&ns, n).map(|aw| ExistingWorkflow {
            status: aw.status.clone().unwrap_or_default(),
            deleting: aw.metadata.deletion_timestamp.is_some(),
        })
    };
    let plan = plan(&PlanInput {
        order,
        resolution: &resolution,
        force_at: force_at.as_deref(),
        existing: &existing,
        owned: &owned,
        now: Timestamp::now(),
    });

    // The status first, guarded by the resourceVersion: records for new workflows are written
    // before the workflows exist, and nothing is created from a stale view of the Order.
    let old = serde_json::to_value(&order.status).unwrap_or_default();
    let new = serde_json::to_value(&plan.status).unwrap_or_default();
    let orders: Api<Order> = Api::namespaced(ctx.client.clone(), &ns);
    let rv = order.resource_version();
    match status_patch(rv.as_deref(), &old, &new, false) {
        Some(patch) => {
            match orders
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {}
                Err(e) if is_conflict(&e) => return Ok(Action::requeue(CONFLICT_RETRY)),
                Err(source) => {
                    return Err(OrderError::Status {
                        namespace: ns,
                        name,
                        source,
                    });
                }
            }
        }
        // Nothing to write, but something to create: make sure the status it was planned from
        // is current (a read, so a failing create cannot turn into a write-watch loop).
        None if !plan.create.is_empty() => {
            let current = orders
                .get_opt(&name)
                .await
                .map_err(|source| OrderError::Status {
                    namespace: ns.clone(),
                    name: name.clone(),
                    source,
                })?;
            if current.and_then(|o| o.resource_version()) != rv {
                return Ok(Action::requeue(CONFLICT_RETRY));
            }
        }
        None => {}
    }

    let workflows: Api<ArtifactWorkflow> = Api::namespaced(ctx.client.clone(), &ns);
    for desired in &plan.create {
        match workflows
            .create(&PostParams::default(), &new_workflow(order, desired))
            .await
        {
            Ok(_) => {}
            // Created by an earlier pass whose effects the cache had not seen yet.
            Err(e) if is_conflict(&e) => {}
            Err(source) => {
                return Err(OrderError::Create {
                    namespace: ns,
                    name: desired.name.clone(),
                    source,
                });
            }
        }
    }
    for (aw_name, _) in &plan.delete {
        match workflows.delete(aw_name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(source) => {
                return Err(OrderError::Delete {
                    namespace: ns,
                    name: aw_name.clone(),
                    source,
                });
            }
        }
    }

    let regarding = order.object_ref(&());
    for event in &plan.events {
        ctx.events.publish(&regarding, event, "Reconcile").await;
    }
    tracing::debug!(order = %oref, ready = plan.ready.as_str(), created = plan.create.len(), deleted = plan.delete.len(), "reconciled");

    let mut next = plan.requeue_after.unwrap_or(RESYNC).min(RESYNC);
    if plan.ready == ReadyReason::InvalidSpec {
        // The watches bring the fix; this is only a safety net, backing off.
        next = next.min(ctx.invalid.next(oref.clone()));
    } else {
        ctx.invalid.reset(&oref);
    }
    ctx.errors.reset(&oref);
    Ok(Action::requeue(next))
}

async fn cleanup(order: &Order, ctx: &OrderContext) -> Result<Action, OrderError> {
    let oref = ObjectRef::from_obj(order);
    let name = order.name_any();
    let ns = order
        .namespace()
        .ok_or_else(|| OrderError::NoNamespace(name.clone()))?;
    ctx.references.remove(&oref);
    let uid = order.uid();
    let mut names: BTreeSet<String> = ctx.owned.retain(&oref, |n| {
        ctx.stores
            .workflow(&ns, n)
            .is_some_and(|aw| owned_by(&aw, uid.as_deref()))
    });
    if let Some(status) = &order.status {
        names.extend(
            status
                .artifact_workflows
                .keys()
                .map(|h| workflow_name(&name, h)),
        );
    }
    let workflows: Api<ArtifactWorkflow> = Api::namespaced(ctx.client.clone(), &ns);
    let mut deleted = Vec::new();
    for aw_name in names {
        match workflows
            .delete(&aw_name, &DeleteParams::background())
            .await
        {
            Ok(_) => deleted.push(aw_name),
            Err(e) if is_not_found(&e) => {}
            Err(source) => {
                return Err(OrderError::Delete {
                    namespace: ns,
                    name: aw_name,
                    source,
                });
            }
        }
    }
    let event = PlannedEvent {
        severity: Severity::Normal,
        reason: "Deleting",
        note: format!("Order deleted; deleted {} ArtifactWorkflows", deleted.len()),
    };
    ctx.events
        .publish(&order.object_ref(&()), &event, "Cleanup")
        .await;
    ctx.errors.reset(&oref);
    ctx.invalid.reset(&oref);
    Ok(Action::await_change())
}

async fn reconcile(order: Arc<Order>, ctx: Arc<OrderContext>) -> Result<Action, OrderError> {
    crate::stats::order_reconciled();
    if !ctx.stores.ready() {
        return Ok(Action::requeue(CACHE_WAIT));
    }
    let name = order.name_any();
    let ns = order
        .namespace()
        .ok_or_else(|| OrderError::NoNamespace(name.clone()))?;
    let orders: Api<Order> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&orders, ORDER_FINALIZER, order, |event| async {
        match event {
            finalizer::Event::Apply(o) => apply(&o, &ctx).await,
            finalizer::Event::Cleanup(o) => cleanup(&o, &ctx).await,
        }
    })
    .await
    .map_err(|e| OrderError::Finalizer(Box::new(e)))
}

fn error_policy(order: Arc<Order>, error: &OrderError, ctx: Arc<OrderContext>) -> Action {
    crate::stats::order_failed();
    let oref = ObjectRef::from_obj(order.as_ref());
    let delay = ctx.errors.next(oref.clone());
    tracing::warn!(order = %oref, %error, retry_in_ms = delay.as_millis() as u64, "reconcile failed");
    Action::requeue(delay)
}

/// Builds the Order controller; the returned future runs it until `shutdown` resolves.
pub fn order_controller(
    client: Client,
    settings: &Settings,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> impl Future<Output = ()> + Send {
    let wc = watcher::Config::default;
    let endpoints: Reflected<Endpoint> = reflect(Api::all(client.clone()), wc(), keep_all);
    let secrets: Reflected<Secret> = reflect(Api::all(client.clone()), wc(), trim_secret);
    let types: Reflected<ArtifactType> = reflect(Api::all(client.clone()), wc(), keep_all);
    let cluster_types: Reflected<ClusterArtifactType> =
        reflect(Api::all(client.clone()), wc(), keep_all);
    let workflows: Reflected<ArtifactWorkflow> = reflect(Api::all(client.clone()), wc(), keep_all);
    let ctx = Arc::new(OrderContext {
        client: client.clone(),
        stores: Stores {
            endpoints: endpoints.store,
            secrets: secrets.store,
            types: types.store,
            cluster_types: cluster_types.store,
            workflows: workflows.store,
        },
        references: ReferenceIndex::default(),
        owned: Arc::new(OwnedIndex::default()),
        events: EventPublisher::new(
            client.clone(),
            &settings.reporting_controller,
            settings.reporting_instance.clone(),
        ),
        errors: Backoff::new(Duration::from_secs(1), Duration::from_secs(300)),
        invalid: Backoff::new(Duration::from_secs(5), Duration::from_secs(300)),
    });

    let owned = ctx.owned.clone();
    let by_endpoint = ctx.clone();
    let by_secret = ctx.clone();
    let by_type = ctx.clone();
    let by_cluster_type = ctx.clone();
    Controller::new(Api::<Order>::all(client), wc())
        .with_config(
            Config::default()
                .debounce(settings.order_debounce)
                .concurrency(settings.order_concurrency),
        )
        .watches_stream(workflows.stream, move |aw: ArtifactWorkflow| {
            let ns = aw.namespace().unwrap_or_default();
            let name = aw.name_any();
            let owners: Vec<ObjectRef<Order>> = aw
                .owner_references()
                .iter()
                .filter(|r| {
                    r.controller == Some(true)
                        && r.kind == "Order"
                        && r.api_version == apiserver::types::API_VERSION
                })
                .map(|r| ObjectRef::new(&r.name).within(&ns))
                .collect();
            for o in &owners {
                owned.add(o.clone(), name.clone());
            }
            owners
        })
        .watches_stream(endpoints.stream, move |e: Endpoint| {
            by_endpoint
                .references
                .orders_for_endpoint(&e.namespace().unwrap_or_default(), &e.name_any())
        })
        .watches_stream(secrets.stream, move |s: Secret| {
            by_secret
                .references
                .orders_for_secret(&s.namespace().unwrap_or_default(), &s.name_any())
        })
        .watches_stream(types.stream, move |t: ArtifactType| {
            by_type
                .references
                .orders_for_type(t.namespace().as_deref(), &t.name_any())
        })
        .watches_stream(cluster_types.stream, move |t: ClusterArtifactType| {
            by_cluster_type
                .references
                .orders_for_type(None, &t.name_any())
        })
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "order controller");
            }
        })
}
