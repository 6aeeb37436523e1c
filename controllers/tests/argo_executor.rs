//! The Argo executor against the embedded API server serving `argoproj.io/v1alpha1` Workflows
//! as an extra kind. No Argo can run here, so the test plays Argo: it checks each Workflow the
//! executor creates (against Argo's schema, too), then writes Workflow statuses as Argo's
//! controller would, and watches them flow back into the ArtifactWorkflows and the Order.
//! Pod logs come from a stub (no kubelet exists).

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use apiserver::server::registry::ResourceKind;
use apiserver::server::testing::TestServer;
use apiserver::types::WorkflowPhase;
use common::argo_schema::ArgoSchema;
use common::{CONVERGE, Env, artifact, eventually, standard_world};
use controllers::executor::argo::workflow::workflow_resource;
use controllers::executor::argo::{ArgoExecutor, PodLogs};
use controllers::{ArgoExecutorSettings, ExecutorSettings, Settings};
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

fn workflow_kind() -> ResourceKind {
    ResourceKind {
        group: "argoproj.io",
        version: "v1alpha1",
        kind: "Workflow",
        list_kind: "WorkflowList",
        plural: "workflows",
        singular: "workflow",
        namespaced: true,
        short_names: &["wf"],
        categories: &[],
        // Argo's CRD has no status subresource: its controller writes the whole object.
        has_status: false,
        schema: json!({
            "type": "object",
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"type": "object"},
                "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
            }
        }),
        columns: vec![],
        description: "Argo Workflow (test-only row)",
    }
}

/// Pod logs as a kubelet would serve them; records what was asked.
#[derive(Default)]
struct StubLogs {
    asked: Mutex<Vec<(String, String, i64)>>,
}

#[async_trait::async_trait]
impl PodLogs for StubLogs {
    async fn tail(&self, namespace: &str, pod: &str, lines: i64) -> Result<String, kube::Error> {
        self.asked
            .lock()
            .expect("lock")
            .push((namespace.into(), pod.into(), lines));
        Ok(format!(
            "pulling library/a\nerror: 401 Unauthorized from registry ({pod})\n"
        ))
    }
}

async fn play_argo(wfs: &Api<DynamicObject>, name: &str, status: Value) {
    let patch = json!({ "status": status });
    wfs.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("set workflow status");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflows_are_created_valid_and_their_phases_and_failures_flow_back() {
    common::init_logging();
    let server = TestServer::start_with_kinds(vec![workflow_kind()]).await;
    let mut env = Env::with_server(server).await;
    standard_world(&env).await;
    let logs = Arc::new(StubLogs::default());
    let argo = ArgoExecutorSettings {
        queue_name: Some("arc-queue".into()),
        service_account_name: None,
        pod_log_tail_lines: 20,
    };
    let executor = Arc::new(ArgoExecutor::with_pod_logs(
        argo.clone(),
        env.client.clone(),
        logs.clone(),
    ));
    let mut settings = Settings::new(ExecutorSettings::Argo(argo));
    settings.order_debounce = std::time::Duration::from_millis(50);
    env.start_controllers_with(settings, executor);

    env.order(
        "o",
        vec![
            artifact(json!({"image": "library/a:1"})),
            artifact(json!({"image": "library/b:1"})),
        ],
        None,
    )
    .await;
    let wfs: Api<DynamicObject> =
        Api::namespaced_with(env.client.clone(), common::NS, &workflow_resource());
    let created = eventually("two Argo Workflows", CONVERGE, || async {
        let list = wfs.list(&ListParams::default()).await.ok()?.items;
        (list.len() == 2).then_some(list)
    })
    .await;

    // What the executor asked Argo to run.
    let Some(schema) = ArgoSchema::load() else {
        return;
    };
    let aws: BTreeMap<String, apiserver::types::ArtifactWorkflow> = env
        .workflows_of("o")
        .await
        .into_iter()
        .map(|w| (w.name_any(), w))
        .collect();
    for wf in &created {
        let mut value = serde_json::to_value(wf).expect("json");
        // Server-set metadata is part of Argo's ObjectMeta too; status is absent so far.
        let errors = schema.validate("Workflow", &value);
        assert!(errors.is_empty(), "{errors:#?}\n{value:#}");
        let aw = &aws[&wf.name_any()];
        let owner = &wf.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("ArtifactWorkflow", aw.uid().expect("uid").as_str())
        );
        assert_eq!(wf.labels()["kueue.x-k8s.io/queue-name"], "arc-queue");
        let spec = value["spec"].take();
        assert_eq!(
            spec["workflowTemplateRef"],
            json!({"name": "arc-oci", "clusterScope": true})
        );
        assert_eq!(
            spec["volumes"],
            json!([
                {"name": "src-secret-vol", "emptyDir": {}},
                {"name": "dst-secret-vol", "secret": {"secretName": "dst-creds"}}
            ])
        );
        let params: BTreeMap<String, String> = spec["arguments"]["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap_or_default().into(),
                    p["value"].as_str().unwrap_or_default().into(),
                )
            })
            .collect();
        let expected: BTreeMap<String, String> = aw
            .spec
            .parameters
            .iter()
            .map(|p| (p.name.clone(), p.value.clone()))
            .collect();
        assert_eq!(params, expected);
        assert_eq!(params["dstSecret"], "true");
        assert!(
            !value.to_string().contains("robot"),
            "credentials never in the Workflow"
        );
    }
    eventually("both pending in the Order", CONVERGE, || async {
        let s = env.orders().get("o").await.ok()?.status?;
        (s.message == "0/2 succeeded, 2 pending").then_some(())
    })
    .await;

    // Argo starts both; one succeeds, one fails in its `copy` step.
    let names: Vec<String> = created.iter().map(|w| w.name_any()).collect();
    for n in &names {
        play_argo(
            &wfs,
            n,
            json!({"phase": "Running", "startedAt": "2030-01-01T00:00:00Z"}),
        )
        .await;
    }
    eventually("both running", CONVERGE, || async {
        let o = env.orders().get("o").await.ok()?;
        let s = o.status?;
        (s.message == "0/2 succeeded, 2 running").then_some(())
    })
    .await;
    play_argo(
        &wfs,
        &names[0],
        json!({"phase": "Succeeded", "startedAt": "2030-01-01T00:00:00Z", "finishedAt": "2030-01-01T00:02:00Z"}),
    )
    .await;
    let failed = &names[1];
    play_argo(
        &wfs,
        failed,
        json!({
            "phase": "Failed",
            "message": format!("child '{failed}-1234' failed"),
            "startedAt": "2030-01-01T00:00:00Z",
            "finishedAt": "2030-01-01T00:03:00Z",
            "nodes": {
                failed.clone(): {"id": failed, "name": failed, "type": "Steps", "phase": "Failed"},
                format!("{failed}-1234"): {
                    "id": format!("{failed}-1234"), "name": format!("{failed}[0].move"), "displayName": "move",
                    "type": "Pod", "phase": "Failed", "templateName": "move", "message": "Error (exit code 1)"
                }
            }
        }),
    )
    .await;
    let order = env.wait_ready("o", "False", "Failed").await;
    assert_eq!(
        order.status.as_ref().expect("status").message,
        "1/2 succeeded, 1 failed"
    );

    let ok = env
        .workflows()
        .get(&names[0])
        .await
        .expect("aw")
        .status
        .expect("status");
    assert_eq!(ok.phase, WorkflowPhase::Succeeded);
    assert_eq!(
        ok.start_time.map(|t| t.0.to_string()).as_deref(),
        Some("2030-01-01T00:00:00Z")
    );
    assert_eq!(
        ok.completion_time.map(|t| t.0.to_string()).as_deref(),
        Some("2030-01-01T00:02:00Z")
    );
    assert_eq!(
        ok.executor_ref,
        Some(format!(
            "argoproj.io/v1alpha1/Workflow/default/{}",
            names[0]
        ))
    );
    let bad = env
        .workflows()
        .get(failed)
        .await
        .expect("aw")
        .status
        .expect("status");
    assert_eq!(bad.phase, WorkflowPhase::Failed);
    let pod = format!("{failed}-move-1234");
    assert_eq!(
        bad.message,
        format!(
            "child '{failed}-1234' failed\nStep 'move' failed: Error (exit code 1)\nLogs of pod {pod}:\npulling library/a\nerror: 401 Unauthorized from registry ({pod})"
        )
    );
    assert!(
        logs.asked
            .lock()
            .expect("lock")
            .contains(&("default".to_string(), pod.clone(), 20))
    );

    // Deleting the Order removes the ArtifactWorkflows and with them their Workflows.
    env.orders()
        .delete("o", &DeleteParams::default())
        .await
        .expect("delete");
    eventually("workflows gone", CONVERGE, || async {
        let left = wfs.list(&ListParams::default()).await.ok()?.items;
        let aws = env
            .workflows()
            .list(&ListParams::default())
            .await
            .ok()?
            .items;
        (left.is_empty() && aws.is_empty()).then_some(())
    })
    .await;
    env.stop_controllers().await;
}
