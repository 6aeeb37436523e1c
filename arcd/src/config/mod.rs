//! The daemon's configuration, `/etc/arc/arcd.yaml`: read strictly (unknown keys are errors with
//! their position), validated as a whole (every error at once), and turned into typed
//! [`Settings`] — socket addresses, durations, paths and URLs, never loose strings.
//!
//! Every option and its default is documented in the shipped `etc/arc/arcd.yaml` and in
//! `docs/configuration.md`; the defaults live in [`defaults`].

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod duration;
mod names;
pub mod raw;
mod validate;

pub use duration::{format_duration, parse_duration};
pub use names::{DnsLabel, InvalidName};
pub use validate::{ConfigErrors, parse_settings, parse_settings_partially};

/// The configuration file read when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/arc/arcd.yaml";

/// The default of every option.
pub mod defaults {
    /// `dataDir`
    pub const DATA_DIR: &str = "/var/lib/arc";
    /// `api.listen`
    pub const API_LISTEN: &str = "127.0.0.1:6443";
    /// `health.listen`
    pub const HEALTH_LISTEN: &str = "127.0.0.1:9464";
    /// `resources.directories`
    pub const RESOURCE_DIR: &str = "/etc/arc/orders";
    /// `resources.defaultNamespace`
    pub const DEFAULT_NAMESPACE: &str = "default";
    /// `resources.rescanInterval`
    pub const RESCAN_INTERVAL_SECS: u64 = 300;
    /// `resources.debounce`
    pub const DEBOUNCE_MILLIS: u64 = 200;
    /// `executor.concurrency`
    pub const EXECUTOR_CONCURRENCY: usize = 4;
    /// `scanner.timeout`
    pub const SCANNER_TIMEOUT_SECS: u64 = 600;
    /// `log.level`
    pub const LOG_LEVEL: &str = "info";
    /// `shutdown.deadline`
    pub const SHUTDOWN_DEADLINE_SECS: u64 = 30;
}

/// Everything `arcd run` needs to know, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Where the embedded API server keeps its database, PKI and admin kubeconfig.
    pub data_dir: PathBuf,
    /// Address of the embedded API server (HTTPS).
    pub api_listen: SocketAddr,
    /// Address of `/healthz`, `/readyz` and `/metrics` (plain HTTP).
    pub health_listen: SocketAddr,
    /// Where the API server keeps objects.
    pub storage: StorageSettings,
    /// What the file syncer watches.
    pub resources: ResourceSettings,
    /// How ArtifactWorkflows run.
    pub executor: ExecutorSettings,
    /// Public keys (PEM files) bundle signatures are checked against.
    pub trusted_keys: Vec<PathBuf>,
    /// A command that scans pulled artifacts before they are pushed; `None` = no scanning.
    pub scanner: Option<ScannerSettings>,
    /// Log output.
    pub log: LogSettings,
    /// How long a graceful stop may take before remaining work is abandoned.
    pub shutdown_deadline: Duration,
}

/// The storage backend of the API server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageSettings {
    /// A SQLite database in the data directory (embedded default).
    Sqlite,
    /// A dedicated etcd cluster.
    Etcd {
        /// Client URLs of the etcd members (`http://` or `https://`).
        endpoints: Vec<http::Uri>,
    },
}

impl StorageSettings {
    /// `sqlite` or `etcd`, as in the file.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Etcd { .. } => "etcd",
        }
    }
}

/// The file syncer's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceSettings {
    /// Directories whose `*.yaml`/`*.yml` files (recursively) are applied.
    pub directories: Vec<PathBuf>,
    /// The namespace of objects whose file names none.
    pub default_namespace: DnsLabel,
    /// A full rescan runs this often even without file events.
    pub rescan_interval: Duration,
    /// File events are collected this long before the files are re-read.
    pub debounce: Duration,
}

/// Which executor runs ArtifactWorkflows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecutorKind {
    /// `arcd worker` child processes on this host.
    Local,
    /// Argo Workflows in a Kubernetes cluster.
    Argo,
}

/// The executor's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecutorSettings {
    /// Which executor.
    pub kind: ExecutorKind,
    /// At most this many workflows run at once.
    pub concurrency: NonZeroUsize,
    /// At most this many workflows of one namespace run at once; `None` = only the global limit.
    pub per_namespace_concurrency: Option<NonZeroUsize>,
    /// Argo settings (only with `kind: Argo`).
    pub argo: Option<ArgoSettings>,
}

/// How the Argo executor reaches its cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgoSettings {
    /// The cluster's kubeconfig; `None` = in-cluster configuration.
    pub kubeconfig: Option<PathBuf>,
    /// The service account the Workflows' pods run as; `None` = the namespace's default.
    pub service_account_name: Option<String>,
    /// Kueue `LocalQueue` the Workflows are labelled for, if any.
    pub queue_name: Option<String>,
}

/// The scanner command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScannerSettings {
    /// The program to run.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// How long one scan may take.
    pub timeout: Duration,
}

impl ScannerSettings {
    /// The command as one command line for the worker's `ARC_SCANNER_COMMAND`: every argument
    /// single-quoted, so spaces and quotes survive the worker's shell-like splitting.
    pub fn command_line(&self) -> String {
        std::iter::once(self.program.display().to_string())
            .chain(self.args.iter().cloned())
            .map(|arg| format!("'{}'", arg.replace('\'', r"'\''")))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The environment the local executor's workers need to run the scanner.
    pub fn worker_environment(&self) -> Vec<(String, String)> {
        vec![
            ("ARC_SCANNER_COMMAND".to_string(), self.command_line()),
            (
                "ARC_SCANNER_TIMEOUT_SECS".to_string(),
                self.timeout.as_secs().to_string(),
            ),
        ]
    }
}

/// Where log lines go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// journald when started by systemd (`JOURNAL_STREAM` set), text otherwise.
    Auto,
    /// Native journald entries with structured fields.
    Journald,
    /// Human-readable lines on stderr.
    Text,
    /// One JSON object per line on stderr.
    Json,
}

/// Log settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogSettings {
    /// The format.
    pub format: LogFormat,
    /// `tracing` filter directives, e.g. `info` or `info,arcd::syncer=debug`.
    pub level: String,
}

impl Default for Settings {
    fn default() -> Self {
        parse_settings("", Path::new("<defaults>")).expect("the built-in defaults are valid")
    }
}

/// Reads and validates the configuration file at `path`. A missing file at the default location
/// means "all defaults"; a missing file given explicitly is an error.
pub fn load(path: &Path, explicit: bool) -> Result<Settings, ConfigErrors> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_settings(&text, path),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && !explicit => {
            Ok(Settings::default())
        }
        Err(error) => Err(ConfigErrors::whole_file(
            path,
            format!("cannot read: {error}"),
        )),
    }
}

/// Command-line values that take precedence over the file (`arcd run` flags).
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--data-dir`
    pub data_dir: Option<PathBuf>,
    /// `--resource-dir` (repeatable; replaces the file's list)
    pub resource_dirs: Vec<PathBuf>,
    /// `--listen`
    pub api_listen: Option<SocketAddr>,
    /// `--health-listen`
    pub health_listen: Option<SocketAddr>,
}

impl Settings {
    /// Applies command-line overrides. Relative paths are made absolute against the current
    /// directory, so the daemon's view does not change if it changes directory.
    pub fn apply(&mut self, overrides: &Overrides) {
        if let Some(dir) = &overrides.data_dir {
            self.data_dir = absolute(dir);
        }
        if !overrides.resource_dirs.is_empty() {
            self.resources.directories = overrides
                .resource_dirs
                .iter()
                .map(|d| absolute(d))
                .collect();
        }
        if let Some(listen) = overrides.api_listen {
            self.api_listen = listen;
        }
        if let Some(listen) = overrides.health_listen {
            self.health_listen = listen;
        }
    }

    /// The admin kubeconfig the embedded server writes.
    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.data_dir.join("admin.kubeconfig")
    }

    /// The file the daemon records the syncer's state in, for `arcd status`.
    pub fn sync_status_file(&self) -> PathBuf {
        self.data_dir.join("sync-status.json")
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests;
