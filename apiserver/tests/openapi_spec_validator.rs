//! The served OpenAPI documents pass a real, independent validator (`openapi-spec-validator`
//! from PyPI): Swagger 2.0 for `/openapi/v2`, OpenAPI 3.0 for every `/openapi/v3/…` document.

use std::process::Command;

use apiserver::server::kinds::{arc_kinds, core_kinds, events_k8s_io_kinds};
use apiserver::server::openapi::{OpenApi, v3_key};
use apiserver::server::registry::ResourceKind;

fn validate(tool: &std::path::Path, name: &str, body: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{name}.json"));
    std::fs::write(&path, body).unwrap();
    let out = Command::new(tool).arg(&path).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("OK"),
        "{name} is invalid:\n{text}"
    );
}

#[test]
fn served_documents_are_valid_openapi() {
    let Some(tool) =
        arc_tests::tools::require("openapi-spec-validator", "OpenAPI document validation")
    else {
        return;
    };
    let kinds: Vec<ResourceKind> = arc_kinds()
        .into_iter()
        .chain(core_kinds())
        .chain(events_k8s_io_kinds())
        .collect();
    let api = OpenApi::new(&kinds);
    validate(&tool, "v2", &api.v2().body);
    for (group, version) in [
        ("arc.opendefense.cloud", "v1alpha1"),
        ("", "v1"),
        ("events.k8s.io", "v1"),
    ] {
        let key = v3_key(group, version);
        validate(&tool, &key.replace('/', "_"), &api.v3(&key).unwrap().body);
    }
}
