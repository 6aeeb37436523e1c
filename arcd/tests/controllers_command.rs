//! The real `arcd controllers` binary against an embedded API server given by its kubeconfig:
//! it creates the shipped ClusterArtifactTypes, reconciles Orders (an invalid one is reported,
//! and proceeds to its workflows once fixed), and exits 0 on SIGTERM; bad flags fail at once.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use apiserver::server::testing::TestServer;
use apiserver::types::{
    ClusterArtifactType, Endpoint, EndpointSpec, EndpointUsage, LocalObjectReference, Order,
    OrderArtifact, OrderDefaults, OrderSpec,
};
use kube::Api;
use kube::api::PostParams;

const ARCD: &str = env!("CARGO_BIN_EXE_arcd");
const WAIT: Duration = Duration::from_secs(30);

async fn eventually<T, Fut: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut f: impl FnMut() -> Fut,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arcd_controllers_reconciles_orders_and_stops_on_sigterm() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("controllers.log");
    let mut child = Command::new(ARCD)
        .args(["controllers", "--kubeconfig"])
        .arg(server.kubeconfig_path())
        .args(["--executor", "local", "--runtime-dir"])
        .arg(dir.path().join("run"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start arcd controllers");

    let types: Api<ClusterArtifactType> = Api::all(client.clone());
    eventually("the shipped ClusterArtifactTypes", || async {
        let list = types.list(&Default::default()).await.ok()?.items;
        (list.len() == 3).then_some(())
    })
    .await;

    let orders: Api<Order> = Api::namespaced(client.clone(), "default");
    let order = Order::new(
        "o",
        OrderSpec {
            defaults: Some(OrderDefaults {
                src_ref: Some(LocalObjectReference::new("src")),
                dst_ref: Some(LocalObjectReference::new("dst")),
            }),
            artifacts: vec![OrderArtifact {
                type_: "oci".into(),
                spec: serde_json::json!({"image": "a"}),
                ..Default::default()
            }],
            ttl_seconds_after_completion: None,
        },
    );
    orders
        .create(&PostParams::default(), &order)
        .await
        .expect("create order");
    let message = eventually("InvalidSpec", || async {
        let o = orders.get("o").await.ok()?;
        let c = o
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Ready")?;
        (c.reason == "InvalidSpec").then_some(c.message)
    })
    .await;
    assert_eq!(
        message,
        "artifact 0: source Endpoint \"src\" not found in namespace \"default\""
    );

    let endpoints: Api<Endpoint> = Api::namespaced(client.clone(), "default");
    for (name, usage) in [
        ("src", EndpointUsage::PullOnly),
        ("dst", EndpointUsage::PushOnly),
    ] {
        let spec = EndpointSpec {
            type_: "oci".into(),
            remote_url: format!("http://127.0.0.1:9/{name}"),
            secret_ref: None,
            usage,
        };
        endpoints
            .create(&PostParams::default(), &Endpoint::new(name, spec))
            .await
            .expect("endpoint");
    }
    // The workflow is created and handed to `arcd worker` (which cannot reach 127.0.0.1:9, so the
    // artifact fails — what matters here is that the controllers ran it).
    let reason = eventually("the order to finish", || async {
        let o = orders.get("o").await.ok()?;
        let c = o
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Ready")?;
        matches!(c.reason.as_str(), "Succeeded" | "Failed").then_some(c.reason)
    })
    .await;
    assert_eq!(reason, "Failed");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("send SIGTERM");
    assert!(status.success());
    let start = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break exit;
        }
        assert!(
            start.elapsed() < WAIT,
            "arcd controllers did not stop:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        exit.success(),
        "exit {exit}:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    server.shutdown().await;
}

#[test]
fn bad_flags_fail_with_a_message() {
    let out = Command::new(ARCD)
        .args(["controllers"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--kubeconfig"));
    let out = Command::new(ARCD)
        .args(["controllers", "--kubeconfig", "/nonexistent/kubeconfig"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/kubeconfig"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
