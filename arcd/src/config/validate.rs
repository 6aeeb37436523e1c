//! Turns the file as written ([`super::raw`]) into [`Settings`], collecting every problem with its
//! position instead of stopping at the first one.

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tracing_subscriber::EnvFilter;

use super::raw::{At, RawConfig};
use super::{
    ArgoSettings, DnsLabel, ExecutorKind, ExecutorSettings, LogFormat, LogSettings,
    ResourceSettings, ScannerSettings, Settings, StorageSettings, defaults, parse_duration,
};
use crate::diagnostic::{Diagnostic, Position};
use crate::yaml::YamlError;

/// Every problem found in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors {
    /// The problems, in file order.
    pub errors: Vec<Diagnostic>,
}

impl ConfigErrors {
    /// A single problem of the whole file (e.g. it cannot be read).
    pub fn whole_file(path: &Path, message: impl Into<String>) -> Self {
        Self {
            errors: vec![Diagnostic::whole_file(path, message)],
        }
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.errors.len();
        write!(
            f,
            "invalid configuration ({count} error{}):",
            if count == 1 { "" } else { "s" }
        )?;
        for error in &self.errors {
            write!(f, "\n  {error}")?;
        }
        Ok(())
    }
}

fn pos<T>(at: &At<T>) -> Position {
    Position::new(at.referenced.line(), at.referenced.column())
}

/// Collects problems while the settings are built.
struct Checker<'a> {
    file: &'a Path,
    errors: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn error(&mut self, position: Position, message: impl Into<String>) {
        self.errors
            .push(Diagnostic::new(self.file, position, message));
    }

    /// Runs `parse` on an optional value; a missing value gives `default`, a bad one records an
    /// error (naming `key`) and gives `default` so checking can go on.
    fn field<R, T>(
        &mut self,
        value: Option<&At<R>>,
        key: &str,
        default: T,
        parse: impl FnOnce(&R) -> Result<T, String>,
    ) -> T {
        match value {
            None => default,
            Some(at) => match parse(&at.value) {
                Ok(parsed) => parsed,
                Err(message) => {
                    self.error(pos(at), format!("{key}: {message}"));
                    default
                }
            },
        }
    }
}

fn socket_addr(text: &String) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| {
        format!("`{text}` is not an address of the form HOST:PORT (e.g. 127.0.0.1:6443)")
    })
}

fn absolute_path(text: &String) -> Result<PathBuf, String> {
    let path = PathBuf::from(text);
    if text.is_empty() {
        Err("must not be empty".to_string())
    } else if !path.is_absolute() {
        Err(format!("`{text}` must be an absolute path"))
    } else {
        Ok(path)
    }
}

fn duration_between(min: Duration, max: Duration) -> impl Fn(&String) -> Result<Duration, String> {
    move |text| {
        let value = parse_duration(text)?;
        if value < min || value > max {
            Err(format!(
                "`{text}` is out of range ({} to {})",
                super::format_duration(min),
                super::format_duration(max)
            ))
        } else {
            Ok(value)
        }
    }
}

fn etcd_endpoint(text: &String) -> Result<http::Uri, String> {
    let uri: http::Uri = text
        .parse()
        .map_err(|e| format!("`{text}` is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(format!("`{text}` must start with http:// or https://")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("`{text}` has no host"));
    }
    if uri.path() != "/" && !uri.path().is_empty() {
        return Err(format!("`{text}` must not have a path"));
    }
    Ok(uri)
}

/// Parses and validates a configuration text read from `file` (named in errors). An empty text
/// (or one with only comments) gives the defaults.
pub fn parse_settings(text: &str, file: &Path) -> Result<Settings, ConfigErrors> {
    let (settings, errors) = parse_settings_partially(text, file);
    match settings {
        Some(settings) if errors.is_empty() => Ok(settings),
        _ => Err(ConfigErrors { errors }),
    }
}

/// Like [`parse_settings`], but also returns the settings built despite invalid values (each
/// replaced by its default) when the file's structure could be read, so that offline checks can
/// go on with the rest of the configuration (e.g. its resource directories).
pub fn parse_settings_partially(text: &str, file: &Path) -> (Option<Settings>, Vec<Diagnostic>) {
    let mut documents: Vec<RawConfig> = match serde_saphyr::from_multiple(text) {
        Ok(documents) => documents,
        Err(error) => {
            let error = YamlError::from_saphyr(&error);
            return (
                None,
                vec![Diagnostic::new(file, error.position, error.message)],
            );
        }
    };
    if documents.len() > 1 {
        return (
            None,
            vec![Diagnostic::whole_file(
                file,
                "expected one YAML document, found several",
            )],
        );
    }
    let raw = documents.pop().unwrap_or_default();
    let mut check = Checker {
        file,
        errors: Vec::new(),
    };
    let settings = build(&raw, &mut check);
    check.errors.sort_by_key(|e| e.position);
    (Some(settings), check.errors)
}

fn build(raw: &RawConfig, check: &mut Checker<'_>) -> Settings {
    let data_dir = check.field(
        raw.data_dir.as_ref(),
        "dataDir",
        PathBuf::from(defaults::DATA_DIR),
        absolute_path,
    );

    let api = raw.api.as_ref().map(|a| &a.value);
    let default_api: SocketAddr = defaults::API_LISTEN.parse().expect("valid default");
    let api_listen = check.field(
        api.and_then(|a| a.listen.as_ref()),
        "api.listen",
        default_api,
        socket_addr,
    );

    let health = raw.health.as_ref().map(|h| &h.value);
    let default_health: SocketAddr = defaults::HEALTH_LISTEN.parse().expect("valid default");
    let health_listen = check.field(
        health.and_then(|h| h.listen.as_ref()),
        "health.listen",
        default_health,
        socket_addr,
    );
    if api_listen == health_listen {
        let at = health
            .and_then(|h| h.listen.as_ref())
            .map(pos)
            .unwrap_or_default();
        check.error(
            at,
            format!("health.listen: {health_listen} is already api.listen; use another port"),
        );
    }

    let storage = storage(raw, check);
    let resources = resources(raw, check);
    let executor = executor(raw, check);

    let trusted_keys = match &raw.trusted_keys {
        None => Vec::new(),
        Some(list) => list
            .value
            .iter()
            .filter_map(|key| match absolute_path(&key.value) {
                Ok(path) => Some(path),
                Err(message) => {
                    check.error(pos(key), format!("trustedKeys: {message}"));
                    None
                }
            })
            .collect(),
    };

    let scanner = scanner(raw, check);

    let log_section = raw.log.as_ref().map(|l| &l.value);
    let format = check.field(
        log_section.and_then(|l| l.format.as_ref()),
        "log.format",
        LogFormat::Auto,
        |text| match text.as_str() {
            "auto" => Ok(LogFormat::Auto),
            "journald" => Ok(LogFormat::Journald),
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "`{other}` is not one of auto, journald, text, json"
            )),
        },
    );
    let level = check.field(
        log_section.and_then(|l| l.level.as_ref()),
        "log.level",
        defaults::LOG_LEVEL.to_string(),
        |text| {
            EnvFilter::builder()
                .parse(text)
                .map(|_| text.clone())
                .map_err(|e| format!("`{text}` is not a valid filter: {e}"))
        },
    );

    let shutdown = raw.shutdown.as_ref().map(|s| &s.value);
    let shutdown_deadline = check.field(
        shutdown.and_then(|s| s.deadline.as_ref()),
        "shutdown.deadline",
        Duration::from_secs(defaults::SHUTDOWN_DEADLINE_SECS),
        duration_between(Duration::from_secs(1), Duration::from_secs(3600)),
    );

    Settings {
        data_dir,
        api_listen,
        health_listen,
        storage,
        resources,
        executor,
        trusted_keys,
        scanner,
        log: LogSettings { format, level },
        shutdown_deadline,
    }
}

fn storage(raw: &RawConfig, check: &mut Checker<'_>) -> StorageSettings {
    let Some(section) = &raw.storage else {
        return StorageSettings::Sqlite;
    };
    let backend = check.field(
        section.value.backend.as_ref(),
        "storage.backend",
        "sqlite",
        |text| match text.as_str() {
            "sqlite" => Ok("sqlite"),
            "etcd" => Ok("etcd"),
            other => Err(format!("`{other}` is not one of sqlite, etcd")),
        },
    );
    let etcd = section.value.etcd.as_ref();
    match (backend, etcd) {
        ("sqlite", None) => StorageSettings::Sqlite,
        ("sqlite", Some(etcd)) => {
            check.error(
                pos(etcd),
                "storage.etcd: only used with `backend: etcd`; remove it or set the backend",
            );
            StorageSettings::Sqlite
        }
        (_, None) => {
            check.error(
                pos(section),
                "storage: `backend: etcd` needs `etcd.endpoints`",
            );
            StorageSettings::Sqlite
        }
        (_, Some(etcd)) => {
            let mut endpoints = Vec::new();
            match &etcd.value.endpoints {
                None => check.error(
                    pos(etcd),
                    "storage.etcd.endpoints: at least one endpoint is required",
                ),
                Some(list) if list.value.is_empty() => check.error(
                    pos(list),
                    "storage.etcd.endpoints: at least one endpoint is required",
                ),
                Some(list) => {
                    for endpoint in &list.value {
                        match etcd_endpoint(&endpoint.value) {
                            Ok(uri) => endpoints.push(uri),
                            Err(message) => check
                                .error(pos(endpoint), format!("storage.etcd.endpoints: {message}")),
                        }
                    }
                }
            }
            StorageSettings::Etcd { endpoints }
        }
    }
}

fn resources(raw: &RawConfig, check: &mut Checker<'_>) -> ResourceSettings {
    let section = raw.resources.as_ref().map(|r| &r.value);
    let directories = match section.and_then(|r| r.directories.as_ref()) {
        None => vec![PathBuf::from(defaults::RESOURCE_DIR)],
        Some(list) => {
            let mut dirs: Vec<PathBuf> = Vec::new();
            for dir in &list.value {
                match absolute_path(&dir.value) {
                    Ok(path) if dirs.contains(&path) => check.error(
                        pos(dir),
                        format!(
                            "resources.directories: `{}` is listed twice",
                            path.display()
                        ),
                    ),
                    Ok(path) => dirs.push(path),
                    Err(message) => {
                        check.error(pos(dir), format!("resources.directories: {message}"))
                    }
                }
            }
            dirs
        }
    };
    let default_namespace = check.field(
        section.and_then(|r| r.default_namespace.as_ref()),
        "resources.defaultNamespace",
        DnsLabel::new(defaults::DEFAULT_NAMESPACE).expect("valid default"),
        |text| DnsLabel::new(text.clone()).map_err(|e| e.to_string()),
    );
    let rescan_interval = check.field(
        section.and_then(|r| r.rescan_interval.as_ref()),
        "resources.rescanInterval",
        Duration::from_secs(defaults::RESCAN_INTERVAL_SECS),
        duration_between(Duration::from_secs(1), Duration::from_secs(7 * 86_400)),
    );
    let debounce = check.field(
        section.and_then(|r| r.debounce.as_ref()),
        "resources.debounce",
        Duration::from_millis(defaults::DEBOUNCE_MILLIS),
        duration_between(Duration::from_millis(10), Duration::from_secs(10)),
    );
    ResourceSettings {
        directories,
        default_namespace,
        rescan_interval,
        debounce,
    }
}

fn executor(raw: &RawConfig, check: &mut Checker<'_>) -> ExecutorSettings {
    let section = raw.executor.as_ref().map(|e| &e.value);
    let kind = check.field(
        section.and_then(|e| e.type_.as_ref()),
        "executor.type",
        ExecutorKind::Local,
        |text| match text.as_str() {
            "local" => Ok(ExecutorKind::Local),
            "argo" => Ok(ExecutorKind::Argo),
            other => Err(format!("`{other}` is not one of local, argo")),
        },
    );
    let positive = |n: &u64| {
        usize::try_from(*n)
            .ok()
            .and_then(NonZeroUsize::new)
            .ok_or_else(|| format!("{n} must be at least 1"))
    };
    let concurrency = check.field(
        section.and_then(|e| e.concurrency.as_ref()),
        "executor.concurrency",
        NonZeroUsize::new(defaults::EXECUTOR_CONCURRENCY).expect("non-zero default"),
        positive,
    );
    let per_namespace_concurrency = check.field(
        section.and_then(|e| e.per_namespace_concurrency.as_ref()),
        "executor.perNamespaceConcurrency",
        None,
        |n| positive(n).map(Some),
    );
    if let (Some(per_namespace), Some(at)) = (
        per_namespace_concurrency,
        section.and_then(|e| e.per_namespace_concurrency.as_ref()),
    ) && per_namespace > concurrency
    {
        check.error(
            pos(at),
            format!("executor.perNamespaceConcurrency: {per_namespace} is more than executor.concurrency ({concurrency})"),
        );
    }
    let argo_section = section.and_then(|e| e.argo.as_ref());
    let argo = match (kind, argo_section) {
        (ExecutorKind::Local, Some(at)) => {
            check.error(pos(at), "executor.argo: only used with `type: argo`");
            None
        }
        (ExecutorKind::Local, None) => None,
        (ExecutorKind::Argo, section) => {
            let section = section.map(|s| &s.value);
            let kubeconfig = check.field(
                section.and_then(|a| a.kubeconfig.as_ref()),
                "executor.argo.kubeconfig",
                None,
                |text| absolute_path(text).map(Some),
            );
            let service_account_name = check.field(
                section.and_then(|a| a.service_account_name.as_ref()),
                "executor.argo.serviceAccountName",
                None,
                |text| {
                    crate::config::DnsLabel::new(text.clone())
                        .map(|n| Some(n.to_string()))
                        .map_err(|e| e.to_string())
                },
            );
            let queue_name = check.field(
                section.and_then(|a| a.queue_name.as_ref()),
                "executor.argo.queueName",
                None,
                |text| {
                    DnsLabel::new(text.clone())
                        .map(|n| Some(n.to_string()))
                        .map_err(|e| e.to_string())
                },
            );
            Some(ArgoSettings {
                kubeconfig,
                service_account_name,
                queue_name,
            })
        }
    };
    ExecutorSettings {
        kind,
        concurrency,
        per_namespace_concurrency,
        argo,
    }
}

fn scanner(raw: &RawConfig, check: &mut Checker<'_>) -> Option<ScannerSettings> {
    let section = raw.scanner.as_ref()?;
    let command = match &section.value.command {
        None => {
            check.error(pos(section), "scanner.command: required when `scanner` is set (e.g. [/usr/bin/trivy, image, --input])");
            return None;
        }
        Some(command) => command,
    };
    let Some((program, args)) = command.value.split_first() else {
        check.error(pos(command), "scanner.command: must name a program");
        return None;
    };
    let program_path = match absolute_path(&program.value) {
        Ok(path) => Some(path),
        Err(message) => {
            check.error(pos(program), format!("scanner.command: {message}"));
            None
        }
    };
    let timeout = check.field(
        section.value.timeout.as_ref(),
        "scanner.timeout",
        Duration::from_secs(defaults::SCANNER_TIMEOUT_SECS),
        duration_between(Duration::from_secs(1), Duration::from_secs(86_400)),
    );
    Some(ScannerSettings {
        program: program_path?,
        args: args.iter().map(|a| a.value.clone()).collect(),
        timeout,
    })
}
