//! The TLS transport, client-certificate authentication and authorization, driven by real
//! clients: hyper over rustls (HTTP/1.1 and HTTP/2), the `kubectl` binary, and kube-rs — each
//! against a small router served by `tls::serve` with a fresh PKI.

#[path = "tls_auth/pki_files.rs"]
mod pki_files;
#[path = "tls_auth/support.rs"]
mod support;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;
use support::*;

use apiserver::server::kubeconfig;
use apiserver::server::pki::Pki;
use apiserver::server::tls::ServeOptions;
use http::{Method, Request, StatusCode, Version};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[tokio::test]
async fn admin_certificate_may_do_everything_over_http1_and_http2() {
    let server = TestServer::start().await;
    let orders = orders_path();
    for alpn in [H1, H2] {
        let mut connection =
            Connection::open(server.addr, server.client(Some(server.pki.admin()), alpn))
                .await
                .unwrap();
        let expected_version = if alpn == H2 {
            Version::HTTP_2
        } else {
            Version::HTTP_11
        };

        let me = connection.call(Method::GET, "/whoami", &[]).await;
        assert_eq!(me.status, StatusCode::OK, "{me:?}");
        assert_eq!(me.version, expected_version);
        assert_eq!(
            me.json(),
            json!({"user": "admin", "groups": ["system:masters", "system:authenticated"],
                   "alpn": if alpn == H2 { "h2" } else { "http/1.1" }, "certificates": 1})
        );
        let list = connection.call(Method::GET, &orders, &[]).await;
        assert_eq!(list.status, StatusCode::OK, "{list:?}");
        assert_eq!(list.json()["items"][0]["metadata"]["name"], "o1");
        let created = connection.call(Method::POST, &orders, &[]).await;
        assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
        assert_eq!(
            created.json()["metadata"]["annotations"]["created-by"],
            "admin"
        );
        let deleted = connection
            .call(Method::DELETE, &format!("{orders}/o1"), &[])
            .await;
        assert_eq!(deleted.status, StatusCode::OK, "{deleted:?}");
        let secrets = connection
            .call(Method::GET, "/api/v1/namespaces/default/secrets", &[])
            .await;
        assert_eq!(secrets.status, StatusCode::OK);
        let version = connection.call(Method::GET, "/version", &[]).await;
        assert_eq!(version.json()["gitVersion"], "v0.1.0-test");
    }
    server.stop().await;
}

#[tokio::test]
async fn read_only_certificate_reads_but_gets_exact_403_on_writes() {
    let server = TestServer::start().await;
    let orders = orders_path();
    let mut connection =
        Connection::open(server.addr, server.client(Some(server.pki.viewer()), H2))
            .await
            .unwrap();

    let list = connection.call(Method::GET, &orders, &[]).await;
    assert_eq!(list.status, StatusCode::OK, "{list:?}");
    let one = connection
        .call(Method::GET, &format!("{orders}/o1"), &[])
        .await;
    assert_eq!(one.status, StatusCode::OK, "{one:?}");
    let me = connection.call(Method::GET, "/whoami", &[]).await;
    assert_eq!(
        me.json()["groups"],
        json!(["arc:viewers", "system:authenticated"])
    );

    let deleted = connection
        .call(Method::DELETE, &format!("{orders}/o1"), &[])
        .await;
    assert_eq!(deleted.status, StatusCode::FORBIDDEN);
    assert_eq!(deleted.headers["content-type"], "application/json");
    assert_eq!(
        deleted.json(),
        forbidden_body(
            VIEWER_DELETE_MESSAGE,
            Some("o1"),
            "arc.opendefense.cloud",
            "orders"
        )
    );
    // The exact bytes, field order included.
    assert_eq!(
        deleted.body,
        format!(
            r#"{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":{},"reason":"Forbidden","details":{{"name":"o1","group":"arc.opendefense.cloud","kind":"orders"}},"code":403}}"#,
            serde_json::to_string(VIEWER_DELETE_MESSAGE).unwrap()
        )
    );

    let created = connection.call(Method::POST, &orders, &[]).await;
    assert_eq!(created.status, StatusCode::FORBIDDEN);
    assert_eq!(
        created.json(),
        forbidden_body(
            r#"orders.arc.opendefense.cloud is forbidden: User "viewer" cannot create resource "orders" in API group "arc.opendefense.cloud" in the namespace "default""#,
            None,
            "arc.opendefense.cloud",
            "orders"
        )
    );
    let collection = connection.call(Method::DELETE, &orders, &[]).await;
    assert_eq!(collection.status, StatusCode::FORBIDDEN);
    assert!(
        collection.json()["message"]
            .as_str()
            .unwrap()
            .contains("cannot deletecollection resource")
    );

    // Secrets are not readable by viewers.
    let secrets = connection
        .call(Method::GET, "/api/v1/namespaces/default/secrets", &[])
        .await;
    assert_eq!(secrets.status, StatusCode::FORBIDDEN);
    assert_eq!(
        secrets.json()["message"],
        r#"secrets is forbidden: User "viewer" cannot list resource "secrets" in API group "" in the namespace "default""#
    );

    // Viewers may not impersonate anyone.
    let impersonating = connection
        .call(
            Method::GET,
            &orders,
            &[
                ("Impersonate-User", "admin"),
                ("Impersonate-Group", "system:masters"),
            ],
        )
        .await;
    assert_eq!(impersonating.status, StatusCode::FORBIDDEN);
    assert_eq!(
        impersonating.json(),
        forbidden_body(
            r#"users "admin" is forbidden: User "viewer" cannot impersonate resource "users" in API group "" at the cluster scope"#,
            Some("admin"),
            "",
            "users"
        )
    );
    server.stop().await;
}

#[tokio::test]
async fn admin_may_impersonate_a_viewer() {
    let server = TestServer::start().await;
    let mut connection = Connection::open(server.addr, server.client(Some(server.pki.admin()), H1))
        .await
        .unwrap();
    let headers = [
        ("Impersonate-User", "viewer"),
        ("Impersonate-Group", "arc:viewers"),
    ];
    let me = connection.call(Method::GET, "/whoami", &headers).await;
    assert_eq!(me.json()["user"], "viewer");
    assert_eq!(
        me.json()["groups"],
        json!(["arc:viewers", "system:authenticated"])
    );
    let deleted = connection
        .call(Method::DELETE, &format!("{}/o1", orders_path()), &headers)
        .await;
    assert_eq!(deleted.status, StatusCode::FORBIDDEN);
    assert_eq!(deleted.json()["message"], VIEWER_DELETE_MESSAGE);
    // Without the headers the same connection is the admin again.
    let me = connection.call(Method::GET, "/whoami", &[]).await;
    assert_eq!(me.json()["user"], "admin");
    server.stop().await;
}

#[tokio::test]
async fn no_certificate_gets_401_except_on_health_paths() {
    let server = TestServer::start().await;
    let anonymous = server.client(None, H2);
    for path in [
        orders_path(),
        format!("{}/o1", orders_path()),
        "/version".into(),
        "/apis".into(),
        "/whoami".into(),
    ] {
        let reply = call(server.addr, anonymous.clone(), Method::GET, &path).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(reply.body, UNAUTHORIZED_BODY, "{path}");
        assert_eq!(reply.headers["content-type"], "application/json");
    }
    let reply = call(
        server.addr,
        anonymous.clone(),
        Method::DELETE,
        &format!("{}/o1", orders_path()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    for path in ["/healthz", "/livez", "/readyz/storage"] {
        let reply = call(server.addr, anonymous.clone(), Method::GET, path).await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (StatusCode::OK, "ok"),
            "{path}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn untrusted_certificates_get_401() {
    let server = TestServer::start().await;
    // An admin certificate (O=system:masters) from another CA.
    let other_dir = tempfile::tempdir().unwrap();
    let other = Pki::load_or_create(other_dir.path(), &[]).unwrap();
    let foreign = call(
        server.addr,
        server.client(Some(other.admin()), H2),
        Method::GET,
        &orders_path(),
    )
    .await;
    assert_eq!(foreign.status, StatusCode::UNAUTHORIZED, "{foreign:?}");
    assert_eq!(foreign.body, UNAUTHORIZED_BODY);
    // Health still works for it.
    let health = call(
        server.addr,
        server.client(Some(other.admin()), H1),
        Method::GET,
        "/healthz",
    )
    .await;
    assert_eq!(health.status, StatusCode::OK);
    // The serving certificate lacks the clientAuth usage.
    let serving = call(
        server.addr,
        server.client(Some(server.pki.serving()), H1),
        Method::GET,
        &orders_path(),
    )
    .await;
    assert_eq!(serving.status, StatusCode::UNAUTHORIZED, "{serving:?}");
    server.stop().await;
}

#[tokio::test]
async fn issued_certificates_authenticate_as_their_user_and_groups() {
    let server = TestServer::start().await;
    let alice = server
        .pki
        .issue_client_cert("alice", &["dev", "ops"])
        .unwrap();
    let client = server.client(Some(&alice), H1);
    let me = call(server.addr, client.clone(), Method::GET, "/apis").await;
    assert_eq!(
        me.status,
        StatusCode::OK,
        "discovery is open to every authenticated user"
    );
    let orders = call(server.addr, client.clone(), Method::GET, &orders_path()).await;
    assert_eq!(orders.status, StatusCode::FORBIDDEN);
    assert_eq!(
        orders.json()["message"],
        r#"orders.arc.opendefense.cloud is forbidden: User "alice" cannot list resource "orders" in API group "arc.opendefense.cloud" in the namespace "default""#
    );
    let whoami = call(server.addr, client, Method::GET, "/whoami").await;
    assert_eq!(whoami.status, StatusCode::FORBIDDEN);
    assert_eq!(
        whoami.json()["message"],
        r#"forbidden: User "alice" cannot get path "/whoami""#
    );

    let reader = server
        .pki
        .issue_client_cert("carol", &["arc:viewers"])
        .unwrap();
    let reply = call(
        server.addr,
        server.client(Some(&reader), H2),
        Method::GET,
        "/whoami",
    )
    .await;
    assert_eq!(reply.json()["user"], "carol");
    assert!(server.pki.issue_client_cert("", &[]).is_err());
    server.stop().await;
}

#[tokio::test]
async fn failed_handshakes_do_not_disturb_the_server() {
    let server = TestServer::start().await;
    // Garbage, then plain HTTP on the TLS port.
    let mut garbage = TcpStream::connect(server.addr).await.unwrap();
    garbage
        .write_all(b"\x16\x03\x01\x00\x05hello")
        .await
        .unwrap();
    drop(garbage);
    let mut plain = TcpStream::connect(server.addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // A client that does not trust the server's CA fails its handshake.
    let other_dir = tempfile::tempdir().unwrap();
    let other = Pki::load_or_create(other_dir.path(), &[]).unwrap();
    let distrustful = client_config(other.ca_cert_der(), None, H1);
    assert!(Connection::open(server.addr, distrustful).await.is_err());
    // A connection that never starts its handshake.
    let _idle = TcpStream::connect(server.addr).await.unwrap();

    let reply = call(
        server.addr,
        server.client(Some(server.pki.admin()), H2),
        Method::GET,
        &orders_path(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    drop(plain);
    // The idle connection does not hold up shutdown.
    server.stop().await;
}

#[tokio::test]
async fn shutdown_ends_watches_and_lets_requests_finish() {
    let server = TestServer::start().await;
    let admin = server.client(Some(server.pki.admin()), H1);

    let mut watch_connection = Connection::open(server.addr, admin.clone()).await.unwrap();
    let watch = watch_connection
        .send(
            Method::GET,
            &format!("{}?watch=true", orders_path()),
            &[],
            "",
        )
        .await
        .unwrap();
    assert_eq!(watch.status(), StatusCode::OK);
    let mut watch_body = watch.into_body();
    let first = watch_body
        .frame()
        .await
        .unwrap()
        .unwrap()
        .into_data()
        .unwrap();
    assert!(first.starts_with(b"{\"type\":\"BOOKMARK\""), "{first:?}");

    let slow = tokio::spawn(call(server.addr, admin.clone(), Method::GET, "/slow"));
    server.signals.slow_started.notified().await;

    let addr = server.addr;
    let stopped = tokio::spawn(server.stop());
    // The watch ends cleanly (no error), well before the 10 s grace period.
    let rest = tokio::time::timeout(Duration::from_secs(5), watch_body.collect())
        .await
        .expect("the watch ends at shutdown")
        .expect("the watch ends cleanly");
    assert!(rest.to_bytes().iter().filter(|b| **b == b'\n').count() < 100);
    // The in-flight request finishes.
    let slow = tokio::time::timeout(GENEROUS_TIMEOUT, slow)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((slow.status, slow.body.as_str()), (StatusCode::OK, "done"));
    tokio::time::timeout(Duration::from_secs(5), stopped)
        .await
        .expect("serve returns")
        .unwrap();
    // Nothing listens any more.
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn shutdown_cuts_requests_that_outlive_the_grace_period() {
    let server = TestServer::start_with(ServeOptions {
        shutdown_grace: Duration::from_millis(300),
        ..ServeOptions::default()
    })
    .await;
    let admin = server.client(Some(server.pki.admin()), H2);
    let stuck = tokio::spawn(async move {
        let mut connection = Connection::open(server.addr, admin).await.unwrap();
        connection
            .send(Method::GET, "/stuck", &[], "")
            .await
            .map(|r| r.status())
    });
    server.signals.stuck_started.notified().await;
    let signals = server.signals.clone();
    tokio::time::timeout(Duration::from_secs(5), server.stop())
        .await
        .expect("serve returns soon after the grace period");
    let outcome = tokio::time::timeout(Duration::from_secs(5), stuck)
        .await
        .unwrap()
        .unwrap();
    assert!(
        outcome.is_err(),
        "the stuck request is cut, got {outcome:?}"
    );
    drop(signals);
}

#[tokio::test]
async fn kubectl_accepts_the_kubeconfigs() {
    let Some(kubectl) = arc_tests::tools::require("kubectl", "kubectl against the TLS server")
    else {
        return;
    };
    let server = TestServer::start().await;
    let home = server.dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let admin = server.dir.path().join("admin.kubeconfig");
    let viewer = server.dir.path().join("viewer.kubeconfig");
    let anonymous = server.dir.path().join("anonymous.kubeconfig");
    kubeconfig::write_admin(&admin, &server.pki, &server.url()).unwrap();
    kubeconfig::write_viewer(&viewer, &server.pki, &server.url()).unwrap();
    write_anonymous_kubeconfig(&anonymous, &server.url(), server.pki.ca_cert_pem());
    let orders = orders_path();
    let order = format!("{orders}/o1");

    let (kubectl, home) = (kubectl.clone(), home.clone());
    let (admin_c, viewer_c, anonymous_c) = (admin.clone(), viewer.clone(), anonymous.clone());
    let results = tokio::task::spawn_blocking(move || {
        let run = |config: &PathBuf, args: &[&str]| run_kubectl(&kubectl, &home, config, args);
        vec![
            (
                "admin healthz",
                run(&admin_c, &["get", "--raw", "/healthz"]),
            ),
            ("admin list", run(&admin_c, &["get", "--raw", &orders])),
            ("admin delete", run(&admin_c, &["delete", "--raw", &order])),
            ("admin version", run(&admin_c, &["version", "-o", "json"])),
            (
                "admin as viewer",
                run(
                    &admin_c,
                    &[
                        "delete",
                        "--raw",
                        &order,
                        "--as",
                        "viewer",
                        "--as-group",
                        "arc:viewers",
                    ],
                ),
            ),
            ("viewer list", run(&viewer_c, &["get", "--raw", &orders])),
            (
                "viewer delete",
                run(&viewer_c, &["delete", "--raw", &order]),
            ),
            (
                "anonymous healthz",
                run(&anonymous_c, &["get", "--raw", "/healthz"]),
            ),
            (
                "anonymous list",
                run(&anonymous_c, &["get", "--raw", &orders]),
            ),
        ]
    })
    .await
    .unwrap();
    let results: HashMap<&str, (bool, String, String)> = results.into_iter().collect();
    let ok = |name: &str| {
        let (success, stdout, stderr) = &results[name];
        assert!(success, "{name}: kubectl failed: {stderr}");
        stdout.clone()
    };
    let failed = |name: &str| {
        let (success, stdout, stderr) = &results[name];
        assert!(!success, "{name}: kubectl succeeded: {stdout}");
        stderr.clone()
    };

    assert_eq!(ok("admin healthz").trim(), "ok");
    let list: Value = serde_json::from_str(&ok("admin list")).unwrap();
    assert_eq!(list["items"][0]["metadata"]["name"], "o1");
    assert!(ok("admin delete").contains("Success"));
    let version: Value = serde_json::from_str(&ok("admin version")).unwrap();
    assert_eq!(version["serverVersion"]["gitVersion"], "v0.1.0-test");
    assert!(
        failed("admin as viewer").contains(VIEWER_DELETE_MESSAGE),
        "{}",
        failed("admin as viewer")
    );
    let list: Value = serde_json::from_str(&ok("viewer list")).unwrap();
    assert_eq!(list["kind"], "OrderList");
    let denied = failed("viewer delete");
    assert!(
        denied.contains("Forbidden") && denied.contains(VIEWER_DELETE_MESSAGE),
        "{denied}"
    );
    assert_eq!(ok("anonymous healthz").trim(), "ok");
    let unauthorized = failed("anonymous list");
    assert!(unauthorized.contains("Unauthorized"), "{unauthorized}");

    // The kubeconfigs are private.
    for path in [&admin, &viewer] {
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }
    server.stop().await;
}

#[tokio::test]
async fn kube_rs_accepts_the_kubeconfigs() {
    // kube builds its rustls configuration with the process-wide provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = TestServer::start().await;
    let admin_path = server.dir.path().join("admin.kubeconfig");
    let viewer_path = server.dir.path().join("viewer.kubeconfig");
    kubeconfig::write_admin(&admin_path, &server.pki, &server.url()).unwrap();
    kubeconfig::write_viewer(&viewer_path, &server.pki, &server.url()).unwrap();
    let order = format!("{}/o1", orders_path());

    let admin = kube_client(&admin_path).await;
    let version = admin.apiserver_version().await.unwrap();
    assert_eq!(version.git_version, "v0.1.0-test");
    let list = admin
        .request_text(Request::get(orders_path()).body(Vec::new()).unwrap())
        .await
        .unwrap();
    assert!(list.contains("\"OrderList\""), "{list}");
    let deleted = admin
        .request_text(Request::delete(order.as_str()).body(Vec::new()).unwrap())
        .await
        .unwrap();
    assert!(deleted.contains("\"Success\""), "{deleted}");

    let viewer = kube_client(&viewer_path).await;
    let got = viewer
        .request_text(Request::get(order.as_str()).body(Vec::new()).unwrap())
        .await
        .unwrap();
    assert!(got.contains("\"o1\""), "{got}");
    match viewer
        .request_text(Request::delete(order.as_str()).body(Vec::new()).unwrap())
        .await
    {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 403);
            assert_eq!(status.reason, "Forbidden");
            assert!(status.is_forbidden());
            assert_eq!(status.message, VIEWER_DELETE_MESSAGE);
            let details = status.details.expect("details");
            assert_eq!(
                (
                    details.name.as_str(),
                    details.group.as_str(),
                    details.kind.as_str()
                ),
                ("o1", "arc.opendefense.cloud", "orders")
            );
        }
        other => panic!("expected a Forbidden API error, got {other:?}"),
    }
    server.stop().await;
}
