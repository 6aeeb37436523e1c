//! The `arc-helm` pipeline: a Helm chart pushed to an OCI registry (or OCI layout) as a Helm
//! OCI artifact that `helm pull oci://…` accepts.
//!
//! Parameters: `specName`, `specVersion`, `specOverride` (destination repository, default the
//! chart name; the tag is the version with `+` written as `_`, as Helm does). Sources:
//! - `helm`: an HTTP Helm repository — `<remoteURL>/index.yaml` names the chart archive (URL
//!   relative to the repository or absolute) and usually its SHA-256, which is checked;
//!   credentials (`username`/`password` or `token`) go only to the repository's own host;
//! - `oci`: a chart already in a registry (`<remoteURL>/<specName>:<version>`), copied as is;
//! - `dir`: `<remoteURL>/<specName>-<specVersion>.tgz`.
//!
//! The chart archive is staged on disk (streamed, hashed), its `Chart.yaml` must name the
//! chart and version asked for, the scanner (if configured) runs over it, and only then is it
//! pushed: config `application/vnd.cncf.helm.config.v1+json` (the chart metadata as JSON), one
//! layer `application/vnd.cncf.helm.chart.content.v1.tar+gzip`.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::StreamExt as _;
use reqwest::header::AUTHORIZATION;
use reqwest::{StatusCode, Url};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt as _;

use crate::error::{Error, ErrorKind, Result};
use crate::oci::http::{build_http_client, retry_after, transport_error};
use crate::oci::{Copier, CopyOptions, LayerFile, OciRepo, open_repo, push_artifact};
use crate::params::{EndpointType, Side, names};
use crate::pipeline::Job;
use crate::secrets::Credentials;

/// Media type of a Helm chart's OCI config.
pub const HELM_CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.helm.config.v1+json";
/// Media type of a Helm chart archive layer.
pub const HELM_CHART_LAYER_MEDIA_TYPE: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
/// Largest `index.yaml` read.
const INDEX_LIMIT_BYTES: usize = 256 * 1024 * 1024;
/// Largest `Chart.yaml` read.
const CHART_YAML_LIMIT_BYTES: u64 = 1024 * 1024;

/// One version of a chart in `index.yaml`.
#[derive(Debug, serde::Deserialize)]
struct IndexEntry {
    #[serde(default)]
    version: String,
    #[serde(default)]
    urls: Vec<String>,
    #[serde(default)]
    digest: Option<String>,
}

/// The parts of `index.yaml` we use.
#[derive(Debug, serde::Deserialize)]
struct RepoIndex {
    #[serde(default)]
    entries: BTreeMap<String, Vec<IndexEntry>>,
}

/// The OCI tag Helm uses for a chart version (`+` is not allowed in tags).
pub fn chart_tag(version: &str) -> String {
    version.replace('+', "_")
}

/// Runs the `arc-helm` pipeline.
pub async fn run(job: &Job) -> Result<()> {
    let params = &job.params;
    let name = params.required(names::SPEC_NAME)?.to_string();
    let version = params.required(names::SPEC_VERSION)?.to_string();
    let src = params.endpoint(Side::Src)?;
    let dst = params.endpoint(Side::Dst)?;
    let repository = params
        .optional(names::SPEC_OVERRIDE)
        .unwrap_or(&name)
        .trim_matches('/')
        .to_string();
    let tag = chart_tag(&version);
    crate::oci::reference::validate_tag(&tag)
        .map_err(|r| Error::invalid_parameter(format!("`{}`: {r}", names::SPEC_VERSION)))?;
    let retry = job.settings.retry.clone();
    let target = open_repo(
        dst.kind,
        &dst.remote_url,
        &job.secrets.dst,
        &repository,
        retry.clone(),
        job.cancel.clone(),
    )?;
    let artifact = format!("chart {name}@{version}");

    let work = async {
        let staging = tempfile::Builder::new()
            .prefix("arc-helm-")
            .tempdir_in(job.settings.staging_dir())
            .map_err(|e| {
                Error::io(
                    "cannot create a staging directory in",
                    &job.settings.staging_dir(),
                    e,
                )
            })?;
        let archive = staging.path().join(format!("{name}-{version}.tgz"));
        match src.kind {
            EndpointType::Oci => {
                let source = open_repo(
                    EndpointType::Oci,
                    &src.remote_url,
                    &job.secrets.src,
                    &name,
                    retry.clone(),
                    job.cancel.clone(),
                )?;
                return copy_oci_chart(job, &source, &tag, &target).await;
            }
            EndpointType::Helm | EndpointType::Http => {
                fetch_from_repository(
                    job,
                    &src.remote_url,
                    &job.secrets.src,
                    &name,
                    &version,
                    &archive,
                )
                .await?;
            }
            EndpointType::Dir => {
                let path = Path::new(
                    src.remote_url
                        .strip_prefix("file://")
                        .unwrap_or(&src.remote_url),
                )
                .join(format!("{name}-{version}.tgz"));
                tokio::fs::copy(&path, &archive).await.map_err(|e| {
                    if e.kind() == std::io::ErrorKind::NotFound {
                        Error::new(
                            ErrorKind::NotFound,
                            format!("no chart archive {}", path.display()),
                        )
                    } else {
                        Error::io("cannot copy", &path, e)
                    }
                })?;
            }
            other => {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    format!("a Helm chart cannot come from a `{other}` endpoint"),
                ));
            }
        }
        let config = chart_config(&archive, &name, &version)?;
        if let Some(scanner) = &job.settings.scanner {
            scanner.scan(&archive, &artifact, &job.cancel).await?;
        }
        let mut annotations = BTreeMap::new();
        annotations.insert("org.opencontainers.image.title".to_string(), name.clone());
        annotations.insert(
            "org.opencontainers.image.version".to_string(),
            version.clone(),
        );
        if let Some(description) = serde_json::from_slice::<serde_json::Value>(&config)
            .ok()
            .and_then(|c| c["description"].as_str().map(str::to_string))
        {
            annotations.insert(
                "org.opencontainers.image.description".to_string(),
                description,
            );
        }
        let layer = LayerFile {
            path: archive.clone(),
            media_type: HELM_CHART_LAYER_MEDIA_TYPE.to_string(),
            annotations: BTreeMap::new(),
        };
        push_artifact(
            &target,
            Some(&tag),
            (HELM_CONFIG_MEDIA_TYPE, config),
            &[layer],
            None,
            annotations,
            &job.reporter,
        )
        .await?;
        Ok::<_, Error>(())
    };
    tokio::select! {
        result = work => result.map_err(|e| crate::oci::pipeline::name_artifact(e, &artifact)),
        () = job.cancel.cancelled() => Err(Error::cancelled().with_artifact(artifact.clone())),
    }
}

/// Copies a chart from one registry to another, digest-exactly, after checking it is a chart.
async fn copy_oci_chart(job: &Job, source: &OciRepo, tag: &str, target: &OciRepo) -> Result<()> {
    let root = source.fetch_root(Some(tag), None).await?;
    let manifest: serde_json::Value = serde_json::from_slice(&root.bytes).unwrap_or_default();
    if manifest["config"]["mediaType"] != HELM_CONFIG_MEDIA_TYPE {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "{}:{tag} is not a Helm chart (config media type {})",
                source.label(),
                manifest["config"]["mediaType"]
            ),
        ));
    }
    Copier::new(CopyOptions::default(), job.reporter.clone())
        .copy_root(source, root, target, Some(tag))
        .await?;
    Ok(())
}

/// The `Authorization` header for a Helm repository, if the credentials give one.
fn repository_auth(credentials: &Credentials) -> Option<String> {
    if let Some((user, pass)) = credentials.basic() {
        return Some(crate::oci::auth::basic_header(
            user,
            &crate::secrets::SecretString::new(pass),
        ));
    }
    credentials
        .token
        .as_ref()
        .map(|t| format!("Bearer {}", t.expose()))
}

/// GETs `url` (with `auth` when given), retrying transient failures; the response is a success.
async fn get(
    job: &Job,
    http: &reqwest::Client,
    url: &Url,
    auth: Option<&str>,
    what: &str,
) -> Result<reqwest::Response> {
    crate::retry::retry(&job.settings.retry, &job.cancel, what, |_| async {
        let mut request = http.get(url.clone());
        if let Some(auth) = auth {
            request = request.header(AUTHORIZATION, auth);
        }
        let response = request
            .send()
            .await
            .map_err(|e| transport_error(&e, url.as_str(), what))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let error = Error::from_http_status(status.as_u16(), url.as_str(), retry_after(&response));
        Err(if status == StatusCode::NOT_FOUND {
            Error::new(ErrorKind::NotFound, format!("{what}: {}", error.reason()))
                .with_endpoint(url.as_str())
        } else {
            error
        })
    })
    .await
}

/// Finds `name`@`version` in the repository's `index.yaml` and downloads its archive to
/// `archive`, checking the index's digest when it gives one.
async fn fetch_from_repository(
    job: &Job,
    remote_url: &str,
    credentials: &Credentials,
    name: &str,
    version: &str,
    archive: &Path,
) -> Result<()> {
    let base = Url::parse(&format!("{}/", remote_url.trim_end_matches('/'))).map_err(|e| {
        Error::invalid_parameter(format!("Helm repository URL `{remote_url}`: {e}"))
    })?;
    let http = build_http_client(credentials.ca_cert_pem.as_deref())?;
    let auth = repository_auth(credentials);
    let index_url = base.join("index.yaml").expect("a relative path joins");
    let response = get(job, &http, &index_url, auth.as_deref(), "index.yaml").await?;
    if response
        .content_length()
        .is_some_and(|l| l > INDEX_LIMIT_BYTES as u64)
    {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!("index.yaml is larger than {INDEX_LIMIT_BYTES} bytes"),
        )
        .with_endpoint(index_url.as_str()));
    }
    let text = response
        .text()
        .await
        .map_err(|e| transport_error(&e, index_url.as_str(), "index.yaml"))?;
    let index: RepoIndex = serde_saphyr::from_str(&text).map_err(|e| {
        Error::new(
            ErrorKind::Unsupported,
            format!("index.yaml is not a Helm repository index: {e}"),
        )
        .with_endpoint(index_url.as_str())
    })?;
    let versions = index.entries.get(name).ok_or_else(|| {
        Error::new(
            ErrorKind::NotFound,
            format!("the repository has no chart `{name}`"),
        )
        .with_endpoint(index_url.as_str())
    })?;
    let entry = versions
        .iter()
        .find(|e| {
            e.version == version
                || e.version.trim_start_matches('v') == version.trim_start_matches('v')
        })
        .ok_or_else(|| {
            let known: Vec<&str> = versions
                .iter()
                .take(10)
                .map(|e| e.version.as_str())
                .collect();
            Error::new(
                ErrorKind::NotFound,
                format!(
                    "chart `{name}` has no version {version} (versions: {})",
                    known.join(", ")
                ),
            )
            .with_endpoint(index_url.as_str())
        })?;
    let first = entry.urls.first().ok_or_else(|| {
        Error::new(
            ErrorKind::Unsupported,
            format!("index.yaml lists no URL for {name} {version}"),
        )
        .with_endpoint(index_url.as_str())
    })?;
    let chart_url = base.join(first).map_err(|e| {
        Error::new(
            ErrorKind::Unsupported,
            format!("bad chart URL {first:?}: {e}"),
        )
        .with_endpoint(index_url.as_str())
    })?;
    // Credentials only go to the repository's own host.
    let same_host = chart_url.host_str() == base.host_str()
        && chart_url.port_or_known_default() == base.port_or_known_default();
    let response = get(
        job,
        &http,
        &chart_url,
        auth.as_deref().filter(|_| same_host),
        "chart archive",
    )
    .await?;
    let mut file = tokio::fs::File::create(archive)
        .await
        .map_err(|e| Error::io("cannot create", archive, e))?;
    let mut hasher = Sha256::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk: Bytes =
            chunk.map_err(|e| transport_error(&e, chart_url.as_str(), "chart archive"))?;
        hasher.update(&chunk);
        job.reporter.add_bytes(chunk.len() as u64);
        file.write_all(&chunk)
            .await
            .map_err(|e| Error::io("cannot write", archive, e))?;
    }
    file.sync_all()
        .await
        .map_err(|e| Error::io("cannot sync", archive, e))?;
    let actual = hex::encode(hasher.finalize());
    if let Some(expected) = entry
        .digest
        .as_deref()
        .map(|d| d.trim_start_matches("sha256:").to_ascii_lowercase())
        .filter(|d| !d.is_empty())
        && expected != actual
    {
        return Err(Error::new(
            ErrorKind::DigestMismatch,
            format!("the archive hashes to sha256:{actual}, index.yaml says sha256:{expected}"),
        )
        .with_endpoint(chart_url.as_str()));
    }
    Ok(())
}

/// Reads `Chart.yaml` from the archive, checks name and version, and returns the chart
/// metadata as the JSON Helm uses for the OCI config.
pub fn chart_config(archive: &Path, name: &str, version: &str) -> Result<Bytes> {
    let bad = |reason: String| {
        Error::new(
            ErrorKind::Unsupported,
            format!("{}: {reason}", archive.display()),
        )
    };
    let file = std::fs::File::open(archive).map_err(|e| Error::io("cannot open", archive, e))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut chart_yaml = None;
    for entry in tar
        .entries()
        .map_err(|e| bad(format!("not a gzipped tar archive: {e}")))?
    {
        let entry = entry.map_err(|e| bad(format!("not a gzipped tar archive: {e}")))?;
        let path: PathBuf = entry.path().map_err(|e| bad(e.to_string()))?.into_owned();
        let parts: Vec<_> = path.components().collect();
        if parts.len() == 2 && parts[1].as_os_str() == "Chart.yaml" {
            let mut text = String::new();
            entry
                .take(CHART_YAML_LIMIT_BYTES)
                .read_to_string(&mut text)
                .map_err(|e| bad(format!("Chart.yaml: {e}")))?;
            chart_yaml = Some(text);
            break;
        }
    }
    let text = chart_yaml
        .ok_or_else(|| bad("no <chart>/Chart.yaml inside: not a Helm chart archive".into()))?;
    let mut meta: serde_json::Value =
        serde_saphyr::from_str(&text).map_err(|e| bad(format!("Chart.yaml: {e}")))?;
    let object = meta
        .as_object_mut()
        .ok_or_else(|| bad("Chart.yaml is not a mapping".into()))?;
    // YAML reads `version: 1.10` as a number; Helm's metadata fields are strings, read as
    // written.
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct StringFields {
        name: Option<String>,
        version: Option<String>,
        app_version: Option<String>,
        api_version: Option<String>,
        kube_version: Option<String>,
    }
    let strings: StringFields =
        serde_saphyr::from_str(&text).map_err(|e| bad(format!("Chart.yaml: {e}")))?;
    for (key, value) in [
        ("name", strings.name),
        ("version", strings.version),
        ("appVersion", strings.app_version),
        ("apiVersion", strings.api_version),
        ("kubeVersion", strings.kube_version),
    ] {
        if let Some(value) = value {
            object.insert(key.to_string(), serde_json::Value::String(value));
        }
    }
    let found_name = object
        .get("name")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let found_version = object
        .get("version")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    if found_name != name
        || found_version.trim_start_matches('v') != version.trim_start_matches('v')
    {
        return Err(bad(format!(
            "the archive holds chart {found_name} {found_version}, not {name} {version}"
        )));
    }
    serde_json::to_vec(&meta)
        .map(Bytes::from)
        .map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(dir: &Path, chart_yaml: &str) -> PathBuf {
        let path = dir.join("chart.tgz");
        let file = std::fs::File::create(&path).unwrap();
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            file,
            flate2::Compression::default(),
        ));
        for (name, body) in [
            ("mychart/Chart.yaml", chart_yaml),
            ("mychart/values.yaml", "a: 1\n"),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_size(body.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append_data(&mut header, name, body.as_bytes())
                .unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap();
        path
    }

    #[test]
    fn chart_metadata_keeps_versions_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = archive(
            dir.path(),
            "apiVersion: v2\nname: mychart\nversion: 1.10\nappVersion: 2.0\ndescription: demo\nkeywords: [a, b]\n",
        );
        let config: serde_json::Value =
            serde_json::from_slice(&chart_config(&path, "mychart", "1.10").unwrap()).unwrap();
        assert_eq!(config["version"], "1.10");
        assert_eq!(config["appVersion"], "2.0");
        assert_eq!(config["keywords"][1], "b");
        let error = chart_config(&path, "mychart", "1.1").unwrap_err();
        assert!(
            error.to_string().contains("holds chart mychart 1.10"),
            "{error}"
        );
        assert_eq!(chart_tag("1.0.0+build.5"), "1.0.0_build.5");
    }

    #[test]
    fn not_a_chart_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.tgz"), b"not gzip").unwrap();
        assert_eq!(
            chart_config(&dir.path().join("x.tgz"), "a", "1")
                .unwrap_err()
                .kind(),
            ErrorKind::Unsupported
        );
    }
}
