//! `arcd status`: the Orders and their artifacts with phase and age, read through the API with
//! the admin kubeconfig of the data directory, and the file syncer's state (files, objects,
//! every problem as `file:line:col: message`) from `DATA_DIR/sync-status.json`, which the daemon
//! rewrites after every sync.

use std::path::PathBuf;
use std::process::ExitCode;

use apiserver::types::Order;
use kube::api::{Api, ListParams};

use crate::commands::kubeconfig::data_dir;
use crate::summary::{OrderRow, order_row, render_orders, render_sync};
use crate::syncer::SyncReport;
use crate::syncer::report::STATUS_FILE_NAME;

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// A table.
    Table,
    /// JSON: `{"orders": [...], "sync": {...}}`.
    Json,
}

/// Arguments of `arcd status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The configuration file (for `dataDir`).
    #[arg(long, value_name = "FILE", env = "ARCD_CONFIG")]
    pub config: Option<PathBuf>,
    /// The data directory (overrides the configuration file).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// A kubeconfig to use instead of `DATA_DIR/admin.kubeconfig`.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Only Orders of this namespace.
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: Output,
}

/// `arcd status -o json`.
#[derive(Debug, serde::Serialize)]
struct StatusJson {
    orders: Vec<OrderRow>,
    sync: Option<SyncReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_error: Option<String>,
}

/// Runs `arcd status`. Exits non-zero when the API cannot be reached, an artifact failed or a
/// resource file has problems.
pub fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let dir = data_dir(args.config.as_ref(), args.data_dir.as_ref())?;
    let kubeconfig = args
        .kubeconfig
        .clone()
        .unwrap_or_else(|| dir.join("admin.kubeconfig"));
    let sync = SyncReport::read_from(&dir.join(STATUS_FILE_NAME)).ok();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let orders = runtime.block_on(async {
        let client = crate::daemon::client_from_kubeconfig(&kubeconfig).await?;
        let api: Api<Order> = match &args.namespace {
            Some(ns) => Api::namespaced(client, ns),
            None => Api::all(client),
        };
        let list = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            api.list(&ListParams::default()),
        )
        .await
        .map_err(|_| anyhow::anyhow!("the API server did not answer within 10s"))??;
        anyhow::Ok(list.items)
    });
    let (rows, api_error) = match orders {
        Ok(orders) => (orders.iter().map(order_row).collect::<Vec<_>>(), None),
        Err(error) => (
            Vec::new(),
            Some(format!(
                "cannot list Orders through {}: {error:#}",
                kubeconfig.display()
            )),
        ),
    };
    let now = jiff::Timestamp::now();
    match args.output {
        Output::Json => {
            let json = StatusJson {
                orders: rows.clone(),
                sync: sync.clone(),
                api_error: api_error.clone(),
            };
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
        Output::Table => {
            if let Some(error) = &api_error {
                eprintln!("{error}");
            } else {
                print!("{}", render_orders(&rows, now));
            }
            println!();
            print!("{}", render_sync(sync.as_ref(), now));
        }
    }
    let healthy = api_error.is_none()
        && rows
            .iter()
            .all(|r| r.phase != "Failed" && r.phase != "Invalid")
        && sync.as_ref().is_none_or(SyncReport::is_clean);
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
