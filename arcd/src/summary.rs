//! Human-readable summaries of Orders and their artifacts (`arcd status`, `arcd run --once`) and
//! the JSON shape of `arcd status -o json`.

use std::fmt::Write as _;

use apiserver::types::{Order, WorkflowPhase};
use serde::Serialize;

use crate::daemon::census::order_phase;
use crate::syncer::SyncReport;

/// Longest message shown in a table cell.
pub const MESSAGE_WIDTH_CHARS: usize = 80;

/// One artifact of an Order, as shown.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactRow {
    /// Index in `spec.artifacts`.
    pub index: usize,
    /// The artifact type.
    #[serde(rename = "type")]
    pub type_: String,
    /// What is moved, e.g. the image or file name.
    pub what: String,
    /// The workflow phase (`Pending` until a workflow exists).
    pub phase: String,
    /// The workflow's name, when one exists.
    pub workflow: Option<String>,
    /// When the workflow finished.
    pub completion_time: Option<jiff::Timestamp>,
    /// The workflow's message.
    pub message: String,
}

/// One Order, as shown.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderRow {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Summarized phase: `Pending`, `Running`, `Succeeded`, `Failed` or `Invalid`.
    pub phase: String,
    /// The Order's status message.
    pub message: String,
    /// When the Order was created.
    pub created: Option<jiff::Timestamp>,
    /// Its artifacts.
    pub artifacts: Vec<ArtifactRow>,
}

impl OrderRow {
    /// Whether every artifact succeeded.
    pub fn all_succeeded(&self) -> bool {
        self.artifacts.iter().all(|a| a.phase == "Succeeded")
    }
}

/// What an artifact moves, for display: `spec.image`, `spec.chart`, `spec.url`, ... or the first
/// string value of its spec.
fn what(spec: &serde_json::Value) -> String {
    for key in ["image", "chart", "url", "file", "key", "name", "path"] {
        if let Some(value) = spec.get(key).and_then(serde_json::Value::as_str) {
            return value.to_string();
        }
    }
    spec.as_object()
        .and_then(|o| o.values().find_map(serde_json::Value::as_str))
        .unwrap_or_default()
        .to_string()
}

/// The rows of an Order.
pub fn order_row(order: &Order) -> OrderRow {
    let namespace = order.metadata.namespace.clone().unwrap_or_default();
    let name = order.metadata.name.clone().unwrap_or_default();
    let status = order.status.clone().unwrap_or_default();
    let mut artifacts: Vec<ArtifactRow> = order
        .spec
        .artifacts
        .iter()
        .enumerate()
        .map(|(index, artifact)| ArtifactRow {
            index,
            type_: artifact.type_.clone(),
            what: what(&artifact.spec),
            phase: "Pending".to_string(),
            workflow: None,
            completion_time: None,
            message: String::new(),
        })
        .collect();
    for (hash, record) in &status.artifact_workflows {
        let Some(row) = usize::try_from(record.artifact_index)
            .ok()
            .and_then(|i| artifacts.get_mut(i))
        else {
            continue;
        };
        row.phase = match record.phase {
            WorkflowPhase::Unknown => "Pending".to_string(),
            phase => phase.as_str().to_string(),
        };
        row.workflow = Some(format!("{name}-{hash}"));
        row.completion_time = record.completion_time.as_ref().map(|t| t.0);
        row.message = record.message.clone();
    }
    OrderRow {
        namespace,
        name,
        phase: order_phase(order).to_string(),
        message: status.message,
        created: order.metadata.creation_timestamp.as_ref().map(|t| t.0),
        artifacts,
    }
}

/// `5s`, `3m`, `2h`, `4d`: the age of `time` at `now`, as kubectl shows it.
pub fn age(time: Option<jiff::Timestamp>, now: jiff::Timestamp) -> String {
    let Some(time) = time else {
        return "-".to_string();
    };
    let seconds = now.duration_since(time).as_secs().max(0);
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

fn truncate(text: &str, width: usize) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() <= width && !text.contains('\n') {
        line.to_string()
    } else {
        let mut short: String = line.chars().take(width.saturating_sub(1)).collect();
        short.push('…');
        short
    }
}

/// A table of Orders, each followed by its artifacts.
pub fn render_orders(rows: &[OrderRow], now: jiff::Timestamp) -> String {
    if rows.is_empty() {
        return "No Orders.\n".to_string();
    }
    let mut table: Vec<[String; 5]> = vec![[
        "ORDER".into(),
        "PHASE".into(),
        "ARTIFACTS".into(),
        "AGE".into(),
        "MESSAGE".into(),
    ]];
    for row in rows {
        let succeeded = row
            .artifacts
            .iter()
            .filter(|a| a.phase == "Succeeded")
            .count();
        table.push([
            format!("{}/{}", row.namespace, row.name),
            row.phase.clone(),
            format!("{succeeded}/{}", row.artifacts.len()),
            age(row.created, now),
            truncate(&row.message, MESSAGE_WIDTH_CHARS),
        ]);
        for artifact in &row.artifacts {
            let what = if artifact.what.is_empty() {
                String::new()
            } else {
                format!(" {}", artifact.what)
            };
            table.push([
                format!("  #{} {}{what}", artifact.index, artifact.type_),
                artifact.phase.clone(),
                String::new(),
                age(artifact.completion_time, now),
                truncate(&artifact.message, MESSAGE_WIDTH_CHARS),
            ]);
        }
    }
    let widths: Vec<usize> = (0..5)
        .map(|c| {
            table
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &table {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c == 4 {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}   ", width = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The syncer's state, for `arcd status`.
pub fn render_sync(report: Option<&SyncReport>, now: jiff::Timestamp) -> String {
    let Some(report) = report else {
        return "Resource files: no sync recorded yet (is arcd running?)\n".to_string();
    };
    let dirs: Vec<String> = report
        .directories
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    let mut out = format!(
        "Resource files: {} files, {} objects, last sync {} ago ({})\n",
        report.files,
        report.objects,
        age(report.finished_at, now),
        dirs.join(", ")
    );
    if let Some(error) = &report.api_error {
        let _ = writeln!(
            out,
            "  API server unreachable during the last sync: {error}"
        );
    }
    for error in &report.errors {
        let _ = writeln!(out, "  {error}");
    }
    out
}

#[cfg(test)]
mod tests {
    use apiserver::types::{OrderArtifact, OrderArtifactWorkflowStatus, OrderSpec, OrderStatus};

    use super::*;

    #[test]
    fn rows_and_table() {
        let mut order = Order::new(
            "nightly",
            OrderSpec {
                artifacts: vec![
                    OrderArtifact {
                        type_: "oci".into(),
                        spec: serde_json::json!({"image": "library/alpine:3.20"}),
                        ..Default::default()
                    },
                    OrderArtifact {
                        type_: "file".into(),
                        spec: serde_json::json!({"url": "http://x/a.tgz"}),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
        );
        order.metadata.namespace = Some("default".into());
        let mut status = OrderStatus {
            message: "1/2 succeeded, 1 failed".into(),
            ..Default::default()
        };
        status.artifact_workflows.insert(
            "0123456789abcdef".into(),
            OrderArtifactWorkflowStatus {
                artifact_index: 0,
                phase: WorkflowPhase::Succeeded,
                ..Default::default()
            },
        );
        status.artifact_workflows.insert(
            "fedcba9876543210".into(),
            OrderArtifactWorkflowStatus {
                artifact_index: 1,
                phase: WorkflowPhase::Failed,
                message: "digest mismatch\nmore".into(),
                ..Default::default()
            },
        );
        order.status = Some(status);
        let row = order_row(&order);
        assert!(!row.all_succeeded());
        assert_eq!(
            row.artifacts[0].workflow.as_deref(),
            Some("nightly-0123456789abcdef")
        );
        let table = render_orders(&[row], jiff::Timestamp::now());
        assert!(table.starts_with("ORDER"), "{table}");
        assert!(table.contains("default/nightly"), "{table}");
        assert!(table.contains("1/2"), "{table}");
        assert!(table.contains("#0 oci library/alpine:3.20"), "{table}");
        assert!(
            table.contains("Failed") && table.contains("digest mismatch…"),
            "{table}"
        );
    }

    #[test]
    fn ages() {
        let now = jiff::Timestamp::now();
        assert_eq!(
            age(Some(now - jiff::SignedDuration::from_secs(5)), now),
            "5s"
        );
        assert_eq!(
            age(Some(now - jiff::SignedDuration::from_secs(600)), now),
            "10m"
        );
        assert_eq!(
            age(Some(now - jiff::SignedDuration::from_secs(3 * 86_400)), now),
            "3d"
        );
        assert_eq!(age(None, now), "-");
    }
}
