//! The `arc-oci` pipeline: pull → verify → (scan) → push one image.
//!
//! Parameters (strings, as every workflow gets them):
//! - `srcType`, `srcRemoteURL`, `dstType`, `dstRemoteURL`: `oci` (a registry; `http://` means
//!   plain HTTP, anything else TLS) or `dir` (a directory holding one OCI image layout per
//!   repository path: `<remoteURL>/<repository>`);
//! - `specImage`: `repo:tag`, `repo@sha256:…` or `repo:tag@sha256:…`, relative to the source
//!   endpoint's path;
//! - `specOverride`: the destination repository (`repo` or `repo:tag`), default the source's;
//! - `specPlatforms`: optional comma-separated platforms (`linux/amd64,linux/arm64`): the index
//!   is cut down to them, which changes its digest (reported as `digest_changed`);
//! - `specReferrers`: `true` to copy signatures, SBOMs and attestations along;
//! - `cosignPublicKey` (PEM) or `cosignPublicKeyFile` (a path), and `cosignPolicy` (`off`,
//!   `verify-if-signed`, `require-signed`; default `require-signed` when a key is given).
//!
//! With a scanner configured, the image is first copied into an OCI layout in the staging
//! directory, scanned there, and pushed from there; otherwise it streams straight through.

use super::RegistryClient;
use super::copy::{Copier, CopyOptions};
use super::cosign::{CosignVerifier, SignaturePolicy, Verification};
use super::layout::OciLayout;
use super::manifest::Platform;
use super::reference::{ImageRef, validate_repository};
use super::repo::OciRepo;
use crate::error::{Error, ErrorKind, Result};
use crate::params::{EndpointType, Side, names};
use crate::pipeline::Job;
use crate::progress::Reporter;
use crate::secrets::Credentials;

/// Parameter: platforms to keep (`os/arch[/variant]`, comma-separated).
pub const SPEC_PLATFORMS: &str = "specPlatforms";
/// Parameter: copy referrers (`true`/`false`).
pub const SPEC_REFERRERS: &str = "specReferrers";
/// Parameter: cosign public key, PEM.
pub const COSIGN_PUBLIC_KEY: &str = "cosignPublicKey";
/// Parameter: path of a cosign public key file, PEM.
pub const COSIGN_PUBLIC_KEY_FILE: &str = "cosignPublicKeyFile";
/// Parameter: signature policy.
pub const COSIGN_POLICY: &str = "cosignPolicy";

/// Opens the repository `repository` of an Endpoint of type `kind` (`oci` or `dir`).
pub fn open_repo(
    kind: EndpointType,
    remote_url: &str,
    credentials: &Credentials,
    repository: &str,
    retry: crate::retry::RetryPolicy,
    cancel: tokio_util::sync::CancellationToken,
) -> Result<OciRepo> {
    match kind {
        EndpointType::Oci => {
            let client = RegistryClient::from_remote_url(remote_url, credentials, retry, cancel)?;
            let full = client.endpoint().repository(repository);
            Ok(OciRepo::registry(client, full))
        }
        EndpointType::Dir => {
            validate_repository(repository)
                .map_err(|r| Error::invalid_parameter(format!("repository `{repository}`: {r}")))?;
            let base = remote_url.strip_prefix("file://").unwrap_or(remote_url);
            if base.is_empty() {
                return Err(Error::invalid_parameter(
                    "a dir endpoint needs a remoteURL naming a directory",
                ));
            }
            Ok(OciRepo::Layout(OciLayout::new(
                std::path::Path::new(base).join(repository),
            )))
        }
        other => Err(Error::new(
            ErrorKind::Unsupported,
            format!("endpoint type `{other}` cannot hold OCI images (use oci or dir)"),
        )),
    }
}

/// The signature verifier the parameters ask for, if any.
pub fn verifier_from_params(params: &crate::params::Params) -> Result<Option<CosignVerifier>> {
    let pem = match (
        params.optional(COSIGN_PUBLIC_KEY),
        params.optional(COSIGN_PUBLIC_KEY_FILE),
    ) {
        (Some(pem), _) => Some(pem.to_string()),
        (None, Some(path)) => Some(std::fs::read_to_string(path).map_err(|e| {
            Error::io(
                "cannot read cosign public key",
                std::path::Path::new(path),
                e,
            )
        })?),
        (None, None) => None,
    };
    let policy = params
        .optional(COSIGN_POLICY)
        .map(SignaturePolicy::parse)
        .transpose()?;
    match (pem, policy) {
        (None, None | Some(SignaturePolicy::Off)) => Ok(None),
        (None, Some(_)) => Err(Error::invalid_parameter(format!(
            "`{COSIGN_POLICY}` needs `{COSIGN_PUBLIC_KEY}` or `{COSIGN_PUBLIC_KEY_FILE}`"
        ))),
        (Some(pem), policy) => Ok(Some(CosignVerifier::from_pem(
            &pem,
            policy.unwrap_or(SignaturePolicy::RequireSigned),
        )?)),
    }
}

/// Copy options from the parameters (platform subset, referrers).
pub fn copy_options_from_params(params: &crate::params::Params) -> Result<CopyOptions> {
    let platforms = params
        .optional(SPEC_PLATFORMS)
        .map(Platform::parse_list)
        .transpose()?
        .filter(|p| !p.is_empty());
    let referrers = params.bool_or(SPEC_REFERRERS, false)?;
    Ok(CopyOptions {
        platforms,
        referrers,
        ..CopyOptions::default()
    })
}

/// Names `artifact` (what the Order asked for) in `error`; a more precise artifact the error
/// already names (a blob, a child manifest) moves into the reason.
pub fn name_artifact(error: Error, artifact: &str) -> Error {
    match error.artifact() {
        None => error.with_artifact(artifact),
        Some(inner) if inner == artifact => error,
        Some(inner) => {
            let mut named = Error::new(error.kind(), format!("{inner}: {}", error.reason()))
                .with_artifact(artifact)
                .with_transient(error.is_transient())
                .with_retry_after(error.retry_after());
            if let Some(endpoint) = error.endpoint() {
                named = named.with_endpoint(endpoint);
            }
            named.with_source(error)
        }
    }
}

/// Runs the `arc-oci` pipeline.
pub async fn run(job: &Job) -> Result<()> {
    let params = &job.params;
    let src_ep = params.endpoint(Side::Src)?;
    let dst_ep = params.endpoint(Side::Dst)?;
    let image = ImageRef::parse(params.required(names::SPEC_IMAGE)?)?;
    let (dst_repo_name, dst_tag) = match params.optional(names::SPEC_OVERRIDE) {
        None => (image.repository.clone(), image.tag.clone()),
        Some(o) if o.contains(':') && !o.contains('@') => {
            let parsed = ImageRef::parse(o)?;
            (parsed.repository, parsed.tag)
        }
        Some(o) => {
            validate_repository(o.trim_matches('/')).map_err(|r| {
                Error::invalid_parameter(format!("`{}` = `{o}`: {r}", names::SPEC_OVERRIDE))
            })?;
            (o.trim_matches('/').to_string(), image.tag.clone())
        }
    };
    let options = copy_options_from_params(params)?;
    let verifier = verifier_from_params(params)?;
    let retry = job.settings.retry.clone();
    let src = open_repo(
        src_ep.kind,
        &src_ep.remote_url,
        &job.secrets.src,
        &image.repository,
        retry.clone(),
        job.cancel.clone(),
    )?;
    let dst = open_repo(
        dst_ep.kind,
        &dst_ep.remote_url,
        &job.secrets.dst,
        &dst_repo_name,
        retry,
        job.cancel.clone(),
    )?;
    let artifact = format!("image {image}");

    let work = async {
        let root = src
            .fetch_root(image.tag.as_deref(), image.digest.as_ref())
            .await?;
        if let Some(verifier) = &verifier {
            match verifier.verify(&src, &root.descriptor.digest).await? {
                Verification::Signed(sig) => {
                    tracing::info!("{artifact}: cosign signature {sig} verified")
                }
                Verification::Unsigned => {
                    tracing::warn!("{artifact}: unsigned (accepted by policy)")
                }
                Verification::Skipped => {}
            }
        }
        let outcome = match &job.settings.scanner {
            None => {
                Copier::new(options, job.reporter.clone())
                    .copy_root(&src, root, &dst, dst_tag.as_deref())
                    .await?
            }
            Some(scanner) => {
                let staging = tempfile::Builder::new()
                    .prefix("arc-oci-")
                    .tempdir_in(job.settings.staging_dir())
                    .map_err(|e| {
                        Error::io(
                            "cannot create a staging directory in",
                            &job.settings.staging_dir(),
                            e,
                        )
                    })?;
                let staged = OciRepo::Layout(OciLayout::new(staging.path().join("image")));
                let pull_options = CopyOptions {
                    referrers: false,
                    ..options.clone()
                };
                let pulled = Copier::new(pull_options, Reporter::discard())
                    .copy_root(&src, root, &staged, Some("staged"))
                    .await?;
                scanner
                    .scan(&staging.path().join("image"), &artifact, &job.cancel)
                    .await?;
                let staged_root = staged
                    .fetch_root(Some("staged"), pulled.digest.as_ref())
                    .await?;
                let push_options = CopyOptions {
                    platforms: None,
                    referrers: false,
                    ..options.clone()
                };
                let mut outcome = Copier::new(push_options, job.reporter.clone())
                    .copy_root(&staged, staged_root, &dst, dst_tag.as_deref())
                    .await?;
                if options.referrers {
                    let subject = pulled
                        .source_digest
                        .clone()
                        .into_iter()
                        .chain(pulled.digest.clone())
                        .collect::<Vec<_>>();
                    let copier = Copier::new(options.clone(), job.reporter.clone());
                    outcome.referrers =
                        super::referrers::copy_referrers(&copier, &src, &dst, &subject).await?;
                }
                outcome
            }
        };
        tracing::info!(
            "{artifact}: {} blobs copied ({} bytes), {} skipped, {} mounted, {} manifests pushed, {} referrers",
            outcome.blobs_copied,
            outcome.bytes_copied,
            outcome.blobs_skipped,
            outcome.blobs_mounted,
            outcome.manifests_pushed,
            outcome.referrers.len()
        );
        Ok::<_, Error>(())
    };
    tokio::select! {
        result = work => result.map_err(|e| name_artifact(e, &artifact)),
        () = job.cancel.cancelled() => Err(Error::cancelled().with_artifact(artifact.clone())),
    }
}
