//! Pipelines selected by workflow template name, and the one entry point [`run`] that
//! `arcd worker` calls: it announces the artifact, dispatches to the template's pipeline, names
//! the artifact in any error, and emits the final summary line.
//!
//! Each pipeline module exposes `pub async fn run(job: &Job) -> Result<()>`; it reports what it
//! moves and publishes through `job.reporter` and stops when `job.cancel` fires.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::params::Params;
use crate::progress::{Reporter, Summary};
use crate::retry::RetryPolicy;
use crate::scan::ScanCommand;
use crate::secrets::Secrets;

/// A built-in workflow template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Template {
    /// `arc-oci`: an OCI image (raw manifests, every blob, optional referrers).
    Oci,
    /// `arc-helm`: a Helm chart pushed as a Helm OCI artifact.
    Helm,
    /// `arc-file`: one file or object with an expected SHA-256.
    File,
}

impl Template {
    /// Every built-in template.
    pub const ALL: [Template; 3] = [Self::Oci, Self::Helm, Self::File];

    /// The template's name, as in `workflowTemplateRef.name`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Oci => "arc-oci",
            Self::Helm => "arc-helm",
            Self::File => "arc-file",
        }
    }

    /// The built-in template names, comma separated (for messages).
    pub fn names() -> String {
        Self::ALL
            .iter()
            .map(|t| t.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Template {
    type Err = Error;

    /// Parses a template name; an unknown one is an invalid-parameter error listing the
    /// built-in templates.
    fn from_str(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.name() == name)
            .ok_or_else(|| {
                Error::invalid_parameter(format!(
                    "unknown workflow template `{name}`; built-in templates: {}",
                    Self::names()
                ))
            })
    }
}

/// Operator settings that are not workflow parameters (they come from the daemon's config or
/// the worker's environment, never from an Order).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The scanner run over every artifact staged on disk, if any.
    pub scanner: Option<ScanCommand>,
    /// Retries for transient failures.
    pub retry: RetryPolicy,
    /// Where artifacts are staged on disk when a pipeline needs to (scanning, sources that
    /// cannot stream straight to the destination); the system temp directory if unset.
    pub staging_dir: Option<PathBuf>,
}

impl Settings {
    /// The staging directory to use.
    pub fn staging_dir(&self) -> PathBuf {
        self.staging_dir.clone().unwrap_or_else(std::env::temp_dir)
    }
}

/// Everything one pipeline run needs.
#[derive(Debug, Clone)]
pub struct Job {
    /// Which pipeline.
    pub template: Template,
    /// The workflow parameters.
    pub params: Params,
    /// Source and destination credentials.
    pub secrets: Secrets,
    /// Operator settings.
    pub settings: Settings,
    /// Where progress goes.
    pub reporter: Reporter,
    /// Fires on shutdown; pipelines stop promptly and publish nothing partial.
    pub cancel: CancellationToken,
}

impl Job {
    /// A description of the artifact for messages.
    pub fn artifact(&self) -> String {
        self.params.artifact_label()
    }
}

/// Runs `job`'s pipeline to the end: a `start` event, the transfer, then the `summary` event
/// (also on failure). Errors name the artifact.
pub async fn run(job: &Job) -> Result<Summary> {
    let artifact = job.artifact();
    job.reporter.start(job.template.name(), &artifact);
    let outcome = if job.cancel.is_cancelled() {
        Err(Error::cancelled())
    } else {
        match job.template {
            Template::Oci => crate::oci::run(job).await,
            Template::Helm => crate::helm::run(job).await,
            Template::File => crate::file::run(job).await,
        }
    };
    match outcome {
        Ok(()) => Ok(job.reporter.finish(None)),
        Err(error) => {
            let error = error.or_artifact(artifact);
            job.reporter.finish(Some(&error));
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn template_names_round_trip() {
        for t in Template::ALL {
            assert_eq!(t.name().parse::<Template>().unwrap(), t);
        }
    }

    #[test]
    fn unknown_template_lists_built_ins() {
        let e = "arc-ftp".parse::<Template>().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidParameter);
        let msg = e.to_string();
        assert!(
            msg.contains("arc-ftp") && msg.contains("arc-oci, arc-helm, arc-file"),
            "{msg}"
        );
    }
}
