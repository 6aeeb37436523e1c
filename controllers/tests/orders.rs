//! The Order and ArtifactWorkflow controllers end to end against the real embedded API server,
//! with the local executor running the test worker: the happy path, TTL, force-at, Secret and
//! Endpoint changes, the finalizer, and Events.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use apiserver::types::{ArtifactWorkflow, WorkflowPhase};
use common::{CONVERGE, Env, NS, artifact, eventually, standard_world};
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

fn names(list: &[ArtifactWorkflow]) -> BTreeSet<String> {
    list.iter().map(|w| w.name_any()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_runs_to_ready_with_parameters_secrets_and_status() {
    let mut env = Env::start().await;
    standard_world(&env).await;
    env.start_local();
    let record = env.record_file("happy");
    let rec = record.display().to_string();
    env.order(
        "mirror",
        vec![
            artifact(json!({"image": "library/alpine:3.20", "testRecord": rec})),
            artifact(json!({"image": "library/busybox:1", "tags": ["a", "b"], "testRecord": rec})),
            artifact(json!({"image": "library/nginx:1", "nested": {"deep": 7}, "testRecord": rec})),
        ],
        None,
    )
    .await;
    let order = env.wait_ready("mirror", "True", "Succeeded").await;
    let status = order.status.clone().expect("status");
    assert_eq!(status.message, "3/3 succeeded");
    assert_eq!(status.artifact_workflows.len(), 3);
    let indexes: BTreeSet<i64> = status
        .artifact_workflows
        .values()
        .map(|r| r.artifact_index)
        .collect();
    assert_eq!(indexes, BTreeSet::from([0, 1, 2]));
    assert!(
        status
            .artifact_workflows
            .values()
            .all(|r| r.phase == WorkflowPhase::Succeeded && r.completion_time.is_some())
    );
    assert_eq!(
        status
            .endpoint_generations
            .keys()
            .cloned()
            .collect::<Vec<_>>(),
        vec!["dst", "src"]
    );
    assert!(status.secret_generations["dst-creds"].starts_with("sha256:"));
    assert_eq!(status.observed_generation, order.metadata.generation);
    assert!(
        order
            .finalizers()
            .contains(&"arc.opendefense.cloud/order-cleanup".to_string())
    );

    // The workflows: owned by the Order, named after it, completed with what the worker reported.
    let workflows = env.workflows_of("mirror").await;
    assert_eq!(workflows.len(), 3);
    for w in &workflows {
        let hash = &w.name_any()["mirror-".len()..];
        assert!(
            status.artifact_workflows.contains_key(hash),
            "{hash} recorded"
        );
        let owner = &w.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.controller),
            ("Order", "mirror", Some(true))
        );
        let s = w.status.clone().expect("workflow status");
        assert_eq!(s.phase, WorkflowPhase::Succeeded);
        assert!(s.start_time.is_some() && s.completion_time.is_some());
        assert_eq!(s.bytes_transferred, Some(42));
        assert_eq!(s.pushed_digests, vec!["sha256:1111", "sha256:2222"]);
        assert_eq!(w.spec.workflow_template_ref.name, "arc-oci");
        assert!(w.spec.workflow_template_ref.cluster_scope);
    }

    // What the worker saw: the template, the derived parameters, the Secret as private files.
    let starts = env.starts("happy");
    assert_eq!(starts.len(), 3, "each artifact ran once");
    for s in &starts {
        assert_eq!(s["template"], "arc-oci");
        let p = &s["params"];
        assert_eq!(p["srcType"], "oci");
        assert_eq!(p["srcRemoteURL"], "https://src.example");
        assert_eq!(p["srcSecret"], "false");
        assert_eq!(p["dstType"], "oci");
        assert_eq!(p["dstSecret"], "true");
        assert!(
            p["specImage"]
                .as_str()
                .expect("specImage")
                .starts_with("library/")
        );
        assert_eq!(s["dst"]["dirMode"], "700");
        assert_eq!(
            s["dst"]["files"]["username"],
            json!({"mode": "600", "content": "robot"})
        );
        assert_eq!(
            s["dst"]["files"]["password"],
            json!({"mode": "600", "content": "s3cret"})
        );
        assert_eq!(s["src"]["files"], json!({}));
        let args = s["args"].to_string();
        assert!(!args.contains("s3cret"), "secrets never in arguments");
        // The credentials directory is gone.
        assert!(!std::path::Path::new(s["dst"]["dir"].as_str().expect("dir")).exists());
    }
    let busybox = starts
        .iter()
        .find(|s| s["params"]["specImage"] == "library/busybox:1")
        .expect("busybox ran");
    assert_eq!(
        (
            busybox["params"]["specTags0"].as_str(),
            busybox["params"]["specTags1"].as_str()
        ),
        (Some("a"), Some("b"))
    );
    let nginx = starts
        .iter()
        .find(|s| s["params"]["specImage"] == "library/nginx:1")
        .expect("nginx ran");
    assert_eq!(nginx["params"]["specNestedDeep"], "7");
    assert_eq!(
        std::fs::read_dir(env.runtime_dir())
            .expect("runtime dir")
            .count(),
        0
    );

    // Events tell the story on the Order and its workflows (published right after the status).
    let events: Api<Event> = Api::namespaced(env.client.clone(), NS);
    let reasons_of = |list: &[Event], pick: &dyn Fn(&Event) -> bool| -> BTreeSet<String> {
        list.iter()
            .filter(|e| pick(e))
            .filter_map(|e| e.reason.clone())
            .collect()
    };
    let on_order =
        |e: &Event| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("mirror");
    let on_workflow = |e: &Event| {
        e.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some("ArtifactWorkflow")
    };
    let want_order = BTreeSet::from(["Created".to_string(), "Succeeded".to_string()]);
    // Workers that finish at once are reported once, so their workflows have no `Started`.
    let want_workflow = BTreeSet::from(["Succeeded".to_string()]);
    eventually("the Order's and workflows' events", CONVERGE, || async {
        let list = events.list(&ListParams::default()).await.ok()?.items;
        let order_reasons = reasons_of(&list, &on_order);
        let workflow_reasons = reasons_of(&list, &on_workflow);
        (order_reasons.is_superset(&want_order) && workflow_reasons.is_superset(&want_workflow))
            .then_some(())
    })
    .await;

    // Settled: nothing more happens, the names stay.
    let before = names(&workflows);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(names(&env.workflows_of("mirror").await), before);
    assert_eq!(env.starts("happy").len(), 3);
    env.stop_controllers().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_reported_with_the_log_tail_and_the_order_fails() {
    let mut env = Env::start().await;
    standard_world(&env).await;
    env.start_local();
    env.order(
        "partial",
        vec![
            artifact(json!({"image": "ok"})),
            artifact(json!({"image": "bad", "testMode": "fail", "testLog": 3})),
        ],
        None,
    )
    .await;
    let order = env.wait_ready("partial", "False", "Failed").await;
    let status = order.status.expect("status");
    assert_eq!(status.message, "1/2 succeeded, 1 failed");
    let failed = status
        .artifact_workflows
        .values()
        .find(|r| r.phase == WorkflowPhase::Failed)
        .expect("failed record");
    assert_eq!(failed.artifact_index, 1);
    assert!(
        failed
            .message
            .starts_with("worker exited with status 3: told to fail"),
        "{}",
        failed.message
    );
    assert!(
        failed
            .message
            .contains("log line 2\nerror: the test worker was told to fail"),
        "{}",
        failed.message
    );
    let ready =
        common::ready_condition(&env.orders().get("partial").await.expect("order")).expect("ready");
    assert!(
        ready
            .message
            .contains("artifact 1 Failed: worker exited with status 3: told to fail"),
        "{}",
        ready.message
    );
    env.stop_controllers().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_removes_completed_workflows_but_keeps_their_results_and_does_not_rerun() {
    let mut env = Env::start().await;
    standard_world(&env).await;
    env.start_local();
    let rec = env.record_file("ttl").display().to_string();
    env.order(
        "ttl",
        vec![artifact(json!({"image": "a", "testRecord": rec}))],
        Some(1),
    )
    .await;
    env.wait_ready("ttl", "True", "Succeeded").await;
    eventually("workflow removed after its TTL", CONVERGE, || async {
        env.workflows_of("ttl").await.is_empty().then_some(())
    })
    .await;
    let order = env.orders().get("ttl").await.expect("order");
    let status = order.status.expect("status");
    assert_eq!(status.artifact_workflows.len(), 1);
    assert_eq!(
        status.artifact_workflows.values().next().map(|r| r.phase),
        Some(WorkflowPhase::Succeeded)
    );
    assert_eq!(
        common::ready_condition(&env.orders().get("ttl").await.expect("o"))
            .expect("c")
            .status,
        "True"
    );
    // A later reconcile (here: a label change) does not bring it back.
    let patch = json!({"metadata": {"labels": {"touched": "yes"}}});
    env.orders()
        .patch("ttl", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("label");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(env.workflows_of("ttl").await.is_empty());
    assert_eq!(env.starts("ttl").len(), 1, "not run again");
    env.stop_controllers().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_at_reruns_everything_once_per_new_value() {
    let mut env = Env::start().await;
    standard_world(&env).await;
    env.start_local();
    let rec = env.record_file("force").display().to_string();
    env.order(
        "force",
        vec![
            artifact(json!({"image": "a", "testRecord": rec})),
            artifact(json!({"image": "b", "testRecord": rec})),
        ],
        None,
    )
    .await;
    env.wait_ready("force", "True", "Succeeded").await;
    let first = names(&env.workflows_of("force").await);
    assert_eq!(env.starts("force").len(), 2);

    let annotate =
        |v: &str| json!({"metadata": {"annotations": {"arc.opendefense.cloud/force-at": v}}});
    env.orders()
        .patch(
            "force",
            &PatchParams::default(),
            &Patch::Merge(&annotate("1")),
        )
        .await
        .expect("annotate");
    eventually("re-run under new names", CONVERGE, || async {
        let now = names(&env.workflows_of("force").await);
        (now.len() == 2 && now.is_disjoint(&first) && env.starts("force").len() == 4).then_some(())
    })
    .await;
    let order = env.wait_ready("force", "True", "Succeeded").await;
    assert_eq!(
        order
            .status
            .as_ref()
            .and_then(|s| s.last_force_at.clone())
            .as_deref(),
        Some("1")
    );
    assert_eq!(
        order.status.as_ref().map(|s| s.artifact_workflows.len()),
        Some(2),
        "old records replaced"
    );
    let second = names(&env.workflows_of("force").await);

    // The same value again (another edit) and removing the annotation: no re-run.
    let patch = json!({"metadata": {"labels": {"x": "y"}}});
    env.orders()
        .patch("force", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("label");
    let remove = json!({"metadata": {"annotations": {"arc.opendefense.cloud/force-at": null}}});
    env.orders()
        .patch("force", &PatchParams::default(), &Patch::Merge(&remove))
        .await
        .expect("remove");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(names(&env.workflows_of("force").await), second);
    assert_eq!(env.starts("force").len(), 4);

    // A new value: once more.
    env.orders()
        .patch(
            "force",
            &PatchParams::default(),
            &Patch::Merge(&annotate("2")),
        )
        .await
        .expect("annotate");
    eventually("third run", CONVERGE, || async {
        (env.starts("force").len() == 6).then_some(())
    })
    .await;
    env.wait_ready("force", "True", "Succeeded").await;
    env.stop_controllers().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_or_endpoint_change_gives_new_workflow_names_and_moves_again() {
    let mut env = Env::start().await;
    standard_world(&env).await;
    env.start_local();
    let rec = env.record_file("change").display().to_string();
    env.order(
        "change",
        vec![artifact(json!({"image": "a", "testRecord": rec}))],
        None,
    )
    .await;
    let before = env.wait_ready("change", "True", "Succeeded").await;
    let old = names(&env.workflows_of("change").await);
    let old_digest = before.status.as_ref().expect("s").secret_generations["dst-creds"].clone();

    env.secret(
        "dst-creds",
        &[("username", "robot"), ("password", "rotated")],
    )
    .await;
    let renamed = eventually(
        "new workflow after the Secret changed",
        CONVERGE,
        || async {
            let now = names(&env.workflows_of("change").await);
            (now.len() == 1 && now.is_disjoint(&old)).then_some(now)
        },
    )
    .await;
    let after = env.wait_ready("change", "True", "Succeeded").await;
    assert_ne!(
        after.status.as_ref().expect("s").secret_generations["dst-creds"],
        old_digest
    );
    let starts = env.starts("change");
    assert_eq!(starts.len(), 2);
    assert_eq!(starts[1]["dst"]["files"]["password"]["content"], "rotated");

    // An Endpoint edit bumps its generation: again a new name.
    let patch = json!({"spec": {"remoteURL": "https://src2.example"}});
    env.endpoints()
        .patch("src", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("edit endpoint");
    eventually(
        "new workflow after the Endpoint changed",
        CONVERGE,
        || async {
            let now = names(&env.workflows_of("change").await);
            (now.len() == 1 && now.is_disjoint(&renamed) && env.starts("change").len() == 3)
                .then_some(())
        },
    )
    .await;
    let after = env.wait_ready("change", "True", "Succeeded").await;
    assert_eq!(after.status.expect("s").endpoint_generations["src"], 2);
    assert_eq!(
        env.starts("change")[2]["params"]["srcRemoteURL"],
        "https://src2.example"
    );
    env.stop_controllers().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_order_stops_its_workers_and_removes_everything() {
    let mut env = Env::start().await;
    standard_world(&env).await;
    env.start_local();
    let rec = env.record_file("gone").display().to_string();
    env.order(
        "gone",
        vec![artifact(
            json!({"image": "a", "testMode": "hang", "testRecord": rec}),
        )],
        None,
    )
    .await;
    let start = eventually("worker running", CONVERGE, || async {
        env.starts("gone").into_iter().next()
    })
    .await;
    let pid = start["pid"].as_u64().expect("pid");
    let secret_dir = std::path::PathBuf::from(start["dst"]["dir"].as_str().expect("dir"));
    assert!(
        secret_dir.exists(),
        "credentials exist while the worker runs"
    );
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());

    env.orders()
        .delete("gone", &DeleteParams::default())
        .await
        .expect("delete order");
    eventually("order and workflows gone", CONVERGE, || async {
        let order = env.orders().get_opt("gone").await.ok()?;
        let wfs = env
            .workflows()
            .list(&ListParams::default())
            .await
            .ok()?
            .items;
        (order.is_none() && wfs.is_empty()).then_some(())
    })
    .await;
    // The worker was killed (and reaped) and its credentials removed.
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "worker {pid} still alive"
    );
    assert!(!secret_dir.exists(), "credentials directory removed");
    env.stop_controllers().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_wait_for_ready_returns_once_the_order_succeeded() {
    let Some(kubectl) =
        arc_tests::tools::require("kubectl", "kubectl wait --for=condition=Ready on an Order")
    else {
        return;
    };
    let mut env = Env::start().await;
    standard_world(&env).await;
    env.start_local();
    env.order(
        "waited",
        vec![artifact(json!({"image": "a", "testMode": "sleep:700"}))],
        None,
    )
    .await;
    let kubeconfig = env.server.kubeconfig_path().to_path_buf();
    let cache = tempfile::tempdir().expect("cache dir");
    let cache_path = cache.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(kubectl)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--cache-dir")
            .arg(&cache_path)
            .args([
                "wait",
                "--for=condition=Ready",
                "order/waited",
                "--timeout=60s",
            ])
            .output()
            .expect("run kubectl")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kubectl wait failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("waited condition met"), "{stdout}");
    let ready = env.ready("waited").await.expect("Ready condition");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Succeeded")
    );
    env.stop_controllers().await;
}
