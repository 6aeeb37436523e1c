//! The local executor through the whole stack: crashes, timeouts, a worker that cannot start,
//! and the global and per-namespace limits on parallel workers.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use apiserver::types::{EndpointUsage, WorkflowPhase};
use common::{CONVERGE, Env, artifact, eventually, standard_world};
use controllers::{ExecutorSettings, LocalExecutorSettings, RunError, Settings};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::PostParams;
use kube::{Api, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

async fn only_workflow_status(env: &Env, order: &str) -> apiserver::types::ArtifactWorkflowStatus {
    let list = env.workflows_of(order).await;
    assert_eq!(list.len(), 1);
    list[0].status.clone().expect("status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_worker_is_an_error_and_a_hanging_one_times_out() {
    let mut env = Env::start().await;
    standard_world(&env).await;
    let mut local = env.local_settings();
    local.timeout = Some(Duration::from_secs(1));
    let settings = env.settings(local);
    env.start_controllers(settings);
    env.order(
        "crash",
        vec![artifact(json!({"image": "a", "testMode": "crash"}))],
        None,
    )
    .await;
    env.order(
        "hang",
        vec![artifact(json!({"image": "a", "testMode": "hang"}))],
        None,
    )
    .await;

    env.wait_ready("crash", "False", "Failed").await;
    let s = only_workflow_status(&env, "crash").await;
    assert_eq!(s.phase, WorkflowPhase::Error);
    assert!(
        s.message.starts_with("worker was killed by signal 6"),
        "{}",
        s.message
    );
    assert!(s.completion_time.is_some());

    env.wait_ready("hang", "False", "Failed").await;
    let s = only_workflow_status(&env, "hang").await;
    assert_eq!(s.phase, WorkflowPhase::Failed);
    assert!(
        s.message
            .starts_with("worker timed out after 1s and was killed"),
        "{}",
        s.message
    );
    env.stop_controllers().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_cannot_start_is_an_error_and_a_missing_one_stops_startup() {
    let mut env = Env::start().await;
    standard_world(&env).await;
    // Missing: refused before anything starts.
    let missing = LocalExecutorSettings::with_worker("/nonexistent/arcd");
    let err = controllers::run(
        env.client.clone(),
        Settings::new(ExecutorSettings::Local(missing)),
        CancellationToken::new(),
    )
    .await
    .expect_err("missing worker");
    assert!(matches!(err, RunError::WorkerMissing(_)));
    assert_eq!(
        err.to_string(),
        "worker program /nonexistent/arcd not found"
    );

    // Present but not executable: each run is an Error naming the program.
    let not_exec = env.dir.path().join("not-executable");
    std::fs::write(&not_exec, "#!/bin/sh\n").expect("write");
    let mut local = env.local_settings();
    local.worker_exe = not_exec.clone();
    let settings = env.settings(local);
    env.start_controllers(settings);
    env.order("o", vec![artifact(json!({"image": "a"}))], None)
        .await;
    env.wait_ready("o", "False", "Failed").await;
    let s = only_workflow_status(&env, "o").await;
    assert_eq!(s.phase, WorkflowPhase::Error);
    assert!(
        s.message
            .starts_with(&format!("cannot start worker {}", not_exec.display())),
        "{}",
        s.message
    );
    assert_eq!(
        std::fs::read_dir(env.runtime_dir())
            .expect("runtime dir")
            .count(),
        0,
        "credentials removed"
    );
    env.stop_controllers().await;
}

/// Start and end times (ms) of every run recorded in `record`, with its namespace.
fn intervals(env: &Env, record: &str) -> Vec<(u128, u128, String)> {
    let records = env.records(record);
    let mut starts: BTreeMap<u64, (u128, String)> = BTreeMap::new();
    let mut out = Vec::new();
    for r in records {
        let pid = r["pid"].as_u64().expect("pid");
        let at = r["atMillis"].as_u64().expect("at") as u128;
        if r["event"] == "start" {
            let ns = r["params"]["specNs"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            starts.insert(pid, (at, ns));
        } else if let Some((start, ns)) = starts.remove(&pid) {
            out.push((start, at, ns));
        }
    }
    out
}

/// The largest number of intervals open at once, optionally only those of one namespace.
fn max_overlap(intervals: &[(u128, u128, String)], ns: Option<&str>) -> usize {
    let mut edges: Vec<(u128, i32)> = Vec::new();
    for (s, e, n) in intervals {
        if ns.is_none_or(|want| want == n) {
            edges.push((*s, 1));
            edges.push((*e, -1));
        }
    }
    // Ends sort before starts at the same millisecond.
    edges.sort();
    let (mut open, mut max) = (0i32, 0i32);
    for (_, d) in edges {
        open += d;
        max = max.max(open);
    }
    max as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_respect_the_global_and_per_namespace_limits() {
    let mut env = Env::start().await;
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    for ns in ["team-a", "team-b", "team-c"] {
        let n = Namespace {
            metadata: kube::api::ObjectMeta {
                name: Some(ns.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        namespaces
            .create(&PostParams::default(), &n)
            .await
            .expect("namespace");
    }
    let mut local = env.local_settings();
    local.max_parallel = 2;
    local.max_parallel_per_namespace = 1;
    let settings = env.settings(local);
    env.start_controllers(settings);
    let rec = env.record_file("limits").display().to_string();
    let mut total = 0;
    for ns in ["team-a", "team-b", "team-c"] {
        let orders: Api<apiserver::types::Order> = Api::namespaced(env.client.clone(), ns);
        let endpoints: Api<apiserver::types::Endpoint> = Api::namespaced(env.client.clone(), ns);
        for (name, usage) in [
            ("src", EndpointUsage::PullOnly),
            ("dst", EndpointUsage::PushOnly),
        ] {
            let e = apiserver::types::Endpoint::new(
                name,
                apiserver::types::EndpointSpec {
                    type_: "oci".into(),
                    remote_url: format!("https://{name}.example"),
                    secret_ref: None,
                    usage,
                },
            );
            endpoints
                .create(&PostParams::default(), &e)
                .await
                .expect("endpoint");
        }
        let artifacts = (0..3)
            .map(|i| artifact(json!({"image": format!("img-{i}"), "ns": ns, "testMode": "sleep:300", "testRecord": rec})))
            .collect();
        orders
            .create(&PostParams::default(), &common::order("o", artifacts, None))
            .await
            .expect("order");
        total += 3;
    }
    // While they queue, some workflows wait for a slot and say so.
    let waiting = eventually("a workflow waiting for a slot", CONVERGE, || async {
        let all: Api<apiserver::types::ArtifactWorkflow> = Api::all(env.client.clone());
        let list = all.list(&Default::default()).await.ok()?.items;
        list.into_iter().find(|w| {
            w.status.as_ref().is_some_and(|s| {
                s.phase == WorkflowPhase::Pending && s.message == "waiting for a free worker slot"
            })
        })
    })
    .await;
    assert!(waiting.name_any().starts_with("o-"));
    for ns in ["team-a", "team-b", "team-c"] {
        let orders: Api<apiserver::types::Order> = Api::namespaced(env.client.clone(), ns);
        eventually(
            &format!("order in {ns} ready"),
            Duration::from_secs(60),
            || async {
                let o = orders.get("o").await.ok()?;
                (common::ready_condition(&o)?.status == "True").then_some(())
            },
        )
        .await;
    }
    let runs = intervals(&env, "limits");
    assert_eq!(runs.len(), total, "every artifact ran exactly once");
    assert_eq!(
        max_overlap(&runs, None),
        2,
        "global limit reached but never exceeded"
    );
    for ns in ["team-a", "team-b", "team-c"] {
        assert_eq!(
            max_overlap(&runs, Some(ns)),
            1,
            "namespace {ns} ran more than one worker at once"
        );
    }
    env.stop_controllers().await;
}
