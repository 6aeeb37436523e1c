//! End to end: `arcd run --once` with real workers moving real artifacts — the shipped offline
//! quickstart (OCI layout and file, directory to directory) and images between real
//! `docker-registry` repositories checked with skopeo — and the failures it must name.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ARCD: &str = env!("CARGO_BIN_EXE_arcd");

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../etc/examples")
        .canonicalize()
        .unwrap()
}

fn free_port() -> u16 {
    arc_tests::ports::free_port()
}

/// Runs `arcd run --once` on `orders` with a fresh data directory.
fn run_once(work: &Path, orders: &Path) -> Output {
    run_once_with_config(work, orders, Path::new("/dev/null"))
}

/// [`run_once`] with a configuration file.
fn run_once_with_config(work: &Path, orders: &Path, config: &Path) -> Output {
    Command::new(ARCD)
        .args(["run", "--once", "--timeout", "3m", "--config"])
        .arg(config)
        .arg("--data-dir")
        .arg(work.join("data"))
        .arg("--resource-dir")
        .arg(orders)
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--health-listen", &format!("127.0.0.1:{}", free_port())])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The quickstart Order with its paths pointed at this checkout and `mirror`.
fn quickstart(mirror: &Path) -> String {
    std::fs::read_to_string(examples().join("quickstart/orders/quickstart.yaml"))
        .unwrap()
        .replace("/usr/share/arc/examples", &examples().display().to_string())
        .replace("/var/lib/arc/mirror", &mirror.display().to_string())
}

fn index_digest(layout: &Path) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn the_offline_quickstart_moves_an_image_and_a_file() {
    let work = tempfile::tempdir().unwrap();
    let (orders, mirror) = (work.path().join("orders"), work.path().join("mirror"));
    std::fs::create_dir_all(&orders).unwrap();
    std::fs::create_dir_all(&mirror).unwrap();
    std::fs::write(orders.join("quickstart.yaml"), quickstart(&mirror)).unwrap();

    let output = run_once(work.path(), &orders);
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("default/quickstart") && stdout.contains("Succeeded"),
        "{}",
        text(&output)
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("ok: 1 orders, 2/2 artifacts succeeded"),
        "{}",
        text(&output)
    );
    assert_eq!(
        std::fs::read(mirror.join("hello.txt")).unwrap(),
        std::fs::read(examples().join("quickstart/source/files/hello.txt")).unwrap()
    );
    assert_eq!(
        index_digest(&mirror.join("hello")),
        index_digest(&examples().join("quickstart/source/images/hello")),
        "digest-exact copy"
    );
}

#[test]
fn a_broken_artifact_fails_the_run_and_is_named() {
    let work = tempfile::tempdir().unwrap();
    let (orders, mirror) = (work.path().join("orders"), work.path().join("mirror"));
    std::fs::create_dir_all(&orders).unwrap();
    std::fs::create_dir_all(&mirror).unwrap();
    let broken = quickstart(&mirror).replace(
        "75140c16f0bac95447cf59175f63c46eaeb1b00601e6a75cdfccb1476dd9aff8",
        "0000000000000000000000000000000000000000000000000000000000000000",
    );
    std::fs::write(orders.join("quickstart.yaml"), broken).unwrap();
    let output = run_once(work.path(), &orders);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("not succeeded: default/quickstart artifact #1 file (hello.txt): Failed"),
        "{}",
        text(&output)
    );
    assert!(
        stderr.contains("FAILED: 1 orders, 1/2 artifacts succeeded"),
        "{}",
        text(&output)
    );
    assert!(
        !mirror.join("hello.txt").exists(),
        "nothing unverified is published"
    );
}

#[test]
fn images_move_between_real_registry_repositories() {
    let Some(registry_bin) =
        arc_tests::registry::require("arcd run --once against a real registry")
    else {
        return;
    };
    let Some(skopeo) = arc_tests::skopeo::require("arcd run --once against a real registry") else {
        return;
    };
    let registry = arc_tests::registry::Registry::start(&registry_bin);
    let host = registry.host();
    let source = format!(
        "oci:{}:1.0",
        examples().join("quickstart/source/images/hello").display()
    );
    arc_tests::skopeo::copy_all(
        &skopeo,
        &source,
        &format!("docker://{host}/upstream/hello:1.0"),
        &[],
    );

    let work = tempfile::tempdir().unwrap();
    let orders = work.path().join("orders");
    std::fs::create_dir_all(&orders).unwrap();
    let order = format!(
        "apiVersion: arc.opendefense.cloud/v1alpha1\nkind: Endpoint\nmetadata: {{name: registry}}\nspec: {{type: oci, remoteURL: 'http://{host}'}}\n---\n\
         apiVersion: arc.opendefense.cloud/v1alpha1\nkind: Order\nmetadata: {{name: mirror}}\nspec:\n  defaults: {{srcRef: {{name: registry}}, dstRef: {{name: registry}}}}\n  artifacts:\n\
         \x20   - type: oci\n      spec: {{image: upstream/hello:1.0, override: 'mirrored/hello:1.0'}}\n"
    );
    std::fs::write(orders.join("mirror.yaml"), &order).unwrap();
    let output = run_once(work.path(), &orders);
    assert!(
        output.status.success(),
        "{}\nregistry log:\n{}",
        text(&output),
        registry.log()
    );
    let upstream = arc_tests::skopeo::inspect_raw(
        &skopeo,
        &format!("docker://{host}/upstream/hello:1.0"),
        &[],
    );
    let mirrored = arc_tests::skopeo::inspect_raw(
        &skopeo,
        &format!("docker://{host}/mirrored/hello:1.0"),
        &[],
    );
    assert_eq!(
        arc_tests::skopeo::digest_of(&mirrored),
        arc_tests::skopeo::digest_of(&upstream)
    );

    // An image that does not exist: the run fails and names the artifact.
    std::fs::write(
        orders.join("mirror.yaml"),
        order.replace("upstream/hello:1.0", "upstream/missing:1.0"),
    )
    .unwrap();
    let work2 = tempfile::tempdir().unwrap();
    let output = run_once(work2.path(), &orders);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("not succeeded: default/mirror artifact #0 oci (upstream/missing:1.0)"),
        "{}",
        text(&output)
    );
}

#[test]
fn the_configured_scanner_runs_in_every_worker_and_can_refuse() {
    let work = tempfile::tempdir().unwrap();
    let (orders, mirror) = (work.path().join("orders"), work.path().join("mirror"));
    std::fs::create_dir_all(&orders).unwrap();
    std::fs::create_dir_all(&mirror).unwrap();
    std::fs::write(orders.join("quickstart.yaml"), quickstart(&mirror)).unwrap();
    let config = work.path().join("arcd.yaml");
    std::fs::write(&config, "scanner:\n  command: [/bin/false]\n").unwrap();
    let output = run_once_with_config(work.path(), &orders, &config);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("0/2 artifacts succeeded"),
        "{}",
        text(&output)
    );
    assert!(
        !mirror.join("hello.txt").exists(),
        "a refused file is never published"
    );
}
