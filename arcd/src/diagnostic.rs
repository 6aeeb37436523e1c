//! Positioned error messages about files: `file:line:col: message`, the one shape every
//! check of `arcd` reports in (config validation, `arcd validate`, the file syncer, `arcd status`).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A place in a text file. Lines and columns start at 1; 0 means "unknown".
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Position {
    /// 1-based line, 0 when unknown.
    pub line: u64,
    /// 1-based column, 0 when unknown.
    pub column: u64,
}

impl Position {
    /// A known position.
    pub fn new(line: u64, column: u64) -> Self {
        Self { line, column }
    }

    /// Whether the position points somewhere.
    pub fn is_known(&self) -> bool {
        self.line > 0
    }
}

/// One problem found in one file.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Diagnostic {
    /// The file the problem is in.
    pub file: PathBuf,
    /// Where in the file; unknown for problems of the whole file (e.g. its permissions).
    #[serde(flatten)]
    pub position: Position,
    /// What is wrong, in one line.
    pub message: String,
}

impl Diagnostic {
    /// A problem at `position` in `file`.
    pub fn new(file: impl Into<PathBuf>, position: Position, message: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            position,
            message: message.into(),
        }
    }

    /// A problem of the whole file (no position).
    pub fn whole_file(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::new(file, Position::default(), message)
    }

    /// The file the problem is in.
    pub fn file(&self) -> &Path {
        &self.file
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.position.is_known() {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.position.line,
                self.position.column.max(1),
                self.message
            )
        } else {
            write!(f, "{}: {}", self.file.display(), self.message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_file_line_column_message() {
        let d = Diagnostic::new(
            "/etc/arc/orders/a.yaml",
            Position::new(3, 7),
            "unknown field `foo`",
        );
        assert_eq!(
            d.to_string(),
            "/etc/arc/orders/a.yaml:3:7: unknown field `foo`"
        );
        let w = Diagnostic::whole_file("s.yaml", "readable by others");
        assert_eq!(w.to_string(), "s.yaml: readable by others");
    }
}
