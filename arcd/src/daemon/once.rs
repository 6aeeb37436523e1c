//! `arcd run --once`: start the API server and controllers, sync the resource files once, wait
//! until every Order has finished, print a summary, stop. Exit 0 only if every artifact of every
//! Order succeeded and every resource file was applied.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use apiserver::types::Order;
use kube::api::{Api, ListParams};
use tokio_util::sync::CancellationToken;

use super::start_core;
use crate::config::{Settings, format_duration};
use crate::health::Health;
use crate::shutdown::{Signal, Signals};
use crate::summary::{OrderRow, order_row, render_orders};
use crate::syncer::{Scope, Syncer, SyncerSettings};

/// How often the Orders are looked at while waiting.
pub const POLL_MILLIS: u64 = 500;
/// An Order whose spec is invalid (`Ready` reason `InvalidSpec`) counts as finished once it has
/// stayed so this long (it may be waiting for an object applied in the same sync).
pub const INVALID_SETTLE_SECS: u64 = 5;

/// Whether an Order is finished, and whether the `InvalidSpec` verdict is settled.
fn finished(
    order: &Order,
    invalid_since: &mut std::collections::HashMap<String, tokio::time::Instant>,
) -> bool {
    let key = format!(
        "{}/{}",
        order.metadata.namespace.as_deref().unwrap_or_default(),
        order.metadata.name.as_deref().unwrap_or_default()
    );
    match crate::daemon::census::order_phase(order) {
        "Succeeded" | "Failed" => {
            invalid_since.remove(&key);
            true
        }
        "Invalid" => {
            let since = *invalid_since
                .entry(key)
                .or_insert_with(tokio::time::Instant::now);
            since.elapsed() >= Duration::from_secs(INVALID_SETTLE_SECS)
        }
        _ => {
            invalid_since.remove(&key);
            false
        }
    }
}

/// Runs `arcd run --once`; `timeout` bounds the wait for the Orders.
pub async fn run(settings: Settings, timeout: Duration) -> anyhow::Result<ExitCode> {
    let mut signals = Signals::install().context("cannot install signal handlers")?;
    let cancel = CancellationToken::new();
    let health = Health::new();
    let started = start_core(&settings, &health, &cancel.child_token()).await?;
    let client = started.client.clone();

    let work = async {
        let mut syncer = Syncer::new(client.clone(), SyncerSettings::from(&settings.resources))
            .with_status_file(settings.sync_status_file());
        let report = match syncer.sync(Scope::Full).await {
            Ok(report) => report,
            Err((_, error)) => {
                return Err(anyhow::Error::new(error).context("cannot sync the resource files"));
            }
        };
        eprintln!(
            "synced {} resource files: {} objects ({} created, {} updated, {} deleted)",
            report.files, report.objects, report.created, report.updated, report.deleted
        );
        for error in &report.errors {
            eprintln!("{error}");
        }
        let orders_api: Api<Order> = Api::all(client.clone());
        let mut invalid_since = std::collections::HashMap::new();
        let waited = tokio::time::Instant::now();
        loop {
            let orders = orders_api
                .list(&ListParams::default())
                .await
                .context("cannot list Orders")?
                .items;
            let done = orders
                .iter()
                .filter(|o| finished(o, &mut invalid_since))
                .count();
            if done == orders.len() {
                return Ok((orders, report, false));
            }
            if waited.elapsed() >= timeout {
                return Ok((orders, report, true));
            }
            tokio::time::sleep(Duration::from_millis(POLL_MILLIS)).await;
        }
    };
    let outcome = tokio::select! {
        outcome = work => Some(outcome),
        signal = signals.next() => { let _ = signal == Signal::Terminate; None }
    };
    cancel.cancel();
    started.stop(settings.shutdown_deadline).await;

    let Some(outcome) = outcome else {
        eprintln!("interrupted");
        return Ok(ExitCode::FAILURE);
    };
    let (orders, report, timed_out) = outcome?;
    let rows: Vec<OrderRow> = orders.iter().map(order_row).collect();
    print!("{}", render_orders(&rows, jiff::Timestamp::now()));
    let failed: Vec<String> = rows
        .iter()
        .flat_map(|row| {
            row.artifacts
                .iter()
                .filter(|a| a.phase != "Succeeded")
                .map(move |a| {
                    let what = if a.what.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", a.what)
                    };
                    format!(
                        "{}/{} artifact #{} {}{what}: {}",
                        row.namespace, row.name, a.index, a.type_, a.phase
                    )
                })
        })
        .collect();
    let total: usize = rows.iter().map(|r| r.artifacts.len()).sum();
    if timed_out {
        eprintln!(
            "timed out after {} waiting for the Orders to finish",
            format_duration(timeout)
        );
    }
    for line in &failed {
        eprintln!("not succeeded: {line}");
    }
    if !report.errors.is_empty() {
        eprintln!(
            "{} problem(s) in resource files (see above)",
            report.errors.len()
        );
    }
    let ok = failed.is_empty()
        && report.errors.is_empty()
        && !timed_out
        && rows.iter().all(|r| r.phase != "Invalid");
    eprintln!(
        "{}: {} orders, {}/{} artifacts succeeded",
        if ok { "ok" } else { "FAILED" },
        rows.len(),
        total - failed.len(),
        total
    );
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
