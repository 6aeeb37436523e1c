//! The `arc-file` pipeline: one file or object from `http`, `s3` or `dir` to `s3`, `dir` or an
//! OCI registry (as an OCI artifact),
//! verified against its expected SHA-256 (and scanned, when a scanner is configured) before
//! anything is published.
//!
//! Parameters:
//! - `specPath` (required): the file, relative to the source Endpoint's `remoteURL`, or a full
//!   URL under it (see [`source::FileSource::resolve`]);
//! - `specSha256`: the expected SHA-256 (`<64 hex>` or `sha256:<64 hex>`); required for `http`
//!   sources, optional for `s3` and `dir` (then only the announced size is checked, and the
//!   computed digest is reported);
//! - `specOverride`: the destination key or relative path (for an `oci` destination the
//!   `repository[:tag]`, tag default `latest`); default the source's file name.
//!
//! A destination that already holds the key with the expected SHA-256 is left alone (the file
//! is reported as `skipped`), so re-running a workflow is cheap and safe.

pub mod copy;
pub mod dest;
pub mod source;

use crate::error::{Error, Result};
use crate::params::{EndpointType, Side, names};
use crate::pipeline::Job;
use dest::FileDestination;
use source::FileSource;

/// Runs the `arc-file` pipeline.
pub async fn run(job: &Job) -> Result<()> {
    let params = &job.params;
    let src = params.endpoint(Side::Src)?;
    let dst = params.endpoint(Side::Dst)?;
    require_secret(job, Side::Src, src.has_secret)?;
    require_secret(job, Side::Dst, dst.has_secret)?;
    let spec_path = params.required(names::SPEC_PATH)?;
    let expected = params.sha256(names::SPEC_SHA256)?;
    if src.kind == EndpointType::Http && expected.is_none() {
        return Err(Error::invalid_parameter(format!(
            "parameter `{}` is required for http sources: a downloaded file is published only once its checksum matched",
            names::SPEC_SHA256
        )));
    }
    let source = FileSource::resolve(&src, spec_path, &job.secrets.src, &job.settings.retry)
        .map_err(|e| e.or_endpoint(src.remote_url.clone()))?;
    let destination = FileDestination::resolve(&dst, &job.secrets.dst, job)?;
    let key = match params.optional(names::SPEC_OVERRIDE) {
        Some(key) => source::relative_path(names::SPEC_OVERRIDE, key)?,
        None => source.file_name().ok_or_else(|| {
            Error::invalid_parameter(format!(
                "specPath `{spec_path}` has no file name to use as the destination key; set `{}`",
                names::SPEC_OVERRIDE
            ))
        })
        .map(|name| match dst.kind {
            EndpointType::Oci => repository_name(&name),
            _ => name,
        })?,
    };
    tracing::info!(
        "from {} to {} as {key}",
        source.endpoint(),
        destination.endpoint()
    );
    if expected.is_none() {
        tracing::warn!("no specSha256 given: only the size announced by the source is checked");
    }

    if let Some(expected) = &expected {
        let existing = destination
            .existing(&key, expected)
            .await
            .map_err(|e| e.or_endpoint(destination.endpoint()))?;
        if let Some(bytes) = existing {
            dest::report_existing(job, &key, expected, bytes);
            return Ok(());
        }
    }

    destination
        .publish(&source, &key, expected.as_ref(), job)
        .await
        .map_err(|e| e.or_endpoint(destination.endpoint()))?;
    Ok(())
}

/// A side whose `<side>Secret` is `"true"` must have credentials in its directory: an empty one
/// means the Secret was not mounted, which would otherwise surface as a confusing auth error.
fn require_secret(job: &Job, side: Side, has_secret: bool) -> Result<()> {
    let credentials = job.secrets.side(side);
    if has_secret && credentials.is_empty() {
        let dir = credentials
            .dir
            .as_ref()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        return Err(Error::invalid_parameter(format!(
            "{}Secret is \"true\" but the {side} secret directory {dir} holds no credentials",
            side.prefix()
        )));
    }
    Ok(())
}

/// An OCI repository name from a file name: lowercase, characters outside `[a-z0-9._-]` become
/// `-`, separators trimmed from both ends (`Tool_V1.2.tar.gz` → `tool_v1.2.tar.gz`).
pub fn repository_name(file_name: &str) -> String {
    let mapped: String = file_name
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = mapped.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let mut out = String::with_capacity(trimmed.len());
    for c in trimmed.chars() {
        // Runs of separators are not valid repository components; keep the first.
        let prev_sep = out
            .chars()
            .last()
            .is_some_and(|p| matches!(p, '.' | '_' | '-'));
        if prev_sep && matches!(c, '.' | '_' | '-') {
            continue;
        }
        out.push(c);
    }
    if out.is_empty() {
        "file".to_string()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::repository_name;

    #[test]
    fn repository_names_from_file_names() {
        assert_eq!(repository_name("Tool_V1.2.tar.gz"), "tool_v1.2.tar.gz");
        assert_eq!(repository_name("My File (1).iso"), "my-file-1-iso");
        assert_eq!(repository_name("..."), "file");
        assert_eq!(repository_name("a__b"), "a_b");
    }
}
