//! `arcd worker <template> --param name=value ...`: moves one artifact with a built-in pipeline
//! (`arc-oci`, `arc-helm`, `arc-file`). The local executor runs it as a child process; in
//! cluster mode the shipped workflow templates run it in a pod.
//!
//! Output contract: progress as JSON lines on stdout (see `bundles::progress`; the last line is
//! always the `summary`), a human log on stderr whose LAST line, on failure, is the reason
//! (`arcd worker: <kind>: <artifact> at <endpoint>: <reason>`). Exit status: 0 on success,
//! 2 for invalid parameters or an unknown template, 75 when a transient failure outlived its
//! retries, 130 when cancelled (SIGTERM/SIGINT), 1 for every other failure.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bundles::scan::{
    DEFAULT_SCAN_TIMEOUT_SECS, SCANNER_COMMAND_ENV, SCANNER_TIMEOUT_ENV, ScanCommand,
};
use bundles::{Error, Job, Params, Reporter, Secrets, Settings, Template};
use tokio_util::sync::CancellationToken;

/// Arguments of `arcd worker`.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// The workflow template: arc-oci, arc-helm or arc-file.
    pub template: String,
    /// A workflow parameter as `name=value` (repeatable), e.g. `--param specPath=a.bin`.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Directory holding the source's credential files.
    #[arg(long, value_name = "DIR", default_value = bundles::secrets::DEFAULT_SRC_DIR)]
    pub secrets_src: PathBuf,
    /// Directory holding the destination's credential files.
    #[arg(long, value_name = "DIR", default_value = bundles::secrets::DEFAULT_DST_DIR)]
    pub secrets_dst: PathBuf,
    /// Scanner command line run over every staged artifact; `{path}` is replaced by its path.
    #[arg(long, value_name = "COMMAND", env = SCANNER_COMMAND_ENV)]
    pub scanner: Option<String>,
    /// Bound on one scan, in seconds.
    #[arg(long, value_name = "SECS", env = SCANNER_TIMEOUT_ENV, default_value_t = DEFAULT_SCAN_TIMEOUT_SECS)]
    pub scanner_timeout_secs: u64,
    /// Where artifacts are staged on disk when needed (default: the system temp directory).
    #[arg(long, value_name = "DIR", env = "ARC_STAGING_DIR")]
    pub staging_dir: Option<PathBuf>,
}

/// Runs the worker and maps the outcome to the exit status.
pub fn run(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    init_logging();
    let reporter = Reporter::stdout();
    let job = match prepare(args, reporter.clone()) {
        Ok(job) => job,
        Err(error) => {
            reporter.finish(Some(&error));
            return Ok(fail(&error));
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(async {
        let cancel = job.cancel.clone();
        let signals = tokio::spawn(async move {
            shutdown_signal().await;
            tracing::warn!("signal received: stopping, nothing partial is published");
            cancel.cancel();
        });
        let outcome = bundles::run(&job).await;
        signals.abort();
        outcome
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
    match outcome {
        Ok(summary) => {
            tracing::info!(
                "done: {} bytes in {} blob(s), {} skipped, {} published, {} ms",
                summary.bytes,
                summary.blobs,
                summary.skipped,
                summary.pushed.len(),
                summary.duration_ms
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => Ok(fail(&error)),
    }
}

/// Parses what the command line gives into a job.
fn prepare(args: WorkerArgs, reporter: Reporter) -> Result<Job, Error> {
    let template: Template = args.template.parse()?;
    let params = Params::from_args(&args.params)?;
    let secrets = Secrets::load(&args.secrets_src, &args.secrets_dst)?;
    let scanner = args
        .scanner
        .filter(|line| !line.trim().is_empty())
        .map(|line| ScanCommand::parse(&line, Duration::from_secs(args.scanner_timeout_secs)))
        .transpose()?;
    let settings = Settings {
        scanner,
        staging_dir: args.staging_dir,
        ..Settings::default()
    };
    Ok(Job {
        template,
        params,
        secrets,
        settings,
        reporter,
        cancel: CancellationToken::new(),
    })
}

/// Prints the reason as the last stderr line and picks the exit status.
fn fail(error: &Error) -> ExitCode {
    eprintln!("arcd worker: {error}");
    ExitCode::from(error.exit_code())
}

/// Text log on stderr (never journald: the executor or the pod captures stderr). `RUST_LOG`
/// overrides the level.
fn init_logging() {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .with_env_filter(filter)
        .try_init();
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
