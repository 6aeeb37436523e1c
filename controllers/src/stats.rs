//! Process-wide counters of the controllers' work — reconciles and failed reconciles per
//! controller — for the daemon's metrics and the benchmark.

use std::sync::atomic::{AtomicU64, Ordering};

static ORDER_RECONCILES: AtomicU64 = AtomicU64::new(0);
static ORDER_ERRORS: AtomicU64 = AtomicU64::new(0);
static WORKFLOW_RECONCILES: AtomicU64 = AtomicU64::new(0);
static WORKFLOW_ERRORS: AtomicU64 = AtomicU64::new(0);

/// A snapshot of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Order reconciles run.
    pub order_reconciles: u64,
    /// Order reconciles that failed (and were retried).
    pub order_errors: u64,
    /// ArtifactWorkflow reconciles run.
    pub workflow_reconciles: u64,
    /// ArtifactWorkflow reconciles that failed (and were retried).
    pub workflow_errors: u64,
}

impl Stats {
    /// Reconciles of both controllers.
    pub fn reconciles(&self) -> u64 {
        self.order_reconciles + self.workflow_reconciles
    }
}

/// The counters so far.
pub fn snapshot() -> Stats {
    Stats {
        order_reconciles: ORDER_RECONCILES.load(Ordering::Relaxed),
        order_errors: ORDER_ERRORS.load(Ordering::Relaxed),
        workflow_reconciles: WORKFLOW_RECONCILES.load(Ordering::Relaxed),
        workflow_errors: WORKFLOW_ERRORS.load(Ordering::Relaxed),
    }
}

pub(crate) fn order_reconciled() {
    ORDER_RECONCILES.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn order_failed() {
    ORDER_ERRORS.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn workflow_reconciled() {
    WORKFLOW_RECONCILES.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn workflow_failed() {
    WORKFLOW_ERRORS.fetch_add(1, Ordering::Relaxed);
}
