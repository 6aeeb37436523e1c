//! The syncer's state as others see it: a [`SyncReport`] after every pass, kept by the daemon,
//! written to `DATA_DIR/sync-status.json` (what `arcd status` shows, since file errors are not
//! API objects) and turned into the `arc_sync_*` metrics.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::diagnostic::Diagnostic;

/// The name of the status file in the data directory.
pub const STATUS_FILE_NAME: &str = "sync-status.json";

/// The outcome of the latest sync pass.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    /// When the pass finished.
    pub finished_at: Option<jiff::Timestamp>,
    /// How long it took, in milliseconds.
    pub duration_millis: u64,
    /// Whether it was a full rescan (rather than a re-read of changed files).
    pub full: bool,
    /// The directories watched.
    pub directories: Vec<PathBuf>,
    /// Resource files known.
    pub files: usize,
    /// Objects currently applied from files.
    pub objects: usize,
    /// Objects created in this pass.
    pub created: usize,
    /// Objects updated in this pass.
    pub updated: usize,
    /// Objects deleted in this pass.
    pub deleted: usize,
    /// Every current problem, by file and position.
    pub errors: Vec<Diagnostic>,
    /// Set when the API server could not be reached: nothing was applied in this pass.
    pub api_error: Option<String>,
}

impl SyncReport {
    /// Whether the pass applied everything without problems.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty() && self.api_error.is_none()
    }

    /// The files that have problems, with their problem count.
    pub fn error_counts(&self) -> std::collections::BTreeMap<PathBuf, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for error in &self.errors {
            *counts.entry(error.file.clone()).or_insert(0) += 1;
        }
        counts
    }

    /// Writes the report to `path` atomically (write a temporary file, then rename), mode 0600.
    pub fn write_to(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let temporary = dir.join(format!(".{STATUS_FILE_NAME}.tmp"));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(&serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    }

    /// Reads a report written by [`Self::write_to`].
    pub fn read_from(path: &Path) -> std::io::Result<Self> {
        let bytes = std::fs::read(path)?;
        serde_json::from_slice(&bytes).map_err(std::io::Error::other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Position;

    #[test]
    fn round_trips_through_the_status_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATUS_FILE_NAME);
        let report = SyncReport {
            finished_at: Some(jiff::Timestamp::now()),
            files: 2,
            errors: vec![
                Diagnostic::new("/o/a.yaml", Position::new(3, 1), "bad"),
                Diagnostic::new("/o/a.yaml", Position::new(5, 1), "worse"),
            ],
            ..SyncReport::default()
        };
        report.write_to(&path).unwrap();
        assert_eq!(SyncReport::read_from(&path).unwrap(), report);
        assert_eq!(report.error_counts()[Path::new("/o/a.yaml")], 2);
        assert!(!report.is_clean());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
