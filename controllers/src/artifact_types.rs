//! The ClusterArtifactTypes ARC ships — `oci`, `helm`, `file`, one per built-in pipeline —
//! compiled in from `etc/arc/artifacttypes/*.yaml`, and their creation at start where absent.
//! Existing ones are never overwritten: operators may have edited them.

use apiserver::types::ClusterArtifactType;
use kube::api::PostParams;
use kube::{Api, Client, ResourceExt};

/// The shipped YAML, by file name.
pub const DEFAULT_ARTIFACT_TYPE_FILES: [(&str, &str); 3] = [
    (
        "oci.yaml",
        include_str!("../../etc/arc/artifacttypes/oci.yaml"),
    ),
    (
        "helm.yaml",
        include_str!("../../etc/arc/artifacttypes/helm.yaml"),
    ),
    (
        "file.yaml",
        include_str!("../../etc/arc/artifacttypes/file.yaml"),
    ),
];

/// What can go wrong while creating the shipped ClusterArtifactTypes.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactTypesError {
    /// Creating one failed.
    #[error("cannot create ClusterArtifactType {name}: {source}")]
    Create {
        /// Its name.
        name: String,
        /// Cause.
        source: kube::Error,
    },
}

/// The shipped ClusterArtifactTypes.
pub fn default_cluster_artifact_types() -> Vec<ClusterArtifactType> {
    DEFAULT_ARTIFACT_TYPE_FILES
        .iter()
        .map(|(file, yaml)| {
            // Checked by the unit tests; a broken file cannot be built into a release.
            serde_saphyr::from_str::<ClusterArtifactType>(yaml).unwrap_or_else(|e| {
                panic!("etc/arc/artifacttypes/{file} is not a ClusterArtifactType: {e}")
            })
        })
        .collect()
}

/// Creates every shipped ClusterArtifactType that does not exist yet; returns the names of
/// those created.
pub async fn ensure_default_artifact_types(
    client: Client,
) -> Result<Vec<String>, ArtifactTypesError> {
    let api: Api<ClusterArtifactType> = Api::all(client);
    let mut created = Vec::new();
    for t in default_cluster_artifact_types() {
        let name = t.name_any();
        match api.create(&PostParams::default(), &t).await {
            Ok(_) => {
                tracing::info!(name = %name, "created ClusterArtifactType");
                created.push(name);
            }
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(source) => return Err(ArtifactTypesError::Create { name, source }),
        }
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_types_parse_and_point_at_the_built_in_templates() {
        let types = default_cluster_artifact_types();
        let got: Vec<(String, String, bool)> = types
            .iter()
            .map(|t| {
                (
                    t.name_any(),
                    t.spec.workflow_template_ref.name.clone(),
                    t.spec.workflow_template_ref.cluster_scope,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("oci".into(), "arc-oci".into(), true),
                ("helm".into(), "arc-helm".into(), true),
                ("file".into(), "arc-file".into(), true)
            ]
        );
        for t in &types {
            assert!(
                !t.spec.rules.src_types.is_empty() && !t.spec.rules.dst_types.is_empty(),
                "{}",
                t.name_any()
            );
        }
        assert!(types[0].spec.rules.src_types.contains(&"oci".to_string()));
        assert!(types[2].spec.rules.src_types.contains(&"http".to_string()));
    }
}
