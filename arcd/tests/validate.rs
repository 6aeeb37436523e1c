//! `arcd validate` as operators and scripts use it: every problem on stdout as
//! `file:line:col: message`, a summary on stderr, exit status 1 on any problem.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

const ARCD: &str = env!("CARGO_BIN_EXE_arcd");

const ENDPOINT: &str = "apiVersion: arc.opendefense.cloud/v1alpha1\nkind: Endpoint\nmetadata:\n  name: src\nspec:\n  type: oci\n  remoteURL: http://127.0.0.1:5000\n";

#[test]
fn reports_every_problem_of_every_file_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let orders = dir.path().join("orders");
    std::fs::create_dir(&orders).unwrap();
    let config = dir.path().join("arcd.yaml");
    std::fs::write(
        &config,
        format!(
            "resources:\n  directories: [{}]\n  rescanInterval: soon\n",
            orders.display()
        ),
    )
    .unwrap();
    std::fs::write(orders.join("a.yaml"), ENDPOINT).unwrap();
    std::fs::write(orders.join("b.yaml"), ENDPOINT).unwrap();
    std::fs::write(
        orders.join("e.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n",
    )
    .unwrap();
    std::fs::write(orders.join("c.yaml"), "apiVersion: arc.opendefense.cloud/v1alpha1\nkind: Order\nmetadata: {name: o}\nspec:\n  artifacts:\n    - type: oci\n      srcRef: [wrong]\n").unwrap();
    std::fs::write(orders.join("d.yaml"), "kind: Order\nmetadata: {name: [x\n").unwrap();
    let secret = orders.join("s.yaml");
    std::fs::write(
        &secret,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {password: x}\n",
    )
    .unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::write(orders.join("ignored.yaml~"), "garbage: [").unwrap();

    let output = Command::new(ARCD)
        .args(["validate", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    let o = orders.display();
    let expected_prefixes = [
        format!(
            "{}:3:19: resources.rescanInterval: invalid duration `soon`",
            config.display()
        ),
        format!(
            "{o}/a.yaml:1:1: Endpoint default/src is also defined in {o}/b.yaml; neither definition is applied"
        ),
        format!(
            "{o}/b.yaml:1:1: Endpoint default/src is also defined in {o}/a.yaml; neither definition is applied"
        ),
        format!("{o}/c.yaml:7:7: spec.artifacts[0].srcRef: Invalid value"),
        format!("{o}/d.yaml:2:18: unclosed bracket"),
        format!("{o}/e.yaml:2:1: unknown kind `Deployment` (apiVersion `apps/v1`)"),
        format!(
            "{o}/s.yaml: holds a Secret but its permissions 0640 let group or others access it"
        ),
    ];
    assert_eq!(lines.len(), expected_prefixes.len(), "{stdout}");
    for (line, prefix) in lines.iter().zip(&expected_prefixes) {
        assert!(
            line.starts_with(prefix.as_str()),
            "expected `{prefix}…`, got `{line}`\n{stdout}"
        );
    }
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("7 problem(s) in 6 resource file(s) checked"),
        "{stderr}"
    );
}

#[test]
fn valid_files_pass_and_explicit_paths_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("endpoint.yaml");
    std::fs::write(&file, ENDPOINT).unwrap();
    let config = dir.path().join("arcd.yaml");
    std::fs::write(&config, "").unwrap();
    let output = Command::new(ARCD)
        .args(["validate", "--config"])
        .arg(&config)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("ok: 1 resource files, 1 objects"));

    let missing = dir.path().join("missing.yaml");
    let output = Command::new(ARCD)
        .args(["validate", "--config"])
        .arg(&config)
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("{}: no such file or directory", missing.display())
    );
}

#[test]
fn the_shipped_config_and_examples_are_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = Command::new(ARCD)
        .args(["validate", "--config"])
        .arg(root.join("etc/arc/arcd.yaml"))
        .arg(root.join("etc/examples"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
