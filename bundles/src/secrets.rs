//! Credentials for the source and destination, read from a directory of files — a Kubernetes
//! Secret volume at `/secrets/src` and `/secrets/dst`, or the local executor's private directory.
//! Keys: `username`, `password`, `token`, `.dockerconfigjson`, `accessKeyID`, `secretAccessKey`,
//! `ca.crt`. Secret values are never logged: their `Debug` prints `<redacted>`.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::error::{Error, ErrorKind, Result};

/// Where Secret volumes are mounted in workflow pods.
pub const DEFAULT_SRC_DIR: &str = "/secrets/src";
/// Where Secret volumes are mounted in workflow pods.
pub const DEFAULT_DST_DIR: &str = "/secrets/dst";

/// Largest secret file read, to refuse a misplaced huge file early.
const SECRET_FILE_LIMIT_BYTES: u64 = 1024 * 1024;

/// A secret string; `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; keep it out of logs and messages.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One side's credentials. Every field is optional; which ones an endpoint uses depends on its type.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// Where they were read from, for messages.
    pub dir: Option<PathBuf>,
    /// `username` (basic auth).
    pub username: Option<String>,
    /// `password` (basic auth).
    pub password: Option<SecretString>,
    /// `token` (bearer token).
    pub token: Option<SecretString>,
    /// `.dockerconfigjson` (registry credentials by host).
    pub docker_config_json: Option<SecretString>,
    /// `accessKeyID` (S3).
    pub access_key_id: Option<String>,
    /// `secretAccessKey` (S3).
    pub secret_access_key: Option<SecretString>,
    /// `ca.crt`: PEM certificates to trust in addition to the system roots.
    pub ca_cert_pem: Option<Vec<u8>>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let present = |b: bool| if b { "<redacted>" } else { "-" };
        f.debug_struct("Credentials")
            .field("dir", &self.dir)
            .field("username", &self.username)
            .field("password", &present(self.password.is_some()))
            .field("token", &present(self.token.is_some()))
            .field(
                "docker_config_json",
                &present(self.docker_config_json.is_some()),
            )
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &present(self.secret_access_key.is_some()),
            )
            .field(
                "ca_cert_pem",
                &self
                    .ca_cert_pem
                    .as_ref()
                    .map(|c| format!("{} bytes", c.len())),
            )
            .finish()
    }
}

impl Credentials {
    /// Reads the credential files in `dir`. A missing directory gives empty credentials (no
    /// Secret); unknown files are ignored (Kubernetes puts `..data` links there). Values other
    /// than `ca.crt` and `.dockerconfigjson` lose one trailing newline, as `echo` leaves one.
    pub fn load(dir: &Path) -> Result<Self> {
        let mut creds = Self {
            dir: Some(dir.to_path_buf()),
            ..Self::default()
        };
        if !dir.exists() {
            return Ok(creds);
        }
        if !dir.is_dir() {
            return Err(Error::new(
                ErrorKind::Io,
                format!("secret directory {} is not a directory", dir.display()),
            ));
        }
        let text = |name: &str| -> Result<Option<String>> {
            let Some(bytes) = read_limited(&dir.join(name))? else {
                return Ok(None);
            };
            let value = String::from_utf8(bytes).map_err(|_| {
                Error::invalid_parameter(format!(
                    "secret file {} is not UTF-8",
                    dir.join(name).display()
                ))
            })?;
            Ok(Some(value))
        };
        let line = |name: &str| -> Result<Option<String>> {
            Ok(text(name)?
                .map(|v| trim_one_newline(&v).to_string())
                .filter(|v| !v.is_empty()))
        };
        creds.username = line("username")?;
        creds.password = line("password")?.map(SecretString);
        creds.token = line("token")?.map(SecretString);
        creds.docker_config_json = text(".dockerconfigjson")?.map(SecretString);
        creds.access_key_id = line("accessKeyID")?;
        creds.secret_access_key = line("secretAccessKey")?.map(SecretString);
        creds.ca_cert_pem = read_limited(&dir.join("ca.crt"))?;
        Ok(creds)
    }

    /// Whether no credential at all is present (anonymous access).
    pub fn is_empty(&self) -> bool {
        self.username.is_none()
            && self.password.is_none()
            && self.token.is_none()
            && self.docker_config_json.is_none()
            && self.access_key_id.is_none()
            && self.secret_access_key.is_none()
            && self.ca_cert_pem.is_none()
    }

    /// `username` + `password`, if both are present.
    pub fn basic(&self) -> Option<(&str, &str)> {
        Some((self.username.as_deref()?, self.password.as_ref()?.expose()))
    }

    /// The username and password for registry `host` (e.g. `registry.example:5000`) from
    /// `.dockerconfigjson` (`auths.<host>.username/password` or `auth` = base64 `user:pass`).
    /// Keys may be bare hosts or URLs (`https://host/v1/`).
    pub fn docker_auth_for(&self, host: &str) -> Result<Option<(String, SecretString)>> {
        let Some(json) = &self.docker_config_json else {
            return Ok(None);
        };
        let where_ = || {
            self.dir
                .as_ref()
                .map(|d| d.join(".dockerconfigjson").display().to_string())
                .unwrap_or_default()
        };
        let config: serde_json::Value = serde_json::from_str(json.expose()).map_err(|e| {
            Error::invalid_parameter(format!("{} is not valid JSON: {e}", where_()))
        })?;
        let Some(auths) = config.get("auths").and_then(|a| a.as_object()) else {
            return Ok(None);
        };
        let entry = auths
            .iter()
            .find(|(key, _)| registry_host(key) == host)
            .map(|(_, v)| v);
        let Some(entry) = entry else { return Ok(None) };
        let field = |name: &str| {
            entry
                .get(name)
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
        };
        if let (Some(user), Some(pass)) = (field("username"), field("password")) {
            return Ok(Some((user.to_string(), SecretString::new(pass))));
        }
        if let Some(auth) = field("auth") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    Error::invalid_parameter(format!(
                        "{}: `auth` for {host} is not base64 of user:password",
                        where_()
                    ))
                })?;
            if let Some((user, pass)) = decoded.split_once(':') {
                return Ok(Some((user.to_string(), SecretString::new(pass))));
            }
            return Err(Error::invalid_parameter(format!(
                "{}: `auth` for {host} is not user:password",
                where_()
            )));
        }
        Ok(None)
    }
}

/// The host (and port) part of a `.dockerconfigjson` key: `https://host:5000/v1/` → `host:5000`.
fn registry_host(key: &str) -> &str {
    let rest = key.split_once("://").map(|(_, r)| r).unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

fn trim_one_newline(v: &str) -> &str {
    v.strip_suffix("\r\n")
        .or_else(|| v.strip_suffix('\n'))
        .unwrap_or(v)
}

fn read_limited(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("cannot read secret file", path, e)),
        Ok(meta) if meta.len() > SECRET_FILE_LIMIT_BYTES => {
            return Err(Error::invalid_parameter(format!(
                "secret file {} is larger than {SECRET_FILE_LIMIT_BYTES} bytes",
                path.display()
            )));
        }
        Ok(_) => {}
    }
    std::fs::read(path)
        .map(Some)
        .map_err(|e| Error::io("cannot read secret file", path, e))
}

/// Both sides' credentials.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    /// The source's credentials.
    pub src: Credentials,
    /// The destination's credentials.
    pub dst: Credentials,
}

impl Secrets {
    /// Reads both directories (see [`Credentials::load`]).
    pub fn load(src_dir: &Path, dst_dir: &Path) -> Result<Self> {
        Ok(Self {
            src: Credentials::load(src_dir)?,
            dst: Credentials::load(dst_dir)?,
        })
    }

    /// One side's credentials.
    pub fn side(&self, side: crate::params::Side) -> &Credentials {
        match side {
            crate::params::Side::Src => &self.src,
            crate::params::Side::Dst => &self.dst,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_files_and_redacts() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("username"), "alice\n").unwrap();
        std::fs::write(dir.path().join("password"), "s3cr3t\n").unwrap();
        std::fs::write(dir.path().join("accessKeyID"), "AKID").unwrap();
        std::fs::write(dir.path().join("secretAccessKey"), "SAK").unwrap();
        std::fs::write(dir.path().join("ca.crt"), "-----BEGIN CERTIFICATE-----\n").unwrap();
        let c = Credentials::load(dir.path()).unwrap();
        assert_eq!(c.basic(), Some(("alice", "s3cr3t")));
        assert_eq!(c.access_key_id.as_deref(), Some("AKID"));
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("s3cr3t") && !debug.contains("SAK"),
            "{debug}"
        );
        assert!(debug.contains("<redacted>"));
    }

    #[test]
    fn missing_dir_is_anonymous() {
        let c = Credentials::load(Path::new("/nonexistent/arc-secrets")).unwrap();
        assert!(c.is_empty());
    }

    #[test]
    fn docker_config_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode("bob:pw");
        std::fs::write(
            dir.path().join(".dockerconfigjson"),
            format!(r#"{{"auths":{{"https://reg.local:5000/v1/":{{"auth":"{auth}"}},"other":{{"username":"u","password":"p"}}}}}}"#),
        )
        .unwrap();
        let c = Credentials::load(dir.path()).unwrap();
        let (user, pass) = c.docker_auth_for("reg.local:5000").unwrap().unwrap();
        assert_eq!((user.as_str(), pass.expose()), ("bob", "pw"));
        assert_eq!(c.docker_auth_for("other").unwrap().unwrap().0, "u");
        assert!(c.docker_auth_for("nope").unwrap().is_none());
    }
}
