//! Tests of configuration parsing and validation.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::diagnostic::Position;

fn parse(text: &str) -> Result<Settings, ConfigErrors> {
    parse_settings(text, Path::new("arcd.yaml"))
}

#[test]
fn empty_file_gives_documented_defaults() {
    let settings = parse("# nothing but a comment\n").unwrap();
    assert_eq!(settings.data_dir, PathBuf::from("/var/lib/arc"));
    assert_eq!(
        settings.api_listen,
        "127.0.0.1:6443".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(
        settings.health_listen,
        "127.0.0.1:9464".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(settings.storage, StorageSettings::Sqlite);
    assert_eq!(
        settings.resources.directories,
        vec![PathBuf::from("/etc/arc/orders")]
    );
    assert_eq!(settings.resources.default_namespace.as_str(), "default");
    assert_eq!(settings.resources.rescan_interval, Duration::from_secs(300));
    assert_eq!(settings.executor.kind, ExecutorKind::Local);
    assert_eq!(settings.executor.concurrency.get(), 4);
    assert_eq!(settings.log.format, LogFormat::Auto);
    assert_eq!(settings.shutdown_deadline, Duration::from_secs(30));
    assert_eq!(settings, Settings::default());
}

#[test]
fn the_shipped_config_is_valid_and_matches_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc/arc/arcd.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let settings = parse_settings(&text, &path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        settings,
        Settings::default(),
        "etc/arc/arcd.yaml must state the defaults"
    );
}

#[test]
fn full_config_is_typed() {
    let settings = parse(
        "dataDir: /srv/arc\napi:\n  listen: 0.0.0.0:7443\nhealth:\n  listen: '[::1]:9000'\n\
         storage:\n  backend: etcd\n  etcd:\n    endpoints: [http://127.0.0.1:2379, https://etcd.local:2379]\n\
         resources:\n  directories: [/a, /b]\n  defaultNamespace: team-a\n  rescanInterval: 1m30s\n  debounce: 50ms\n\
         executor:\n  type: argo\n  concurrency: 8\n  perNamespaceConcurrency: 2\n  argo:\n    serviceAccountName: wf\n    queueName: q1\n\
         trustedKeys: [/etc/arc/keys/a.pub]\n\
         scanner:\n  command: [/usr/bin/scan, --strict]\n  timeout: 5m\n\
         log:\n  format: json\n  level: debug,hyper=info\n\
         shutdown:\n  deadline: 10s\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(settings.data_dir, PathBuf::from("/srv/arc"));
    assert_eq!(
        settings.health_listen,
        "[::1]:9000".parse::<SocketAddr>().unwrap()
    );
    let StorageSettings::Etcd { endpoints } = &settings.storage else {
        panic!("etcd expected")
    };
    assert_eq!(endpoints.len(), 2);
    assert_eq!(endpoints[1].host(), Some("etcd.local"));
    assert_eq!(settings.resources.rescan_interval, Duration::from_secs(90));
    assert_eq!(settings.resources.debounce, Duration::from_millis(50));
    assert_eq!(
        settings.executor.per_namespace_concurrency.map(|n| n.get()),
        Some(2)
    );
    let argo = settings.executor.argo.as_ref().unwrap();
    assert_eq!(argo.service_account_name.as_deref(), Some("wf"));
    assert_eq!(argo.queue_name.as_deref(), Some("q1"));
    let scanner = settings.scanner.as_ref().unwrap();
    assert_eq!(scanner.program, PathBuf::from("/usr/bin/scan"));
    assert_eq!(scanner.args, vec!["--strict".to_string()]);
    assert_eq!(settings.log.format, LogFormat::Json);
    assert_eq!(settings.shutdown_deadline, Duration::from_secs(10));
}

#[test]
fn unknown_keys_are_errors_with_their_position() {
    let errors =
        parse("dataDir: /var/lib/arc\nresources:\n  directories: [/x]\n  rescanIntervall: 5m\n")
            .unwrap_err();
    assert_eq!(errors.errors.len(), 1, "{errors}");
    let error = &errors.errors[0];
    assert_eq!(error.position.line, 4, "{errors}");
    assert!(error.message.contains("rescanIntervall"), "{errors}");
    assert!(error.to_string().starts_with("arcd.yaml:4:"), "{errors}");

    let top = parse("listen: 127.0.0.1:1\n").unwrap_err();
    assert_eq!(top.errors[0].position, Position::new(1, 1), "{top}");
    assert!(top.errors[0].message.contains("listen"), "{top}");
}

#[test]
fn every_invalid_value_is_reported_at_once() {
    let errors = parse(
        "dataDir: relative/dir\n\
         api:\n  listen: localhost\n\
         health:\n  listen: 127.0.0.1:99999\n\
         storage:\n  backend: postgres\n\
         resources:\n  directories: [/ok, data, /ok]\n  defaultNamespace: Team_A\n  rescanInterval: 5 minutes\n\
         executor:\n  type: k8s\n  concurrency: 0\n\
         trustedKeys: [keys/a.pub]\n\
         scanner:\n  command: [trivy]\n\
         log:\n  format: xml\n  level: 'info,[bad'\n\
         shutdown:\n  deadline: 2h\n",
    )
    .unwrap_err();
    let text = errors.to_string();
    let expect = [
        (1, "dataDir: `relative/dir` must be an absolute path"),
        (3, "api.listen: `localhost` is not an address"),
        (5, "health.listen: `127.0.0.1:99999`"),
        (7, "storage.backend: `postgres` is not one of sqlite, etcd"),
        (9, "resources.directories: `data` must be an absolute path"),
        (9, "resources.directories: `/ok` is listed twice"),
        (
            10,
            "resources.defaultNamespace: `Team_A` is not a valid name",
        ),
        (11, "resources.rescanInterval: invalid duration"),
        (13, "executor.type: `k8s` is not one of local, argo"),
        (14, "executor.concurrency: 0 must be at least 1"),
        (15, "trustedKeys: `keys/a.pub` must be an absolute path"),
        (17, "scanner.command: `trivy` must be an absolute path"),
        (19, "log.format: `xml` is not one of"),
        (20, "log.level:"),
        (22, "shutdown.deadline: `2h` is out of range"),
    ];
    for (line, fragment) in expect {
        assert!(
            errors
                .errors
                .iter()
                .any(|e| e.position.line == line && e.message.contains(fragment)),
            "missing `{fragment}` at line {line} in:\n{text}"
        );
    }
    assert_eq!(errors.errors.len(), expect.len(), "{text}");
    // Sorted by position, each `file:line:col: message`.
    assert!(
        errors
            .errors
            .windows(2)
            .all(|w| w[0].position <= w[1].position)
    );
    assert!(
        errors
            .errors
            .iter()
            .all(|e| e.to_string().starts_with("arcd.yaml:"))
    );
}

#[test]
fn combinations_are_checked() {
    let errors = parse(
        "api:\n  listen: 127.0.0.1:7000\nhealth:\n  listen: 127.0.0.1:7000\n\
         storage:\n  backend: etcd\n\
         executor:\n  concurrency: 2\n  perNamespaceConcurrency: 3\n  argo:\n    queueName: x\n",
    )
    .unwrap_err();
    let text = errors.to_string();
    assert!(
        text.contains("arcd.yaml:4:11: health.listen: 127.0.0.1:7000 is already api.listen"),
        "{text}"
    );
    assert!(
        text.contains("`backend: etcd` needs `etcd.endpoints`"),
        "{text}"
    );
    assert!(
        text.contains("perNamespaceConcurrency: 3 is more than executor.concurrency (2)"),
        "{text}"
    );
    assert!(
        text.contains("executor.argo: only used with `type: argo`"),
        "{text}"
    );

    let etcd = parse("storage:\n  backend: etcd\n  etcd:\n    endpoints: [ftp://x:1, 'http://:2379', http://h:1/p]\n")
        .unwrap_err();
    assert_eq!(etcd.errors.len(), 3, "{etcd}");
}

#[test]
fn yaml_errors_have_positions() {
    let errors = parse("api:\n  listen: [127.0.0.1:1\n").unwrap_err();
    assert_eq!(errors.errors.len(), 1);
    assert!(errors.errors[0].position.line >= 2, "{errors}");
    let wrong_type = parse("executor:\n  concurrency: many\n").unwrap_err();
    assert_eq!(wrong_type.errors[0].position.line, 2, "{wrong_type}");
}

#[test]
fn overrides_win_and_make_paths_absolute() {
    let mut settings = Settings::default();
    settings.apply(&Overrides {
        data_dir: Some(PathBuf::from("state")),
        resource_dirs: vec![PathBuf::from("/r1"), PathBuf::from("r2")],
        api_listen: Some("127.0.0.1:1234".parse().unwrap()),
        health_listen: None,
    });
    assert!(settings.data_dir.is_absolute() && settings.data_dir.ends_with("state"));
    assert_eq!(settings.resources.directories[0], PathBuf::from("/r1"));
    assert!(settings.resources.directories[1].is_absolute());
    assert_eq!(settings.api_listen.port(), 1234);
    assert_eq!(
        settings.admin_kubeconfig(),
        settings.data_dir.join("admin.kubeconfig")
    );
}

#[test]
fn missing_default_file_means_defaults_but_explicit_file_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("arcd.yaml");
    assert_eq!(load(&missing, false).unwrap(), Settings::default());
    let error = load(&missing, true).unwrap_err();
    assert!(error.to_string().contains("cannot read"), "{error}");
}

#[test]
fn scanner_command_line_survives_the_workers_splitting() {
    let settings = parse(
        "scanner:\n  command: [/usr/bin/scan, --label, \"it's {path}\", plain]\n  timeout: 90s\n",
    )
    .unwrap();
    let scanner = settings.scanner.unwrap();
    assert_eq!(
        scanner.command_line(),
        r"'/usr/bin/scan' '--label' 'it'\''s {path}' 'plain'"
    );
    let env = scanner.worker_environment();
    assert_eq!(
        env[1],
        ("ARC_SCANNER_TIMEOUT_SECS".to_string(), "90".to_string())
    );
}
