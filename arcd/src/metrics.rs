//! Prometheus metrics of the daemon, served on `/metrics` by [`crate::health`].
//!
//! | metric | type | labels | recorded by |
//! |---|---|---|---|
//! | `arc_orders` | gauge | `phase` | [`crate::census`] (from the Orders' status) |
//! | `arc_artifactworkflows` | gauge | `phase`, `artifact_type` | [`crate::census`] |
//! | `arc_artifactworkflow_completions_total` | counter | `result` | [`crate::census`] (phase transitions it sees) |
//! | `arc_artifactworkflow_duration_seconds` | histogram | | [`crate::census`] (`completionTime - startTime`) |
//! | `arc_bytes_transferred_total` | counter | | [`crate::census`] (`status.bytesTransferred` of completed workflows) |
//! | `arc_reconcile_errors_total` | counter | `reason` | [`crate::daemon::census`], from the controllers' counters (`controllers::stats`) |
//! | `arc_sync_errors` | gauge | `file` | the file syncer: problems per resource file |
//! | `arc_sync_objects` | gauge | | the file syncer: objects applied from files |
//! | `arc_sync_last_success_timestamp_seconds` | gauge | | the file syncer |
//!
//! Everything derivable from the API objects is derived by watching them, so the figures are the
//! same whichever executor runs the workflows. What only the controllers know — failed
//! reconciles — comes from their process-wide counters. [`ReconcileErrors`] is also a handle
//! made only of `prometheus-client` and std types, so the controllers crate could record finer
//! reasons into it directly without depending on `arcd`.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A label set given as `(name, value)` pairs, e.g. `vec![("reason".into(), "NotFound".into())]`.
pub type Labels = Vec<(String, String)>;

/// `arc_reconcile_errors_total{reason}`: the controllers' handle. Clone it freely; record with
/// `errors.get_or_create(&vec![("reason".to_string(), reason.to_string())]).inc()`.
pub type ReconcileErrors = Family<Labels, Counter>;

/// A gauge holding a floating-point value (timestamps).
pub type FloatGauge = Gauge<f64, AtomicU64>;

/// Every metric of the daemon, registered in one registry. Cheap to clone (all handles are shared).
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    /// `arc_orders{phase}`: Orders by summarized phase (`Pending`, `Running`, `Succeeded`, `Failed`).
    pub orders: Family<Labels, Gauge>,
    /// `arc_artifactworkflows{phase,artifact_type}`: artifacts of all Orders by phase and type.
    pub artifact_workflows: Family<Labels, Gauge>,
    /// `arc_artifactworkflow_completions_total{result}`: workflows that reached a final phase.
    pub completions: Family<Labels, Counter>,
    /// `arc_artifactworkflow_duration_seconds`: run time of completed workflows.
    pub duration_seconds: Histogram,
    /// `arc_reconcile_errors_total{reason}`: failed reconciliations, recorded by the controllers.
    pub reconcile_errors: ReconcileErrors,
    /// `arc_bytes_transferred_total`: bytes moved by completed workflows.
    pub bytes_transferred: Counter,
    /// `arc_sync_errors{file}`: problems per resource file (files without problems are absent).
    pub sync_errors: Family<Labels, Gauge>,
    /// `arc_sync_objects`: objects currently applied from resource files.
    pub sync_objects: Gauge,
    /// `arc_sync_last_success_timestamp_seconds`: when a sync last finished without errors.
    pub sync_last_success: FloatGauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// A one-label set.
pub fn label(name: &str, value: impl Into<String>) -> Labels {
    vec![(name.to_string(), value.into())]
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let orders = Family::<Labels, Gauge>::default();
        registry.register("arc_orders", "Orders by phase", orders.clone());
        let artifact_workflows = Family::<Labels, Gauge>::default();
        registry.register(
            "arc_artifactworkflows",
            "Artifacts of all Orders by ArtifactWorkflow phase and artifact type",
            artifact_workflows.clone(),
        );
        let completions = Family::<Labels, Counter>::default();
        // The registry appends `_total` to counters.
        registry.register(
            "arc_artifactworkflow_completions",
            "ArtifactWorkflows that reached a final phase, by result",
            completions.clone(),
        );
        let duration_seconds = Histogram::new(exponential_buckets(1.0, 2.0, 16));
        registry.register(
            "arc_artifactworkflow_duration_seconds",
            "Run time of completed ArtifactWorkflows",
            duration_seconds.clone(),
        );
        let reconcile_errors = ReconcileErrors::default();
        registry.register(
            "arc_reconcile_errors",
            "Failed reconciliations by reason",
            reconcile_errors.clone(),
        );
        let bytes_transferred = Counter::default();
        registry.register(
            "arc_bytes_transferred",
            "Bytes moved by completed ArtifactWorkflows",
            bytes_transferred.clone(),
        );
        let sync_errors = Family::<Labels, Gauge>::default();
        registry.register(
            "arc_sync_errors",
            "Problems per resource file",
            sync_errors.clone(),
        );
        let sync_objects = Gauge::default();
        registry.register(
            "arc_sync_objects",
            "Objects applied from resource files",
            sync_objects.clone(),
        );
        let sync_last_success = FloatGauge::default();
        registry.register(
            "arc_sync_last_success_timestamp_seconds",
            "Unix time of the last resource-file sync without errors",
            sync_last_success.clone(),
        );
        Self {
            registry: Arc::new(registry),
            orders,
            artifact_workflows,
            completions,
            duration_seconds,
            reconcile_errors,
            bytes_transferred,
            sync_errors,
            sync_objects,
            sync_last_success,
        }
    }

    /// The metrics in the Prometheus text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_every_documented_metric() {
        let metrics = Metrics::new();
        metrics
            .orders
            .get_or_create(&label("phase", "Running"))
            .set(2);
        metrics
            .artifact_workflows
            .get_or_create(&vec![
                ("phase".into(), "Succeeded".into()),
                ("artifact_type".into(), "oci".into()),
            ])
            .set(3);
        metrics
            .completions
            .get_or_create(&label("result", "Succeeded"))
            .inc();
        metrics.duration_seconds.observe(4.5);
        metrics
            .reconcile_errors
            .get_or_create(&label("reason", "EndpointNotFound"))
            .inc();
        metrics.bytes_transferred.inc_by(1024);
        metrics
            .sync_errors
            .get_or_create(&label("file", "/etc/arc/orders/a.yaml"))
            .set(2);
        let text = metrics.encode();
        for line in [
            "arc_orders{phase=\"Running\"} 2",
            "arc_artifactworkflows{phase=\"Succeeded\",artifact_type=\"oci\"} 3",
            "arc_artifactworkflow_completions_total{result=\"Succeeded\"} 1",
            "arc_artifactworkflow_duration_seconds_count 1",
            "arc_reconcile_errors_total{reason=\"EndpointNotFound\"} 1",
            "arc_bytes_transferred_total 1024",
            "arc_sync_errors{file=\"/etc/arc/orders/a.yaml\"} 2",
            "arc_sync_objects 0",
        ] {
            assert!(text.contains(line), "missing `{line}` in:\n{text}");
        }
    }
}
