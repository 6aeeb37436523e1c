//! The REST contract at the HTTP level, through real TLS with the admin certificate: status codes
//! and Status bodies for bad input, the in-stream 410, garbage collection, namespaces, Secrets,
//! dry runs and deletecollection. Bad requests must never change what is stored.

use std::time::Duration;

use apiserver::server::testing::TestServer;
use http::{Method, Request, StatusCode};
use serde_json::{Value, json};

const ORDERS: &str = "/apis/arc.opendefense.cloud/v1alpha1/namespaces/default/orders";

struct Raw {
    client: kube::Client,
}

impl Raw {
    async fn call(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value, http::HeaderMap) {
        self.call_with(method, path, content_type, "application/json", body)
            .await
    }

    async fn call_with(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        accept: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value, http::HeaderMap) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", content_type)
            .header("accept", accept)
            .body(kube::client::Body::from(body))
            .unwrap();
        let response = self.client.send(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value, headers)
    }

    async fn json(&self, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, v, _) = self
            .call(
                method,
                path,
                "application/json",
                serde_json::to_vec(&body).unwrap(),
            )
            .await;
        (s, v)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (s, v, _) = self.call(Method::GET, path, "", Vec::new()).await;
        (s, v)
    }
}

fn order(name: &str) -> Value {
    json!({"apiVersion": "arc.opendefense.cloud/v1alpha1", "kind": "Order", "metadata": {"name": name, "labels": {"tier": "a"}},
           "spec": {"artifacts": [{"type": "oci", "spec": {"image": "x"}}]}})
}

async fn setup() -> (TestServer, Raw) {
    let server = TestServer::start().await;
    let raw = Raw {
        client: server.client().await,
    };
    (server, raw)
}

#[tokio::test]
async fn bad_input_is_rejected_with_exact_status_and_changes_nothing() {
    let (server, raw) = setup().await;
    let (s, created) = raw.json(Method::POST, ORDERS, order("o1")).await;
    assert_eq!(s, StatusCode::CREATED);
    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();

    // Malformed JSON → 400 naming the problem.
    let (s, v, _) = raw
        .call(
            Method::POST,
            ORDERS,
            "application/json",
            b"{not json".to_vec(),
        )
        .await;
    assert_eq!(
        (s, v["reason"].as_str()),
        (StatusCode::BAD_REQUEST, Some("BadRequest"))
    );
    assert!(v["message"].as_str().unwrap().contains("JSON"), "{v}");
    // Wrong apiVersion / kind for the URL → 400.
    let mut wrong = order("o2");
    wrong["apiVersion"] = json!("arc.opendefense.cloud/v1");
    let (s, v) = raw.json(Method::POST, ORDERS, wrong).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("does not match the expected API version"),
        "{v}"
    );
    let mut wrong_kind = order("o2");
    wrong_kind["kind"] = json!("Endpoint");
    assert_eq!(
        raw.json(Method::POST, ORDERS, wrong_kind).await.0,
        StatusCode::BAD_REQUEST
    );
    // Namespace in body differs from URL → 400; name in body differs from URL on PUT → 400.
    let mut other_ns = order("o2");
    other_ns["metadata"]["namespace"] = json!("arc-system");
    let (s, v) = raw.json(Method::POST, ORDERS, other_ns).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("namespace of the provided object does not match"),
        "{v}"
    );
    let mut renamed = created.clone();
    renamed["metadata"]["name"] = json!("o9");
    let (s, v) = raw
        .json(Method::PUT, &format!("{ORDERS}/o1"), renamed)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("does not match the name on the URL"),
        "{v}"
    );
    // Too large → 413.
    let mut huge = order("o3");
    huge["metadata"]["annotations"] = json!({"big": "x".repeat(4 * 1024 * 1024)});
    assert_eq!(
        raw.json(Method::POST, ORDERS, huge).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // Invalid selectors → 400.
    assert_eq!(
        raw.get(&format!("{ORDERS}?labelSelector=tier%20in%20(a"))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    let (s, v) = raw
        .get(&format!("{ORDERS}?fieldSelector=spec.artifact%3Dx"))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("field label not supported"),
        "{v}"
    );
    // Strict unknown fields → 400 listing them; Warn → created with a Warning header.
    let mut unknown = order("o4");
    unknown["spec"]["bogus"] = json!(1);
    let (s, v, _) = raw
        .call(
            Method::POST,
            &format!("{ORDERS}?fieldValidation=Strict"),
            "application/json",
            serde_json::to_vec(&unknown).unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("unknown field \"spec.bogus\""),
        "{v}"
    );
    let (s, v, headers) = raw
        .call(
            Method::POST,
            &format!("{ORDERS}?fieldValidation=Warn"),
            "application/json",
            serde_json::to_vec(&unknown).unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(v["spec"].get("bogus").is_none());
    assert!(
        headers
            .get("warning")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("spec.bogus")
    );
    // Invalid values → 422 with causes.
    let mut invalid = order("Bad_Name");
    invalid["spec"]["ttlSecondsAfterCompletion"] = json!("soon");
    let (s, v) = raw.json(Method::POST, ORDERS, invalid).await;
    assert_eq!(
        (s, v["reason"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("Invalid"))
    );
    assert!(v["details"]["causes"].as_array().unwrap().len() >= 2, "{v}");
    // Strategic merge patch → 415; JSON patch with a failing test → 422; status POST → 405.
    let (s, _, _) = raw
        .call(
            Method::PATCH,
            &format!("{ORDERS}/o1"),
            "application/strategic-merge-patch+json",
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (s, _, _) = raw
        .call(
            Method::PATCH,
            &format!("{ORDERS}/o1"),
            "application/json-patch+json",
            br#"[{"op":"test","path":"/spec/artifacts/0/type","value":"nope"}]"#.to_vec(),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        raw.json(Method::POST, &format!("{ORDERS}/o1/status"), json!({}))
            .await
            .0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    // PUT without resourceVersion → 422; stale → 409.
    let mut no_rv = created.clone();
    no_rv["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    assert_eq!(
        raw.json(Method::PUT, &format!("{ORDERS}/o1"), no_rv)
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // Protobuf only → 406.
    let (s, _, _) = raw
        .call_with(
            Method::GET,
            &format!("{ORDERS}/o1"),
            "",
            "application/vnd.kubernetes.protobuf",
            Vec::new(),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_ACCEPTABLE);

    // After all that, o1 is exactly as created.
    let (_, now) = raw.get(&format!("{ORDERS}/o1")).await;
    assert_eq!(now["metadata"]["resourceVersion"], rv.as_str());
    assert_eq!(now["spec"], created["spec"]);
    server.shutdown().await;
}

#[tokio::test]
async fn watch_from_a_compacted_revision_gets_an_in_stream_410() {
    let (server, raw) = setup().await;
    let (_, first) = raw.json(Method::POST, ORDERS, order("w1")).await;
    let old_rv = first["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    for i in 0..3 {
        raw.json(Method::POST, ORDERS, order(&format!("w{}", i + 2)))
            .await;
    }
    let current = server.state().store.current_revision().await.unwrap();
    server.state().store.compact(current).await.unwrap();
    let (s, body, _) = raw
        .call(
            Method::GET,
            &format!("{ORDERS}?watch=true&resourceVersion={old_rv}&timeoutSeconds=5"),
            "",
            Vec::new(),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "the watch request itself must succeed");
    let text = body
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| body.to_string());
    let first_line: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first_line["type"], "ERROR");
    assert_eq!(first_line["object"]["code"], 410);
    assert_eq!(first_line["object"]["reason"], "Expired");
    // A list at the compacted revision is a plain 410.
    let (s, v) = raw
        .get(&format!(
            "{ORDERS}?resourceVersion={old_rv}&resourceVersionMatch=Exact"
        ))
        .await;
    assert_eq!(
        (s, v["reason"].as_str()),
        (StatusCode::GONE, Some("Expired"))
    );
    server.shutdown().await;
}

#[tokio::test]
async fn pagination_is_a_consistent_snapshot() {
    let (server, raw) = setup().await;
    for i in 0..7 {
        raw.json(Method::POST, ORDERS, order(&format!("p{i}")))
            .await;
    }
    let (_, page1) = raw.get(&format!("{ORDERS}?limit=3")).await;
    assert_eq!(page1["items"].as_array().unwrap().len(), 3);
    assert_eq!(page1["metadata"]["remainingItemCount"], 4);
    let rv = page1["metadata"]["resourceVersion"].clone();
    // Changes after page 1 do not show up in later pages.
    raw.json(Method::POST, ORDERS, order("p99")).await;
    raw.json(Method::DELETE, &format!("{ORDERS}/p5"), json!({}))
        .await;
    let mut names: Vec<String> = page1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    let mut token = page1["metadata"]["continue"].as_str().unwrap().to_string();
    while !token.is_empty() {
        let (s, page) = raw.get(&format!("{ORDERS}?limit=3&continue={token}")).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        assert_eq!(page["metadata"]["resourceVersion"], rv);
        names.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["metadata"]["name"].as_str().unwrap().to_string()),
        );
        token = page["metadata"]["continue"]
            .as_str()
            .unwrap_or("")
            .to_string();
    }
    assert_eq!(names, ["p0", "p1", "p2", "p3", "p4", "p5", "p6"]);
    assert_eq!(
        raw.get(&format!("{ORDERS}?continue=garbage")).await.0,
        StatusCode::BAD_REQUEST
    );
    server.shutdown().await;
}

async fn eventually(mut check: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..100 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn garbage_collection_follows_owner_references() {
    let (server, raw) = setup().await;
    let (_, owner) = raw.json(Method::POST, ORDERS, order("owner")).await;
    let uid = owner["metadata"]["uid"].as_str().unwrap().to_string();
    let aws = "/apis/arc.opendefense.cloud/v1alpha1/namespaces/default/artifactworkflows";
    let child = |name: &str| {
        json!({"apiVersion": "arc.opendefense.cloud/v1alpha1", "kind": "ArtifactWorkflow",
        "metadata": {"name": name, "ownerReferences": [{"apiVersion": "arc.opendefense.cloud/v1alpha1", "kind": "Order", "name": "owner", "uid": uid, "controller": true}]},
        "spec": {"workflowTemplateRef": {"name": "arc-oci"}}})
    };
    for name in ["c1", "c2"] {
        assert_eq!(
            raw.json(Method::POST, aws, child(name)).await.0,
            StatusCode::CREATED
        );
    }
    // Orphan: the owner goes, the children stay without the reference.
    let (s, terminating) = raw
        .json(
            Method::DELETE,
            &format!("{ORDERS}/owner"),
            json!({"propagationPolicy": "Orphan"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(terminating["metadata"]["finalizers"], json!(["orphan"]));
    assert!(
        eventually(async || raw.get(&format!("{ORDERS}/owner")).await.0 == StatusCode::NOT_FOUND)
            .await,
        "orphaned owner deleted"
    );
    let (_, c1) = raw.get(&format!("{aws}/c1")).await;
    assert!(c1["metadata"].get("ownerReferences").is_none(), "{c1}");

    // Background: the children of a deleted owner are collected.
    let (_, owner2) = raw.json(Method::POST, ORDERS, order("owner2")).await;
    let uid2 = owner2["metadata"]["uid"].as_str().unwrap().to_string();
    let mut c3 = child("c3");
    c3["metadata"]["ownerReferences"][0]["uid"] = json!(uid2);
    c3["metadata"]["ownerReferences"][0]["name"] = json!("owner2");
    raw.json(Method::POST, aws, c3).await;
    raw.json(
        Method::DELETE,
        &format!("{ORDERS}/owner2"),
        json!({"propagationPolicy": "Background"}),
    )
    .await;
    assert!(
        eventually(async || raw.get(&format!("{aws}/c3")).await.0 == StatusCode::NOT_FOUND).await,
        "dependent collected"
    );

    // Foreground: the owner waits for its dependents.
    let (_, owner3) = raw.json(Method::POST, ORDERS, order("owner3")).await;
    let mut c4 = child("c4");
    c4["metadata"]["ownerReferences"][0]["uid"] = owner3["metadata"]["uid"].clone();
    c4["metadata"]["ownerReferences"][0]["name"] = json!("owner3");
    c4["metadata"]["finalizers"] = json!(["arc.test/hold"]);
    raw.json(Method::POST, aws, c4).await;
    let (_, fg) = raw
        .json(
            Method::DELETE,
            &format!("{ORDERS}/owner3"),
            json!({"propagationPolicy": "Foreground"}),
        )
        .await;
    assert_eq!(fg["metadata"]["finalizers"], json!(["foregroundDeletion"]));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        raw.get(&format!("{ORDERS}/owner3")).await.0,
        StatusCode::OK,
        "owner waits for the blocking dependent"
    );
    let (_, c4now) = raw.get(&format!("{aws}/c4")).await;
    assert!(
        c4now["metadata"]["deletionTimestamp"].is_string(),
        "dependent is being deleted: {c4now}"
    );
    let (s, _, _) = raw
        .call(
            Method::PATCH,
            &format!("{aws}/c4"),
            "application/merge-patch+json",
            br#"{"metadata":{"finalizers":null}}"#.to_vec(),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        eventually(async || raw.get(&format!("{ORDERS}/owner3")).await.0 == StatusCode::NOT_FOUND)
            .await,
        "owner gone after dependents"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn namespaces_secrets_dry_run_and_deletecollection() {
    let (server, raw) = setup().await;
    let (s, ns) = raw.get("/api/v1/namespaces/arc-system").await;
    assert_eq!(s, StatusCode::OK, "{ns}");
    // Creating in a missing namespace is refused.
    let (s, v) = raw
        .json(
            Method::POST,
            "/apis/arc.opendefense.cloud/v1alpha1/namespaces/nope/orders",
            order("x"),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    // A namespace with content: deleting it deletes the content, then the namespace.
    raw.json(
        Method::POST,
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}),
    )
    .await;
    let team_orders = "/apis/arc.opendefense.cloud/v1alpha1/namespaces/team/orders";
    assert_eq!(
        raw.json(Method::POST, team_orders, order("t1")).await.0,
        StatusCode::CREATED
    );
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"}, "type": "Opaque", "data": {"password": "c2VjcmV0"}});
    assert_eq!(
        raw.json(Method::POST, "/api/v1/namespaces/team/secrets", secret)
            .await
            .0,
        StatusCode::CREATED
    );
    let (_, got) = raw.get("/api/v1/namespaces/team/secrets/creds").await;
    assert_eq!(got["data"]["password"], "c2VjcmV0");
    let (s, _) = raw
        .json(Method::DELETE, "/api/v1/namespaces/team", json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = raw.json(Method::POST, team_orders, order("t2")).await;
    assert!(
        s == StatusCode::FORBIDDEN || s == StatusCode::NOT_FOUND,
        "no new content in a terminating namespace: {s} {v}"
    );
    assert!(
        eventually(async || raw.get("/api/v1/namespaces/team").await.0 == StatusCode::NOT_FOUND)
            .await,
        "namespace finalized"
    );
    assert_eq!(
        raw.get(&format!("{team_orders}/t1")).await.0,
        StatusCode::NOT_FOUND
    );

    // Dry run: nothing stored.
    let (s, _, _) = raw
        .call(
            Method::POST,
            &format!("{ORDERS}?dryRun=All"),
            "application/json",
            serde_json::to_vec(&order("dry")).unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(
        raw.get(&format!("{ORDERS}/dry")).await.0,
        StatusCode::NOT_FOUND
    );

    // deletecollection by label.
    for (name, tier) in [("d1", "a"), ("d2", "a"), ("d3", "b")] {
        let mut o = order(name);
        o["metadata"]["labels"]["tier"] = json!(tier);
        raw.json(Method::POST, ORDERS, o).await;
    }
    let (s, list) = raw
        .json(
            Method::DELETE,
            &format!("{ORDERS}?labelSelector=tier%3Da"),
            json!({"propagationPolicy": "Background"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["kind"], "OrderList");
    let (_, rest) = raw.get(ORDERS).await;
    let names: Vec<&str> = rest["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["d3"]);

    // PartialObjectMetadataList and Table views keep the list resourceVersion.
    let (_, pom, _) = raw
        .call_with(
            Method::GET,
            ORDERS,
            "",
            "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
            Vec::new(),
        )
        .await;
    assert_eq!(pom["kind"], "PartialObjectMetadataList");
    assert!(pom["items"][0].get("spec").is_none());
    let (_, table, _) = raw
        .call_with(
            Method::GET,
            ORDERS,
            "",
            "application/json;as=Table;v=v1;g=meta.k8s.io",
            Vec::new(),
        )
        .await;
    assert_eq!(table["kind"], "Table");
    assert!(table["metadata"]["resourceVersion"].is_string());
    assert_eq!(table["columnDefinitions"][0]["name"], "Name");
    server.shutdown().await;
}
