//! Finding resource files: which names count (`*.yaml`, `*.yml`; no hidden or editor temporary
//! files), walking the configured directories recursively through symlinked directories without
//! looping, and fingerprinting files to notice changes without reading them.

use std::collections::{BTreeSet, HashSet};
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Whether a file name is a resource file: ends in `.yaml` or `.yml`, and is not hidden or an
/// editor's temporary file (`.#x` locks, `#x#` autosaves, `x~` backups, `.x.swp`, vim's `4913`
/// probe, `x.tmp`, `x.yaml.bak`...).
pub fn is_resource_file_name(name: &str) -> bool {
    if name.starts_with('.') || name.starts_with('#') || name.ends_with('~') || name == "4913" {
        return false;
    }
    name.ends_with(".yaml") || name.ends_with(".yml")
}

/// Whether a directory name is walked (hidden directories such as `.git` are not).
pub fn is_walked_dir_name(name: &str) -> bool {
    !name.starts_with('.')
}

/// Whether every component of `path` below `root` is visible (a file inside a hidden directory
/// is ignored as the walk would ignore it), and the file name is a resource file name.
pub fn is_resource_path(root: &Path, path: &Path) -> bool {
    let Ok(relative) = path.strip_prefix(root) else {
        return false;
    };
    let mut components = relative.components().peekable();
    while let Some(component) = components.next() {
        let name = component.as_os_str().to_string_lossy();
        let last = components.peek().is_none();
        let ok = if last {
            is_resource_file_name(&name)
        } else {
            is_walked_dir_name(&name)
        };
        if !ok {
            return false;
        }
    }
    true
}

/// What identifies a file's content without reading it: size, modification time, inode and mode.
/// A different fingerprint means the file must be read again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    /// Size in bytes.
    pub len: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_nanos: i128,
    /// Inode (changes on atomic replace by rename).
    pub inode: u64,
    /// Permission bits.
    pub mode: u32,
}

impl Fingerprint {
    /// The fingerprint of a file's metadata (of a symlink's target).
    pub fn of(metadata: &Metadata) -> Self {
        Self {
            len: metadata.len(),
            mtime_nanos: i128::from(metadata.mtime()) * 1_000_000_000
                + i128::from(metadata.mtime_nsec()),
            inode: metadata.ino(),
            mode: metadata.mode(),
        }
    }
}

/// The result of walking the resource directories.
#[derive(Debug, Default)]
pub struct Walk {
    /// Every resource file found, as reached from its configured directory.
    pub files: BTreeSet<PathBuf>,
    /// Directories (or parts of them) that could not be read, with the reason. Objects from files
    /// under them are kept, never pruned, until they can be read again.
    pub unreadable: Vec<(PathBuf, String)>,
}

/// Walks `roots` recursively, following symlinked directories, visiting each real directory once.
pub fn walk(roots: &[PathBuf]) -> Walk {
    let mut out = Walk::default();
    let mut visited: HashSet<PathBuf> = HashSet::new();
    for root in roots {
        walk_dir(root, &mut visited, &mut out);
    }
    out
}

fn walk_dir(dir: &Path, visited: &mut HashSet<PathBuf>, out: &mut Walk) {
    let canonical = match std::fs::canonicalize(dir) {
        Ok(canonical) => canonical,
        Err(error) => {
            out.unreadable
                .push((dir.to_path_buf(), format!("cannot open directory: {error}")));
            return;
        }
    };
    if !visited.insert(canonical) {
        return; // Already walked (a symlink loop, or two paths to one directory).
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) => {
            out.unreadable
                .push((dir.to_path_buf(), format!("cannot read directory: {error}")));
            return;
        }
    };
    let mut subdirs = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                out.unreadable
                    .push((dir.to_path_buf(), format!("cannot read directory: {error}")));
                continue;
            }
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        // Follow symlinks: what matters is what the entry points to.
        let Ok(metadata) = std::fs::metadata(&path) else {
            continue; // A dangling symlink, or the file vanished meanwhile.
        };
        if metadata.is_dir() {
            if is_walked_dir_name(&name) {
                subdirs.push(path);
            }
        } else if metadata.is_file() && is_resource_file_name(&name) {
            out.files.insert(path);
        }
    }
    subdirs.sort();
    for subdir in subdirs {
        walk_dir(&subdir, visited, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        for good in ["a.yaml", "order.yml", "a.b.yaml", "4913.yaml"] {
            assert!(is_resource_file_name(good), "{good}");
        }
        for bad in [
            ".a.yaml",
            ".#a.yaml",
            "#a.yaml#",
            "a.yaml~",
            ".a.yaml.swp",
            "a.yaml.swp",
            "4913",
            "a.json",
            "a.yaml.bak",
            "a.yaml.tmp",
            "README",
        ] {
            assert!(!is_resource_file_name(bad), "{bad}");
        }
    }

    #[test]
    fn paths_below_hidden_directories_are_ignored() {
        let root = Path::new("/r");
        assert!(is_resource_path(root, Path::new("/r/team/a.yaml")));
        assert!(!is_resource_path(root, Path::new("/r/.git/a.yaml")));
        assert!(!is_resource_path(root, Path::new("/other/a.yaml")));
        assert!(!is_resource_path(root, Path::new("/r/team/.a.yaml.swp")));
    }

    #[test]
    fn walks_recursively_through_symlinks_without_loops() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("orders");
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir_all(root.join("team/.git")).unwrap();
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::fs::write(root.join("a.yaml"), "").unwrap();
        std::fs::write(root.join("team/b.yml"), "").unwrap();
        std::fs::write(root.join("team/.git/c.yaml"), "").unwrap();
        std::fs::write(root.join(".hidden.yaml"), "").unwrap();
        std::fs::write(root.join("a.yaml~"), "").unwrap();
        std::fs::write(elsewhere.join("d.yaml"), "").unwrap();
        std::os::unix::fs::symlink(&elsewhere, root.join("linked")).unwrap();
        std::os::unix::fs::symlink(&root, root.join("team/loop")).unwrap();
        std::os::unix::fs::symlink(root.join("missing"), root.join("dangling.yaml")).unwrap();
        let walk = walk(&[root.clone(), dir.path().join("absent")]);
        let found: Vec<_> = walk
            .files
            .iter()
            .map(|p| p.strip_prefix(&root).unwrap().to_path_buf())
            .collect();
        assert_eq!(
            found,
            vec![
                PathBuf::from("a.yaml"),
                PathBuf::from("linked/d.yaml"),
                PathBuf::from("team/b.yml")
            ]
        );
        assert_eq!(walk.unreadable.len(), 1);
        assert!(walk.unreadable[0].0.ends_with("absent"));
    }
}
