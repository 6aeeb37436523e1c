//! Bad input never crashes or spins the Order controller: a missing Endpoint, Secret or
//! artifact type, a type the rules refuse, a PullOnly destination, an empty artifact list or a
//! spec that is not an object gives `Ready=False` with reason `InvalidSpec` and a message naming
//! the artifact and the problem — and as soon as the missing piece appears, the Order proceeds.

mod common;

use std::time::{Duration, Instant};

use apiserver::types::{
    ArtifactType, ArtifactTypeRules, ArtifactTypeSpec, ClusterArtifactType,
    ClusterArtifactTypeSpec, EndpointUsage, OrderArtifact, WorkflowTemplateRef,
};
use common::{CONVERGE, Env, NS, artifact, eventually, standard_world};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

/// How long the Order may take to proceed once what it lacked appears (watch-driven, no
/// periodic resync involved).
const PROCEEDS_WITHIN: Duration = Duration::from_secs(5);

async fn invalid_with(env: &Env, order: &str, message: &str) {
    let o = env.wait_ready(order, "False", "InvalidSpec").await;
    let c = common::ready_condition(&o).expect("ready");
    assert_eq!(c.message, message);
    assert_eq!(o.status.as_ref().map(|s| s.message.as_str()), Some(message));
    assert!(env.workflows_of(order).await.is_empty(), "nothing started");
}

/// Asserts the controllers stay quiet while the Order is invalid: no status rewrites and only a
/// handful of requests (a hot loop would show hundreds).
async fn stays_quiet(
    env: &Env,
    order: &str,
    counter: &controllers::request_counter::RequestCounter,
) {
    let rv = env
        .orders()
        .get(order)
        .await
        .expect("order")
        .resource_version();
    let before = counter.snapshot();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let used = counter.snapshot().since(&before);
    assert_eq!(
        env.orders()
            .get(order)
            .await
            .expect("order")
            .resource_version(),
        rv,
        "status rewritten"
    );
    assert!(
        used.reads + used.writes <= 3,
        "controllers busy while nothing changes: {used:?}"
    );
}

async fn proceeds(env: &Env, order: &str) {
    let start = Instant::now();
    env.wait_ready(order, "True", "Succeeded").await;
    assert!(
        start.elapsed() < PROCEEDS_WITHIN + Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_endpoint_is_reported_and_its_creation_resumes_the_order() {
    let mut env = Env::start().await;
    let counter = env.start_local_counted().await;
    env.secret("dst-creds", &[("username", "u")]).await;
    env.endpoint("dst", "oci", EndpointUsage::PushOnly, Some("dst-creds"))
        .await;
    env.order("o", vec![artifact(json!({"image": "a"}))], None)
        .await;
    invalid_with(
        &env,
        "o",
        "artifact 0: source Endpoint \"src\" not found in namespace \"default\"",
    )
    .await;
    stays_quiet(&env, "o", &counter).await;
    env.endpoint("src", "oci", EndpointUsage::PullOnly, None)
        .await;
    proceeds(&env, "o").await;
    env.stop_controllers().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_is_reported_and_its_creation_resumes_the_order() {
    let mut env = Env::start().await;
    let counter = env.start_local_counted().await;
    env.endpoint("src", "oci", EndpointUsage::PullOnly, None)
        .await;
    env.endpoint("dst", "oci", EndpointUsage::PushOnly, Some("dst-creds"))
        .await;
    env.order("o", vec![artifact(json!({"image": "a"}))], None)
        .await;
    invalid_with(
        &env,
        "o",
        "artifact 0: Secret \"dst-creds\" of destination Endpoint \"dst\" not found in namespace \"default\"",
    )
    .await;
    stays_quiet(&env, "o", &counter).await;
    env.secret("dst-creds", &[("username", "u")]).await;
    proceeds(&env, "o").await;
    env.stop_controllers().await;
}

fn type_spec(template: &str, src: &[&str], dst: &[&str]) -> ArtifactTypeSpec {
    ArtifactTypeSpec {
        rules: ArtifactTypeRules {
            src_types: src.iter().map(|s| s.to_string()).collect(),
            dst_types: dst.iter().map(|s| s.to_string()).collect(),
        },
        parameters: vec![],
        workflow_template_ref: WorkflowTemplateRef {
            name: template.into(),
            cluster_scope: false,
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_artifact_type_is_reported_and_either_kind_of_type_resumes_the_order() {
    let mut env = Env::start().await;
    standard_world(&env).await;
    env.start_local();
    let typed = |t: &str| OrderArtifact {
        type_: t.into(),
        spec: json!({"image": "a"}),
        ..OrderArtifact::default()
    };
    env.order("ns-type", vec![typed("custom")], None).await;
    env.order("cluster-type", vec![typed("wide")], None).await;
    invalid_with(
        &env,
        "ns-type",
        "artifact 0: artifact type \"custom\" not found (no ArtifactType in namespace \"default\" and no ClusterArtifactType)",
    )
    .await;
    invalid_with(
        &env,
        "cluster-type",
        "artifact 0: artifact type \"wide\" not found (no ArtifactType in namespace \"default\" and no ClusterArtifactType)",
    )
    .await;

    let types: Api<ArtifactType> = Api::namespaced(env.client.clone(), NS);
    types
        .create(
            &PostParams::default(),
            &ArtifactType::new("custom", type_spec("arc-custom", &["oci"], &["oci"])),
        )
        .await
        .expect("type");
    proceeds(&env, "ns-type").await;
    let aw = &env.workflows_of("ns-type").await[0];
    assert_eq!(
        aw.spec.workflow_template_ref,
        WorkflowTemplateRef {
            name: "arc-custom".into(),
            cluster_scope: false
        }
    );

    let cluster: Api<ClusterArtifactType> = Api::all(env.client.clone());
    let wide = ClusterArtifactType::new(
        "wide",
        ClusterArtifactTypeSpec {
            inner: type_spec("arc-wide", &[], &[]),
        },
    );
    cluster
        .create(&PostParams::default(), &wide)
        .await
        .expect("cluster type");
    proceeds(&env, "cluster-type").await;
    let aw = &env.workflows_of("cluster-type").await[0];
    assert_eq!(
        aw.spec.workflow_template_ref,
        WorkflowTemplateRef {
            name: "arc-wide".into(),
            cluster_scope: true
        }
    );
    cluster
        .delete("wide", &DeleteParams::default())
        .await
        .expect("cleanup");
    env.stop_controllers().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_type_the_rules_refuse_is_reported_and_a_rule_change_resumes_the_order() {
    let mut env = Env::start().await;
    standard_world(&env).await;
    env.endpoint("web", "http", EndpointUsage::All, None).await;
    env.start_local();
    let mut a = artifact(json!({"image": "a"}));
    a.src_ref = Some(apiserver::types::LocalObjectReference::new("web"));
    env.order("o", vec![artifact(json!({"image": "fine"})), a], None)
        .await;
    invalid_with(
        &env,
        "o",
        "artifact 1: source Endpoint \"web\" has type \"http\", which artifact type \"oci\" does not allow (allowed: oci, dir, bundle)",
    )
    .await;
    // Allowing `http` in the ClusterArtifactType reaches the Order through its watch.
    let cluster: Api<ClusterArtifactType> = Api::all(env.client.clone());
    let patch = json!({"spec": {"rules": {"srcTypes": ["oci", "http"]}}});
    cluster
        .patch("oci", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("edit rules");
    proceeds(&env, "o").await;
    env.stop_controllers().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_only_destination_is_reported_and_a_usage_change_resumes_the_order() {
    let mut env = Env::start().await;
    standard_world(&env).await;
    env.start_local();
    let mut a = artifact(json!({"image": "a"}));
    a.dst_ref = Some(apiserver::types::LocalObjectReference::new("src"));
    env.order("o", vec![a], None).await;
    invalid_with(
        &env,
        "o",
        "artifact 0: Endpoint \"src\" has usage PullOnly and cannot be a destination",
    )
    .await;
    let patch = json!({"spec": {"usage": "All"}});
    env.endpoints()
        .patch("src", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("edit usage");
    proceeds(&env, "o").await;
    env.stop_controllers().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_orders_and_non_object_specs_are_reported_and_fixing_the_order_resumes_it() {
    let mut env = Env::start().await;
    standard_world(&env).await;
    env.start_local();
    env.order("empty", vec![], None).await;
    invalid_with(&env, "empty", "spec.artifacts is empty: nothing to move").await;
    env.order(
        "scalar",
        vec![
            artifact(json!({"image": "ok"})),
            artifact(json!("just a string")),
        ],
        None,
    )
    .await;
    invalid_with(
        &env,
        "scalar",
        "artifact 1: spec must be an object, not a string",
    )
    .await;

    let fix = json!({"spec": {"artifacts": [{"type": "oci", "spec": {"image": "a"}}]}});
    env.orders()
        .patch("empty", &PatchParams::default(), &Patch::Merge(&fix))
        .await
        .expect("fix");
    env.orders()
        .patch("scalar", &PatchParams::default(), &Patch::Merge(&fix))
        .await
        .expect("fix");
    proceeds(&env, "empty").await;
    proceeds(&env, "scalar").await;
    env.stop_controllers().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_problem_of_an_order_is_listed_at_once() {
    let mut env = Env::start().await;
    env.start_local();
    env.order(
        "o",
        vec![
            OrderArtifact {
                type_: "nope".into(),
                ..OrderArtifact::default()
            },
            artifact(json!({"image": "a"})),
        ],
        None,
    )
    .await;
    let o = env.wait_ready("o", "False", "InvalidSpec").await;
    let message = common::ready_condition(&o).expect("ready").message;
    assert!(
        message.starts_with("artifact 0: source Endpoint \"src\" not found"),
        "{message}"
    );
    assert!(
        message.contains("; artifact 1: source Endpoint \"src\" not found"),
        "{message}"
    );
    eventually("an InvalidSpec warning event", CONVERGE, || async {
        let events: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(env.client.clone(), NS);
        let list = events.list(&Default::default()).await.ok()?.items;
        list.into_iter().find(|e| {
            e.reason.as_deref() == Some("InvalidSpec") && e.type_.as_deref() == Some("Warning")
        })
    })
    .await;
    env.stop_controllers().await;
}
