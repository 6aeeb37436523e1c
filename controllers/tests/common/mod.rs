//! Shared fixtures of the controllers' integration tests: a real embedded API server
//! (`apiserver::server::testing::TestServer`), the controllers running against it in-process
//! with the local executor and the test worker, object builders and polling helpers.

#![allow(dead_code)]

pub mod argo_schema;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use apiserver::server::testing::TestServer;
use apiserver::types::{
    ArtifactWorkflow, Endpoint, EndpointSpec, EndpointUsage, LocalObjectReference, Order,
    OrderArtifact, OrderDefaults, OrderSpec,
};
use controllers::executor::Executor;
use controllers::request_counter::RequestCounter;
use controllers::{ExecutorSettings, LocalExecutorSettings, Settings};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The namespace the tests work in.
pub const NS: &str = "default";
/// How long a test waits for the controllers to converge.
pub const CONVERGE: Duration = Duration::from_secs(30);

/// Logs to stderr when `RUST_LOG` is set.
pub fn init_logging() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// The test worker program.
pub fn test_worker() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_arc-test-worker"))
}

/// A server, a client, a scratch directory and (optionally) running controllers.
pub struct Env {
    /// The API server.
    pub server: TestServer,
    /// An admin client.
    pub client: Client,
    /// Scratch space: the executor's runtime directory and worker records live here.
    pub dir: tempfile::TempDir,
    controllers: Option<(CancellationToken, JoinHandle<()>)>,
}

impl Env {
    /// Starts a server and creates the shipped ClusterArtifactTypes.
    pub async fn start() -> Self {
        init_logging();
        let server = TestServer::start().await;
        Self::with_server(server).await
    }

    /// Wraps a started server.
    pub async fn with_server(server: TestServer) -> Self {
        let client = server.client().await;
        controllers::ensure_default_artifact_types(client.clone())
            .await
            .expect("create default artifact types");
        Self {
            server,
            client,
            dir: tempfile::tempdir().expect("tempdir"),
            controllers: None,
        }
    }

    /// The runtime directory the local executor uses.
    pub fn runtime_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// A file the test worker appends its records to.
    pub fn record_file(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.jsonl"))
    }

    /// Local executor settings with the test worker.
    pub fn local_settings(&self) -> LocalExecutorSettings {
        let mut local = LocalExecutorSettings::with_worker(test_worker());
        local.runtime_dir = Some(self.runtime_dir());
        local
    }

    /// Controller settings around `local`, with a short debounce.
    pub fn settings(&self, local: LocalExecutorSettings) -> Settings {
        let mut settings = Settings::new(ExecutorSettings::Local(local));
        settings.order_debounce = Duration::from_millis(50);
        settings
    }

    /// Runs the controllers with `settings` in the background.
    pub fn start_controllers(&mut self, settings: Settings) {
        let cancel = CancellationToken::new();
        let client = self.client.clone();
        let token = cancel.clone();
        let handle = tokio::spawn(async move {
            controllers::run(client, settings, token)
                .await
                .expect("controllers start");
        });
        self.controllers = Some((cancel, handle));
    }

    /// Runs the controllers with a given executor in the background.
    pub fn start_controllers_with(
        &mut self,
        settings: Settings,
        executor: std::sync::Arc<dyn Executor>,
    ) {
        let cancel = CancellationToken::new();
        let client = self.client.clone();
        let token = cancel.clone();
        let handle = tokio::spawn(controllers::run_with_executor(
            client, settings, executor, token,
        ));
        self.controllers = Some((cancel, handle));
    }

    /// Runs the controllers with the local executor and the test worker.
    pub fn start_local(&mut self) {
        let settings = self.settings(self.local_settings());
        self.start_controllers(settings);
    }

    /// Runs the controllers with the local executor through a client that counts its requests.
    pub async fn start_local_counted(&mut self) -> RequestCounter {
        let (client, counter) = counting_client(self.server.kubeconfig_path()).await;
        let settings = self.settings(self.local_settings());
        let cancel = CancellationToken::new();
        let token = cancel.clone();
        let handle = tokio::spawn(async move {
            controllers::run(client, settings, token)
                .await
                .expect("controllers start");
        });
        self.controllers = Some((cancel, handle));
        counter
    }

    /// Stops the controllers and waits until they have (and their workers) stopped.
    pub async fn stop_controllers(&mut self) {
        if let Some((cancel, handle)) = self.controllers.take() {
            cancel.cancel();
            tokio::time::timeout(Duration::from_secs(30), handle)
                .await
                .expect("controllers stop in time")
                .expect("join");
        }
    }

    /// Kills the controllers without a graceful shutdown (aborts their task).
    pub async fn kill_controllers(&mut self) {
        if let Some((_cancel, handle)) = self.controllers.take() {
            handle.abort();
            let _ = handle.await;
        }
    }

    /// Orders in the test namespace.
    pub fn orders(&self) -> Api<Order> {
        Api::namespaced(self.client.clone(), NS)
    }

    /// ArtifactWorkflows in the test namespace.
    pub fn workflows(&self) -> Api<ArtifactWorkflow> {
        Api::namespaced(self.client.clone(), NS)
    }

    /// Endpoints in the test namespace.
    pub fn endpoints(&self) -> Api<Endpoint> {
        Api::namespaced(self.client.clone(), NS)
    }

    /// Secrets in the test namespace.
    pub fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), NS)
    }

    /// Creates an Endpoint.
    pub async fn endpoint(
        &self,
        name: &str,
        type_: &str,
        usage: EndpointUsage,
        secret: Option<&str>,
    ) {
        let e = Endpoint::new(
            name,
            EndpointSpec {
                type_: type_.into(),
                remote_url: format!("https://{name}.example"),
                secret_ref: secret.map(LocalObjectReference::new),
                usage,
            },
        );
        self.endpoints()
            .create(&PostParams::default(), &e)
            .await
            .expect("create endpoint");
    }

    /// Creates (or replaces the data of) a Secret.
    pub async fn secret(&self, name: &str, data: &[(&str, &str)]) {
        let data: BTreeMap<String, ByteString> = data
            .iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
            .collect();
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            data: Some(data.clone()),
            ..Secret::default()
        };
        match self.secrets().create(&PostParams::default(), &secret).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {
                let patch = json!({ "data": data });
                self.secrets()
                    .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .expect("patch secret");
            }
            Err(e) => panic!("create secret {name}: {e}"),
        }
    }

    /// Creates an Order with `artifacts`, defaults `src` → `dst`.
    pub async fn order(
        &self,
        name: &str,
        artifacts: Vec<OrderArtifact>,
        ttl: Option<i64>,
    ) -> Order {
        let o = order(name, artifacts, ttl);
        self.orders()
            .create(&PostParams::default(), &o)
            .await
            .expect("create order")
    }

    /// The Order's `Ready` condition.
    pub async fn ready(&self, name: &str) -> Option<Condition> {
        let o = self.orders().get_opt(name).await.expect("get order")?;
        ready_condition(&o)
    }

    /// Waits until the Order's `Ready` condition has `status` and `reason`; returns the Order.
    pub async fn wait_ready(&self, name: &str, status: &str, reason: &str) -> Order {
        eventually(
            &format!("order {name} Ready={status}/{reason}"),
            CONVERGE,
            || async {
                let o = self.orders().get_opt(name).await.ok()??;
                let c = ready_condition(&o)?;
                (c.status == status
                    && c.reason == reason
                    && c.observed_generation == o.metadata.generation)
                    .then_some(o)
            },
        )
        .await
    }

    /// The ArtifactWorkflows of an Order (by label).
    pub async fn workflows_of(&self, order: &str) -> Vec<ArtifactWorkflow> {
        let lp = ListParams::default().labels(&format!("arc.opendefense.cloud/order={order}"));
        let mut list = self
            .workflows()
            .list(&lp)
            .await
            .expect("list workflows")
            .items;
        list.sort_by_key(|w| w.name_any());
        list
    }

    /// The worker records written to `file`.
    pub fn records(&self, name: &str) -> Vec<Value> {
        let Ok(text) = std::fs::read_to_string(self.record_file(name)) else {
            return Vec::new();
        };
        // Complete lines only: a worker may be writing the last one right now.
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        complete
            .lines()
            .map(|l| serde_json::from_str(l).expect("record is JSON"))
            .collect()
    }

    /// Start records of the worker runs recorded in `file`.
    pub fn starts(&self, name: &str) -> Vec<Value> {
        self.records(name)
            .into_iter()
            .filter(|r| r["event"] == "start")
            .collect()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some((cancel, handle)) = self.controllers.take() {
            cancel.cancel();
            handle.abort();
        }
    }
}

/// A client for the server behind `kubeconfig` that counts its requests.
pub async fn counting_client(kubeconfig: &std::path::Path) -> (Client, RequestCounter) {
    let kubeconfig = kube::config::Kubeconfig::read_from(kubeconfig).expect("read kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("client config");
    let counter = RequestCounter::new();
    let client = kube::client::ClientBuilder::try_from(config)
        .expect("client builder")
        .with_layer(&counter)
        .build();
    (client, counter)
}

/// An Order (not created).
pub fn order(name: &str, artifacts: Vec<OrderArtifact>, ttl: Option<i64>) -> Order {
    Order::new(
        name,
        OrderSpec {
            defaults: Some(OrderDefaults {
                src_ref: Some(LocalObjectReference::new("src")),
                dst_ref: Some(LocalObjectReference::new("dst")),
            }),
            artifacts,
            ttl_seconds_after_completion: ttl,
        },
    )
}

/// An `oci` artifact with `spec`.
pub fn artifact(spec: Value) -> OrderArtifact {
    OrderArtifact {
        type_: "oci".into(),
        spec,
        ..OrderArtifact::default()
    }
}

/// The `Ready` condition of an Order.
pub fn ready_condition(order: &Order) -> Option<Condition> {
    order
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .cloned()
}

/// Polls `check` until it returns `Some`, failing the test after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The standard world: Endpoints `src` (oci, PullOnly) and `dst` (oci, PushOnly, Secret
/// `dst-creds`), and that Secret.
pub async fn standard_world(env: &Env) {
    env.secret(
        "dst-creds",
        &[("username", "robot"), ("password", "s3cret")],
    )
    .await;
    env.endpoint("src", "oci", EndpointUsage::PullOnly, None)
        .await;
    env.endpoint("dst", "oci", EndpointUsage::PushOnly, Some("dst-creds"))
        .await;
}
