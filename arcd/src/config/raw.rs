//! The configuration file as written: every section and key `arcd.yaml` accepts, strictly
//! (`deny_unknown_fields`), with the position of every value so that validation can point at it.
//! Values stay close to their text here; [`super::validate`] turns them into typed settings.

use serde::Deserialize;
use serde_saphyr::Spanned;

/// A value together with where it was written.
pub type At<T> = Spanned<T>;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawConfig {
    /// `dataDir`: state of the embedded API server (database, PKI, admin kubeconfig).
    pub data_dir: Option<At<String>>,
    /// `api`: the embedded API server.
    pub api: Option<At<RawApi>>,
    /// `health`: the health and metrics listener.
    pub health: Option<At<RawHealth>>,
    /// `storage`: where the API server keeps objects.
    pub storage: Option<At<RawStorage>>,
    /// `resources`: the directories of resource files the syncer applies.
    pub resources: Option<At<RawResources>>,
    /// `executor`: how ArtifactWorkflows run.
    pub executor: Option<At<RawExecutor>>,
    /// `trustedKeys`: public keys that bundle signatures are checked against.
    pub trusted_keys: Option<At<Vec<At<String>>>>,
    /// `scanner`: an optional command that scans pulled artifacts.
    pub scanner: Option<At<RawScanner>>,
    /// `log`: log format and level.
    pub log: Option<At<RawLog>>,
    /// `shutdown`: graceful stop.
    pub shutdown: Option<At<RawShutdown>>,
}

/// `api:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawApi {
    /// `listen: HOST:PORT`
    pub listen: Option<At<String>>,
}

/// `health:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawHealth {
    /// `listen: HOST:PORT`
    pub listen: Option<At<String>>,
}

/// `storage:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawStorage {
    /// `backend: sqlite | etcd`
    pub backend: Option<At<String>>,
    /// `etcd:` (only with `backend: etcd`)
    pub etcd: Option<At<RawEtcd>>,
}

/// `storage.etcd:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawEtcd {
    /// `endpoints: [URL, ...]`
    pub endpoints: Option<At<Vec<At<String>>>>,
}

/// `resources:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawResources {
    /// `directories: [PATH, ...]`
    pub directories: Option<At<Vec<At<String>>>>,
    /// `defaultNamespace:`
    pub default_namespace: Option<At<String>>,
    /// `rescanInterval:` duration
    pub rescan_interval: Option<At<String>>,
    /// `debounce:` duration
    pub debounce: Option<At<String>>,
}

/// `executor:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawExecutor {
    /// `type: local | argo`
    #[serde(rename = "type")]
    pub type_: Option<At<String>>,
    /// `concurrency:` global limit
    pub concurrency: Option<At<u64>>,
    /// `perNamespaceConcurrency:`
    pub per_namespace_concurrency: Option<At<u64>>,
    /// `argo:`
    pub argo: Option<At<RawArgo>>,
}

/// `executor.argo:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawArgo {
    /// `kubeconfig:` path of the cluster's kubeconfig
    pub kubeconfig: Option<At<String>>,
    /// `serviceAccountName:` the service account the Workflows' pods run as
    pub service_account_name: Option<At<String>>,
    /// `queueName:` Kueue local queue label
    pub queue_name: Option<At<String>>,
}

/// `scanner:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawScanner {
    /// `command: [PROGRAM, ARG, ...]`
    pub command: Option<At<Vec<At<String>>>>,
    /// `timeout:` duration
    pub timeout: Option<At<String>>,
}

/// `log:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawLog {
    /// `format: auto | journald | text | json`
    pub format: Option<At<String>>,
    /// `level:` tracing filter directives
    pub level: Option<At<String>>,
}

/// `shutdown:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawShutdown {
    /// `deadline:` duration
    pub deadline: Option<At<String>>,
}
