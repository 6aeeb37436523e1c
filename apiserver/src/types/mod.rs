//! The `arc.opendefense.cloud/v1alpha1` resource types.
//!
//! Field names follow the original ARC API so existing YAML keeps working. The OpenAPI schemas
//! the server publishes and validates against are generated from these structs (through
//! `schemars`, as `kube-derive` does for CRDs), so documentation, validation and the typed
//! clients never drift apart.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod schema;
pub use schema::preserve_unknown_fields;

/// The API group of every ARC kind.
pub const GROUP: &str = "arc.opendefense.cloud";
/// The only served version.
pub const VERSION: &str = "v1alpha1";
/// `GROUP/VERSION`, the `apiVersion` of every ARC object.
pub const API_VERSION: &str = "arc.opendefense.cloud/v1alpha1";

/// Annotation whose every new value makes the Order controller re-run all of an Order's artifacts once.
pub const FORCE_AT_ANNOTATION: &str = "arc.opendefense.cloud/force-at";

/// A reference to another object in the same namespace, by name.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub struct LocalObjectReference {
    /// Name of the referenced object. Empty means "not set".
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

impl LocalObjectReference {
    /// A reference to `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }

    /// Whether the reference names anything.
    pub fn is_set(&self) -> bool {
        !self.name.is_empty()
    }
}

// ------------------------------------------------------------------------------------------------
// Endpoint
// ------------------------------------------------------------------------------------------------

/// How an Endpoint may be used.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum EndpointUsage {
    /// Artifacts may only be pulled from this Endpoint (it can be a source, never a destination).
    PullOnly,
    /// Artifacts may only be pushed to this Endpoint (it can be a destination, never a source).
    PushOnly,
    /// The Endpoint can be both source and destination.
    #[default]
    All,
}

impl EndpointUsage {
    /// Whether an Endpoint with this usage may serve as a source.
    pub fn allows_pull(self) -> bool {
        matches!(self, Self::PullOnly | Self::All)
    }

    /// Whether an Endpoint with this usage may serve as a destination.
    pub fn allows_push(self) -> bool {
        matches!(self, Self::PushOnly | Self::All)
    }
}

/// Where artifacts come from or go to: a registry, repository, bucket, web server or directory.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "arc.opendefense.cloud",
    version = "v1alpha1",
    kind = "Endpoint",
    namespaced,
    status = "EndpointStatus",
    shortname = "aep",
    category = "arc",
    doc = "An Endpoint is a place artifacts are pulled from or pushed to: an OCI registry, a Helm repository, an HTTP server, an S3 bucket, a local directory or an offline bundle."
)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSpec {
    /// The kind of system behind `remoteURL`: `oci`, `helm`, `http`, `s3`, `dir` or `bundle`.
    /// ArtifactTypes list the Endpoint types they accept as source and destination.
    #[serde(rename = "type")]
    pub type_: String,
    /// The URL used to reach the Endpoint, e.g. `https://registry.example.com/team`,
    /// `http://127.0.0.1:5000`, `s3://bucket/prefix?endpoint=http://127.0.0.1:9000` or `file:///srv/mirror`.
    #[serde(rename = "remoteURL")]
    pub remote_url: String,
    /// The Secret in the same namespace that holds the Endpoint's credentials (keys `username`,
    /// `password`, `token`, `.dockerconfigjson`, `accessKeyID`, `secretAccessKey`, `ca.crt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// How the Endpoint may be used: `PullOnly`, `PushOnly` or `All`.
    #[serde(default)]
    pub usage: EndpointUsage,
}

/// The observed state of an Endpoint.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointStatus {
    /// The latest observations of the Endpoint's state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` the conditions were computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

// ------------------------------------------------------------------------------------------------
// ArtifactType and ClusterArtifactType
// ------------------------------------------------------------------------------------------------

/// Which Endpoint types an artifact type may be moved between.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactTypeRules {
    /// Endpoint types allowed as source.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub src_types: Vec<String>,
    /// Endpoint types allowed as destination.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dst_types: Vec<String>,
}

/// A named string parameter handed to a workflow.
#[derive(
    Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema,
)]
pub struct ArtifactWorkflowParameter {
    /// The parameter's name, e.g. `specImage`.
    pub name: String,
    /// The parameter's value; always a string.
    #[serde(default)]
    pub value: String,
}

/// The workflow template that processes an artifact type.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowTemplateRef {
    /// The template's name. The local executor runs the built-in pipeline of that name
    /// (`arc-oci`, `arc-helm`, `arc-file`); the Argo executor references the WorkflowTemplate.
    pub name: String,
    /// Whether `name` refers to an Argo ClusterWorkflowTemplate rather than a namespaced WorkflowTemplate.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cluster_scope: bool,
}

/// How one type of artifact is processed. A namespaced ArtifactType takes precedence over a
/// ClusterArtifactType of the same name.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "arc.opendefense.cloud",
    version = "v1alpha1",
    kind = "ArtifactType",
    namespaced,
    shortname = "atype",
    category = "arc",
    doc = "An ArtifactType says how artifacts of one type are moved in its namespace: which Endpoint types they may come from and go to, and which workflow template moves them."
)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactTypeSpec {
    /// Which Endpoint types this artifact type accepts as source and destination.
    #[serde(default)]
    pub rules: ArtifactTypeRules,
    /// Extra workflow parameters. They override parameters derived from the artifact.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<ArtifactWorkflowParameter>,
    /// The workflow template that moves artifacts of this type.
    pub workflow_template_ref: WorkflowTemplateRef,
}

/// A cluster-wide artifact type, used when no namespaced ArtifactType of the same name exists.
/// Its spec is exactly an ArtifactType's.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "arc.opendefense.cloud",
    version = "v1alpha1",
    kind = "ClusterArtifactType",
    shortname = "catype",
    category = "arc",
    doc = "A ClusterArtifactType says how artifacts of one type are moved in every namespace that has no ArtifactType of the same name."
)]
pub struct ClusterArtifactTypeSpec {
    /// The artifact type's rules, parameters and workflow template.
    #[serde(flatten)]
    pub inner: ArtifactTypeSpec,
}

impl std::ops::Deref for ClusterArtifactTypeSpec {
    type Target = ArtifactTypeSpec;
    fn deref(&self) -> &ArtifactTypeSpec {
        &self.inner
    }
}

// ------------------------------------------------------------------------------------------------
// Order
// ------------------------------------------------------------------------------------------------

/// Endpoints used by every artifact of an Order that does not name its own.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderDefaults {
    /// The default source Endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_ref: Option<LocalObjectReference>,
    /// The default destination Endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_ref: Option<LocalObjectReference>,
}

/// One artifact to move; it becomes one ArtifactWorkflow.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderArtifact {
    /// The ArtifactType (or ClusterArtifactType) that processes this artifact, e.g. `oci`.
    #[serde(rename = "type")]
    pub type_: String,
    /// The source Endpoint; falls back to `spec.defaults.srcRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_ref: Option<LocalObjectReference>,
    /// The destination Endpoint; falls back to `spec.defaults.dstRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_ref: Option<LocalObjectReference>,
    /// Free-form parameters for the workflow, e.g. `{image: library/alpine:3.20}`. They are
    /// flattened into camelCase workflow parameters: `spec.image` becomes `specImage`.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    #[schemars(schema_with = "preserve_unknown_fields")]
    pub spec: serde_json::Value,
}

/// What to move: a list of artifacts, with default Endpoints.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "arc.opendefense.cloud",
    version = "v1alpha1",
    kind = "Order",
    namespaced,
    status = "OrderStatus",
    shortname = "ord",
    category = "arc",
    doc = "An Order lists artifacts to move across the air gap. The Order controller turns each artifact into an ArtifactWorkflow and reports their progress in the Order's status."
)]
#[serde(rename_all = "camelCase")]
pub struct OrderSpec {
    /// Default source and destination Endpoints for all artifacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<OrderDefaults>,
    /// The artifacts to move.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<OrderArtifact>,
    /// Seconds after which a completed ArtifactWorkflow is deleted. Its result stays recorded in
    /// the Order's status and it is not run again. Unset: completed workflows are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds_after_completion: Option<i64>,
}

/// The state of one ArtifactWorkflow, as recorded in its Order.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderArtifactWorkflowStatus {
    /// The index of the artifact in `spec.artifacts`.
    pub artifact_index: i64,
    /// The workflow's phase.
    #[serde(default, skip_serializing_if = "WorkflowPhase::is_unknown")]
    pub phase: WorkflowPhase,
    /// A human-readable message, e.g. why the workflow failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When the workflow finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
}

/// The observed state of an Order.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderStatus {
    /// The Order's ArtifactWorkflows, by the 16-hex hash in their names.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub artifact_workflows: BTreeMap<String, OrderArtifactWorkflowStatus>,
    /// A summary such as `3/5 succeeded, 1 running, 1 failed`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The generation of every Endpoint the Order uses, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub endpoint_generations: BTreeMap<String, i64>,
    /// A digest of the data of every Secret the Order uses, by name (Secrets carry no generation).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secret_generations: BTreeMap<String, String>,
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The last value of the `arc.opendefense.cloud/force-at` annotation that was acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_force_at: Option<String>,
    /// Conditions; `Ready` is True once every artifact succeeded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

// ------------------------------------------------------------------------------------------------
// ArtifactWorkflow
// ------------------------------------------------------------------------------------------------

/// The phase of an ArtifactWorkflow (the same words as Argo Workflows).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum WorkflowPhase {
    /// Not yet picked up by an executor.
    #[default]
    #[serde(rename = "")]
    Unknown,
    /// Accepted by an executor, waiting for a slot.
    Pending,
    /// Moving the artifact.
    Running,
    /// The artifact was moved and verified.
    Succeeded,
    /// The artifact could not be moved (bad input, refused by policy, verification failed).
    Failed,
    /// The executor itself failed (crash, lost pod).
    Error,
}

impl WorkflowPhase {
    /// Whether the phase is final.
    pub fn is_completed(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Error)
    }

    /// Whether the workflow is waiting or running.
    pub fn is_in_progress(self) -> bool {
        matches!(self, Self::Pending | Self::Running)
    }

    /// Whether no executor has picked the workflow up yet.
    pub fn is_unknown(&self) -> bool {
        matches!(self, Self::Unknown)
    }

    /// The phase as it appears in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "",
            Self::Pending => "Pending",
            Self::Running => "Running",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
            Self::Error => "Error",
        }
    }
}

/// One artifact to move, fully resolved: the template and its parameters.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "arc.opendefense.cloud",
    version = "v1alpha1",
    kind = "ArtifactWorkflow",
    namespaced,
    status = "ArtifactWorkflowStatus",
    shortname = "awf",
    category = "arc",
    doc = "An ArtifactWorkflow moves one artifact of an Order. The Order controller creates it with every parameter resolved; an executor (local worker process or Argo Workflow) runs it."
)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactWorkflowSpec {
    /// The workflow template (built-in pipeline) that moves the artifact.
    pub workflow_template_ref: WorkflowTemplateRef,
    /// The parameters handed to the workflow: `srcType`, `srcRemoteURL`, `srcSecret`, `dstType`,
    /// `dstRemoteURL`, `dstSecret` and the flattened artifact spec (`specImage`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<ArtifactWorkflowParameter>,
    /// The Secret with the source's credentials, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_secret_ref: Option<LocalObjectReference>,
    /// The Secret with the destination's credentials, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_secret_ref: Option<LocalObjectReference>,
}

/// The observed state of an ArtifactWorkflow.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactWorkflowStatus {
    /// The phase: empty, `Pending`, `Running`, `Succeeded`, `Failed` or `Error`.
    #[serde(default, skip_serializing_if = "WorkflowPhase::is_unknown")]
    pub phase: WorkflowPhase,
    /// A human-readable message; on failure the tail of the worker's log.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When an executor started the workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When the workflow finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// Bytes the worker transferred.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_transferred: Option<i64>,
    /// The digests the worker pushed to the destination (manifests and blobs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pushed_digests: Vec<String>,
    /// The executor's own record of the run, e.g. the name of the Argo Workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor_ref: Option<String>,
}

#[cfg(test)]
mod tests;
