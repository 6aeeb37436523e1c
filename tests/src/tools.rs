//! Locating the external tools tests depend on (etcd, kubectl, skopeo, helm, registry, ...).

use std::path::{Path, PathBuf};

/// Whether we run under CI, where a missing tool is a failure rather than a skip.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Finds `name` on `PATH` (or as an absolute path).
pub fn find(name: &str) -> Option<PathBuf> {
    let candidate = Path::new(name);
    if candidate.is_absolute() {
        return candidate.is_file().then(|| candidate.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Finds a tool a test needs. Under CI a missing tool panics (the test fails); elsewhere it
/// prints a loud `SKIPPED` line to stderr and returns `None`, and the test should return early:
///
/// ```ignore
/// let Some(etcd) = arc_tests::tools::require("etcd", "storage conformance on etcd") else { return };
/// ```
pub fn require(name: &str, test: &str) -> Option<PathBuf> {
    if let Some(path) = find(name) {
        return Some(path);
    }
    let message = format!(
        "tool `{name}` not found: {test} needs it (install it, see .ci/run); {}",
        if in_ci() {
            "failing because CI is set"
        } else {
            "SKIPPED"
        }
    );
    if in_ci() {
        panic!("{message}");
    }
    eprintln!("\n!!!!!!!! {message} !!!!!!!!\n");
    None
}
