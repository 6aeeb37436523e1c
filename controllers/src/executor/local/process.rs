//! One worker run: `<worker> worker <template> --param name=value … --secrets-src DIR
//! --secrets-dst DIR` as a child process. Its stdout is read as progress JSON lines, its stderr
//! is logged and its tail kept for the failure message. A cancel or timeout kills it; the
//! secret directory is removed however the run ends.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apiserver::types::{ArtifactWorkflowParameter, WorkflowPhase};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::progress::Progress;
use super::secrets::{SecretData, SecretDir};

/// What to run.
#[derive(Debug, Clone)]
pub struct WorkerRun {
    /// The worker program.
    pub exe: PathBuf,
    /// The template (`spec.workflowTemplateRef.name`).
    pub template: String,
    /// The parameters.
    pub parameters: Vec<ArtifactWorkflowParameter>,
    /// Source credentials.
    pub src_secret: Option<SecretData>,
    /// Destination credentials.
    pub dst_secret: Option<SecretData>,
    /// Where the secret directory goes.
    pub runtime_dir: PathBuf,
    /// Kill the worker after this long.
    pub timeout: Option<Duration>,
    /// Bytes of stderr kept.
    pub log_tail_bytes: usize,
    /// `namespace/name` of the workflow, for logs and the worker's environment.
    pub workflow: String,
    /// Extra environment (the scanner settings).
    pub env: Vec<(String, String)>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Succeeded, Failed or Error.
    pub phase: WorkflowPhase,
    /// Empty on success; otherwise what went wrong and the tail of the worker's log.
    pub message: String,
}

/// The stderr lines kept, at most `limit` bytes, oldest dropped first.
#[derive(Debug, Default)]
pub struct LogTail {
    lines: VecDeque<String>,
    bytes: usize,
    limit: usize,
}

impl LogTail {
    /// A tail of at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            lines: VecDeque::new(),
            bytes: 0,
            limit,
        }
    }

    /// Adds a line.
    pub fn push(&mut self, line: &str) {
        let mut line = line.to_string();
        let room = self.limit.saturating_sub(1);
        if line.len() > room {
            let mut start = line.len() - room;
            while !line.is_char_boundary(start) {
                start += 1;
            }
            line = line[start..].to_string();
        }
        self.bytes += line.len() + 1;
        self.lines.push_back(line);
        while self.bytes > self.limit {
            match self.lines.pop_front() {
                Some(old) => self.bytes -= old.len() + 1,
                None => break,
            }
        }
    }

    /// The kept lines, joined.
    pub fn text(&self) -> String {
        self.lines
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn message(headline: &str, tail: &str) -> String {
    if tail.is_empty() {
        headline.to_string()
    } else {
        format!("{headline}\n{tail}")
    }
}

async fn pump_stdout(
    out: impl AsyncRead + Unpin,
    progress: Arc<Mutex<Progress>>,
    workflow: String,
) {
    let mut lines = BufReader::new(out).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let parsed = progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .observe(&line);
        if !parsed {
            tracing::debug!(target: "arc::worker", workflow = %workflow, "stdout: {line}");
        }
    }
}

async fn pump_stderr(err: impl AsyncRead + Unpin, tail: Arc<Mutex<LogTail>>, workflow: String) {
    let mut lines = BufReader::new(err).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::info!(target: "arc::worker", workflow = %workflow, "{line}");
        tail.lock().unwrap_or_else(|p| p.into_inner()).push(&line);
    }
}

fn describe_exit(status: ExitStatus) -> (WorkflowPhase, String) {
    use std::os::unix::process::ExitStatusExt;
    if status.success() {
        return (WorkflowPhase::Succeeded, String::new());
    }
    match (status.code(), status.signal()) {
        (Some(code), _) => (
            WorkflowPhase::Failed,
            format!("worker exited with status {code}"),
        ),
        (None, Some(signal)) => (
            WorkflowPhase::Error,
            format!("worker was killed by signal {signal}"),
        ),
        (None, None) => (
            WorkflowPhase::Error,
            "worker ended without an exit status".to_string(),
        ),
    }
}

/// Builds the worker's command line (without the program).
pub fn worker_args(
    template: &str,
    parameters: &[ArtifactWorkflowParameter],
    src: &Path,
    dst: &Path,
) -> Vec<String> {
    let mut args = vec!["worker".to_string(), template.to_string()];
    for p in parameters {
        args.push("--param".into());
        args.push(format!("{}={}", p.name, p.value));
    }
    args.push("--secrets-src".into());
    args.push(src.display().to_string());
    args.push("--secrets-dst".into());
    args.push(dst.display().to_string());
    args
}

/// Runs the worker to its end. `None` when `cancel` fired first (the worker was killed and
/// nothing is to be reported).
pub async fn run_worker(
    run: WorkerRun,
    progress: Arc<Mutex<Progress>>,
    cancel: CancellationToken,
) -> Option<Outcome> {
    let secrets = match SecretDir::create(
        &run.runtime_dir,
        run.src_secret.as_ref(),
        run.dst_secret.as_ref(),
    ) {
        Ok(dir) => dir,
        Err(e) => {
            return Some(Outcome {
                phase: WorkflowPhase::Error,
                message: format!(
                    "cannot write the credentials directory in {}: {e}",
                    run.runtime_dir.display()
                ),
            });
        }
    };
    let mut command = Command::new(&run.exe);
    command
        .args(worker_args(
            &run.template,
            &run.parameters,
            &secrets.src(),
            &secrets.dst(),
        ))
        .envs(run.env.iter().map(|(k, v)| (k, v)))
        .env("ARC_ARTIFACTWORKFLOW", &run.workflow)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            return Some(Outcome {
                phase: WorkflowPhase::Error,
                message: format!("cannot start worker {}: {e}", run.exe.display()),
            });
        }
    };
    let tail = Arc::new(Mutex::new(LogTail::new(run.log_tail_bytes)));
    let mut pumps = Vec::new();
    if let Some(out) = child.stdout.take() {
        pumps.push(tokio::spawn(pump_stdout(
            out,
            progress.clone(),
            run.workflow.clone(),
        )));
    }
    if let Some(err) = child.stderr.take() {
        pumps.push(tokio::spawn(pump_stderr(
            err,
            tail.clone(),
            run.workflow.clone(),
        )));
    }
    let deadline = async {
        match run.timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    let waited = tokio::select! {
        status = child.wait() => Ok(status),
        () = cancel.cancelled() => Err(None),
        () = deadline => Err(Some(run.timeout.unwrap_or_default())),
    };
    let status = match waited {
        Ok(status) => status,
        Err(timeout) => {
            let _ = child.kill().await;
            for pump in pumps {
                let _ = pump.await;
            }
            drop(secrets);
            let timeout = timeout?;
            let tail = tail.lock().unwrap_or_else(|p| p.into_inner()).text();
            return Some(Outcome {
                phase: WorkflowPhase::Failed,
                message: message(
                    &format!(
                        "worker timed out after {}s and was killed",
                        timeout.as_secs()
                    ),
                    &tail,
                ),
            });
        }
    };
    for pump in pumps {
        let _ = pump.await;
    }
    drop(secrets);
    let tail = tail.lock().unwrap_or_else(|p| p.into_inner()).text();
    let outcome = match status {
        Err(e) => Outcome {
            phase: WorkflowPhase::Error,
            message: message(&format!("cannot wait for worker: {e}"), &tail),
        },
        Ok(status) => {
            let (phase, headline) = describe_exit(status);
            if phase == WorkflowPhase::Succeeded {
                Outcome {
                    phase,
                    message: String::new(),
                }
            } else {
                let reported = progress
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .error_message
                    .clone();
                let headline = match reported {
                    Some(why) => format!("{headline}: {why}"),
                    None => headline,
                };
                Outcome {
                    phase,
                    message: message(&headline, &tail),
                }
            }
        }
    };
    Some(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_tail_keeps_the_last_bytes_on_line_boundaries() {
        let mut t = LogTail::new(10);
        for line in ["one", "two", "three"] {
            t.push(line);
        }
        assert_eq!(t.text(), "two\nthree");
        t.push("a very long line indeed");
        assert_eq!(t.text(), "line indeed".chars().skip(2).collect::<String>());
        let mut t = LogTail::new(4);
        t.push("ééé");
        assert!(t.text().len() <= 4 && t.text().chars().all(|c| c == 'é'));
    }

    #[test]
    fn arguments_follow_the_worker_contract() {
        let params = vec![
            ArtifactWorkflowParameter {
                name: "specImage".into(),
                value: "a=b".into(),
            },
            ArtifactWorkflowParameter {
                name: "srcType".into(),
                value: "oci".into(),
            },
        ];
        let args = worker_args("arc-oci", &params, Path::new("/s/src"), Path::new("/s/dst"));
        assert_eq!(
            args,
            vec![
                "worker",
                "arc-oci",
                "--param",
                "specImage=a=b",
                "--param",
                "srcType=oci",
                "--secrets-src",
                "/s/src",
                "--secrets-dst",
                "/s/dst"
            ]
        );
    }
}
