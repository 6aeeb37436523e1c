//! Resolves an Order's artifacts into desired ArtifactWorkflows: Endpoints (with defaults and
//! usage checks), the artifact type (namespaced first, then cluster-wide) and its rules,
//! Secrets, parameters and names. Pure: every object comes through [`Lookup`], so the same code
//! runs against reflector stores in the controller and against maps in tests.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use apiserver::types::{
    ArtifactTypeSpec, ArtifactWorkflowSpec, EndpointSpec, LocalObjectReference, Order,
    OrderArtifact,
};

use super::naming::{SideIdentity, WorkflowIdentity, workflow_name};
use super::params::{FlattenError, flatten_spec, workflow_parameters};

/// A resolved Endpoint: its spec and generation.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointInfo {
    /// The Endpoint's spec.
    pub spec: EndpointSpec,
    /// Its `metadata.generation` (0 when the server did not set one).
    pub generation: i64,
}

/// Where an artifact type was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeScope {
    /// A namespaced ArtifactType in the Order's namespace.
    Namespaced,
    /// A ClusterArtifactType.
    Cluster,
}

/// Read access to the objects an Order refers to.
pub trait Lookup {
    /// The Endpoint `name` in `namespace`.
    fn endpoint(&self, namespace: &str, name: &str) -> Option<EndpointInfo>;
    /// The digest of the data of Secret `name` in `namespace`.
    fn secret_digest(&self, namespace: &str, name: &str) -> Option<String>;
    /// The artifact type `name`: the namespaced ArtifactType, else the ClusterArtifactType.
    fn artifact_type(&self, namespace: &str, name: &str) -> Option<(ArtifactTypeSpec, TypeScope)>;
}

/// Which side of a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The source.
    Source,
    /// The destination.
    Destination,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Source => "source",
            Self::Destination => "destination",
        })
    }
}

/// Why one artifact cannot be turned into a workflow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArtifactProblem {
    /// Neither the artifact nor `spec.defaults` names an Endpoint for this side.
    #[error("no {side} Endpoint: set {field} on the artifact or in spec.defaults")]
    NoEndpoint {
        /// Which side.
        side: Side,
        /// The field to set (`srcRef` or `dstRef`).
        field: &'static str,
    },
    /// The named Endpoint does not exist.
    #[error("{side} Endpoint \"{name}\" not found in namespace \"{namespace}\"")]
    EndpointNotFound {
        /// Which side.
        side: Side,
        /// The Endpoint's name.
        name: String,
        /// The Order's namespace.
        namespace: String,
    },
    /// The Endpoint's usage forbids this side (a PullOnly destination, a PushOnly source).
    #[error("Endpoint \"{name}\" has usage {usage:?} and cannot be a {side}")]
    UsageForbids {
        /// Which side.
        side: Side,
        /// The Endpoint's name.
        name: String,
        /// Its usage.
        usage: apiserver::types::EndpointUsage,
    },
    /// No ArtifactType or ClusterArtifactType has the artifact's type name.
    #[error(
        "artifact type \"{name}\" not found (no ArtifactType in namespace \"{namespace}\" and no ClusterArtifactType)"
    )]
    TypeNotFound {
        /// The type name.
        name: String,
        /// The Order's namespace.
        namespace: String,
    },
    /// The artifact has no `type`.
    #[error("type is empty")]
    TypeEmpty,
    /// The type's rules do not allow this Endpoint type on this side.
    #[error(
        "{side} Endpoint \"{endpoint}\" has type \"{endpoint_type}\", which artifact type \"{artifact_type}\" does not allow (allowed: {allowed})"
    )]
    EndpointTypeNotAllowed {
        /// Which side.
        side: Side,
        /// The Endpoint's name.
        endpoint: String,
        /// The Endpoint's type.
        endpoint_type: String,
        /// The artifact type.
        artifact_type: String,
        /// The allowed types, comma separated (or "none").
        allowed: String,
    },
    /// The Endpoint names a Secret that does not exist.
    #[error(
        "Secret \"{name}\" of {side} Endpoint \"{endpoint}\" not found in namespace \"{namespace}\""
    )]
    SecretNotFound {
        /// Which side.
        side: Side,
        /// The Secret's name.
        name: String,
        /// The Endpoint naming it.
        endpoint: String,
        /// The Order's namespace.
        namespace: String,
    },
    /// The artifact's spec cannot be flattened.
    #[error("{0}")]
    Spec(#[from] FlattenError),
}

/// Why an Order as a whole cannot be run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderProblem {
    /// `spec.artifacts` is empty.
    NoArtifacts,
    /// Some artifacts are invalid, by index.
    Artifacts(Vec<(usize, ArtifactProblem)>),
}

impl fmt::Display for OrderProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoArtifacts => f.write_str("spec.artifacts is empty: nothing to move"),
            Self::Artifacts(problems) => {
                for (i, (index, problem)) in problems.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "artifact {index}: {problem}")?;
                }
                Ok(())
            }
        }
    }
}

/// One ArtifactWorkflow the Order should have.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredWorkflow {
    /// The artifact's index in `spec.artifacts`.
    pub index: usize,
    /// The 16-hex hash (key in `status.artifactWorkflows`).
    pub hash: String,
    /// The ArtifactWorkflow's name.
    pub name: String,
    /// The artifact type name.
    pub artifact_type: String,
    /// The ArtifactWorkflow's spec.
    pub spec: ArtifactWorkflowSpec,
}

/// The names an Order refers to, for routing changes of those objects to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct References {
    /// Endpoint names (in the Order's namespace).
    pub endpoints: BTreeSet<String>,
    /// Secret names (in the Order's namespace).
    pub secrets: BTreeSet<String>,
    /// Artifact type names (namespaced ArtifactTypes and ClusterArtifactTypes alike).
    pub artifact_types: BTreeSet<String>,
}

/// The outcome of resolving an Order.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    /// What the Order should have, or why it cannot run.
    pub desired: Result<Vec<DesiredWorkflow>, OrderProblem>,
    /// Generations of the Endpoints used, by name.
    pub endpoint_generations: BTreeMap<String, i64>,
    /// Data digests of the Secrets used, by name.
    pub secret_generations: BTreeMap<String, String>,
}

/// The Endpoint names an artifact uses after falling back to `spec.defaults`.
pub fn endpoint_refs(order: &Order, artifact: &OrderArtifact) -> (Option<String>, Option<String>) {
    let pick = |own: &Option<LocalObjectReference>,
                default: Option<&Option<LocalObjectReference>>| {
        own.as_ref()
            .filter(|r| r.is_set())
            .or_else(|| default.and_then(|d| d.as_ref()).filter(|r| r.is_set()))
            .map(|r| r.name.clone())
    };
    let defaults = order.spec.defaults.as_ref();
    (
        pick(&artifact.src_ref, defaults.map(|d| &d.src_ref)),
        pick(&artifact.dst_ref, defaults.map(|d| &d.dst_ref)),
    )
}

/// The names an Order refers to that can be known from its spec alone, before anything is
/// read: its Endpoints and artifact types.
pub fn spec_references(order: &Order) -> References {
    let mut refs = References::default();
    for artifact in &order.spec.artifacts {
        let (src, dst) = endpoint_refs(order, artifact);
        refs.endpoints.extend(src);
        refs.endpoints.extend(dst);
        if !artifact.type_.is_empty() {
            refs.artifact_types.insert(artifact.type_.clone());
        }
    }
    refs
}

/// The Secret names the Order's Endpoints refer to, as far as the Endpoints exist.
pub fn secret_references(order: &Order, namespace: &str, lookup: &impl Lookup) -> BTreeSet<String> {
    spec_references(order)
        .endpoints
        .iter()
        .filter_map(|name| lookup.endpoint(namespace, name))
        .filter_map(|e| e.spec.secret_ref.filter(|r| r.is_set()).map(|r| r.name))
        .collect()
}

struct ResolvedSide {
    name: String,
    info: EndpointInfo,
    secret: Option<(String, String)>,
}

fn resolve_side(
    side: Side,
    name: Option<String>,
    namespace: &str,
    lookup: &impl Lookup,
) -> Result<ResolvedSide, ArtifactProblem> {
    let field = match side {
        Side::Source => "srcRef",
        Side::Destination => "dstRef",
    };
    let name = name.ok_or(ArtifactProblem::NoEndpoint { side, field })?;
    let info =
        lookup
            .endpoint(namespace, &name)
            .ok_or_else(|| ArtifactProblem::EndpointNotFound {
                side,
                name: name.clone(),
                namespace: namespace.to_string(),
            })?;
    let usage = info.spec.usage;
    let allowed = match side {
        Side::Source => usage.allows_pull(),
        Side::Destination => usage.allows_push(),
    };
    if !allowed {
        return Err(ArtifactProblem::UsageForbids { side, name, usage });
    }
    let secret = match info.spec.secret_ref.as_ref().filter(|r| r.is_set()) {
        None => None,
        Some(r) => {
            let digest = lookup.secret_digest(namespace, &r.name).ok_or_else(|| {
                ArtifactProblem::SecretNotFound {
                    side,
                    name: r.name.clone(),
                    endpoint: name.clone(),
                    namespace: namespace.to_string(),
                }
            })?;
            Some((r.name.clone(), digest))
        }
    };
    Ok(ResolvedSide { name, info, secret })
}

fn check_rule(
    side: Side,
    allowed: &[String],
    endpoint: &ResolvedSide,
    artifact_type: &str,
) -> Result<(), ArtifactProblem> {
    // Like the original: an empty list allows every Endpoint type.
    if allowed.is_empty() || allowed.contains(&endpoint.info.spec.type_) {
        return Ok(());
    }
    Err(ArtifactProblem::EndpointTypeNotAllowed {
        side,
        endpoint: endpoint.name.clone(),
        endpoint_type: endpoint.info.spec.type_.clone(),
        artifact_type: artifact_type.to_string(),
        allowed: allowed.join(", "),
    })
}

/// What every artifact of one Order is resolved against.
struct OrderScope<'a, L> {
    order: &'a Order,
    namespace: &'a str,
    order_name: &'a str,
    force_at: Option<&'a str>,
    lookup: &'a L,
}

/// Resolves one artifact, recording the generations and digests it used.
fn resolve_artifact<L: Lookup>(
    scope: &OrderScope<'_, L>,
    index: usize,
    artifact: &OrderArtifact,
    generations: &mut (BTreeMap<String, i64>, BTreeMap<String, String>),
) -> Result<DesiredWorkflow, ArtifactProblem> {
    let OrderScope {
        order,
        namespace,
        order_name,
        force_at,
        lookup,
    } = *scope;
    if artifact.type_.is_empty() {
        return Err(ArtifactProblem::TypeEmpty);
    }
    let flattened = flatten_spec(&artifact.spec)?;
    let (src_name, dst_name) = endpoint_refs(order, artifact);
    let src = resolve_side(Side::Source, src_name, namespace, lookup)?;
    let dst = resolve_side(Side::Destination, dst_name, namespace, lookup)?;
    let (type_spec, scope) = lookup
        .artifact_type(namespace, &artifact.type_)
        .ok_or_else(|| ArtifactProblem::TypeNotFound {
            name: artifact.type_.clone(),
            namespace: namespace.to_string(),
        })?;
    check_rule(
        Side::Source,
        &type_spec.rules.src_types,
        &src,
        &artifact.type_,
    )?;
    check_rule(
        Side::Destination,
        &type_spec.rules.dst_types,
        &dst,
        &artifact.type_,
    )?;

    for side in [&src, &dst] {
        generations
            .0
            .insert(side.name.clone(), side.info.generation);
        if let Some((name, digest)) = &side.secret {
            generations.1.insert(name.clone(), digest.clone());
        }
    }
    let identity = WorkflowIdentity {
        namespace,
        order_name,
        artifact_type: &artifact.type_,
        spec: &artifact.spec,
        src: SideIdentity {
            endpoint: src.name.clone(),
            generation: src.info.generation,
            secret: src.secret.clone(),
        },
        dst: SideIdentity {
            endpoint: dst.name.clone(),
            generation: dst.info.generation,
            secret: dst.secret.clone(),
        },
        force_at,
    };
    let hash = identity.hash();
    let mut template = type_spec.workflow_template_ref.clone();
    if scope == TypeScope::Cluster {
        // A cluster-wide type can only point at a cluster-wide template.
        template.cluster_scope = true;
    }
    let secret_ref = |s: &ResolvedSide| {
        s.secret
            .as_ref()
            .map(|(name, _)| LocalObjectReference::new(name.clone()))
    };
    Ok(DesiredWorkflow {
        index,
        name: workflow_name(order_name, &hash),
        hash,
        artifact_type: artifact.type_.clone(),
        spec: ArtifactWorkflowSpec {
            workflow_template_ref: template,
            parameters: workflow_parameters(
                &src.info.spec,
                &dst.info.spec,
                flattened,
                &type_spec.parameters,
            ),
            src_secret_ref: secret_ref(&src),
            dst_secret_ref: secret_ref(&dst),
        },
    })
}

/// Resolves every artifact of `order`. `force_at` is the `force-at` value in effect; it is part
/// of every name, so a new value gives new workflows.
pub fn resolve(order: &Order, force_at: Option<&str>, lookup: &impl Lookup) -> Resolution {
    let namespace = order.metadata.namespace.as_deref().unwrap_or_default();
    let order_name = order.metadata.name.as_deref().unwrap_or_default();
    let mut generations = (BTreeMap::new(), BTreeMap::new());
    let mut desired = Vec::new();
    let mut problems = Vec::new();
    let scope = OrderScope {
        order,
        namespace,
        order_name,
        force_at,
        lookup,
    };
    for (index, artifact) in order.spec.artifacts.iter().enumerate() {
        match resolve_artifact(&scope, index, artifact, &mut generations) {
            Ok(d) => desired.push(d),
            Err(p) => problems.push((index, p)),
        }
    }
    let desired = if order.spec.artifacts.is_empty() {
        Err(OrderProblem::NoArtifacts)
    } else if !problems.is_empty() {
        Err(OrderProblem::Artifacts(problems))
    } else {
        Ok(desired)
    };
    Resolution {
        desired,
        endpoint_generations: generations.0,
        secret_generations: generations.1,
    }
}

#[cfg(test)]
#[path = "resolve_tests.rs"]
mod tests;
