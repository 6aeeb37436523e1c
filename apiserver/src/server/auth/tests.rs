//! Unit tests for request attribute parsing, the local policy and the 401/403 bodies.

use super::attributes::{exact_field_match, percent_decode};
use super::*;

fn attrs(method: &str, uri: &str) -> RequestAttributes {
    let (path, query) = match uri.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (uri, None),
    };
    request_attributes(&method.parse().unwrap(), path, query)
}

fn resource(a: &RequestAttributes) -> (&str, &str, &str, &str, &str, &str) {
    let r = a.resource.as_ref().expect("a resource request");
    (
        a.verb.as_str(),
        r.api_group.as_str(),
        r.resource.as_str(),
        r.subresource.as_str(),
        r.namespace.as_str(),
        r.name.as_str(),
    )
}

const G: &str = "arc.opendefense.cloud";

#[test]
fn verbs_follow_request_info() {
    let base = "/apis/arc.opendefense.cloud/v1alpha1";
    let cases = [
        (
            "GET",
            format!("{base}/namespaces/default/orders/o1"),
            ("get", G, "orders", "", "default", "o1"),
        ),
        (
            "HEAD",
            format!("{base}/namespaces/default/orders/o1"),
            ("get", G, "orders", "", "default", "o1"),
        ),
        (
            "GET",
            format!("{base}/namespaces/default/orders"),
            ("list", G, "orders", "", "default", ""),
        ),
        (
            "GET",
            format!("{base}/orders"),
            ("list", G, "orders", "", "", ""),
        ),
        (
            "GET",
            format!("{base}/namespaces/default/orders?watch=true"),
            ("watch", G, "orders", "", "default", ""),
        ),
        (
            "GET",
            format!("{base}/namespaces/default/orders?watch=1&resourceVersion=5"),
            ("watch", G, "orders", "", "default", ""),
        ),
        (
            "GET",
            format!("{base}/namespaces/default/orders?watch=false"),
            ("list", G, "orders", "", "default", ""),
        ),
        (
            "GET",
            format!("{base}/namespaces/default/orders?watch=0&watch=1"),
            ("list", G, "orders", "", "default", ""),
        ),
        (
            "GET",
            format!("{base}/namespaces/default/orders?fieldSelector=metadata.name%3Do1&watch=true"),
            ("watch", G, "orders", "", "default", "o1"),
        ),
        (
            "GET",
            format!("{base}/namespaces/default/orders?fieldSelector=metadata.name==o2"),
            ("list", G, "orders", "", "default", "o2"),
        ),
        (
            "GET",
            format!("{base}/namespaces/default/orders?fieldSelector=metadata.name!=o2"),
            ("list", G, "orders", "", "default", ""),
        ),
        (
            "GET",
            format!("{base}/namespaces/default/orders?fieldSelector=spec.x=1,metadata.name=o3"),
            ("list", G, "orders", "", "default", "o3"),
        ),
        (
            "POST",
            format!("{base}/namespaces/default/orders"),
            ("create", G, "orders", "", "default", ""),
        ),
        (
            "PUT",
            format!("{base}/namespaces/default/orders/o1"),
            ("update", G, "orders", "", "default", "o1"),
        ),
        (
            "PATCH",
            format!("{base}/namespaces/default/orders/o1/status"),
            ("patch", G, "orders", "status", "default", "o1"),
        ),
        (
            "DELETE",
            format!("{base}/namespaces/default/orders/o1"),
            ("delete", G, "orders", "", "default", "o1"),
        ),
        (
            "DELETE",
            format!("{base}/namespaces/default/orders"),
            ("deletecollection", G, "orders", "", "default", ""),
        ),
        (
            "GET",
            format!("{base}/clusterartifacttypes/c1"),
            ("get", G, "clusterartifacttypes", "", "", "c1"),
        ),
        (
            "GET",
            format!("{base}/watch/namespaces/default/orders"),
            ("watch", G, "orders", "", "default", ""),
        ),
        (
            "GET",
            "/api/v1/namespaces/default/secrets/s1".to_owned(),
            ("get", "", "secrets", "", "default", "s1"),
        ),
        (
            "GET",
            "/api/v1/namespaces".to_owned(),
            ("list", "", "namespaces", "", "", ""),
        ),
        (
            "GET",
            "/api/v1/namespaces/ns1".to_owned(),
            ("get", "", "namespaces", "", "ns1", "ns1"),
        ),
        (
            "PUT",
            "/api/v1/namespaces/ns1/finalize".to_owned(),
            ("update", "", "namespaces", "finalize", "ns1", "ns1"),
        ),
        (
            "DELETE",
            "/api/v1/namespaces/ns1".to_owned(),
            ("delete", "", "namespaces", "", "ns1", "ns1"),
        ),
    ];
    for (method, uri, expected) in cases {
        let a = attrs(method, &uri);
        assert_eq!(resource(&a), expected, "{method} {uri}");
    }
}

#[test]
fn non_resource_paths() {
    for (method, path, verb) in [
        ("GET", "/apis", "get"),
        ("GET", "/apis/arc.opendefense.cloud", "get"),
        ("GET", "/apis/arc.opendefense.cloud/v1alpha1", "get"),
        ("GET", "/api", "get"),
        ("GET", "/api/v1", "get"),
        (
            "GET",
            "/openapi/v3/apis/arc.opendefense.cloud/v1alpha1",
            "get",
        ),
        ("POST", "/version", "post"),
        ("GET", "/", "get"),
    ] {
        let a = attrs(method, path);
        assert!(!a.is_resource_request(), "{path}");
        assert_eq!(a.verb, verb);
        assert_eq!(a.path, path);
    }
}

#[test]
fn only_watches_are_long_running() {
    assert!(attrs("GET", "/apis/g/v/orders?watch=true").is_long_running());
    assert!(!attrs("GET", "/apis/g/v/orders").is_long_running());
    assert!(!attrs("GET", "/healthz?watch=true").is_long_running());
}

#[test]
fn health_paths_are_always_allowed() {
    for p in [
        "/healthz",
        "/livez",
        "/readyz",
        "/readyz/etcd",
        "/healthz/ping",
    ] {
        assert!(is_always_allowed_path(p), "{p}");
    }
    for p in [
        "/healthz/../apis/x",
        "/readyz/./x",
        "/version",
        "/healthzz",
        "/apis",
        "/readyzfoo",
    ] {
        assert!(!is_always_allowed_path(p), "{p}");
    }
}

fn who(user: &str, groups: &[&str]) -> Identity {
    let mut groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
    groups.push(AUTHENTICATED_GROUP.to_owned());
    Identity {
        user: user.to_owned(),
        groups,
    }
}

#[test]
fn local_policy() {
    let policy = LocalPolicy::default();
    let admin = who("admin", &["system:masters"]);
    let viewer = who("viewer", &["arc:viewers"]);
    let nobody = who("alice", &["dev"]);
    let orders = "/apis/arc.opendefense.cloud/v1alpha1/namespaces/default/orders";
    let allow = Decision::Allow;
    let deny = Decision::Deny { reason: None };
    let cases: [(&Identity, &str, String, &Decision); 17] = [
        (&admin, "DELETE", format!("{orders}/o1"), &allow),
        (
            &admin,
            "POST",
            "/api/v1/namespaces/default/secrets".into(),
            &allow,
        ),
        (&admin, "GET", "/metrics".into(), &allow),
        (&viewer, "GET", format!("{orders}/o1"), &allow),
        (&viewer, "GET", format!("{orders}?watch=1"), &allow),
        (&viewer, "POST", orders.into(), &deny),
        (&viewer, "PATCH", format!("{orders}/o1/status"), &deny),
        (&viewer, "DELETE", orders.into(), &deny),
        (
            &viewer,
            "GET",
            "/api/v1/namespaces/default/secrets".into(),
            &deny,
        ),
        (&viewer, "GET", "/api/v1/namespaces".into(), &allow),
        (&viewer, "GET", "/metrics".into(), &allow),
        (&viewer, "POST", "/metrics".into(), &deny),
        (&nobody, "GET", format!("{orders}/o1"), &deny),
        (&nobody, "GET", "/apis".into(), &allow),
        (&nobody, "GET", "/openapi/v3/apis/x".into(), &allow),
        (&nobody, "GET", "/metrics".into(), &deny),
        (&Identity::anonymous(), "GET", "/readyz".into(), &allow),
    ];
    for (identity, method, uri, expected) in cases {
        assert_eq!(
            &policy.decide(identity, &attrs(method, &uri)),
            expected,
            "{} {method} {uri}",
            identity.user
        );
    }
    assert_eq!(
        policy.decide(&Identity::anonymous(), &attrs("GET", "/version")),
        deny
    );
}

#[test]
fn forbidden_messages_match_upstream() {
    let viewer = who("viewer", &["arc:viewers"]);
    let cases = [
        (
            "DELETE",
            "/apis/arc.opendefense.cloud/v1alpha1/namespaces/default/orders/o1",
            r#"orders.arc.opendefense.cloud "o1" is forbidden: User "viewer" cannot delete resource "orders" in API group "arc.opendefense.cloud" in the namespace "default""#,
        ),
        (
            "POST",
            "/apis/arc.opendefense.cloud/v1alpha1/clusterartifacttypes",
            r#"clusterartifacttypes.arc.opendefense.cloud is forbidden: User "viewer" cannot create resource "clusterartifacttypes" in API group "arc.opendefense.cloud" at the cluster scope"#,
        ),
        (
            "PATCH",
            "/apis/arc.opendefense.cloud/v1alpha1/namespaces/ns/orders/o1/status",
            r#"orders.arc.opendefense.cloud "o1" is forbidden: User "viewer" cannot patch resource "orders/status" in API group "arc.opendefense.cloud" in the namespace "ns""#,
        ),
        (
            "GET",
            "/api/v1/namespaces/default/secrets",
            r#"secrets is forbidden: User "viewer" cannot list resource "secrets" in API group "" in the namespace "default""#,
        ),
        (
            "POST",
            "/openapi/v3",
            r#"forbidden: User "viewer" cannot post path "/openapi/v3""#,
        ),
    ];
    for (method, path, expected) in cases {
        assert_eq!(
            forbidden_message(&viewer, &attrs(method, path), None),
            expected
        );
    }
    assert_eq!(
        forbidden_message(&viewer, &attrs("POST", "/version"), Some("nope")),
        r#"forbidden: User "viewer" cannot post path "/version": nope"#
    );
}

async fn body_json(response: Response) -> (StatusCode, serde_json::Value) {
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn status_bodies_are_exact() {
    let (code, body) = body_json(unauthorized_response()).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body.to_string(),
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#
    );
    let viewer = who("viewer", &["arc:viewers"]);
    let a = attrs(
        "DELETE",
        "/apis/arc.opendefense.cloud/v1alpha1/namespaces/default/orders/o1",
    );
    let (code, body) = body_json(forbidden_response(&viewer, &a, None)).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert_eq!(
        body.to_string(),
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"orders.arc.opendefense.cloud \"o1\" is forbidden: User \"viewer\" cannot delete resource \"orders\" in API group \"arc.opendefense.cloud\" in the namespace \"default\"","reason":"Forbidden","details":{"name":"o1","group":"arc.opendefense.cloud","kind":"orders"},"code":403}"#
    );
    let (_, body) = body_json(forbidden_response(
        &viewer,
        &attrs("GET", "/metrics/x"),
        None,
    ))
    .await;
    assert_eq!(body["details"], serde_json::json!({}));
}

#[test]
fn query_values_are_percent_decoded() {
    assert_eq!(percent_decode("a%3Db+c%zz%4"), "a=b c%zz%4");
    assert_eq!(
        exact_field_match(r"metadata.name=a\,b,x=y", "metadata.name").as_deref(),
        Some("a,b")
    );
}
