//! Tests of the discovery documents.

use super::*;
use crate::server::kinds::{arc_kinds, core_kinds, events_k8s_io_kinds};

fn embedded() -> Vec<ResourceKind> {
    arc_kinds()
        .into_iter()
        .chain(core_kinds())
        .chain(events_k8s_io_kinds())
        .collect()
}

#[test]
fn legacy_group_list_and_group() {
    let arc = arc_kinds();
    let gv = json!({"groupVersion": "arc.opendefense.cloud/v1alpha1", "version": "v1alpha1"});
    assert_eq!(
        api_group_list(&arc),
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            {"name": "arc.opendefense.cloud", "versions": [gv], "preferredVersion": gv}]})
    );
    assert_eq!(
        api_group(&arc, "arc.opendefense.cloud").unwrap(),
        json!({"kind": "APIGroup", "apiVersion": "v1", "name": "arc.opendefense.cloud", "versions": [gv], "preferredVersion": gv})
    );
    assert!(api_group(&arc, "apps").is_none());
    // Embedded: the core group is not in /apis; events.k8s.io (priority 17750) precedes ours.
    let names: Vec<Value> = api_group_list(&embedded())["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].clone())
        .collect();
    assert_eq!(
        names,
        [json!("events.k8s.io"), json!("arc.opendefense.cloud")]
    );
}

#[test]
fn resource_list_matches_the_contract() {
    let list = api_resource_list(&arc_kinds(), "arc.opendefense.cloud", "v1alpha1").unwrap();
    assert_eq!(list["kind"], "APIResourceList");
    assert_eq!(list["groupVersion"], "arc.opendefense.cloud/v1alpha1");
    let names: Vec<&str> = list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "artifacttypes",
            "artifactworkflows",
            "artifactworkflows/status",
            "clusterartifacttypes",
            "endpoints",
            "endpoints/status",
            "orders",
            "orders/status"
        ]
    );
    let orders = list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "orders")
        .unwrap();
    let mut expected = json!({"name": "orders", "singularName": "order", "namespaced": true, "kind": "Order",
        "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
        "shortNames": ["ord"], "categories": ["arc"]});
    expected["storageVersionHash"] = orders["storageVersionHash"].clone();
    assert_eq!(orders, &expected);
    assert_eq!(orders["storageVersionHash"].as_str().unwrap().len(), 12);
    let status = list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "orders/status")
        .unwrap();
    assert_eq!(
        status,
        &json!({"name": "orders/status", "singularName": "", "namespaced": true, "kind": "Order", "verbs": ["get", "patch", "update"]})
    );
    let cat = list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "clusterartifacttypes")
        .unwrap();
    assert_eq!(cat["namespaced"], false);
    assert!(api_resource_list(&arc_kinds(), "arc.opendefense.cloud", "v1").is_none());
}

#[test]
fn core_group_in_embedded_mode() {
    let kinds = embedded();
    assert_eq!(
        api_versions(&kinds, Some("127.0.0.1:6443")).unwrap(),
        json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]})
    );
    assert!(
        api_versions(&arc_kinds(), None).is_none(),
        "/api is a 404 without core kinds"
    );
    let core = api_resource_list(&kinds, "", "v1").unwrap();
    assert_eq!(core["groupVersion"], "v1");
    let names: Vec<&str> = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["events", "namespaces", "namespaces/status", "secrets"]
    );
    let agg = aggregated_core(&kinds, DiscoveryFormat::AggregatedV2);
    assert_eq!(agg["items"].as_array().unwrap().len(), 1);
    assert_eq!(agg["items"][0]["metadata"], json!({}));
    assert_eq!(agg["items"][0]["versions"][0]["version"], "v1");
    let ns = agg["items"][0]["versions"][0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "namespaces")
        .unwrap();
    assert_eq!(ns["scope"], "Cluster");
    assert_eq!(
        ns["responseKind"],
        json!({"group": "", "version": "v1", "kind": "Namespace"})
    );
    assert_eq!(
        aggregated_core(&arc_kinds(), DiscoveryFormat::AggregatedV2)["items"],
        json!([])
    );
}

#[test]
fn aggregated_discovery_shape() {
    let body = aggregated_apis(&arc_kinds(), DiscoveryFormat::AggregatedV2);
    assert_eq!(body["kind"], "APIGroupDiscoveryList");
    assert_eq!(body["apiVersion"], "apidiscovery.k8s.io/v2");
    assert_eq!(body["metadata"], json!({}));
    let group = &body["items"][0];
    assert_eq!(group["metadata"], json!({"name": "arc.opendefense.cloud"}));
    let version = &group["versions"][0];
    assert_eq!(version["version"], "v1alpha1");
    assert_eq!(version["freshness"], "Current");
    let resources = version["resources"].as_array().unwrap();
    assert_eq!(resources.len(), 5);
    for r in resources {
        assert!(r["responseKind"]["kind"].is_string(), "{r}");
        assert!(
            r["verbs"]
                .as_array()
                .unwrap()
                .contains(&json!("deletecollection"))
        );
        for s in r
            .get("subresources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            assert!(s["responseKind"]["kind"].is_string());
        }
    }
    let orders = resources
        .iter()
        .find(|r| r["resource"] == "orders")
        .unwrap();
    assert_eq!(
        orders,
        &json!({"resource": "orders",
            "responseKind": {"group": "arc.opendefense.cloud", "version": "v1alpha1", "kind": "Order"},
            "scope": "Namespaced", "singularResource": "order",
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
            "shortNames": ["ord"], "categories": ["arc"],
            "subresources": [{"subresource": "status",
                "responseKind": {"group": "arc.opendefense.cloud", "version": "v1alpha1", "kind": "Order"},
                "verbs": ["get", "patch", "update"]}]})
    );
    let cat = resources
        .iter()
        .find(|r| r["resource"] == "clusterartifacttypes")
        .unwrap();
    assert_eq!(cat["scope"], "Cluster");
    assert!(cat.get("subresources").is_none());
    let beta = apis(&arc_kinds(), DiscoveryFormat::AggregatedV2beta1);
    assert_eq!(beta["apiVersion"], "apidiscovery.k8s.io/v2beta1");
    assert_eq!(beta["items"], body["items"]);
    assert_eq!(
        apis(&arc_kinds(), DiscoveryFormat::Legacy)["kind"],
        "APIGroupList"
    );
}

#[test]
fn accept_negotiation() {
    let kubectl_132 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
    let kubectl_127 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
    assert_eq!(
        negotiate_discovery(Some(kubectl_132)),
        Some(DiscoveryFormat::AggregatedV2)
    );
    assert_eq!(
        negotiate_discovery(Some(kubectl_127)),
        Some(DiscoveryFormat::AggregatedV2beta1)
    );
    assert_eq!(
        negotiate_discovery(Some("application/json")),
        Some(DiscoveryFormat::Legacy)
    );
    assert_eq!(
        negotiate_discovery(Some("*/*")),
        Some(DiscoveryFormat::Legacy)
    );
    assert_eq!(negotiate_discovery(None), Some(DiscoveryFormat::Legacy));
    assert_eq!(
        negotiate_discovery(Some(
            "application/json; as=APIGroupDiscoveryList; v=v2; g=apidiscovery.k8s.io"
        )),
        Some(DiscoveryFormat::AggregatedV2)
    );
    assert_eq!(
        negotiate_discovery(Some("application/vnd.kubernetes.protobuf")),
        None
    );
    assert_eq!(
        negotiate_discovery(Some(
            "application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList"
        )),
        None
    );
    assert_eq!(
        negotiate_discovery(Some(
            "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
        )),
        Some(DiscoveryFormat::Legacy)
    );
    assert_eq!(
        DiscoveryFormat::AggregatedV2.content_type(),
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    );
}

#[test]
fn etags_are_stable_content_hashes() {
    let a = serde_json::to_vec(&aggregated_apis(
        &arc_kinds(),
        DiscoveryFormat::AggregatedV2,
    ))
    .unwrap();
    let b = serde_json::to_vec(&aggregated_apis(
        &arc_kinds(),
        DiscoveryFormat::AggregatedV2,
    ))
    .unwrap();
    let c =
        serde_json::to_vec(&aggregated_apis(&embedded(), DiscoveryFormat::AggregatedV2)).unwrap();
    assert_eq!(etag(&a), etag(&b));
    assert_ne!(etag(&a), etag(&c));
    let e = etag(&a);
    assert!(e.starts_with('"') && e.ends_with('"') && e.len() == 130);
    assert!(
        e[1..129]
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    );
    assert!(if_none_match(Some(&e), &e));
    assert!(if_none_match(Some(&format!("\"x\", {e}")), &e));
    assert!(!if_none_match(Some("\"x\""), &e));
    assert!(!if_none_match(None, &e));
}

#[test]
fn versions_sort_newest_stable_first() {
    let mut v = vec![
        "v1alpha1",
        "foo",
        "v2beta1",
        "v1",
        "v1beta2",
        "v2",
        "v1beta1",
        "v10alpha1",
    ];
    v.sort_by(|a, b| compare_versions(a, b));
    assert_eq!(
        v,
        [
            "v2",
            "v1",
            "v2beta1",
            "v1beta2",
            "v1beta1",
            "v10alpha1",
            "v1alpha1",
            "foo"
        ]
    );
}
