//! `arcd run`: everything on one host — the embedded API server, the controllers with their
//! executor, the file syncer, the census and the health/metrics listener — under one owner of
//! signals and one [`CancellationToken`].
//!
//! Start: health listener, API server (writes `DATA_DIR/admin.kubeconfig`), shipped
//! ClusterArtifactTypes, controllers, file syncer. `READY=1` once the API serves, the controllers
//! run and the first file sync finished. `SIGHUP` reloads (`RELOADING=1` … `READY=1`), `SIGTERM`
//! stops (`STOPPING=1`): the syncer and controllers stop first (running workers get
//! `shutdown.deadline` to finish), the API server last, so every status write lands.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

pub mod census;
pub mod once;

use crate::config::{self, ExecutorKind, Overrides, Settings, StorageSettings};
use crate::health::{self, Health};
use crate::metrics::Metrics;
use crate::shutdown::{Signal, Signals};
use crate::syncer::{Syncer, SyncerHandle, SyncerSettings};
use crate::systemd::Notifier;

/// How often the main loop refreshes `STATUS=` and ticks when the watchdog is off.
pub const MAIN_LOOP_TICK_SECS: u64 = 5;
/// How long READY waits for the census's first count of the Orders (for an accurate STATUS=).
pub const CENSUS_WAIT_SECS: u64 = 5;
/// How long the API server gets to finish after everything else stopped.
pub const API_STOP_GRACE_SECS: u64 = 5;

/// Where the settings came from, to read them again on reload.
#[derive(Clone, Debug)]
pub struct ConfigSource {
    /// The configuration file.
    pub path: PathBuf,
    /// Whether it was named explicitly (then it must exist).
    pub explicit: bool,
    /// Command-line overrides, applied again after every reload.
    pub overrides: Overrides,
}

impl ConfigSource {
    /// Reads and validates the file and applies the overrides.
    pub fn load(&self) -> Result<Settings, config::ConfigErrors> {
        let mut settings = config::load(&self.path, self.explicit)?;
        settings.apply(&self.overrides);
        Ok(settings)
    }
}

/// The parts of a running daemon that need stopping.
pub struct Started {
    /// The API server's address.
    pub api_addr: std::net::SocketAddr,
    /// A client of the embedded API server (admin).
    pub client: kube::Client,
    api_cancel: CancellationToken,
    api_task: tokio::task::JoinHandle<std::io::Result<()>>,
    controllers_task: tokio::task::JoinHandle<()>,
}

/// A kube-rs client from a kubeconfig file.
pub async fn client_from_kubeconfig(path: &Path) -> anyhow::Result<kube::Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .with_context(|| format!("invalid kubeconfig {}", path.display()))?;
    kube::Client::try_from(config).context("cannot build an API client")
}

fn server_config(settings: &Settings) -> apiserver::server::embedded::ServerConfig {
    let mut config = apiserver::server::embedded::ServerConfig::embedded(
        &settings.data_dir,
        settings.api_listen,
    );
    if let StorageSettings::Etcd { endpoints } = &settings.storage {
        config.storage = apiserver::server::embedded::StorageBackend::Etcd {
            endpoints: endpoints
                .iter()
                .map(|e| e.to_string().trim_end_matches('/').to_string())
                .collect(),
        };
    }
    config
}

fn controller_settings(
    settings: &Settings,
) -> anyhow::Result<(controllers::Settings, Option<PathBuf>)> {
    let executor = &settings.executor;
    Ok(match executor.kind {
        ExecutorKind::Local => {
            let mut local = controllers::LocalExecutorSettings::new()
                .context("cannot find the arcd executable")?;
            local.max_parallel = executor.concurrency.get();
            local.max_parallel_per_namespace = executor
                .per_namespace_concurrency
                .unwrap_or(executor.concurrency)
                .get();
            local.runtime_dir = Some(settings.data_dir.join("workers"));
            if let Some(scanner) = &settings.scanner {
                local.worker_env = scanner.worker_environment();
            }
            let mut controller =
                controllers::Settings::new(controllers::ExecutorSettings::Local(local));
            controller.reporting_instance = hostname();
            (controller, None)
        }
        ExecutorKind::Argo => {
            let argo = executor.argo.clone().unwrap_or(config::ArgoSettings {
                kubeconfig: None,
                service_account_name: None,
                queue_name: None,
            });
            let executor_settings = controllers::ArgoExecutorSettings {
                queue_name: argo.queue_name.clone(),
                service_account_name: argo.service_account_name.clone(),
                ..Default::default()
            };
            let mut controller =
                controllers::Settings::new(controllers::ExecutorSettings::Argo(executor_settings));
            controller.reporting_instance = hostname();
            (controller, argo.kubeconfig)
        }
    })
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// Starts the API server and the controllers (shared by `arcd run` and `arcd run --once`).
pub async fn start_core(
    settings: &Settings,
    health: &Health,
    cancel: &CancellationToken,
) -> anyhow::Result<Started> {
    let api_cancel = CancellationToken::new();
    let running = apiserver::server::embedded::start(server_config(settings), api_cancel.clone())
        .await
        .context("cannot start the API server")?;
    health.set_api_serving(true);
    tracing::info!(url = %running.url, kubeconfig = %running.admin_kubeconfig.display(), "API server serving");
    let client = client_from_kubeconfig(&running.admin_kubeconfig).await?;

    match controllers::ensure_default_artifact_types(client.clone()).await {
        Ok(created) if !created.is_empty() => {
            tracing::info!(?created, "created the shipped ClusterArtifactTypes")
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "cannot create the shipped ClusterArtifactTypes"),
    }

    let (controller_settings, executor_kubeconfig) = controller_settings(settings)?;
    let executor_client = match &executor_kubeconfig {
        Some(path) => client_from_kubeconfig(path).await?,
        None if settings.executor.kind == ExecutorKind::Argo => {
            kube::Client::try_default().await.context(
                "the argo executor needs executor.argo.kubeconfig or in-cluster credentials",
            )?
        }
        None => client.clone(),
    };
    let executor = controllers::build_executor(&controller_settings.executor, executor_client)
        .context("cannot start the executor")?;
    let controllers_task = tokio::spawn(controllers::run_with_executor(
        client.clone(),
        controller_settings,
        executor,
        cancel.child_token(),
    ));
    health.set_controllers_running(true);
    Ok(Started {
        api_addr: running.addr,
        client,
        api_cancel,
        api_task: running.task,
        controllers_task,
    })
}

impl Started {
    /// Stops the controllers (waiting up to `deadline` for running work), then the API server.
    pub async fn stop(self, deadline: Duration) {
        // The caller cancelled the controllers' token; give them the deadline.
        if tokio::time::timeout(deadline, self.controllers_task)
            .await
            .is_err()
        {
            tracing::warn!(deadline = %config::format_duration(deadline), "controllers did not stop within the shutdown deadline");
        }
        self.api_cancel.cancel();
        match tokio::time::timeout(Duration::from_secs(API_STOP_GRACE_SECS), self.api_task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => tracing::warn!(%error, "API server stopped with an error"),
            Ok(Err(error)) => tracing::warn!(%error, "API server task failed"),
            Err(_) => tracing::warn!("API server did not stop in time"),
        }
    }
}

fn status_line(
    api_addr: std::net::SocketAddr,
    counts: &census::Counts,
    sync: Option<&crate::syncer::SyncReport>,
) -> String {
    let mut line = format!(
        "serving {api_addr}; {} orders, {} running",
        counts.orders, counts.running
    );
    if counts.failed > 0 {
        line.push_str(&format!(", {} failed", counts.failed));
    }
    if let Some(report) = sync {
        let files_with_errors = report.error_counts().len();
        if files_with_errors > 0 {
            line.push_str(&format!("; {files_with_errors} resource files with errors"));
        }
        if report.api_error.is_some() {
            line.push_str("; file sync failing");
        }
    }
    line
}

/// Runs the daemon until SIGTERM/SIGINT. Returns the process exit code.
pub async fn run(
    source: ConfigSource,
    mut settings: Settings,
) -> anyhow::Result<std::process::ExitCode> {
    let mut signals = Signals::install().context("cannot install signal handlers")?;
    let notifier = Notifier::from_env();
    let cancel = CancellationToken::new();
    let metrics = Metrics::new();
    let health = Health::new();
    notifier.status("starting");

    let health_listener = health::bind(settings.health_listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (health.listen)",
                settings.health_listen
            )
        })?;
    let health_task = tokio::spawn(health::serve(
        health_listener,
        health.clone(),
        metrics.clone(),
        cancel.child_token(),
    ));
    tracing::info!(addr = %settings.health_listen, "health and metrics listener");

    let core_cancel = cancel.child_token();
    let started = start_core(&settings, &health, &core_cancel).await?;
    let api_addr = started.api_addr;

    let syncer = Syncer::new(
        started.client.clone(),
        SyncerSettings::from(&settings.resources),
    )
    .with_metrics(metrics.clone())
    .with_status_file(settings.sync_status_file());
    let (syncer, syncer_task) = syncer.spawn(cancel.child_token());

    // Wait for the first file sync (or a stop request) before saying READY.
    let mut reports = syncer.reports();
    loop {
        tokio::select! {
            result = reports.wait_for(Option::is_some) => { result.ok(); break; }
            signal = signals.next() => match signal {
                Signal::Terminate => {
                    return stop(&notifier, cancel, started, settings.shutdown_deadline, vec![syncer_task, health_task_unit(health_task)]).await;
                }
                // The first sync reads everything anyway.
                Signal::Reload => tracing::info!("reload requested while starting; the first sync reads every file anyway"),
            }
        }
    }
    health.set_files_synced(true);
    // Counted after the first sync, so the first STATUS= includes the Orders from files.
    let (census, census_task) = census::spawn(
        started.client.clone(),
        metrics.clone(),
        cancel.child_token(),
    );
    census
        .wait_listed(Duration::from_secs(CENSUS_WAIT_SECS))
        .await;
    let mut last_status = status_line(api_addr, &census.counts(), syncer.latest().as_ref());
    notifier.ready(&last_status);
    tracing::info!(status = %last_status, "ready");

    let tick = notifier
        .watchdog_interval()
        .unwrap_or(Duration::from_secs(MAIN_LOOP_TICK_SECS))
        .min(Duration::from_secs(MAIN_LOOP_TICK_SECS));
    let mut ticker = tokio::time::interval(tick);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                health.beat();
                notifier.watchdog();
                let status = status_line(api_addr, &census.counts(), syncer.latest().as_ref());
                if status != last_status {
                    notifier.status(&status);
                    last_status = status;
                }
            }
            signal = signals.next() => match signal {
                Signal::Terminate => break,
                Signal::Reload => {
                    notifier.reloading();
                    reload(&source, &mut settings, &syncer).await;
                    last_status = status_line(api_addr, &census.counts(), syncer.latest().as_ref());
                    notifier.ready(&last_status);
                }
            }
        }
    }
    stop(
        &notifier,
        cancel,
        started,
        settings.shutdown_deadline,
        vec![syncer_task, census_task, health_task_unit(health_task)],
    )
    .await
}

fn health_task_unit(
    task: tokio::task::JoinHandle<std::io::Result<()>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Ok(Err(error)) = task.await {
            tracing::warn!(%error, "health listener failed");
        }
    })
}

async fn stop(
    notifier: &Notifier,
    cancel: CancellationToken,
    started: Started,
    deadline: Duration,
    tasks: Vec<tokio::task::JoinHandle<()>>,
) -> anyhow::Result<std::process::ExitCode> {
    notifier.stopping("stopping: finishing running work");
    tracing::info!(deadline = %config::format_duration(deadline), "stopping");
    cancel.cancel();
    let begun = tokio::time::Instant::now();
    for task in tasks {
        let left = deadline.saturating_sub(begun.elapsed());
        let _ = tokio::time::timeout(left, task).await;
    }
    started.stop(deadline.saturating_sub(begun.elapsed())).await;
    tracing::info!("stopped");
    Ok(std::process::ExitCode::SUCCESS)
}

/// SIGHUP: validate the file again; keep the old settings if it is invalid; otherwise apply what
/// can change at run time (the syncer's settings) and resync the files.
async fn reload(source: &ConfigSource, settings: &mut Settings, syncer: &SyncerHandle) {
    match source.load() {
        Err(errors) => {
            for error in &errors.errors {
                tracing::error!("{error}");
            }
            tracing::error!(
                file = %source.path.display(),
                "reload refused: the configuration has {} error(s); the running configuration is kept",
                errors.errors.len()
            );
            // Still resync the files: a reload is also how operators ask for one.
            let _ = syncer.resync(None).await;
        }
        Ok(new) => {
            let restart_needed: Vec<&str> = [
                ("dataDir", new.data_dir != settings.data_dir),
                ("api.listen", new.api_listen != settings.api_listen),
                ("health.listen", new.health_listen != settings.health_listen),
                ("storage", new.storage != settings.storage),
                ("executor", new.executor != settings.executor),
                ("trustedKeys", new.trusted_keys != settings.trusted_keys),
                ("scanner", new.scanner != settings.scanner),
                ("log", new.log != settings.log),
                (
                    "shutdown.deadline",
                    new.shutdown_deadline != settings.shutdown_deadline,
                ),
            ]
            .into_iter()
            .filter_map(|(key, changed)| changed.then_some(key))
            .collect();
            if !restart_needed.is_empty() {
                tracing::warn!(changed = ?restart_needed, "these settings take effect at the next restart");
            }
            let syncer_settings = SyncerSettings::from(&new.resources);
            let changed = syncer_settings != SyncerSettings::from(&settings.resources);
            let report = syncer.resync(changed.then_some(syncer_settings)).await;
            *settings = Settings {
                resources: new.resources.clone(),
                ..settings.clone()
            };
            tracing::info!(
                file = %source.path.display(),
                errors = report.map_or(0, |r| r.errors.len()),
                "configuration reloaded and resource files resynced"
            );
        }
    }
}
