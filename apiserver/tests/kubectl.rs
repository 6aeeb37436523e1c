//! kubectl against the real API server (contract §23, direct mode), with the oldest and the
//! newest kubectl on the machine. Each scenario starts its own server and uses a fresh
//! discovery cache, like a new operator would.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use apiserver::server::testing::TestServer;

/// Where versioned kubectl binaries live on these machines.
const VERSIONED_KUBECTL_DIR: &str = "/usr/lib/google-cloud-sdk/bin";

struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
    cache: tempfile::TempDir,
}

impl Kubectl {
    fn find(version: &str, kubeconfig: &Path) -> Option<Self> {
        let versioned = format!("{VERSIONED_KUBECTL_DIR}/kubectl.{version}");
        let bin = if Path::new(&versioned).is_file() {
            PathBuf::from(versioned)
        } else {
            arc_tests::tools::require(&versioned, &format!("kubectl {version} conformance"))?
        };
        Some(Self {
            bin,
            kubeconfig: kubeconfig.to_path_buf(),
            cache: tempfile::tempdir().unwrap(),
        })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.cache.path())
            .args(args);
        cmd.stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run kubectl")
    }

    /// Runs and asserts success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs and asserts failure; returns stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "kubectl {args:?} unexpectedly succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Runs kubectl with `input` on its standard input.
    fn run_stdin(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn apply_stdin(&self, yaml: &str, extra: &[&str]) -> String {
        let mut args = vec!["apply", "-f", "-"];
        args.extend_from_slice(extra);
        let out = self.run_stdin(&args, yaml);
        assert!(
            out.status.success(),
            "kubectl apply failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

const ENDPOINTS_AND_ORDER: &str = r#"
apiVersion: arc.opendefense.cloud/v1alpha1
kind: Endpoint
metadata: {name: hub}
spec: {type: oci, remoteURL: "https://registry.example", usage: PullOnly}
---
apiVersion: arc.opendefense.cloud/v1alpha1
kind: Endpoint
metadata: {name: internal}
spec: {type: oci, remoteURL: "http://127.0.0.1:5000", usage: All}
---
apiVersion: arc.opendefense.cloud/v1alpha1
kind: ClusterArtifactType
metadata: {name: oci}
spec:
  rules: {srcTypes: [oci], dstTypes: [oci]}
  workflowTemplateRef: {name: arc-oci}
---
apiVersion: arc.opendefense.cloud/v1alpha1
kind: Order
metadata: {name: o1, labels: {tier: a}}
spec:
  defaults: {srcRef: {name: hub}, dstRef: {name: internal}}
  artifacts:
  - type: oci
    spec: {image: library/alpine:3.20}
"#;

fn scenario(version: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(TestServer::start());
    let Some(k) = Kubectl::find(version, server.kubeconfig_path()) else {
        return;
    };

    // Discovery: our resources, short names, category, scope.
    let resources = k.ok(&[
        "api-resources",
        "--api-group=arc.opendefense.cloud",
        "-o",
        "wide",
    ]);
    for needle in [
        "orders",
        "ord",
        "clusterartifacttypes",
        "artifactworkflows",
        "Order",
        "false",
    ] {
        assert!(
            resources.contains(needle),
            "api-resources lacks {needle}:\n{resources}"
        );
    }
    assert_eq!(
        resources.lines().count(),
        6,
        "header + 5 kinds:\n{resources}"
    );

    // explain from OpenAPI v3.
    let explain = k.ok(&["explain", "orders.spec.artifacts"]);
    assert!(
        explain.contains("arc.opendefense.cloud") && explain.contains("srcRef"),
        "{explain}"
    );

    // apply creates, re-apply is unchanged, a change is configured.
    let created = k.apply_stdin(ENDPOINTS_AND_ORDER, &[]);
    assert!(
        created.contains("order.arc.opendefense.cloud/o1 created"),
        "{created}"
    );
    let again = k.apply_stdin(ENDPOINTS_AND_ORDER, &[]);
    assert!(
        again.contains("order.arc.opendefense.cloud/o1 unchanged"),
        "{again}"
    );
    let changed = k.apply_stdin(
        &ENDPOINTS_AND_ORDER.replace("alpine:3.20", "alpine:3.21"),
        &[],
    );
    assert!(
        changed.contains("order.arc.opendefense.cloud/o1 configured"),
        "{changed}"
    );
    let image = k.ok(&[
        "get",
        "ord",
        "o1",
        "-o",
        "jsonpath={.spec.artifacts[0].spec.image} {.metadata.generation}",
    ]);
    assert_eq!(image, "library/alpine:3.21 2");

    // get in every output format.
    let json: serde_json::Value =
        serde_json::from_str(&k.ok(&["get", "orders.arc.opendefense.cloud", "o1", "-o", "json"]))
            .unwrap();
    assert_eq!(json["kind"], "Order");
    assert!(json["metadata"]["uid"].as_str().unwrap().len() == 36);
    assert!(json["metadata"].get("finalizers").is_none());
    let yaml = k.ok(&["get", "ord", "o1", "-o", "yaml"]);
    assert!(
        yaml.contains("apiVersion: arc.opendefense.cloud/v1alpha1"),
        "{yaml}"
    );
    let table = k.ok(&["get", "ord"]);
    assert!(table.starts_with("NAME") && table.contains("o1"), "{table}");
    let wide = k.ok(&["get", "aep", "-o", "wide"]);
    assert!(
        wide.contains("PullOnly") && wide.contains("https://registry.example"),
        "{wide}"
    );
    let custom = k.ok(&[
        "get",
        "ord",
        "-o",
        "custom-columns=N:.metadata.name,T:.spec.artifacts[0].type",
        "--no-headers",
    ]);
    assert_eq!(custom.split_whitespace().collect::<Vec<_>>(), ["o1", "oci"]);
    let by_category = k.ok(&["get", "arc"]);
    assert!(
        by_category.contains("order.arc.opendefense.cloud/o1"),
        "{by_category}"
    );

    // label / annotate / patch (merge and json); strategic merge is refused.
    k.ok(&["label", "ord", "o1", "x=y"]);
    k.ok(&["annotate", "ord", "o1", "note=v"]);
    let labels = k.ok(&["get", "ord", "-l", "x=y", "-o", "name"]);
    assert_eq!(labels.trim(), "order.arc.opendefense.cloud/o1");
    k.ok(&[
        "patch",
        "ord",
        "o1",
        "--type=merge",
        "-p",
        r#"{"spec":{"ttlSecondsAfterCompletion":60}}"#,
    ]);
    k.ok(&[
        "patch",
        "ord",
        "o1",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/ttlSecondsAfterCompletion","value":61}]"#,
    ]);
    assert_eq!(
        k.ok(&[
            "get",
            "ord",
            "o1",
            "-o",
            "jsonpath={.spec.ttlSecondsAfterCompletion}"
        ]),
        "61"
    );
    let smp = k.fails(&[
        "patch",
        "ord",
        "o1",
        "-p",
        r#"{"spec":{"ttlSecondsAfterCompletion":1}}"#,
    ]);
    assert!(
        smp.contains("strategic-merge-patch") || smp.contains("UnsupportedMediaType"),
        "{smp}"
    );

    // edit through an "editor" that rewrites the file.
    let mut edit = k.command(&["edit", "ord", "o1"]);
    edit.env("KUBE_EDITOR", "sed -i s/alpine:3.21/alpine:3.22/");
    let out = edit.output().unwrap();
    assert!(
        out.status.success(),
        "edit: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        k.ok(&["get", "ord", "o1", "-o", "yaml"])
            .contains("alpine:3.22")
    );

    // Strict field validation: unknown fields are refused.
    let bad = ENDPOINTS_AND_ORDER
        .split("---")
        .last()
        .unwrap()
        .replace("name: o1", "name: o2")
        .replace("defaults:", "bogus: 1\n  defaults:");
    let out = k.run_stdin(&["create", "-f", "-"], &bad);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bogus"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // wait --for=jsonpath and --for=condition, driven by a status patch.
    k.ok(&["patch", "ord", "o1", "--subresource=status", "--type=merge", "-p",
        r#"{"status":{"message":"done","observedGeneration":999,"conditions":[{"type":"Ready","status":"True","reason":"Succeeded","message":"","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}"#]);
    k.ok(&[
        "wait",
        "ord/o1",
        "--for=jsonpath={.status.message}=done",
        "--timeout=20s",
    ]);
    k.ok(&["wait", "ord/o1", "--for=condition=Ready", "--timeout=20s"]);

    // get -w prints the existing object, then changes.
    let mut watch = k
        .command(&[
            "get",
            "ord",
            "o1",
            "-w",
            "--output-watch-events",
            "--no-headers",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    k.ok(&["label", "ord", "o1", "w=1"]);
    std::thread::sleep(Duration::from_millis(1500));
    watch.kill().unwrap();
    let seen = String::from_utf8_lossy(&watch.wait_with_output().unwrap().stdout).into_owned();
    let events: Vec<&str> = seen
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(events.first(), Some(&"ADDED"), "{seen}");
    assert!(
        events.iter().filter(|e| **e == "ADDED").count() == 1 && events.contains(&"MODIFIED"),
        "{seen}"
    );

    // delete with a finalizer: blocks until the finalizer goes.
    k.ok(&[
        "patch",
        "ord",
        "o1",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["arc.test/hold"]}}"#,
    ]);
    let start = Instant::now();
    let delete = k
        .command(&["delete", "ord", "o1", "--timeout=60s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        k.ok(&[
            "get",
            "ord",
            "o1",
            "-o",
            "jsonpath={.metadata.deletionTimestamp}"
        ])
        .len()
            > 10
    );
    k.ok(&[
        "patch",
        "ord",
        "o1",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    let out = delete.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "delete: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("deleted"));
    assert!(start.elapsed() >= Duration::from_secs(2));
    let gone = k.fails(&["get", "ord", "o1"]);
    assert!(
        gone.contains("NotFound") || gone.contains("not found"),
        "{gone}"
    );

    // describe shows events recorded against the object.
    k.apply_stdin(&ENDPOINTS_AND_ORDER.replace("name: o1", "name: o3"), &[]);
    let uid = k.ok(&["get", "ord", "o3", "-o", "jsonpath={.metadata.uid}"]);
    let event = format!(
        r#"{{"apiVersion":"events.k8s.io/v1","kind":"Event","metadata":{{"name":"o3.test","namespace":"default"}},
        "eventTime":"2026-01-01T00:00:00.000000Z","reportingController":"arc.opendefense.cloud/test","reportingInstance":"t",
        "action":"Reconcile","reason":"Testing","note":"an event for describe","type":"Normal",
        "regarding":{{"apiVersion":"arc.opendefense.cloud/v1alpha1","kind":"Order","name":"o3","namespace":"default","uid":"{uid}"}}}}"#
    );
    let out = k.run_stdin(&["create", "-f", "-"], &event);
    assert!(
        out.status.success(),
        "create event: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let described = k.ok(&["describe", "ord", "o3"]);
    assert!(
        described.contains("Testing") && described.contains("an event for describe"),
        "{described}"
    );

    // Core Secrets: kubectl create secret, and apply (kubectl patches core kinds with strategic
    // merge patches, which the server takes as merge patches for them).
    k.ok(&[
        "create",
        "secret",
        "generic",
        "creds",
        "--from-literal=password=s3cret",
    ]);
    assert_eq!(
        k.ok(&["get", "secret", "creds", "-o", "jsonpath={.data.password}"]),
        "czNjcmV0"
    );
    let secret =
        "apiVersion: v1\nkind: Secret\nmetadata: {name: applied}\nstringData: {token: one}\n";
    k.apply_stdin(secret, &[]);
    let changed = k.apply_stdin(&secret.replace("one", "two"), &[]);
    assert!(changed.contains("secret/applied configured"), "{changed}");

    runtime.block_on(server.shutdown());
}

#[test]
fn kubectl_1_27_conformance() {
    scenario("1.27");
}

#[test]
fn kubectl_1_33_conformance() {
    scenario("1.33");
}
