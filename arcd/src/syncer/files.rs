//! The syncer's view of the resource files: for every file its fingerprint, its problems and the
//! objects of its last good version, and from all files together the [`Plan`] — which object
//! comes from which file, which objects are claimed by two files, and which files and directories
//! are protected from pruning because they cannot be read right now.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::scan::{Fingerprint, walk};
use crate::diagnostic::Diagnostic;
use crate::resources::{FileObject, ObjectKey, parse_resource_file, secret_file_mode_problem};

/// Resource files larger than this are refused (the API server takes at most 3 MiB per object).
pub const FILE_LIMIT_BYTES: u64 = 8 * 1024 * 1024;

/// What the syncer knows about one file.
#[derive(Clone, Debug)]
pub struct FileEntry {
    /// The fingerprint of the version last read.
    pub fingerprint: Fingerprint,
    /// Problems of the version last read; empty when it is valid.
    pub problems: Vec<Diagnostic>,
    /// The objects of the last valid version read (the current one when `problems` is empty).
    /// Empty when no valid version has been read since the daemon started.
    pub objects: Vec<Arc<FileObject>>,
}

impl FileEntry {
    /// Whether the version last read is valid.
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Every resource file the syncer knows, by path.
#[derive(Debug, Default)]
pub struct FileTable {
    files: BTreeMap<PathBuf, FileEntry>,
    unreadable_dirs: Vec<(PathBuf, String)>,
}

/// How a file was found when it was looked at.
#[derive(Debug, PartialEq, Eq)]
pub enum Refresh {
    /// It was read (new or changed).
    Read,
    /// It had not changed.
    Unchanged,
    /// It is gone (or no longer a resource file).
    Removed,
}

impl FileTable {
    /// The entries, by path.
    pub fn files(&self) -> &BTreeMap<PathBuf, FileEntry> {
        &self.files
    }

    /// Directories that could not be read at the last full scan, with the reason.
    pub fn unreadable_dirs(&self) -> &[(PathBuf, String)] {
        &self.unreadable_dirs
    }

    /// Looks at one file: reads it if it is new, changed, or `force` is set (a file event is a
    /// hint to re-read); forgets it if it is gone.
    pub fn refresh_file(&mut self, path: &Path, default_namespace: &str, force: bool) -> Refresh {
        let metadata = match std::fs::metadata(path) {
            Ok(metadata) if metadata.is_file() => metadata,
            _ => {
                return if self.files.remove(path).is_some() {
                    Refresh::Removed
                } else {
                    Refresh::Unchanged
                };
            }
        };
        let fingerprint = Fingerprint::of(&metadata);
        if !force
            && self
                .files
                .get(path)
                .is_some_and(|e| e.fingerprint == fingerprint)
        {
            return Refresh::Unchanged;
        }
        let previous = self
            .files
            .get(path)
            .map(|e| e.objects.clone())
            .unwrap_or_default();
        let (problems, objects) = match read_file(path, &metadata, default_namespace) {
            Ok(objects) => (Vec::new(), objects.into_iter().map(Arc::new).collect()),
            Err(problems) => (problems, previous),
        };
        self.files.insert(
            path.to_path_buf(),
            FileEntry {
                fingerprint,
                problems,
                objects,
            },
        );
        Refresh::Read
    }

    /// Walks the directories, reads new and changed files and forgets vanished ones. Returns the
    /// paths that were read or removed.
    pub fn full_refresh(
        &mut self,
        directories: &[PathBuf],
        default_namespace: &str,
    ) -> Vec<PathBuf> {
        let walk = walk(directories);
        let mut touched = Vec::new();
        let vanished: Vec<PathBuf> = self
            .files
            .keys()
            .filter(|p| {
                !walk.files.contains(*p)
                    && !walk.unreadable.iter().any(|(dir, _)| p.starts_with(dir))
            })
            .cloned()
            .collect();
        for path in vanished {
            self.files.remove(&path);
            touched.push(path);
        }
        for path in &walk.files {
            if self.refresh_file(path, default_namespace, false) != Refresh::Unchanged {
                touched.push(path.clone());
            }
        }
        self.unreadable_dirs = walk.unreadable;
        touched
    }

    /// Forgets files outside `directories` (after the configured directories changed).
    pub fn retain_under(&mut self, directories: &[PathBuf]) {
        self.files
            .retain(|path, _| directories.iter().any(|dir| path.starts_with(dir)));
        self.unreadable_dirs
            .retain(|(path, _)| directories.iter().any(|dir| path.starts_with(dir)));
    }

    /// Combines all files into the plan of what the API server should hold.
    pub fn plan(&self) -> Plan {
        let mut claims: BTreeMap<ObjectKey, Vec<(&PathBuf, &Arc<FileObject>)>> = BTreeMap::new();
        for (path, entry) in &self.files {
            for object in entry.objects.iter() {
                claims
                    .entry(object.key.clone())
                    .or_default()
                    .push((path, object));
            }
        }
        let mut plan = Plan {
            protected_files: self
                .files
                .iter()
                .filter(|(_, e)| !e.is_valid())
                .map(|(p, _)| p.clone())
                .collect(),
            protected_dirs: self
                .unreadable_dirs
                .iter()
                .map(|(dir, _)| dir.clone())
                .collect(),
            ..Plan::default()
        };
        for (key, claimants) in claims {
            if let [(path, object)] = claimants.as_slice() {
                plan.desired
                    .insert(key, ((*path).clone(), Arc::clone(object)));
                continue;
            }
            let paths: Vec<&PathBuf> = claimants.iter().map(|(p, _)| *p).collect();
            for (path, object) in &claimants {
                let others: Vec<String> = paths
                    .iter()
                    .filter(|p| **p != *path)
                    .map(|p| p.display().to_string())
                    .collect();
                plan.problems
                    .entry((*path).clone())
                    .or_default()
                    .push(Diagnostic::new(
                        (*path).clone(),
                        object.start,
                        format!(
                            "{key} is also defined in {}; neither definition is applied",
                            others.join(", ")
                        ),
                    ));
            }
            plan.conflicts
                .insert(key, paths.into_iter().cloned().collect());
        }
        plan
    }
}

/// Reads and checks one file; `Err` holds every problem.
fn read_file(
    path: &Path,
    metadata: &std::fs::Metadata,
    default_namespace: &str,
) -> Result<Vec<FileObject>, Vec<Diagnostic>> {
    use std::os::unix::fs::MetadataExt;
    if metadata.len() > FILE_LIMIT_BYTES {
        return Err(vec![Diagnostic::whole_file(
            path,
            format!(
                "file is {} bytes, more than the limit of {FILE_LIMIT_BYTES}",
                metadata.len()
            ),
        )]);
    }
    let text = std::fs::read_to_string(path).map_err(|error| {
        vec![Diagnostic::whole_file(
            path,
            format!("cannot read: {error}"),
        )]
    })?;
    let parsed = parse_resource_file(path, &text, default_namespace);
    if parsed.holds_secret
        && let Some(problem) = secret_file_mode_problem(metadata.mode())
    {
        return Err(vec![Diagnostic::whole_file(path, problem)]);
    }
    parsed.objects
}

/// What the API server should hold according to the files.
#[derive(Debug, Default)]
pub struct Plan {
    /// Every object exactly one file defines, with that file.
    pub desired: BTreeMap<ObjectKey, (PathBuf, Arc<FileObject>)>,
    /// Objects defined by several files, with those files: none of the definitions is applied,
    /// and the object is left as it is.
    pub conflicts: BTreeMap<ObjectKey, Vec<PathBuf>>,
    /// Problems found by combining files (the conflicts), by file.
    pub problems: BTreeMap<PathBuf, Vec<Diagnostic>>,
    /// Files whose current version is invalid: objects they created are never pruned.
    pub protected_files: BTreeSet<PathBuf>,
    /// Directories that cannot be read: objects created from files under them are never pruned.
    pub protected_dirs: Vec<PathBuf>,
}

impl Plan {
    /// Whether objects created from `source` must be kept even if no file defines them now.
    pub fn is_protected(&self, source: &Path) -> bool {
        self.protected_files.contains(source)
            || self
                .protected_dirs
                .iter()
                .any(|dir| source.starts_with(dir))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    const ORDER: &str =
        "apiVersion: arc.opendefense.cloud/v1alpha1\nkind: Order\nmetadata: {name: o1}\nspec: {}\n";

    #[test]
    fn invalid_files_keep_their_last_good_objects_and_are_protected() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.yaml");
        std::fs::write(&file, ORDER).unwrap();
        let mut table = FileTable::default();
        table.full_refresh(&[dir.path().to_path_buf()], "default");
        assert_eq!(table.plan().desired.len(), 1);

        std::fs::write(
            &file,
            "apiVersion: arc.opendefense.cloud/v1alpha1\nkind: Order\nmetadata: {name: o1\n",
        )
        .unwrap();
        assert_eq!(table.refresh_file(&file, "default", true), Refresh::Read);
        let entry = &table.files()[&file];
        assert!(!entry.is_valid());
        assert_eq!(entry.objects.len(), 1, "the last good version is kept");
        let plan = table.plan();
        assert_eq!(plan.desired.len(), 1);
        assert!(plan.is_protected(&file));

        std::fs::remove_file(&file).unwrap();
        assert_eq!(
            table.full_refresh(&[dir.path().to_path_buf()], "default"),
            vec![file.clone()]
        );
        assert!(table.plan().desired.is_empty());
    }

    #[test]
    fn the_same_object_in_two_files_is_applied_from_neither() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), ORDER).unwrap();
        std::fs::write(dir.path().join("b.yaml"), ORDER).unwrap();
        let mut table = FileTable::default();
        table.full_refresh(&[dir.path().to_path_buf()], "default");
        let plan = table.plan();
        assert!(plan.desired.is_empty());
        assert_eq!(plan.conflicts.len(), 1);
        let a = plan.problems[&dir.path().join("a.yaml")][0].to_string();
        assert!(
            a.contains("Order default/o1 is also defined in") && a.contains("b.yaml"),
            "{a}"
        );
        let b = plan.problems[&dir.path().join("b.yaml")][0].to_string();
        assert!(b.contains("a.yaml; neither definition is applied"), "{b}");
    }

    #[test]
    fn secret_files_readable_by_others_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("creds.yaml");
        std::fs::write(
            &file,
            "apiVersion: v1\nkind: Secret\nmetadata: {name: c}\nstringData: {password: x}\n",
        )
        .unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut table = FileTable::default();
        table.full_refresh(&[dir.path().to_path_buf()], "default");
        let problems = &table.files()[&file].problems;
        assert!(
            problems[0].message.contains("0644") && problems[0].message.contains("refused"),
            "{problems:?}"
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        table.full_refresh(&[dir.path().to_path_buf()], "default");
        assert!(
            table.files()[&file].is_valid(),
            "a chmod alone is noticed (the mode is in the fingerprint)"
        );
    }

    #[test]
    fn files_under_an_unreadable_directory_are_kept_and_protected() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("a.yaml"), ORDER).unwrap();
        let mut table = FileTable::default();
        table.full_refresh(std::slice::from_ref(&sub), "default");
        std::fs::rename(&sub, dir.path().join("moved")).unwrap();
        table.full_refresh(std::slice::from_ref(&sub), "default");
        let plan = table.plan();
        assert!(plan.is_protected(&sub.join("a.yaml")));
    }
}
