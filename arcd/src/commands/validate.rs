//! `arcd validate [--config FILE] [PATH…]`: checks the configuration file and resource files
//! offline, exactly as `arcd run` would read them, and prints every problem as
//! `file:line:col: message`. Exit status 1 if there is any.
//!
//! PATHs are files (checked whatever their name) or directories (walked like the syncer does);
//! without PATHs, the configured resource directories are checked. Checks: YAML syntax, kinds and
//! apiVersions, the API's schema and semantic rules, the same object in several files, and
//! Secret files readable by group or others.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::{self, Settings};
use crate::diagnostic::Diagnostic;
use crate::syncer::files::FileTable;

/// Arguments of `arcd validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// The configuration file to check (default /etc/arc/arcd.yaml, if it exists).
    #[arg(long, value_name = "FILE", env = "ARCD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Resource files or directories to check (default: the configured resource directories).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// Every problem found, and what was checked.
#[derive(Debug, Default)]
pub struct Validation {
    /// The problems, sorted by file and position.
    pub problems: Vec<Diagnostic>,
    /// Resource files checked.
    pub files: usize,
    /// Objects found in valid files.
    pub objects: usize,
}

/// Runs the checks (without printing).
pub fn validate(args: &ValidateArgs) -> Validation {
    let mut validation = Validation::default();
    let config_path = args
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_CONFIG_PATH));
    let settings = match std::fs::read_to_string(&config_path) {
        Ok(text) => {
            let (settings, errors) = config::parse_settings_partially(&text, &config_path);
            validation.problems.extend(errors);
            settings.unwrap_or_default()
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && args.config.is_none() => {
            Settings::default()
        }
        Err(error) => {
            validation.problems.push(Diagnostic::whole_file(
                config_path.clone(),
                format!("cannot read: {error}"),
            ));
            Settings::default()
        }
    };
    let namespace = settings.resources.default_namespace.to_string();
    let mut table = FileTable::default();
    let (dirs, files): (Vec<PathBuf>, Vec<PathBuf>) = if args.paths.is_empty() {
        (settings.resources.directories.clone(), Vec::new())
    } else {
        let absolute = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
        args.paths.iter().map(absolute).partition(|p| p.is_dir())
    };
    table.full_refresh(&dirs, &namespace);
    for file in &files {
        if !file.exists() {
            validation.problems.push(Diagnostic::whole_file(
                file.clone(),
                "no such file or directory",
            ));
            continue;
        }
        table.refresh_file(file, &namespace, true);
    }
    for (dir, reason) in table.unreadable_dirs() {
        validation
            .problems
            .push(Diagnostic::whole_file(dir.clone(), reason.clone()));
    }
    let plan = table.plan();
    for entry in table.files().values() {
        validation.problems.extend(entry.problems.iter().cloned());
        if entry.is_valid() {
            validation.objects += entry.objects.len();
        }
    }
    for problems in plan.problems.values() {
        validation.problems.extend(problems.iter().cloned());
    }
    validation.files = table.files().len();
    validation.problems.sort();
    validation.problems.dedup();
    validation
}

/// Runs `arcd validate`.
pub fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let validation = validate(&args);
    for problem in &validation.problems {
        println!("{problem}");
    }
    if validation.problems.is_empty() {
        eprintln!(
            "ok: {} resource files, {} objects",
            validation.files, validation.objects
        );
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "{} problem(s) in {} resource file(s) checked",
            validation.problems.len(),
            validation.files
        );
        Ok(ExitCode::FAILURE)
    }
}
