//! Real kubectl (oldest and newest on the machine) against the read-only building blocks:
//! discovery (legacy and aggregated), OpenAPI v3 (`kubectl explain`), server-side tables with
//! label selectors, served by a minimal plain-HTTP loopback server over static fixtures. It
//! checks what kubectl makes of these documents, independent of storage and the REST handlers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use apiserver::server::discovery::{self, DiscoveryFormat};
use apiserver::server::kinds::{arc_kinds, core_kinds, events_k8s_io_kinds};
use apiserver::server::openapi::{HashCheck, OpenApi, V2Format};
use apiserver::server::registry::ResourceKind;
use apiserver::server::selectors::Selectors;
use apiserver::server::table::{self, IncludeObject, MetaVersion, TableOptions};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

const VERSIONED_KUBECTL_DIR: &str = "/usr/lib/google-cloud-sdk/bin";

struct Fixture {
    kinds: Vec<ResourceKind>,
    openapi: OpenApi,
    objects: Vec<Value>,
}

fn fixture_objects() -> Vec<Value> {
    let created = (jiff::Timestamp::now() - jiff::SignedDuration::from_secs(312)).to_string();
    let order = |ns: &str, name: &str, tier: &str, phases: &[&str]| {
        let workflows: serde_json::Map<String, Value> = phases
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("{i:016x}"), json!({"artifactIndex": i, "phase": p})))
            .collect();
        json!({"apiVersion": "arc.opendefense.cloud/v1alpha1", "kind": "Order",
            "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}"), "resourceVersion": "7",
                         "creationTimestamp": created, "labels": {"tier": tier}},
            "spec": {"artifacts": phases.iter().map(|_| json!({"type": "oci"})).collect::<Vec<_>>()},
            "status": {"artifactWorkflows": workflows,
                       "conditions": [{"type": "Ready", "status": if phases.iter().all(|p| *p == "Succeeded") { "True" } else { "False" },
                                       "reason": "R", "message": "", "lastTransitionTime": created}]}})
    };
    vec![
        order("default", "o1", "a", &["Succeeded", "Succeeded"]),
        order("default", "o2", "b", &["Succeeded", "Failed", "Running"]),
        order("ns2", "o3", "a", &["Error"]),
        json!({"apiVersion": "arc.opendefense.cloud/v1alpha1", "kind": "ArtifactWorkflow",
            "metadata": {"name": "o2-0123456789abcdef", "namespace": "default", "resourceVersion": "8", "creationTimestamp": created},
            "spec": {"workflowTemplateRef": {"name": "arc-oci"}},
            "status": {"phase": "Failed", "message": "manifest unknown: library/nope"}}),
        json!({"apiVersion": "arc.opendefense.cloud/v1alpha1", "kind": "Endpoint",
            "metadata": {"name": "docker-hub", "namespace": "default", "resourceVersion": "9", "creationTimestamp": created},
            "spec": {"type": "oci", "remoteURL": "https://registry-1.docker.io", "usage": "PullOnly"}}),
        json!({"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "o2.1", "namespace": "default", "resourceVersion": "10", "creationTimestamp": created},
            "involvedObject": {"apiVersion": "arc.opendefense.cloud/v1alpha1", "kind": "Order", "name": "o2", "namespace": "default"},
            "type": "Warning", "reason": "ArtifactFailed", "message": "artifact 1 failed", "count": 1,
            "firstTimestamp": created, "lastTimestamp": created}),
    ]
}

fn respond(code: StatusCode, content_type: &str, body: Vec<u8>) -> Response {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .unwrap()
}

fn json_response(value: &Value) -> Response {
    respond(
        StatusCode::OK,
        "application/json",
        serde_json::to_vec(value).unwrap(),
    )
}

fn not_found() -> Response {
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "the server could not find the requested resource", "reason": "NotFound", "code": 404});
    respond(
        StatusCode::NOT_FOUND,
        "application/json",
        serde_json::to_vec(&status).unwrap(),
    )
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// The Table version the Accept header asks for, if any.
fn wants_table(accept: &str) -> Option<MetaVersion> {
    accept.split(',').find_map(|clause| {
        let params: Vec<&str> = clause.split(';').map(str::trim).collect();
        if !params.contains(&"as=Table") || !params.contains(&"g=meta.k8s.io") {
            return None;
        }
        params
            .iter()
            .find_map(|p| p.strip_prefix("v="))
            .and_then(MetaVersion::parse)
    })
}

async fn serve(State(fx): State<Arc<Fixture>>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    let accept = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["version"] => json_response(
            &json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0", "platform": "linux/amd64"}),
        ),
        ["api"] | ["apis"] => {
            let Some(format) = discovery::negotiate_discovery(Some(&accept)) else {
                return respond(
                    StatusCode::NOT_ACCEPTABLE,
                    "application/json",
                    b"{}".to_vec(),
                );
            };
            let body = match (segments[0], format) {
                ("api", DiscoveryFormat::Legacy) => {
                    discovery::api_versions(&fx.kinds, Some("127.0.0.1")).unwrap()
                }
                ("api", aggregated) => discovery::aggregated_core(&fx.kinds, aggregated),
                (_, format) => discovery::apis(&fx.kinds, format),
            };
            respond(
                StatusCode::OK,
                format.content_type(),
                serde_json::to_vec(&body).unwrap(),
            )
        }
        ["api", version] => discovery::api_resource_list(&fx.kinds, "", version)
            .map_or_else(not_found, |v| json_response(&v)),
        ["apis", group] => {
            discovery::api_group(&fx.kinds, group).map_or_else(not_found, |v| json_response(&v))
        }
        ["apis", group, version] => discovery::api_resource_list(&fx.kinds, group, version)
            .map_or_else(not_found, |v| json_response(&v)),
        ["openapi", "v2"] => match V2Format::negotiate(Some(&accept)) {
            Some(format) => respond(
                StatusCode::OK,
                format.content_type(),
                fx.openapi.v2_as(format).body.clone(),
            ),
            None => respond(
                StatusCode::NOT_ACCEPTABLE,
                "application/json",
                b"{}".to_vec(),
            ),
        },
        ["openapi", "v3"] => json_response(&fx.openapi.v3_root()),
        ["openapi", "v3", rest @ ..] => {
            let key = rest.join("/");
            match fx
                .openapi
                .check_hash(&key, query_param(&query, "hash").as_deref())
            {
                None => not_found(),
                Some(HashCheck::Redirect(location)) => Response::builder()
                    .status(StatusCode::MOVED_PERMANENTLY)
                    .header(header::LOCATION, location)
                    .body(Body::empty())
                    .unwrap(),
                Some(_) => respond(
                    StatusCode::OK,
                    "application/json",
                    fx.openapi.v3(&key).unwrap().body.clone(),
                ),
            }
        }
        _ => resources(&fx, &segments, &query, &accept),
    }
}

/// GET of a collection or an object, as a Table or plain JSON.
fn resources(fx: &Fixture, segments: &[&str], query: &str, accept: &str) -> Response {
    let (group, version, rest) = match segments {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return not_found(),
    };
    let (namespace, plural, name) = match rest {
        ["namespaces", ns, plural] => (Some(*ns), *plural, None),
        ["namespaces", ns, plural, name] => (Some(*ns), *plural, Some(*name)),
        [plural] => (None, *plural, None),
        [plural, name] => (None, *plural, Some(*name)),
        _ => return not_found(),
    };
    let Some(kind) = fx
        .kinds
        .iter()
        .find(|k| k.group == group && k.version == version && k.plural == plural)
    else {
        return not_found();
    };
    let selectors = match Selectors::parse(
        kind,
        query_param(query, "labelSelector").as_deref(),
        query_param(query, "fieldSelector").as_deref(),
    ) {
        Ok(s) => s,
        Err(e) => {
            let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": e.to_string(), "reason": "BadRequest", "code": 400});
            return respond(
                StatusCode::BAD_REQUEST,
                "application/json",
                serde_json::to_vec(&status).unwrap(),
            );
        }
    };
    let items: Vec<Value> = fx
        .objects
        .iter()
        .filter(|o| o["apiVersion"] == kind.api_version().as_str() && o["kind"] == kind.kind)
        .filter(|o| namespace.is_none_or(|ns| o["metadata"]["namespace"] == ns))
        .filter(|o| name.is_none_or(|n| o["metadata"]["name"] == n))
        .filter(|o| selectors.matches(o))
        .cloned()
        .collect();
    if name.is_some() && items.is_empty() {
        return not_found();
    }
    let include = IncludeObject::parse(query_param(query, "includeObject").as_deref()).unwrap();
    match (wants_table(accept), name) {
        (Some(version), Some(_)) => json_response(&table::object_table(
            kind,
            &items[0],
            &TableOptions {
                version,
                include_object: include,
                ..TableOptions::default()
            },
        )),
        (Some(version), None) => json_response(&table::list_table(
            kind,
            &items,
            &json!({"resourceVersion": "11"}),
            &TableOptions {
                version,
                include_object: include,
                ..TableOptions::default()
            },
        )),
        (None, Some(_)) => json_response(&items[0]),
        (None, None) => json_response(
            &json!({"apiVersion": kind.api_version(), "kind": kind.list_kind, "metadata": {"resourceVersion": "11"}, "items": items}),
        ),
    }
}

struct Server {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start() -> Self {
        let kinds: Vec<ResourceKind> = arc_kinds()
            .into_iter()
            .chain(core_kinds())
            .chain(events_k8s_io_kinds())
            .collect();
        let fixture = Arc::new(Fixture {
            openapi: OpenApi::new(&kinds),
            kinds,
            objects: fixture_objects(),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = axum::Router::new().fallback(serve).with_state(fixture);
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        Self {
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// kubectl of `version`, or `None` (skipped loudly; fails under CI) when missing.
fn kubectl(version: &str) -> Option<PathBuf> {
    let versioned = format!("{VERSIONED_KUBECTL_DIR}/kubectl.{version}");
    arc_tests::tools::require(
        &versioned,
        &format!("kubectl {version} discovery/explain/table checks"),
    )
}

struct Run {
    bin: PathBuf,
    server: String,
    cache: tempfile::TempDir,
}

impl Run {
    fn ok(&self, args: &[&str]) -> String {
        let out = Command::new(&self.bin)
            .args(["--server", &self.server, "--cache-dir"])
            .arg(self.cache.path())
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            out.status.success(),
            "kubectl {args:?} failed ({:?}):\n{stdout}\n{stderr}",
            self.bin
        );
        stdout
    }
}

fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

fn check_with(version: &str) {
    let Some(bin) = kubectl(version) else { return };
    let server = Server::start();
    let run = Run {
        bin,
        server: format!("http://{}", server.addr),
        cache: tempfile::tempdir().unwrap(),
    };

    // Discovery: api-resources sees our five kinds with short names, scope and verbs.
    let out = run.ok(&[
        "api-resources",
        "--api-group=arc.opendefense.cloud",
        "-o",
        "wide",
    ]);
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 5, "{out}");
    let order_row = rows.iter().find(|l| l.starts_with("orders ")).expect(&out);
    assert!(
        words(order_row).contains(&"ord") && order_row.contains("deletecollection"),
        "{order_row}"
    );
    let cat = rows
        .iter()
        .find(|l| l.starts_with("clusterartifacttypes "))
        .expect(&out);
    assert!(
        words(cat).contains(&"false") && words(cat).contains(&"catype"),
        "{cat}"
    );
    let core = run.ok(&["api-resources", "--api-group="]);
    assert!(
        core.lines().any(|l| l.starts_with("secrets "))
            && core.lines().any(|l| l.starts_with("namespaces ")),
        "{core}"
    );

    // OpenAPI v3: explain finds kinds, nested fields and ObjectMeta through $ref/allOf.
    let explain = run.ok(&["explain", "orders"]);
    assert!(
        explain.contains("arc.opendefense.cloud") && explain.contains("An Order lists artifacts"),
        "{explain}"
    );
    let spec = run.ok(&["explain", "orders.spec"]);
    assert!(
        spec.contains("artifacts") && spec.contains("ttlSecondsAfterCompletion"),
        "{spec}"
    );
    let labels = run.ok(&["explain", "orders.metadata.labels"]);
    assert!(labels.contains("labels"), "{labels}");
    let recursive = run.ok(&["explain", "clusterartifacttypes.spec", "--recursive"]);
    assert!(
        recursive.contains("workflowTemplateRef") && recursive.contains("clusterScope"),
        "{recursive}"
    );
    let secret = run.ok(&["explain", "secrets.data"]);
    assert!(secret.contains("data"), "{secret}");

    // Tables: columns, ages, wide columns, namespaces and labels from PartialObjectMetadata.
    let get = run.ok(&["get", "ord", "-n", "default"]);
    let lines: Vec<&str> = get.lines().collect();
    assert_eq!(
        words(lines[0]),
        ["NAME", "ARTIFACTS", "SUCCEEDED", "FAILED", "READY", "AGE"],
        "{get}"
    );
    assert_eq!(
        words(lines[1]),
        ["o1", "2", "2", "0", "True", "5m12s"],
        "{get}"
    );
    assert_eq!(
        words(lines[2])[..5],
        ["o2", "3", "1", "1", "False"],
        "{get}"
    );
    let all = run.ok(&["get", "arc", "-A", "--show-labels"]);
    assert!(
        all.lines()
            .any(|l| words(l).first() == Some(&"ns2") && l.contains("tier=a")),
        "{all}"
    );
    let selected = run.ok(&["get", "ord", "-A", "-l", "tier in (a)", "-L", "tier"]);
    let names: Vec<&str> = selected.lines().skip(1).map(|l| words(l)[1]).collect();
    assert_eq!(names, ["o1", "o3"], "{selected}");
    let narrow = run.ok(&["get", "awf", "-n", "default"]);
    assert!(!narrow.contains("MESSAGE"), "{narrow}");
    let wide = run.ok(&["get", "awf", "-n", "default", "-o", "wide"]);
    assert!(
        wide.contains("MESSAGE") && wide.contains("manifest unknown: library/nope"),
        "{wide}"
    );
    let ep = run.ok(&[
        "get",
        "endpoints.arc.opendefense.cloud",
        "-n",
        "default",
        "docker-hub",
    ]);
    assert_eq!(
        words(ep.lines().nth(1).unwrap())[..4],
        [
            "docker-hub",
            "oci",
            "https://registry-1.docker.io",
            "PullOnly"
        ],
        "{ep}"
    );
    let sorted = run.ok(&[
        "get",
        "ord",
        "-n",
        "default",
        "--sort-by=.metadata.name",
        "-o",
        "name",
    ]);
    assert_eq!(
        sorted.lines().collect::<Vec<_>>(),
        [
            "order.arc.opendefense.cloud/o1",
            "order.arc.opendefense.cloud/o2"
        ]
    );
    let events = run.ok(&["get", "events", "-n", "default"]);
    let header = events.lines().next().unwrap();
    assert_eq!(
        words(header),
        ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
        "{events}"
    );
    assert!(
        events.contains("order/o2") && events.contains("artifact 1 failed"),
        "{events}"
    );
}

#[test]
fn kubectl_1_27_reads_discovery_openapi_and_tables() {
    check_with("1.27");
}

#[test]
fn kubectl_1_33_reads_discovery_openapi_and_tables() {
    check_with("1.33");
}
