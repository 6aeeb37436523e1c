//! The file syncer against the real embedded API server (SQLite, TLS, client certificates):
//! create/update/delete from files, ownership, invalid and half-written files, duplicates,
//! Secret file permissions, renames and editor temporary files, symlinked directories.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use apiserver::server::testing::TestServer;
use apiserver::types::{Endpoint, Order};
use arcd::syncer::apply::{LAST_APPLIED_ANNOTATION, MANAGED_BY_LABEL, SOURCE_FILE_ANNOTATION};
use arcd::syncer::{Scope, SyncReport, Syncer, SyncerSettings};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

fn endpoint(name: &str, url: &str) -> String {
    format!(
        "apiVersion: arc.opendefense.cloud/v1alpha1\nkind: Endpoint\nmetadata:\n  name: {name}\nspec:\n  type: oci\n  remoteURL: {url}\n"
    )
}

fn order(name: &str, image: &str) -> String {
    format!(
        "apiVersion: arc.opendefense.cloud/v1alpha1\nkind: Order\nmetadata:\n  name: {name}\nspec:\n  defaults:\n    srcRef: {{name: src}}\n    dstRef: {{name: dst}}\n  artifacts:\n    - type: oci\n      spec:\n        image: {image}\n"
    )
}

const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  username: bob\n  password: hunter2\n";

struct Fixture {
    server: TestServer,
    client: kube::Client,
    dir: tempfile::TempDir,
}

impl Fixture {
    async fn new() -> Self {
        let server = TestServer::start().await;
        let client = server.client().await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("orders")).unwrap();
        Self {
            server,
            client,
            dir,
        }
    }

    fn orders_dir(&self) -> PathBuf {
        self.dir.path().join("orders")
    }

    fn settings(&self) -> SyncerSettings {
        SyncerSettings {
            directories: vec![self.orders_dir()],
            default_namespace: "default".into(),
            rescan_interval: Duration::from_secs(3600),
            debounce: Duration::from_millis(50),
        }
    }

    fn syncer(&self) -> Syncer {
        Syncer::new(self.client.clone(), self.settings())
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.orders_dir().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn endpoints(&self) -> Api<Endpoint> {
        Api::namespaced(self.client.clone(), "default")
    }

    fn orders(&self) -> Api<Order> {
        Api::namespaced(self.client.clone(), "default")
    }
}

async fn full(syncer: &mut Syncer) -> SyncReport {
    match syncer.sync(Scope::Full).await {
        Ok(report) => report,
        Err((report, error)) => panic!("sync failed: {error}: {report:?}"),
    }
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

fn annotation(meta: &kube::api::ObjectMeta, key: &str) -> Option<String> {
    meta.annotations.as_ref().and_then(|a| a.get(key)).cloned()
}

#[tokio::test]
async fn applies_every_kind_from_multi_document_files_and_marks_what_it_manages() {
    let fx = Fixture::new().await;
    let file = fx.write(
        "mirror.yaml",
        &format!(
            "{}---\n{}---\n{}",
            endpoint("src", "http://127.0.0.1:1"),
            endpoint("dst", "http://127.0.0.1:2"),
            order("o1", "alpine")
        ),
    );
    let secret_file = fx.write("creds.yaml", SECRET);
    std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    fx.write(
        "types.yml",
        "apiVersion: arc.opendefense.cloud/v1alpha1\nkind: ClusterArtifactType\nmetadata: {name: mine}\nspec:\n  workflowTemplateRef: {name: arc-oci}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: team-a}\n---\napiVersion: arc.opendefense.cloud/v1alpha1\nkind: ArtifactType\nmetadata: {name: mine, namespace: team-a}\nspec:\n  workflowTemplateRef: {name: arc-oci}\n",
    );
    fx.write("README.md", "not yaml");

    let mut syncer = fx.syncer();
    let report = full(&mut syncer).await;
    assert!(report.is_clean(), "{report:#?}");
    assert_eq!(report.files, 3);
    assert_eq!(report.objects, 7);
    assert_eq!(report.created, 7);

    let src = fx.endpoints().get("src").await.unwrap();
    assert_eq!(
        src.metadata.labels.as_ref().unwrap()[MANAGED_BY_LABEL],
        "arcd"
    );
    assert_eq!(
        annotation(&src.metadata, SOURCE_FILE_ANNOTATION).unwrap(),
        file.display().to_string()
    );
    let o1 = fx.orders().get("o1").await.unwrap();
    assert_eq!(o1.spec.artifacts[0].spec["image"], "alpine");
    let secret: Secret = Api::namespaced(fx.client.clone(), "default")
        .get("creds")
        .await
        .unwrap();
    assert_eq!(secret.data.unwrap()["password"].0, b"hunter2");
    let last_applied = annotation(&secret.metadata, LAST_APPLIED_ANNOTATION).unwrap();
    assert!(
        !last_applied.contains("aHVudGVyMg") && !last_applied.contains("hunter2"),
        "{last_applied}"
    );
    let types: Api<apiserver::types::ArtifactType> = Api::namespaced(fx.client.clone(), "team-a");
    types.get("mine").await.unwrap();

    // A second pass changes nothing.
    let again = full(&mut syncer).await;
    assert_eq!(
        (again.created, again.updated, again.deleted, again.objects),
        (0, 0, 0, 7),
        "{again:#?}"
    );
    drop(fx.server);
}

#[tokio::test]
async fn updates_keep_status_and_other_writers_fields() {
    let fx = Fixture::new().await;
    let file = fx.write("o.yaml", &order("o1", "alpine"));
    let mut syncer = fx.syncer();
    full(&mut syncer).await;

    // Someone else labels it and a controller writes status.
    let params = PatchParams::default();
    fx.orders()
        .patch(
            "o1",
            &params,
            &Patch::Merge(
                json!({"metadata": {"labels": {"team": "x"}, "annotations": {"note": "theirs"}}}),
            ),
        )
        .await
        .unwrap();
    fx.orders()
        .patch_status(
            "o1",
            &params,
            &Patch::Merge(json!({"status": {"message": "written by the controller"}})),
        )
        .await
        .unwrap();

    // The file changes: new image, the defaults dropped, a label of our own.
    std::fs::write(&file, "apiVersion: arc.opendefense.cloud/v1alpha1\nkind: Order\nmetadata:\n  name: o1\n  labels: {tier: gold}\nspec:\n  artifacts:\n    - type: oci\n      spec: {image: busybox}\n").unwrap();
    let report = syncer
        .sync(Scope::Paths([file.clone()].into()))
        .await
        .unwrap();
    assert_eq!(report.updated, 1, "{report:#?}");
    let o1 = fx.orders().get("o1").await.unwrap();
    assert_eq!(o1.spec.artifacts[0].spec["image"], "busybox");
    assert!(
        o1.spec.defaults.is_none(),
        "fields removed from the file are removed: {:?}",
        o1.spec.defaults
    );
    let labels = o1.metadata.labels.clone().unwrap();
    assert_eq!(labels["team"], "x", "other writers' labels stay");
    assert_eq!(labels["tier"], "gold");
    assert_eq!(annotation(&o1.metadata, "note").unwrap(), "theirs");
    assert_eq!(
        o1.status.unwrap().message,
        "written by the controller",
        "status is never touched"
    );

    // Drift made by someone else in a field the file sets is corrected by the next full pass.
    fx.orders()
        .patch(
            "o1",
            &params,
            &Patch::Merge(
                json!({"spec": {"artifacts": [{"type": "oci", "spec": {"image": "evil"}}]}}),
            ),
        )
        .await
        .unwrap();
    let report = full(&mut syncer).await;
    assert_eq!(report.updated, 1, "{report:#?}");
    assert_eq!(
        fx.orders().get("o1").await.unwrap().spec.artifacts[0].spec["image"],
        "busybox"
    );
}

#[tokio::test]
async fn an_invalid_or_half_written_file_changes_nothing_until_fixed() {
    let fx = Fixture::new().await;
    let file = fx.write(
        "o.yaml",
        &format!(
            "{}---\n{}",
            endpoint("src", "http://127.0.0.1:1"),
            order("o1", "alpine")
        ),
    );
    let mut syncer = fx.syncer();
    full(&mut syncer).await;
    let before = fx.orders().get("o1").await.unwrap();

    // Half-written: cut in the middle of the second document.
    std::fs::write(
        &file,
        format!(
            "{}---\n{}  artifacts: [unclosed\n",
            endpoint("src", "http://127.0.0.1:9"),
            "apiVersion: arc.opendefense.cloud/v1alpha1\nkind: Order\nmetadata: {name: o1}\nspec:\n"
        ),
    )
    .unwrap();
    let report = syncer
        .sync(Scope::Paths([file.clone()].into()))
        .await
        .unwrap();
    assert_eq!(report.errors.len(), 1, "{report:#?}");
    let error = report.errors[0].to_string();
    assert!(
        error.starts_with(&format!("{}:13:", file.display())),
        "{error}"
    );
    assert_eq!((report.updated, report.deleted), (0, 0));
    assert_eq!(
        fx.orders()
            .get("o1")
            .await
            .unwrap()
            .metadata
            .resource_version,
        before.metadata.resource_version
    );
    assert_eq!(
        fx.endpoints().get("src").await.unwrap().spec.remote_url,
        "http://127.0.0.1:1",
        "the last good version stays"
    );

    // Schema errors too: reported with the field's position, nothing applied.
    std::fs::write(&file, format!("{}---\n{}", endpoint("src", "http://127.0.0.1:9"), "apiVersion: arc.opendefense.cloud/v1alpha1\nkind: Order\nmetadata: {name: o1}\nspec:\n  artifacts:\n    - spec: {image: x}\n")).unwrap();
    let report = full(&mut syncer).await;
    let text: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
    assert!(
        text.iter().any(|e| e.starts_with(&format!(
            "{}:14:7: spec.artifacts[0].type: Required value",
            file.display()
        ))),
        "{text:#?}"
    );
    assert_eq!(
        fx.endpoints().get("src").await.unwrap().spec.remote_url,
        "http://127.0.0.1:1"
    );

    // A restarted daemon (no memory of the last good version) still deletes nothing.
    let mut fresh = fx.syncer();
    let report = full(&mut fresh).await;
    assert_eq!(report.deleted, 0, "{report:#?}");
    fx.orders().get("o1").await.unwrap();

    // Fixed: applied.
    std::fs::write(
        &file,
        format!(
            "{}---\n{}",
            endpoint("src", "http://127.0.0.1:9"),
            order("o1", "alpine")
        ),
    )
    .unwrap();
    let report = full(&mut fresh).await;
    assert!(report.is_clean(), "{report:#?}");
    assert_eq!(
        fx.endpoints().get("src").await.unwrap().spec.remote_url,
        "http://127.0.0.1:9"
    );
}

#[tokio::test]
async fn deleting_a_file_deletes_only_the_objects_it_defined() {
    let fx = Fixture::new().await;
    let a = fx.write(
        "a.yaml",
        &format!(
            "{}---\n{}",
            endpoint("src", "http://127.0.0.1:1"),
            order("o1", "alpine")
        ),
    );
    fx.write("b.yaml", &order("o2", "busybox"));
    let mut syncer = fx.syncer();
    full(&mut syncer).await;
    // An Order created by someone else.
    let theirs: Order = serde_json::from_value(json!({"apiVersion": "arc.opendefense.cloud/v1alpha1", "kind": "Order", "metadata": {"name": "theirs"}, "spec": {}})).unwrap();
    fx.orders()
        .create(&PostParams::default(), &theirs)
        .await
        .unwrap();

    std::fs::remove_file(&a).unwrap();
    let report = syncer.sync(Scope::Paths([a.clone()].into())).await.unwrap();
    assert_eq!(report.deleted, 2, "{report:#?}");
    assert!(fx.orders().get_opt("o1").await.unwrap().is_none());
    assert!(fx.endpoints().get_opt("src").await.unwrap().is_none());
    fx.orders().get("o2").await.unwrap();
    fx.orders().get("theirs").await.unwrap();

    // Removing one object from a file deletes just that object.
    let b = fx.orders_dir().join("b.yaml");
    std::fs::write(&b, endpoint("other", "http://127.0.0.1:3")).unwrap();
    let report = full(&mut syncer).await;
    assert_eq!((report.created, report.deleted), (1, 1), "{report:#?}");
    assert!(fx.orders().get_opt("o2").await.unwrap().is_none());
    fx.orders().get("theirs").await.unwrap();
}

#[tokio::test]
async fn never_takes_over_an_object_someone_else_created() {
    let fx = Fixture::new().await;
    let theirs: Endpoint = serde_json::from_value(json!({"apiVersion": "arc.opendefense.cloud/v1alpha1", "kind": "Endpoint", "metadata": {"name": "src"}, "spec": {"type": "oci", "remoteURL": "http://theirs"}})).unwrap();
    fx.endpoints()
        .create(&PostParams::default(), &theirs)
        .await
        .unwrap();
    let file = fx.write("a.yaml", &endpoint("src", "http://mine"));
    let mut syncer = fx.syncer();
    let report = full(&mut syncer).await;
    assert_eq!(report.errors.len(), 1, "{report:#?}");
    let error = report.errors[0].to_string();
    assert!(
        error.starts_with(&format!("{}:4:3: Endpoint default/src: ", file.display())),
        "{error}"
    );
    assert!(
        error.contains("not created by arcd") && error.contains("refusing to take it over"),
        "{error}"
    );
    assert_eq!(
        fx.endpoints().get("src").await.unwrap().spec.remote_url,
        "http://theirs"
    );
    // And deleting the file does not delete their object.
    std::fs::remove_file(&file).unwrap();
    let report = full(&mut syncer).await;
    assert_eq!(report.deleted, 0);
    fx.endpoints().get("src").await.unwrap();
}

#[tokio::test]
async fn the_same_object_in_two_files_is_an_error_naming_both() {
    let fx = Fixture::new().await;
    let a = fx.write("a.yaml", &order("o1", "alpine"));
    let mut syncer = fx.syncer();
    full(&mut syncer).await;
    let b = fx.write("b.yaml", &order("o1", "busybox"));
    let report = full(&mut syncer).await;
    let text: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
    assert_eq!(text.len(), 2, "{text:#?}");
    assert!(
        text[0].starts_with(&format!(
            "{}:1:1: Order default/o1 is also defined in {}",
            a.display(),
            b.display()
        )),
        "{text:#?}"
    );
    assert!(
        text[1].starts_with(&format!(
            "{}:1:1: Order default/o1 is also defined in {}",
            b.display(),
            a.display()
        )),
        "{text:#?}"
    );
    // Neither applied: the object stays as it was, not deleted either.
    assert_eq!(
        fx.orders().get("o1").await.unwrap().spec.artifacts[0].spec["image"],
        "alpine"
    );
    // New objects defined twice are not created at all.
    fx.write("c.yaml", &order("o2", "x"));
    fx.write("d.yaml", &order("o2", "y"));
    full(&mut syncer).await;
    assert!(fx.orders().get_opt("o2").await.unwrap().is_none());
}

#[tokio::test]
async fn secret_files_readable_by_group_or_others_are_refused() {
    let fx = Fixture::new().await;
    let file = fx.write("creds.yaml", SECRET);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut syncer = fx.syncer();
    let report = full(&mut syncer).await;
    assert_eq!(report.errors.len(), 1, "{report:#?}");
    let error = report.errors[0].to_string();
    assert!(
        error.starts_with(&format!(
            "{}: holds a Secret but its permissions 0644",
            file.display()
        )),
        "{error}"
    );
    assert!(error.contains("chmod 600"), "{error}");
    let secrets: Api<Secret> = Api::namespaced(fx.client.clone(), "default");
    assert!(secrets.get_opt("creds").await.unwrap().is_none());
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let report = full(&mut syncer).await;
    assert!(report.is_clean(), "{report:#?}");
    secrets.get("creds").await.unwrap();
}

#[tokio::test]
async fn follows_file_events_renames_editor_files_and_symlinked_directories() {
    let fx = Fixture::new().await;
    let elsewhere = fx.dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, fx.orders_dir().join("linked")).unwrap();
    let status_file = fx.dir.path().join("sync-status.json");
    let cancel = tokio_util::sync::CancellationToken::new();
    let (handle, task) = fx
        .syncer()
        .with_status_file(status_file.clone())
        .spawn(cancel.clone());
    let mut reports = handle.reports();
    reports.wait_for(Option::is_some).await.unwrap();

    // Atomic write: a temporary (hidden) file renamed into place.
    let temporary = fx.orders_dir().join(".o.yaml.tmp");
    std::fs::write(&temporary, order("o1", "alpine")).unwrap();
    std::fs::rename(&temporary, fx.orders_dir().join("o.yaml")).unwrap();
    eventually("o1 created", || async {
        fx.orders().get_opt("o1").await.unwrap().is_some()
    })
    .await;

    // Editor leftovers are ignored.
    std::fs::write(fx.orders_dir().join("o.yaml~"), order("backup", "x")).unwrap();
    std::fs::write(fx.orders_dir().join(".o.yaml.swp"), order("swap", "x")).unwrap();
    std::fs::write(fx.orders_dir().join("4913"), "").unwrap();
    std::fs::write(fx.orders_dir().join(".#o.yaml"), order("lock", "x")).unwrap();

    // An edit in place.
    std::fs::write(fx.orders_dir().join("o.yaml"), order("o1", "busybox")).unwrap();
    eventually("o1 updated", || async {
        fx.orders().get("o1").await.unwrap().spec.artifacts[0].spec["image"] == "busybox"
    })
    .await;

    // A rename keeps the object and moves its source annotation.
    let renamed = fx.orders_dir().join("renamed.yaml");
    std::fs::rename(fx.orders_dir().join("o.yaml"), &renamed).unwrap();
    eventually("source annotation follows the rename", || async {
        annotation(
            &fx.orders().get("o1").await.unwrap().metadata,
            SOURCE_FILE_ANNOTATION,
        ) == Some(renamed.display().to_string())
    })
    .await;

    // A file in a symlinked directory.
    std::fs::write(
        elsewhere.join("e.yaml"),
        endpoint("linked", "http://127.0.0.1:4"),
    )
    .unwrap();
    eventually("endpoint from the symlinked directory", || async {
        fx.endpoints().get_opt("linked").await.unwrap().is_some()
    })
    .await;

    // Deleting files deletes their objects.
    std::fs::remove_file(&renamed).unwrap();
    eventually("o1 deleted", || async {
        fx.orders().get_opt("o1").await.unwrap().is_none()
    })
    .await;
    for ignored in ["backup", "swap", "lock"] {
        assert!(
            fx.orders().get_opt(ignored).await.unwrap().is_none(),
            "{ignored} must be ignored"
        );
    }

    // The status file reflects the latest pass; a resync through the handle works.
    let report = handle.resync(None).await.unwrap();
    assert!(report.is_clean(), "{report:#?}");
    assert_eq!(SyncReport::read_from(&status_file).unwrap().objects, 1);

    // Idle: reading files must not make the syncer chase its own reads (no further passes).
    let mut reports = handle.reports();
    reports.mark_unchanged();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !reports.has_changed().unwrap(),
        "the syncer keeps running passes while nothing changes"
    );
    cancel.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn a_missing_directory_prunes_nothing() {
    let fx = Fixture::new().await;
    fx.write("a.yaml", &order("o1", "alpine"));
    let mut syncer = fx.syncer();
    full(&mut syncer).await;
    // The directory disappears (an unmounted volume, a bad symlink switch).
    std::fs::rename(fx.orders_dir(), fx.dir.path().join("gone")).unwrap();
    let report = full(&mut syncer).await;
    assert_eq!(report.deleted, 0, "{report:#?}");
    assert!(
        report.errors.iter().any(|e| e.file == fx.orders_dir()),
        "{report:#?}"
    );
    fx.orders().get("o1").await.unwrap();
}

#[tokio::test]
async fn a_restarted_syncer_recognises_more_objects_than_one_list_page() {
    let fx = Fixture::new().await;
    let per_file = 100;
    let files = (arcd::syncer::apply::LIST_PAGE_SIZE as usize * 2 + 100) / per_file;
    for f in 0..files {
        let text: Vec<String> = (0..per_file)
            .map(|i| order(&format!("o-{f}-{i}"), "alpine"))
            .collect();
        fx.write(&format!("batch-{f}.yaml"), &text.join("---\n"));
    }
    let report = full(&mut fx.syncer()).await;
    assert_eq!(
        report.created,
        files * per_file,
        "{:?}",
        report.errors.first()
    );
    // A fresh syncer finds every object it manages on the server, over several pages.
    let report = full(&mut fx.syncer()).await;
    assert_eq!(
        (report.created, report.updated, report.objects),
        (0, 0, files * per_file)
    );
}
