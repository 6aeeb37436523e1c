//! The scanner hook: an operator-configured command (e.g. `trivy`, `clamscan`) run over an
//! artifact staged on disk before it is published. Exit status 0 passes the artifact; any other
//! exit fails it with [`ErrorKind::ScanFailed`] and the tail of the scanner's output.
//!
//! Configuration: the environment variable [`SCANNER_COMMAND_ENV`] (`ARC_SCANNER_COMMAND`) of
//! the worker — the daemon passes its configured scanner through, and cluster-mode workflow
//! templates set it on the container. It is never a workflow parameter: a command line is the
//! operator's decision, not an Order author's. The value is a command line split like a shell
//! would (whitespace; single and double quotes; backslash escapes) but run without a shell;
//! every `{path}` in it is replaced by the staged file or directory, and if there is none the
//! path is appended as the last argument. Examples:
//!
//! ```text
//! ARC_SCANNER_COMMAND='clamscan --no-summary --infected {path}'
//! ARC_SCANNER_COMMAND='trivy fs --exit-code 1 --severity CRITICAL {path}'
//! ```
//!
//! `ARC_SCANNER_TIMEOUT_SECS` bounds one scan (default [`DEFAULT_SCAN_TIMEOUT_SECS`]).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt as _;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, ErrorKind, Result};

/// The environment variable holding the scanner command line.
pub const SCANNER_COMMAND_ENV: &str = "ARC_SCANNER_COMMAND";
/// The environment variable bounding one scan, in seconds.
pub const SCANNER_TIMEOUT_ENV: &str = "ARC_SCANNER_TIMEOUT_SECS";
/// Default bound on one scan.
pub const DEFAULT_SCAN_TIMEOUT_SECS: u64 = 1800;
/// How much of the scanner's output ends up in the error message.
const OUTPUT_TAIL_LIMIT_BYTES: usize = 2048;
/// The placeholder for the staged artifact's path.
pub const PATH_PLACEHOLDER: &str = "{path}";

/// A parsed scanner command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanCommand {
    /// Program and arguments, `{path}` not yet substituted.
    pub argv: Vec<String>,
    /// Bound on one scan.
    pub timeout: Duration,
}

impl ScanCommand {
    /// Parses a command line (see the module docs).
    pub fn parse(command_line: &str, timeout: Duration) -> Result<Self> {
        let argv = split_command_line(command_line).map_err(|reason| {
            Error::invalid_parameter(format!("scanner command `{command_line}`: {reason}"))
        })?;
        if argv.is_empty() {
            return Err(Error::invalid_parameter("scanner command is empty"));
        }
        Ok(Self { argv, timeout })
    }

    /// The scanner configured in the environment ([`SCANNER_COMMAND_ENV`],
    /// [`SCANNER_TIMEOUT_ENV`]), if any; an empty value means none.
    pub fn from_env() -> Result<Option<Self>> {
        let Some(line) = std::env::var(SCANNER_COMMAND_ENV)
            .ok()
            .filter(|v| !v.trim().is_empty())
        else {
            return Ok(None);
        };
        let timeout = match std::env::var(SCANNER_TIMEOUT_ENV)
            .ok()
            .filter(|v| !v.is_empty())
        {
            None => Duration::from_secs(DEFAULT_SCAN_TIMEOUT_SECS),
            Some(v) => Duration::from_secs(v.parse().map_err(|_| {
                Error::invalid_parameter(format!(
                    "{SCANNER_TIMEOUT_ENV} must be a number of seconds, not `{v}`"
                ))
            })?),
        };
        Self::parse(&line, timeout).map(Some)
    }

    /// The argv for scanning `path`.
    pub fn argv_for(&self, path: &Path) -> Vec<String> {
        let path = path.display().to_string();
        let mut substituted = false;
        let mut argv: Vec<String> = self
            .argv
            .iter()
            .map(|arg| {
                if arg.contains(PATH_PLACEHOLDER) {
                    substituted = true;
                    arg.replace(PATH_PLACEHOLDER, &path)
                } else {
                    arg.clone()
                }
            })
            .collect();
        if !substituted {
            argv.push(path);
        }
        argv
    }

    /// Scans `path` (the staged `artifact`). Non-zero exit, a timeout, or a scanner that cannot
    /// start fails with [`ErrorKind::ScanFailed`]; the message ends with the output's tail.
    pub async fn scan(
        &self,
        path: &Path,
        artifact: &str,
        cancel: &CancellationToken,
    ) -> Result<()> {
        let argv = self.argv_for(path);
        let program = &argv[0];
        tracing::info!("scanning {artifact} with {program}");
        let fail =
            |reason: String| Error::new(ErrorKind::ScanFailed, reason).with_artifact(artifact);
        let mut child = tokio::process::Command::new(program)
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| fail(format!("cannot start scanner `{program}`: {e}")))?;
        let mut stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let collect = async {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let (a, b) = tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
            a.and(b).map(|_| {
                out.extend_from_slice(&err);
                out
            })
        };
        let run = async {
            let (output, status) = tokio::join!(collect, child.wait());
            (output, status)
        };
        let (output, status) = tokio::select! {
            r = tokio::time::timeout(self.timeout, run) => match r {
                Ok(r) => r,
                Err(_) => return Err(fail(format!("scanner `{program}` did not finish within {}s", self.timeout.as_secs()))),
            },
            () = cancel.cancelled() => return Err(Error::cancelled().with_artifact(artifact)),
        };
        let output = output.unwrap_or_default();
        let status = status.map_err(|e| fail(format!("waiting for scanner `{program}`: {e}")))?;
        if status.success() {
            tracing::info!("scanner {program} passed {artifact}");
            return Ok(());
        }
        let tail = output_tail(&output);
        Err(fail(format!(
            "scanner `{program}` rejected it ({status}){}{tail}",
            if tail.is_empty() { "" } else { ": " }
        )))
    }
}

/// The last [`OUTPUT_TAIL_LIMIT_BYTES`] of `output`, on one line (newlines become ` | `).
fn output_tail(output: &[u8]) -> String {
    let text = String::from_utf8_lossy(output);
    let trimmed = text.trim();
    let start = trimmed.len().saturating_sub(OUTPUT_TAIL_LIMIT_BYTES);
    let start = (start..=trimmed.len())
        .find(|i| trimmed.is_char_boundary(*i))
        .unwrap_or(trimmed.len());
    let tail: Vec<&str> = trimmed[start..]
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let joined = tail.join(" | ");
    if start > 0 {
        format!("…{joined}")
    } else {
        joined
    }
}

/// Splits a command line like a POSIX shell would, without expansions.
fn split_command_line(line: &str) -> std::result::Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err("trailing backslash".into()),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_a_shell() {
        assert_eq!(
            split_command_line(r#"trivy fs --x 'a b' "c \"d\"" e\ f {path}"#).unwrap(),
            ["trivy", "fs", "--x", "a b", "c \"d\"", "e f", "{path}"]
        );
        assert!(split_command_line("a 'b").is_err());
    }

    #[test]
    fn substitutes_or_appends_path() {
        let t = Duration::from_secs(1);
        let c = ScanCommand::parse("scan --file={path}", t).unwrap();
        assert_eq!(c.argv_for(Path::new("/s/x")), ["scan", "--file=/s/x"]);
        let c = ScanCommand::parse("clamscan --no-summary", t).unwrap();
        assert_eq!(
            c.argv_for(Path::new("/s/x")),
            ["clamscan", "--no-summary", "/s/x"]
        );
        assert!(ScanCommand::parse("  ", t).is_err());
    }

    #[tokio::test]
    async fn exit_status_decides_and_output_tail_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.bin");
        std::fs::write(&file, b"x").unwrap();
        let cancel = CancellationToken::new();
        let t = Duration::from_secs(30);
        ScanCommand::parse("test -f {path}", t)
            .unwrap()
            .scan(&file, "file a", &cancel)
            .await
            .unwrap();
        let e = ScanCommand::parse("sh -c 'echo found EICAR in $0; exit 1' {path}", t)
            .unwrap()
            .scan(&file, "file a", &cancel)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ScanFailed);
        assert!(e.to_string().contains("found EICAR in"), "{e}");
        assert!(e.to_string().contains("file a"), "{e}");
        let e = ScanCommand::parse("/nonexistent/scanner", t)
            .unwrap()
            .scan(&file, "f", &cancel)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("cannot start scanner"), "{e}");
    }

    #[test]
    fn tail_is_bounded() {
        let long = "x".repeat(10_000);
        assert!(output_tail(long.as_bytes()).len() <= OUTPUT_TAIL_LIMIT_BYTES + 4);
    }
}
