//! Kubernetes Events about Orders and ArtifactWorkflows, published through kube-runtime's
//! recorder (which also folds repeats into a series). Publishing is best effort: a refused
//! Event is logged and never fails a reconcile.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use crate::order::plan::{PlannedEvent, Severity};

/// Publishes Events for one controller.
#[derive(Clone)]
pub struct EventPublisher {
    recorder: Recorder,
}

impl EventPublisher {
    /// A publisher reporting as `controller` (and `instance`, when given).
    pub fn new(client: Client, controller: &str, instance: Option<String>) -> Self {
        let reporter = Reporter {
            controller: controller.to_string(),
            instance,
        };
        Self {
            recorder: Recorder::new(client, reporter),
        }
    }

    /// Publishes one Event about `regarding`.
    pub async fn publish(&self, regarding: &ObjectReference, event: &PlannedEvent, action: &str) {
        let ev = Event {
            type_: match event.severity {
                Severity::Normal => EventType::Normal,
                Severity::Warning => EventType::Warning,
            },
            reason: event.reason.to_string(),
            note: Some(event.note.clone()),
            action: action.to_string(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&ev, regarding).await {
            tracing::debug!(
                object = regarding.name.as_deref().unwrap_or_default(),
                reason = event.reason,
                %error,
                "cannot publish event"
            );
        }
    }
}
