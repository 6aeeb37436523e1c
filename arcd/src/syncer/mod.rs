//! The file syncer: keeps the API server in line with the resource files in the configured
//! directories.
//!
//! - File events (inotify through `notify`, debounced) are hints: the files they name are read
//!   again, whatever the event said. A full rescan runs at start, every `rescanInterval`, on
//!   reload and after events the watcher could not follow (overflow, directories appearing).
//! - Each pass reads changed files ([`files`]), combines all files into a plan, applies it
//!   ([`apply`]) and reports ([`report`]): per-file problems with positions go to the log (when
//!   they change), to `DATA_DIR/sync-status.json` for `arcd status`, and to the metrics.
//! - An invalid or unreadable file never deletes anything: the objects of its last good version
//!   stay as they are.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use notify::RecursiveMode;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

pub mod apply;
pub mod files;
pub mod report;
pub mod scan;

use apply::{ApiUnavailable, Applier};
use files::FileTable;
pub use report::SyncReport;

use crate::config::ResourceSettings;
use crate::diagnostic::Diagnostic;
use crate::metrics::{Metrics, label};

/// After a pass that could not reach the API server, the next try waits this long at first
/// (doubling up to [`RETRY_MAX_SECS`]).
pub const RETRY_INITIAL_MILLIS: u64 = 500;
/// The longest wait between tries.
pub const RETRY_MAX_SECS: u64 = 30;

/// What the syncer watches and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncerSettings {
    /// Resource directories.
    pub directories: Vec<PathBuf>,
    /// Namespace for objects that name none.
    pub default_namespace: String,
    /// Full rescan period.
    pub rescan_interval: Duration,
    /// How long file events are collected before files are re-read.
    pub debounce: Duration,
}

impl From<&ResourceSettings> for SyncerSettings {
    fn from(settings: &ResourceSettings) -> Self {
        Self {
            directories: settings.directories.clone(),
            default_namespace: settings.default_namespace.to_string(),
            rescan_interval: settings.rescan_interval,
            debounce: settings.debounce,
        }
    }
}

/// Requests to a running syncer.
#[derive(Debug)]
pub enum Command {
    /// Rescan everything (with new settings, after a reload) and answer with the report.
    Resync {
        /// New settings, if they changed.
        settings: Option<SyncerSettings>,
        /// Receives the report of the pass.
        done: oneshot::Sender<SyncReport>,
    },
}

/// A handle to ask a running syncer for things.
#[derive(Clone, Debug)]
pub struct SyncerHandle {
    commands: mpsc::Sender<Command>,
    reports: watch::Receiver<Option<SyncReport>>,
}

impl SyncerHandle {
    /// Rescans everything (optionally with new settings) and returns the report; `None` if the
    /// syncer has stopped.
    pub async fn resync(&self, settings: Option<SyncerSettings>) -> Option<SyncReport> {
        let (done, answer) = oneshot::channel();
        self.commands
            .send(Command::Resync { settings, done })
            .await
            .ok()?;
        answer.await.ok()
    }

    /// The latest report (`None` before the first pass finished).
    pub fn latest(&self) -> Option<SyncReport> {
        self.reports.borrow().clone()
    }

    /// A receiver of reports, to wait for the first pass or follow changes.
    pub fn reports(&self) -> watch::Receiver<Option<SyncReport>> {
        self.reports.clone()
    }
}

/// What a pass looks at.
#[derive(Clone, Debug)]
pub enum Scope {
    /// Every file, and every managed object on the server.
    Full,
    /// These paths (from file events).
    Paths(BTreeSet<PathBuf>),
}

/// The syncer.
pub struct Syncer {
    settings: SyncerSettings,
    table: FileTable,
    applier: Applier,
    metrics: Option<Metrics>,
    status_file: Option<PathBuf>,
    logged: BTreeMap<PathBuf, Vec<Diagnostic>>,
    last_api_error: Option<String>,
}

impl std::fmt::Debug for Syncer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Syncer")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Syncer {
    /// A syncer applying through `client`.
    pub fn new(client: kube::Client, settings: SyncerSettings) -> Self {
        Self {
            settings,
            table: FileTable::default(),
            applier: Applier::new(client),
            metrics: None,
            status_file: None,
            logged: BTreeMap::new(),
            last_api_error: None,
        }
    }

    /// Records the `arc_sync_*` metrics.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Writes every report to `path` (for `arcd status`).
    pub fn with_status_file(mut self, path: PathBuf) -> Self {
        self.status_file = Some(path);
        self
    }

    /// Runs one pass. `Err` when the API server could not be reached (nothing was applied; the
    /// report says so too).
    pub async fn sync(&mut self, scope: Scope) -> Result<SyncReport, (SyncReport, ApiUnavailable)> {
        let started = Instant::now();
        let full = matches!(scope, Scope::Full);
        let mut touched = None;
        match &scope {
            Scope::Full => {
                self.table
                    .full_refresh(&self.settings.directories, &self.settings.default_namespace);
            }
            Scope::Paths(paths) => touched = self.refresh_paths(paths),
        }
        let plan = self.table.plan();
        let result = if full {
            self.applier.sync_full(&plan).await
        } else {
            self.applier.sync_incremental(&plan, touched.as_ref()).await
        };

        let mut errors: Vec<Diagnostic> = Vec::new();
        for entry in self.table.files().values() {
            errors.extend(entry.problems.iter().cloned());
        }
        for problems in plan.problems.values() {
            errors.extend(problems.iter().cloned());
        }
        for (dir, reason) in self.table.unreadable_dirs() {
            errors.push(Diagnostic::whole_file(
                dir.clone(),
                format!("{reason}; objects from its files are kept as they are"),
            ));
        }
        let (outcome, api_error) = match result {
            Ok(outcome) => (Some(outcome), None),
            Err(error) => (None, Some(error)),
        };
        if let Some(outcome) = &outcome {
            for problems in outcome.problems.values() {
                errors.extend(problems.iter().cloned());
            }
        }
        errors.sort();
        errors.dedup();
        let report = SyncReport {
            finished_at: Some(jiff::Timestamp::now()),
            duration_millis: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            full,
            directories: self.settings.directories.clone(),
            files: self.table.files().len(),
            objects: self.applier.applied_count(),
            created: outcome.as_ref().map_or(0, |o| o.created),
            updated: outcome.as_ref().map_or(0, |o| o.updated),
            deleted: outcome.as_ref().map_or(0, |o| o.deleted),
            errors,
            api_error: api_error.as_ref().map(|e| format!("{e:#}")),
        };
        self.publish(&report);
        match api_error {
            None => Ok(report),
            Some(error) => Err((report, error)),
        }
    }

    /// Re-reads the hinted files. Returns the paths looked at, or `None` when a directory
    /// changed and everything was walked again.
    fn refresh_paths(&mut self, paths: &BTreeSet<PathBuf>) -> Option<HashSet<PathBuf>> {
        use std::ops::Bound::{Excluded, Unbounded};
        let mut touched = HashSet::new();
        for path in paths {
            let Some(root) = self
                .settings
                .directories
                .iter()
                .find(|dir| path.starts_with(dir))
            else {
                continue;
            };
            // Paths sort component-wise, so files below `path` come right after it.
            let has_known_children = self
                .table
                .files()
                .range::<std::path::Path, _>((Excluded(path.as_path()), Unbounded))
                .next()
                .is_some_and(|(known, _)| known.starts_with(path));
            if path.is_dir() || has_known_children {
                // A directory appeared, vanished or was renamed.
                self.table
                    .full_refresh(&self.settings.directories, &self.settings.default_namespace);
                return None;
            }
            if scan::is_resource_path(root, path) {
                self.table
                    .refresh_file(path, &self.settings.default_namespace, true);
                touched.insert(path.clone());
            }
        }
        Some(touched)
    }

    /// Logs what changed, updates metrics and the status file.
    fn publish(&mut self, report: &SyncReport) {
        let mut by_file: BTreeMap<PathBuf, Vec<Diagnostic>> = BTreeMap::new();
        for error in &report.errors {
            by_file
                .entry(error.file.clone())
                .or_default()
                .push(error.clone());
        }
        for (file, errors) in &by_file {
            if self.logged.get(file) != Some(errors) {
                for error in errors {
                    tracing::error!(file = %file.display(), "{error}");
                }
            }
        }
        for file in self.logged.keys() {
            if !by_file.contains_key(file) {
                tracing::info!(file = %file.display(), "{}: problems resolved", file.display());
            }
        }
        if report.api_error != self.last_api_error {
            if let Some(error) = &report.api_error {
                tracing::warn!("cannot sync resource files: {error}; retrying");
            }
            self.last_api_error = report.api_error.clone();
        }
        if report.created + report.updated + report.deleted > 0 {
            tracing::info!(
                created = report.created,
                updated = report.updated,
                deleted = report.deleted,
                objects = report.objects,
                "resource files synced"
            );
        }
        if let Some(metrics) = &self.metrics {
            for file in self.logged.keys() {
                if !by_file.contains_key(file) {
                    metrics
                        .sync_errors
                        .remove(&label("file", file.display().to_string()));
                }
            }
            for (file, errors) in &by_file {
                metrics
                    .sync_errors
                    .get_or_create(&label("file", file.display().to_string()))
                    .set(i64::try_from(errors.len()).unwrap_or(i64::MAX));
            }
            metrics
                .sync_objects
                .set(i64::try_from(report.objects).unwrap_or(i64::MAX));
            if report.is_clean() {
                let now = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
                metrics.sync_last_success.set(now);
            }
        }
        self.logged = by_file;
        if let Some(path) = &self.status_file
            && let Err(error) = report.write_to(path)
        {
            tracing::warn!(%error, path = %path.display(), "cannot write the sync status file");
        }
    }

    /// Starts the syncer as a task: a first full pass, then passes on file events, commands and
    /// every `rescanInterval`, until `cancel` fires.
    pub fn spawn(self, cancel: CancellationToken) -> (SyncerHandle, tokio::task::JoinHandle<()>) {
        let (commands_tx, commands_rx) = mpsc::channel(4);
        let (reports_tx, reports_rx) = watch::channel(None);
        let task = tokio::spawn(self.run(commands_rx, reports_tx, cancel));
        (
            SyncerHandle {
                commands: commands_tx,
                reports: reports_rx,
            },
            task,
        )
    }

    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        reports: watch::Sender<Option<SyncReport>>,
        cancel: CancellationToken,
    ) {
        let (events_tx, mut events_rx) = mpsc::unbounded_channel::<Hint>();
        let mut watcher = Watcher::start(&self.settings, events_tx.clone());
        let mut pending: Option<Scope> = Some(Scope::Full);
        let mut retry_delay = Duration::from_millis(RETRY_INITIAL_MILLIS);
        let mut next_rescan = tokio::time::Instant::now() + self.settings.rescan_interval;
        let mut retry_at: Option<tokio::time::Instant> = None;
        loop {
            if let Some(scope) = pending.take() {
                let full = matches!(scope, Scope::Full);
                let result = self.sync(scope).await;
                let report = match result {
                    Ok(report) => {
                        retry_delay = Duration::from_millis(RETRY_INITIAL_MILLIS);
                        retry_at = None;
                        report
                    }
                    Err((report, _)) => {
                        retry_at = Some(tokio::time::Instant::now() + retry_delay);
                        retry_delay = (retry_delay * 2).min(Duration::from_secs(RETRY_MAX_SECS));
                        report
                    }
                };
                if full {
                    next_rescan = tokio::time::Instant::now() + self.settings.rescan_interval;
                    watcher.refresh(&self.settings, &events_tx);
                }
                reports.send_replace(Some(report));
            }
            let retry = async {
                match retry_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep_until(next_rescan) => pending = Some(Scope::Full),
                () = retry => pending = Some(Scope::Full),
                command = commands.recv() => match command {
                    None => break,
                    Some(Command::Resync { settings, done }) => {
                        if let Some(settings) = settings {
                            if settings.directories != self.settings.directories {
                                self.table.retain_under(&settings.directories);
                            }
                            let directories_changed = settings.directories != self.settings.directories;
                            self.settings = settings;
                            if directories_changed {
                                watcher = Watcher::start(&self.settings, events_tx.clone());
                            }
                        }
                        let report = match self.sync(Scope::Full).await {
                            Ok(report) => report,
                            Err((report, _)) => {
                                retry_at = Some(tokio::time::Instant::now() + retry_delay);
                                report
                            }
                        };
                        next_rescan = tokio::time::Instant::now() + self.settings.rescan_interval;
                        reports.send_replace(Some(report.clone()));
                        let _ = done.send(report);
                    }
                },
                hint = events_rx.recv() => {
                    let mut scope = Hint::into_scope(hint);
                    while let Ok(more) = events_rx.try_recv() {
                        scope = merge(scope, Hint::into_scope(Some(more)));
                    }
                    if let Some(scope) = scope {
                        // While the API server is unreachable the retry does a full pass anyway.
                        pending = Some(if retry_at.is_some() { Scope::Full } else { scope });
                    }
                }
            }
        }
        tracing::debug!("file syncer stopped");
    }
}

/// What the watcher passes on.
#[derive(Debug)]
enum Hint {
    Paths(BTreeSet<PathBuf>),
    Rescan,
}

impl Hint {
    fn into_scope(hint: Option<Hint>) -> Option<Scope> {
        match hint? {
            Hint::Paths(paths) if paths.is_empty() => None,
            Hint::Paths(paths) => Some(Scope::Paths(paths)),
            Hint::Rescan => Some(Scope::Full),
        }
    }
}

fn merge(a: Option<Scope>, b: Option<Scope>) -> Option<Scope> {
    match (a, b) {
        (None, x) | (x, None) => x,
        (Some(Scope::Full), _) | (_, Some(Scope::Full)) => Some(Scope::Full),
        (Some(Scope::Paths(mut a)), Some(Scope::Paths(b))) => {
            a.extend(b);
            Some(Scope::Paths(a))
        }
    }
}

/// Whether an event may mean changed content. Opening and reading a file are events too — and
/// the syncer reads the files it is told about, so passing those on would make it chase its own
/// reads forever.
fn is_change(kind: &notify::EventKind) -> bool {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode};
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// The file watcher: a debounced recursive inotify watch on every resource directory that exists.
struct Watcher {
    _debouncer: Option<
        notify_debouncer_full::Debouncer<
            notify::RecommendedWatcher,
            notify_debouncer_full::RecommendedCache,
        >,
    >,
    watched: Vec<PathBuf>,
    canonical: Vec<Option<PathBuf>>,
}

impl Watcher {
    fn start(settings: &SyncerSettings, events: mpsc::UnboundedSender<Hint>) -> Self {
        let handler = move |result: notify_debouncer_full::DebounceEventResult| {
            let hint = match result {
                Ok(events) => {
                    if events.iter().any(|e| e.need_rescan()) {
                        Hint::Rescan
                    } else {
                        Hint::Paths(
                            events
                                .into_iter()
                                .filter(|e| is_change(&e.event.kind))
                                .flat_map(|e| e.event.paths)
                                .collect(),
                        )
                    }
                }
                Err(errors) => {
                    for error in errors {
                        tracing::warn!(%error, "file watcher error; rescanning");
                    }
                    Hint::Rescan
                }
            };
            let _ = events.send(hint);
        };
        let mut debouncer = match notify_debouncer_full::new_debouncer(
            settings.debounce,
            None,
            handler,
        ) {
            Ok(debouncer) => debouncer,
            Err(error) => {
                tracing::warn!(%error, "cannot watch resource directories; relying on periodic rescans");
                return Self {
                    _debouncer: None,
                    watched: Vec::new(),
                    canonical: Vec::new(),
                };
            }
        };
        let mut watched = Vec::new();
        for dir in &settings.directories {
            if !dir.is_dir() {
                continue; // Reported by the scan; watched once it exists.
            }
            match debouncer.watch(dir, RecursiveMode::Recursive) {
                Ok(()) => watched.push(dir.clone()),
                Err(error) => {
                    tracing::warn!(%error, dir = %dir.display(), "cannot watch directory; relying on periodic rescans")
                }
            }
        }
        let canonical = watched
            .iter()
            .map(|d| std::fs::canonicalize(d).ok())
            .collect();
        Self {
            _debouncer: Some(debouncer),
            watched,
            canonical,
        }
    }

    /// Restarts the watch when a directory that was missing now exists.
    fn refresh(&mut self, settings: &SyncerSettings, events: &mpsc::UnboundedSender<Hint>) {
        // Compare real paths too: a resource directory that is a symlink may have been switched
        // to another target (a common way to deploy a new set of files atomically).
        let existing: Vec<PathBuf> = settings
            .directories
            .iter()
            .filter(|d| d.is_dir())
            .cloned()
            .collect();
        let canonical: Vec<Option<PathBuf>> = existing
            .iter()
            .map(|d| std::fs::canonicalize(d).ok())
            .collect();
        if existing != self.watched || canonical != self.canonical {
            *self = Self::start(settings, events.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind};

    use super::is_change;

    #[test]
    fn reads_are_not_changes() {
        assert!(!is_change(&EventKind::Access(AccessKind::Open(
            AccessMode::Read
        ))));
        assert!(!is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(is_change(&EventKind::Create(CreateKind::File)));
        assert!(is_change(&EventKind::Modify(ModifyKind::Any)));
    }
}
