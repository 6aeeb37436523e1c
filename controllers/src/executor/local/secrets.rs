//! The private directory a worker reads its credentials from: `<runtime dir>/arc-secrets-XXXX`
//! (0700) with `src/` and `dst/` (0700), one 0600 file per Secret key. Removed when dropped,
//! also when the worker fails or is cancelled. Secret values never appear in arguments, the
//! environment or logs.

use std::collections::BTreeMap;
use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tempfile::TempDir;

/// Prefix of every secret directory, so leftovers can be found.
pub const SECRET_DIR_PREFIX: &str = "arc-secrets-";

/// Secret data by key.
pub type SecretData = BTreeMap<String, Vec<u8>>;

/// A private directory with the source and destination credentials.
#[derive(Debug)]
pub struct SecretDir {
    dir: TempDir,
}

/// Whether `key` is safe as a file name (Secret keys are `[-._a-zA-Z0-9]+`, never `.`/`..`).
fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key != "."
        && key != ".."
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

fn write_side(dir: &Path, data: Option<&SecretData>) -> std::io::Result<()> {
    DirBuilder::new().mode(0o700).create(dir)?;
    for (key, value) in data.into_iter().flatten() {
        if !valid_key(key) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("Secret key {key:?} is not a valid file name"),
            ));
        }
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dir.join(key))?;
        file.write_all(value)?;
        file.sync_all()?;
    }
    Ok(())
}

impl SecretDir {
    /// Creates the directory under `base` and writes both sides' data.
    pub fn create(
        base: &Path,
        src: Option<&SecretData>,
        dst: Option<&SecretData>,
    ) -> std::io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(SECRET_DIR_PREFIX)
            .permissions(Permissions::from_mode(0o700))
            .tempdir_in(base)?;
        write_side(&dir.path().join("src"), src)?;
        write_side(&dir.path().join("dst"), dst)?;
        Ok(Self { dir })
    }

    /// The source credentials' directory.
    pub fn src(&self) -> PathBuf {
        self.dir.path().join("src")
    }

    /// The destination credentials' directory.
    pub fn dst(&self) -> PathBuf {
        self.dir.path().join("dst")
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Removes secret directories left in `base` by an executor that was killed.
pub fn remove_leftovers(base: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(base) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with(SECRET_DIR_PREFIX)
            && entry.path().is_dir()
            && std::fs::remove_dir_all(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).expect("metadata").mode() & 0o777
    }

    #[test]
    fn writes_private_files_and_removes_them() {
        let base = tempfile::tempdir().expect("tempdir");
        let src: SecretData = [
            ("username".to_string(), b"u".to_vec()),
            ("password".to_string(), b"p".to_vec()),
        ]
        .into();
        let dir = SecretDir::create(base.path(), Some(&src), None).expect("create");
        let root = dir.path().to_path_buf();
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&dir.src()), 0o700);
        assert_eq!(mode(&dir.dst()), 0o700);
        assert_eq!(mode(&dir.src().join("password")), 0o600);
        assert_eq!(
            std::fs::read(dir.src().join("username")).expect("read"),
            b"u"
        );
        assert_eq!(std::fs::read_dir(dir.dst()).expect("dst").count(), 0);
        drop(dir);
        assert!(!root.exists());
    }

    #[test]
    fn refuses_keys_that_are_not_file_names() {
        let base = tempfile::tempdir().expect("tempdir");
        for key in ["../escape", "a/b", "..", ""] {
            let bad: SecretData = [(key.to_string(), b"x".to_vec())].into();
            let err = SecretDir::create(base.path(), None, Some(&bad)).expect_err(key);
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        }
        assert_eq!(
            std::fs::read_dir(base.path()).expect("base").count(),
            0,
            "nothing left behind"
        );
    }

    #[test]
    fn leftovers_are_removed() {
        let base = tempfile::tempdir().expect("tempdir");
        let kept = SecretDir::create(base.path(), None, None).expect("create");
        let path = kept.path().to_path_buf();
        std::mem::forget(kept);
        std::fs::create_dir(base.path().join("unrelated")).expect("mkdir");
        assert_eq!(remove_leftovers(base.path()), 1);
        assert!(!path.exists());
        assert!(base.path().join("unrelated").exists());
    }
}
