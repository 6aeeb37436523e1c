//! Unit tests of Order resolution against an in-memory [`Lookup`].

use std::collections::HashMap;

use apiserver::types::{
    ArtifactTypeRules, EndpointUsage, OrderDefaults, OrderSpec, WorkflowTemplateRef,
};
use serde_json::json;

use super::*;

#[derive(Default)]
pub(crate) struct FakeLookup {
    pub endpoints: HashMap<(String, String), EndpointInfo>,
    pub secrets: HashMap<(String, String), String>,
    pub types: HashMap<(String, String), ArtifactTypeSpec>,
    pub cluster_types: HashMap<String, ArtifactTypeSpec>,
}

impl Lookup for FakeLookup {
    fn endpoint(&self, namespace: &str, name: &str) -> Option<EndpointInfo> {
        self.endpoints
            .get(&(namespace.into(), name.into()))
            .cloned()
    }
    fn secret_digest(&self, namespace: &str, name: &str) -> Option<String> {
        self.secrets.get(&(namespace.into(), name.into())).cloned()
    }
    fn artifact_type(&self, namespace: &str, name: &str) -> Option<(ArtifactTypeSpec, TypeScope)> {
        if let Some(t) = self.types.get(&(namespace.into(), name.into())) {
            return Some((t.clone(), TypeScope::Namespaced));
        }
        self.cluster_types
            .get(name)
            .map(|t| (t.clone(), TypeScope::Cluster))
    }
}

fn endpoint(
    type_: &str,
    url: &str,
    usage: EndpointUsage,
    secret: Option<&str>,
    generation: i64,
) -> EndpointInfo {
    EndpointInfo {
        spec: EndpointSpec {
            type_: type_.into(),
            remote_url: url.into(),
            secret_ref: secret.map(LocalObjectReference::new),
            usage,
        },
        generation,
    }
}

fn oci_type(template: &str) -> ArtifactTypeSpec {
    ArtifactTypeSpec {
        rules: ArtifactTypeRules {
            src_types: vec!["oci".into()],
            dst_types: vec!["oci".into(), "dir".into()],
        },
        parameters: vec![],
        workflow_template_ref: WorkflowTemplateRef {
            name: template.into(),
            cluster_scope: false,
        },
    }
}

fn world() -> FakeLookup {
    let mut l = FakeLookup::default();
    let ns = |n: &str| ("team".to_string(), n.to_string());
    l.endpoints.insert(
        ns("hub"),
        endpoint(
            "oci",
            "https://hub.example",
            EndpointUsage::PullOnly,
            None,
            1,
        ),
    );
    l.endpoints.insert(
        ns("mirror"),
        endpoint(
            "oci",
            "https://mirror.example",
            EndpointUsage::All,
            Some("mirror-creds"),
            4,
        ),
    );
    l.endpoints.insert(
        ns("files"),
        endpoint("http", "https://files.example", EndpointUsage::All, None, 1),
    );
    l.secrets.insert(ns("mirror-creds"), "sha256:aa".into());
    l.cluster_types.insert("oci".into(), oci_type("arc-oci"));
    l
}

fn order(artifacts: Vec<OrderArtifact>) -> Order {
    let mut o = Order::new(
        "nightly",
        OrderSpec {
            defaults: Some(OrderDefaults {
                src_ref: Some(LocalObjectReference::new("hub")),
                dst_ref: Some(LocalObjectReference::new("mirror")),
            }),
            artifacts,
            ttl_seconds_after_completion: None,
        },
    );
    o.metadata.namespace = Some("team".into());
    o
}

fn artifact(type_: &str, spec: serde_json::Value) -> OrderArtifact {
    OrderArtifact {
        type_: type_.into(),
        spec,
        ..Default::default()
    }
}

fn problems(r: &Resolution) -> String {
    r.desired
        .as_ref()
        .expect_err("order should be invalid")
        .to_string()
}

#[test]
fn resolves_defaults_cluster_type_parameters_and_secrets() {
    let o = order(vec![artifact(
        "oci",
        json!({"image": "library/alpine:3.20"}),
    )]);
    let r = resolve(&o, None, &world());
    let desired = r.desired.expect("valid");
    assert_eq!(desired.len(), 1);
    let d = &desired[0];
    assert_eq!(d.index, 0);
    assert_eq!(d.name, format!("nightly-{}", d.hash));
    assert_eq!(
        d.spec.workflow_template_ref,
        WorkflowTemplateRef {
            name: "arc-oci".into(),
            cluster_scope: true
        }
    );
    assert_eq!(d.spec.src_secret_ref, None);
    assert_eq!(
        d.spec.dst_secret_ref,
        Some(LocalObjectReference::new("mirror-creds"))
    );
    let params: BTreeMap<_, _> = d
        .spec
        .parameters
        .iter()
        .map(|p| (p.name.as_str(), p.value.as_str()))
        .collect();
    assert_eq!(params["srcType"], "oci");
    assert_eq!(params["srcRemoteURL"], "https://hub.example");
    assert_eq!(params["srcSecret"], "false");
    assert_eq!(params["dstSecret"], "true");
    assert_eq!(params["specImage"], "library/alpine:3.20");
    assert_eq!(
        r.endpoint_generations,
        BTreeMap::from([("hub".to_string(), 1), ("mirror".to_string(), 4)])
    );
    assert_eq!(
        r.secret_generations,
        BTreeMap::from([("mirror-creds".to_string(), "sha256:aa".to_string())])
    );
}

#[test]
fn namespaced_type_wins_over_cluster_type_and_keeps_its_scope() {
    let mut w = world();
    let mut t = oci_type("team-oci");
    t.parameters = vec![apiserver::types::ArtifactWorkflowParameter {
        name: "specImage".into(),
        value: "forced".into(),
    }];
    w.types.insert(("team".into(), "oci".into()), t);
    let r = resolve(
        &order(vec![artifact("oci", json!({"image": "x"}))]),
        None,
        &w,
    );
    let d = &r.desired.expect("valid")[0];
    assert_eq!(
        d.spec.workflow_template_ref,
        WorkflowTemplateRef {
            name: "team-oci".into(),
            cluster_scope: false
        }
    );
    assert!(
        d.spec
            .parameters
            .iter()
            .any(|p| p.name == "specImage" && p.value == "forced")
    );
}

#[test]
fn artifact_refs_override_defaults() {
    let mut a = artifact("oci", json!({}));
    a.dst_ref = Some(LocalObjectReference::new("hub"));
    let r = resolve(&order(vec![a]), None, &world());
    assert_eq!(
        problems(&r),
        "artifact 0: Endpoint \"hub\" has usage PullOnly and cannot be a destination"
    );
}

#[test]
fn every_bad_input_names_the_artifact_and_the_problem() {
    let mut missing_src = artifact("oci", json!({}));
    missing_src.src_ref = Some(LocalObjectReference::new("nope"));
    let mut wrong_type = artifact("oci", json!({}));
    wrong_type.src_ref = Some(LocalObjectReference::new("files"));
    let o = order(vec![
        artifact("oci", json!({"ok": true})),
        missing_src,
        artifact("helm", json!({})),
        wrong_type,
        artifact("oci", json!("not an object")),
        artifact("", json!({})),
    ]);
    let text = problems(&resolve(&o, None, &world()));
    assert_eq!(
        text,
        "artifact 1: source Endpoint \"nope\" not found in namespace \"team\"; \
         artifact 2: artifact type \"helm\" not found (no ArtifactType in namespace \"team\" and no ClusterArtifactType); \
         artifact 3: source Endpoint \"files\" has type \"http\", which artifact type \"oci\" does not allow (allowed: oci); \
         artifact 4: spec must be an object, not a string; \
         artifact 5: type is empty"
    );
}

#[test]
fn missing_secret_and_missing_defaults_are_reported() {
    let mut w = world();
    w.secrets.clear();
    let r = resolve(&order(vec![artifact("oci", json!({}))]), None, &w);
    assert_eq!(
        problems(&r),
        "artifact 0: Secret \"mirror-creds\" of destination Endpoint \"mirror\" not found in namespace \"team\""
    );
    let mut o = order(vec![artifact("oci", json!({}))]);
    o.spec.defaults = None;
    assert_eq!(
        problems(&resolve(&o, None, &world())),
        "artifact 0: no source Endpoint: set srcRef on the artifact or in spec.defaults"
    );
}

#[test]
fn empty_orders_are_invalid() {
    assert_eq!(
        problems(&resolve(&order(vec![]), None, &world())),
        "spec.artifacts is empty: nothing to move"
    );
}

#[test]
fn names_change_with_secret_data_endpoint_generation_and_force_at() {
    let o = order(vec![artifact("oci", json!({"image": "a"}))]);
    let base = resolve(&o, None, &world()).desired.expect("valid")[0]
        .name
        .clone();
    assert_eq!(
        resolve(&o, None, &world()).desired.expect("valid")[0].name,
        base,
        "deterministic"
    );

    let mut w = world();
    w.secrets
        .insert(("team".into(), "mirror-creds".into()), "sha256:bb".into());
    assert_ne!(resolve(&o, None, &w).desired.expect("valid")[0].name, base);

    let mut w = world();
    w.endpoints
        .get_mut(&("team".into(), "hub".into()))
        .expect("hub")
        .generation = 2;
    assert_ne!(resolve(&o, None, &w).desired.expect("valid")[0].name, base);

    assert_ne!(
        resolve(&o, Some("1"), &world()).desired.expect("valid")[0].name,
        base
    );
}

#[test]
fn references_cover_endpoints_types_and_secrets() {
    let mut a = artifact("helm", json!({}));
    a.src_ref = Some(LocalObjectReference::new("files"));
    let o = order(vec![artifact("oci", json!({})), a]);
    let refs = spec_references(&o);
    assert_eq!(
        refs.endpoints,
        BTreeSet::from(["hub".to_string(), "mirror".to_string(), "files".to_string()])
    );
    assert_eq!(
        refs.artifact_types,
        BTreeSet::from(["oci".to_string(), "helm".to_string()])
    );
    assert_eq!(
        secret_references(&o, "team", &world()),
        BTreeSet::from(["mirror-creds".to_string()])
    );
}
