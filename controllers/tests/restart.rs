//! Interruptions converge: controllers stopped or killed mid-way and started again, and the API
//! server restarted under running controllers, end with every artifact moved, exactly one
//! ArtifactWorkflow per artifact under the same names, and no status lost.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use apiserver::server::embedded::{ServerConfig, start};
use apiserver::types::WorkflowPhase;
use common::{CONVERGE, Env, artifact, eventually, standard_world};
use kube::ResourceExt;
use kube::api::ListParams;
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn three_slow(rec: &str, ms: u64) -> Vec<apiserver::types::OrderArtifact> {
    (0..3).map(|i| artifact(json!({"image": format!("img-{i}"), "testMode": format!("sleep:{ms}"), "testRecord": rec}))).collect()
}

async fn assert_converged(env: &Env, order: &str, names: &BTreeSet<String>) {
    let o = env.wait_ready(order, "True", "Succeeded").await;
    let all = env
        .workflows()
        .list(&ListParams::default())
        .await
        .expect("list")
        .items;
    let now: BTreeSet<String> = all.iter().map(|w| w.name_any()).collect();
    assert_eq!(&now, names, "the same workflows, no duplicates");
    let status = o.status.expect("status");
    assert_eq!(status.artifact_workflows.len(), 3);
    assert!(
        status
            .artifact_workflows
            .values()
            .all(|r| r.phase == WorkflowPhase::Succeeded)
    );
    assert_eq!(status.message, "3/3 succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controllers_stopped_mid_way_rerun_interrupted_work_after_a_restart() {
    let mut env = Env::start().await;
    standard_world(&env).await;
    let mut local = env.local_settings();
    local.max_parallel = 1;
    let settings = env.settings(local.clone());
    env.start_controllers(settings);
    let rec = env.record_file("stop").display().to_string();
    env.order("o", three_slow(&rec, 1500), None).await;
    // One worker runs, two wait for the slot.
    eventually("first worker running", CONVERGE, || async {
        (!env.starts("stop").is_empty()).then_some(())
    })
    .await;
    let names: BTreeSet<String> = eventually("three workflows", CONVERGE, || async {
        let w = env.workflows_of("o").await;
        (w.len() == 3).then(|| w.iter().map(|w| w.name_any()).collect())
    })
    .await;
    env.stop_controllers().await;
    // Stopping killed the running worker (it never finished) and left the status as it was.
    let runs = env.records("stop");
    assert_eq!(runs.iter().filter(|r| r["event"] == "start").count(), 1);
    assert_eq!(
        runs.iter().filter(|r| r["event"] == "end").count(),
        0,
        "interrupted, not finished"
    );
    let running = env
        .workflows_of("o")
        .await
        .into_iter()
        .filter(|w| {
            w.status
                .as_ref()
                .is_some_and(|s| s.phase == WorkflowPhase::Running)
        })
        .count();
    assert_eq!(running, 1);

    let settings = env.settings(local);
    env.start_controllers(settings);
    assert_converged(&env, "o", &names).await;
    let starts = env.starts("stop");
    assert_eq!(
        starts.len(),
        4,
        "the interrupted artifact ran again, the others once"
    );
    let images: BTreeSet<String> = starts
        .iter()
        .map(|s| {
            s["params"]["specImage"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(images.len(), 3);
    let restarted = env
        .workflows_of("o")
        .await
        .into_iter()
        .filter(|w| {
            w.status
                .as_ref()
                .is_some_and(|s| s.phase == WorkflowPhase::Succeeded)
        })
        .count();
    assert_eq!(restarted, 3);
    env.stop_controllers().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controllers_killed_repeatedly_converge_without_duplicates() {
    let mut env = Env::start().await;
    standard_world(&env).await;
    let settings = env.settings(env.local_settings());
    env.start_controllers(settings.clone());
    let rec = env.record_file("kill").display().to_string();
    env.order("o", three_slow(&rec, 400), None).await;
    // Kill (no graceful shutdown) at different points of the Order's life.
    for pause_ms in [30, 150, 300] {
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        env.kill_controllers().await;
        env.start_controllers(settings.clone());
    }
    let names: BTreeSet<String> = eventually("three workflows", CONVERGE, || async {
        let w = env.workflows_of("o").await;
        (w.len() == 3).then(|| w.iter().map(|w| w.name_any()).collect())
    })
    .await;
    assert_converged(&env, "o", &names).await;
    let images: BTreeSet<String> = env
        .starts("kill")
        .iter()
        .map(|s| {
            s["params"]["specImage"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(images.len(), 3, "every artifact ran");
    env.stop_controllers().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_restart_under_running_controllers_converges() {
    let mut env = Env::start().await;
    let addr: SocketAddr = env
        .server
        .url()
        .trim_start_matches("https://")
        .parse()
        .expect("server address");
    let data_dir = env.server.data_dir().to_path_buf();
    standard_world(&env).await;
    env.start_local();
    let rec = env.record_file("apiserver").display().to_string();
    env.order("o", three_slow(&rec, 1500), None).await;
    let names: BTreeSet<String> = eventually("three workflows", CONVERGE, || async {
        let w = env.workflows_of("o").await;
        (w.len() == 3).then(|| w.iter().map(|w| w.name_any()).collect())
    })
    .await;
    eventually("workers running", CONVERGE, || async {
        (env.starts("apiserver").len() == 3).then_some(())
    })
    .await;

    // The server goes away while the workers run (their results cannot be written), and comes
    // back on the same address with the same data and certificates.
    env.server.stop().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let token = CancellationToken::new();
    let restarted = start(ServerConfig::embedded(&data_dir, addr), token.clone())
        .await
        .expect("restart the API server");

    assert_converged(&env, "o", &names).await;
    assert_eq!(env.starts("apiserver").len(), 3, "nothing ran twice");
    env.stop_controllers().await;
    token.cancel();
    let _ = restarted.task.await;
}
