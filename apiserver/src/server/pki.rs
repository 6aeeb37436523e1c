//! The embedded PKI: CA, serving and client certificates created on first start.
//!
//! [`Pki::load_or_create`] keeps a small certificate authority under a private directory
//! (`DATA_DIR/pki`, mode 0700):
//!
//! | file | what |
//! |---|---|
//! | `ca.crt`, `ca.key` | the CA (ECDSA P-256, 10 years) that signs everything below and that clients trust |
//! | `apiserver.crt`, `apiserver.key` | the serving certificate (EKU serverAuth) for `localhost`, `127.0.0.1`, `::1`, the machine's host name and any extra names |
//! | `admin.crt`, `admin.key` | client certificate `CN=admin, O=system:masters` (full access) |
//! | `viewer.crt`, `viewer.key` | client certificate `CN=viewer, O=arc:viewers` (read-only) |
//!
//! Every file is written with mode 0600 through a temporary file and a rename, keys before
//! certificates, so a crash leaves either the old file or the new one, never half of one. Later
//! starts load the files and repair what does not fit: a leaf certificate that is missing, does
//! not match its key, no longer verifies against the CA, expires within
//! [`RENEW_BEFORE_EXPIRY_DAYS`], or (for the serving certificate) lacks a requested host name is
//! issued again under the same CA. The CA itself is never replaced silently: a CA certificate
//! without its key is an error, because replacing it would invalidate every kubeconfig handed out.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
};
use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use x509_parser::certificate::X509Certificate;

mod files;
mod names;

pub use files::write_private_file_atomically;
use files::{ensure_private_dir, fix_mode, read_optional, remove_stale_temp_files};
use names::{machine_host_name, san_names, serving_names};

/// How long the CA is valid.
pub const CA_VALIDITY_DAYS: u64 = 3650;
/// How long serving and client certificates are valid.
pub const LEAF_VALIDITY_DAYS: u64 = 365;
/// A serving or client certificate this close to its expiry is issued again on the next start.
pub const RENEW_BEFORE_EXPIRY_DAYS: u64 = 30;
/// Certificates are valid from this long before their creation, to tolerate clock skew.
pub const BACKDATE_SECS: u64 = 3600;

/// User name of the administrator's client certificate.
pub const ADMIN_USER: &str = "admin";
/// Group of the administrator's client certificate: allowed everything.
pub const ADMIN_GROUP: &str = "system:masters";
/// User name of the read-only client certificate.
pub const VIEWER_USER: &str = "viewer";
/// Group of the read-only client certificate: allowed to read.
pub const VIEWER_GROUP: &str = "arc:viewers";

/// Common name of the CA certificate.
const CA_COMMON_NAME: &str = "arc-ca";
/// Common name of the serving certificate.
const SERVING_COMMON_NAME: &str = "arc-apiserver";

const SECS_PER_DAY: u64 = 24 * 3600;

/// A failure to create, load or use the PKI. Each variant names the file or value at fault.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Reading, writing or creating a file or directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A file exists but does not hold what it should.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The CA certificate exists but its key does not.
    #[error(
        "{key}: missing, but the CA certificate {cert} exists; restore the key, or remove {dir} \
         to create a new CA (every kubeconfig issued so far stops working)"
    )]
    MissingCaKey {
        /// The CA certificate that was found.
        cert: PathBuf,
        /// The key that was not.
        key: PathBuf,
        /// The PKI directory.
        dir: PathBuf,
    },
    /// Generating or signing a certificate failed.
    #[error("generating the {what}: {source}")]
    Generate {
        /// Which certificate.
        what: String,
        /// The underlying error.
        source: rcgen::Error,
    },
    /// A requested serving host name is neither an IP address nor a DNS name.
    #[error("invalid host name {name:?} for the serving certificate: {reason}")]
    InvalidHostName {
        /// The name as given.
        name: String,
        /// Why it is rejected.
        reason: String,
    },
    /// A user or group name for a client certificate is unusable.
    #[error("invalid client certificate identity {value:?}: {reason}")]
    InvalidIdentity {
        /// The offending user or group name.
        value: String,
        /// Why it is rejected.
        reason: String,
    },
}

/// A certificate and its private key, both PEM. `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct CertAndKey {
    /// The certificate, PEM (`CERTIFICATE`).
    pub cert_pem: String,
    /// The private key, PEM (PKCS#8 `PRIVATE KEY`).
    pub key_pem: String,
}

impl fmt::Debug for CertAndKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertAndKey")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

impl CertAndKey {
    /// The certificate as DER.
    pub fn cert_der(&self) -> Result<CertificateDer<'static>, rustls::pki_types::pem::Error> {
        CertificateDer::from_pem_slice(self.cert_pem.as_bytes())
    }
}

/// The embedded server's certificate authority and the certificates it issued at start.
pub struct Pki {
    dir: PathBuf,
    ca_cert_pem: String,
    ca_cert_der: CertificateDer<'static>,
    ca_key: KeyPair,
    serving: CertAndKey,
    serving_names: Vec<String>,
    admin: CertAndKey,
    viewer: CertAndKey,
}

impl fmt::Debug for Pki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pki")
            .field("dir", &self.dir)
            .field("serving_names", &self.serving_names)
            .finish_non_exhaustive()
    }
}

/// Which leaf certificate a file pair holds, and what it must look like.
struct LeafSpec {
    /// File stem: `<stem>.crt`, `<stem>.key`.
    stem: &'static str,
    /// Human-readable name for errors and logs.
    what: &'static str,
    kind: LeafKind,
}

enum LeafKind {
    Serving { names: Vec<String> },
    Client { user: String, groups: Vec<String> },
}

impl Pki {
    /// Loads the PKI from `dir`, creating whatever is missing (see the module documentation).
    ///
    /// `hostnames` are extra names (DNS names or IP addresses) the serving certificate must
    /// cover besides `localhost`, `127.0.0.1`, `::1` and the machine's host name; a stored
    /// serving certificate lacking one of them is issued again under the same CA.
    pub fn load_or_create(dir: &Path, hostnames: &[String]) -> Result<Pki, PkiError> {
        let serving_names = serving_names(hostnames, machine_host_name().as_deref())?;
        ensure_private_dir(dir)?;
        remove_stale_temp_files(dir);

        let (ca_cert_pem, ca_key) = load_or_create_ca(dir)?;
        let ca_cert_der = CertificateDer::from_pem_slice(ca_cert_pem.as_bytes()).map_err(|e| {
            PkiError::Invalid {
                path: dir.join("ca.crt"),
                reason: format!("not a PEM certificate: {e}"),
            }
        })?;
        let checker = ChainChecker::new(&ca_cert_der, &dir.join("ca.crt"))?;
        let issuer =
            Issuer::from_ca_cert_der(&ca_cert_der, &ca_key).map_err(|e| PkiError::Invalid {
                path: dir.join("ca.crt"),
                reason: format!("not usable as an issuer: {e}"),
            })?;

        let leaf = |spec: LeafSpec| load_or_issue_leaf(dir, &spec, &issuer, &checker);
        let serving = leaf(LeafSpec {
            stem: "apiserver",
            what: "serving certificate",
            kind: LeafKind::Serving {
                names: serving_names.clone(),
            },
        })?;
        let admin = leaf(LeafSpec {
            stem: "admin",
            what: "admin client certificate",
            kind: LeafKind::Client {
                user: ADMIN_USER.to_owned(),
                groups: vec![ADMIN_GROUP.to_owned()],
            },
        })?;
        let viewer = leaf(LeafSpec {
            stem: "viewer",
            what: "read-only client certificate",
            kind: LeafKind::Client {
                user: VIEWER_USER.to_owned(),
                groups: vec![VIEWER_GROUP.to_owned()],
            },
        })?;
        drop(issuer);

        Ok(Pki {
            dir: dir.to_path_buf(),
            ca_cert_pem,
            ca_cert_der,
            ca_key,
            serving,
            serving_names,
            admin,
            viewer,
        })
    }

    /// The PKI directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The CA certificate, PEM: what clients trust (kubeconfig `certificate-authority-data`).
    pub fn ca_cert_pem(&self) -> &str {
        &self.ca_cert_pem
    }

    /// The CA certificate, DER: the trust anchor for client certificates.
    pub fn ca_cert_der(&self) -> &CertificateDer<'static> {
        &self.ca_cert_der
    }

    /// The serving certificate and key.
    pub fn serving(&self) -> &CertAndKey {
        &self.serving
    }

    /// The names (DNS and IP) the serving certificate covers.
    pub fn serving_names(&self) -> &[String] {
        &self.serving_names
    }

    /// The administrator's client certificate (`CN=admin, O=system:masters`).
    pub fn admin(&self) -> &CertAndKey {
        &self.admin
    }

    /// The read-only client certificate (`CN=viewer, O=arc:viewers`).
    pub fn viewer(&self) -> &CertAndKey {
        &self.viewer
    }

    /// Issues a new client certificate (EKU clientAuth, [`LEAF_VALIDITY_DAYS`]) for `user`
    /// (the subject CN) in `groups` (one subject O each), signed by this CA. Nothing is written
    /// to disk; see [`crate::server::kubeconfig`] to hand it to a client.
    pub fn issue_client_cert(&self, user: &str, groups: &[&str]) -> Result<CertAndKey, PkiError> {
        let issuer = Issuer::from_ca_cert_der(&self.ca_cert_der, &self.ca_key).map_err(|e| {
            PkiError::Invalid {
                path: self.dir.join("ca.crt"),
                reason: format!("not usable as an issuer: {e}"),
            }
        })?;
        let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
        issue_leaf(
            &LeafKind::Client {
                user: user.to_owned(),
                groups,
            },
            &format!("client certificate for {user:?}"),
            &issuer,
        )
    }
}

/// Loads the CA key and certificate, creating them if neither exists, and re-creating the
/// certificate from the key if only the key exists (a crash between the two writes).
fn load_or_create_ca(dir: &Path) -> Result<(String, KeyPair), PkiError> {
    let cert_path = dir.join("ca.crt");
    let key_path = dir.join("ca.key");
    let key_pem = read_optional(&key_path)?;
    let cert_pem = read_optional(&cert_path)?;

    let key = match key_pem {
        Some(pem) => parse_key(&key_path, &pem)?,
        None if cert_pem.is_some() => {
            return Err(PkiError::MissingCaKey {
                cert: cert_path,
                key: key_path,
                dir: dir.to_path_buf(),
            });
        }
        None => {
            let key = generate_key("CA key")?;
            write_private_file_atomically(&key_path, key.serialize_pem().as_bytes()).map_err(
                |source| PkiError::Io {
                    path: key_path.clone(),
                    source,
                },
            )?;
            tracing::info!(path = %key_path.display(), "created a new CA key");
            key
        }
    };

    if let Some(pem) = cert_pem {
        let der = parse_cert_der(&cert_path, &pem)?;
        let (_, cert) = parse_x509(&cert_path, &der)?;
        if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(PkiError::Invalid {
                path: cert_path,
                reason: format!("does not match the CA key {}", key_path.display()),
            });
        }
        let not_after = cert.validity().not_after.timestamp();
        if not_after < unix_now_secs() + (RENEW_BEFORE_EXPIRY_DAYS * SECS_PER_DAY) as i64 {
            tracing::warn!(
                path = %cert_path.display(),
                not_after,
                "the CA certificate expires soon or has expired; remove the PKI directory to \
                 create a new CA (clients then need the new kubeconfig)"
            );
        }
        return Ok((pem, key));
    }

    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(CA_COMMON_NAME, &[]);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params, CA_VALIDITY_DAYS);
    params.serial_number = Some(random_serial());
    let cert = params
        .self_signed(&key)
        .map_err(|source| PkiError::Generate {
            what: "CA certificate".to_owned(),
            source,
        })?;
    let pem = cert.pem();
    write_private_file_atomically(&cert_path, pem.as_bytes()).map_err(|source| PkiError::Io {
        path: cert_path.clone(),
        source,
    })?;
    tracing::info!(path = %cert_path.display(), "created the CA certificate");
    Ok((pem, key))
}

/// Loads a leaf certificate and key if they are still good, otherwise issues and writes new ones.
fn load_or_issue_leaf(
    dir: &Path,
    spec: &LeafSpec,
    issuer: &Issuer<'_, &KeyPair>,
    checker: &ChainChecker,
) -> Result<CertAndKey, PkiError> {
    let cert_path = dir.join(format!("{}.crt", spec.stem));
    let key_path = dir.join(format!("{}.key", spec.stem));
    match check_stored_leaf(&cert_path, &key_path, spec, checker)? {
        Ok(stored) => return Ok(stored),
        Err(why) => tracing::info!(path = %cert_path.display(), why, "issuing the {}", spec.what),
    }
    let issued = issue_leaf(&spec.kind, spec.what, issuer)?;
    // Key first: a crash in between leaves a key that does not match the old certificate,
    // which the next start detects and repairs.
    write_private_file_atomically(&key_path, issued.key_pem.as_bytes()).map_err(|source| {
        PkiError::Io {
            path: key_path.clone(),
            source,
        }
    })?;
    write_private_file_atomically(&cert_path, issued.cert_pem.as_bytes()).map_err(|source| {
        PkiError::Io {
            path: cert_path.clone(),
            source,
        }
    })?;
    Ok(issued)
}

/// `Ok(Ok(stored))` if the stored pair is usable, `Ok(Err(why))` if it must be issued again.
fn check_stored_leaf(
    cert_path: &Path,
    key_path: &Path,
    spec: &LeafSpec,
    checker: &ChainChecker,
) -> Result<Result<CertAndKey, String>, PkiError> {
    let (Some(cert_pem), Some(key_pem)) = (read_optional(cert_path)?, read_optional(key_path)?)
    else {
        return Ok(Err("not present".to_owned()));
    };
    let Ok(key) = KeyPair::from_pem(&key_pem) else {
        return Ok(Err(format!("{} is not a usable key", key_path.display())));
    };
    let Ok(der) = CertificateDer::from_pem_slice(cert_pem.as_bytes()) else {
        return Ok(Err("not a PEM certificate".to_owned()));
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else {
        return Ok(Err("not a parsable certificate".to_owned()));
    };
    if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return Ok(Err("does not match its key".to_owned()));
    }
    let renew_at = unix_now_secs() + (RENEW_BEFORE_EXPIRY_DAYS * SECS_PER_DAY) as i64;
    if cert.validity().not_after.timestamp() < renew_at {
        return Ok(Err("expires soon".to_owned()));
    }
    match &spec.kind {
        LeafKind::Serving { names } => {
            if let Err(e) = checker.verify_server(&der) {
                return Ok(Err(format!("does not verify against the CA: {e}")));
            }
            let present = san_names(&cert);
            if let Some(missing) = names.iter().find(|n| !present.contains(n.as_str())) {
                return Ok(Err(format!("does not cover the host name {missing:?}")));
            }
        }
        LeafKind::Client { user, groups } => {
            if let Err(e) = checker.verify_client(&der) {
                return Ok(Err(format!("does not verify against the CA: {e}")));
            }
            let cn: Vec<&str> = cert
                .subject()
                .iter_common_name()
                .filter_map(|a| a.as_str().ok())
                .collect();
            let orgs: Vec<&str> = cert
                .subject()
                .iter_organization()
                .filter_map(|a| a.as_str().ok())
                .collect();
            if cn != [user.as_str()]
                || orgs != groups.iter().map(String::as_str).collect::<Vec<_>>()
            {
                return Ok(Err(format!(
                    "names user {cn:?} in groups {orgs:?}, not {user:?} in {groups:?}"
                )));
            }
        }
    }
    fix_mode(cert_path);
    fix_mode(key_path);
    Ok(Ok(CertAndKey { cert_pem, key_pem }))
}

/// Issues a fresh key and a leaf certificate for it.
fn issue_leaf(
    kind: &LeafKind,
    what: &str,
    issuer: &Issuer<'_, &KeyPair>,
) -> Result<CertAndKey, PkiError> {
    let mut params = CertificateParams::default();
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    match kind {
        LeafKind::Serving { names } => {
            params.distinguished_name = distinguished_name(SERVING_COMMON_NAME, &[]);
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            params.subject_alt_names = names
                .iter()
                .map(|name| match name.parse::<IpAddr>() {
                    Ok(ip) => Ok(SanType::IpAddress(ip)),
                    Err(_) => name.clone().try_into().map(SanType::DnsName).map_err(|e| {
                        PkiError::InvalidHostName {
                            name: name.clone(),
                            reason: e.to_string(),
                        }
                    }),
                })
                .collect::<Result<_, _>>()?;
        }
        LeafKind::Client { user, groups } => {
            validate_identity_part(user)?;
            for group in groups {
                validate_identity_part(group)?;
            }
            params.distinguished_name = distinguished_name(user, groups);
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
    }
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, LEAF_VALIDITY_DAYS);
    params.serial_number = Some(random_serial());
    let key = generate_key(what)?;
    let cert = params
        .signed_by(&key, issuer)
        .map_err(|source| PkiError::Generate {
            what: what.to_owned(),
            source,
        })?;
    Ok(CertAndKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Verifies leaf certificates against the CA with the same code rustls uses in handshakes.
struct ChainChecker {
    server: Arc<WebPkiServerVerifier>,
    client: Arc<dyn rustls::server::danger::ClientCertVerifier>,
}

impl ChainChecker {
    fn new(ca: &CertificateDer<'static>, ca_path: &Path) -> Result<Self, PkiError> {
        let invalid = |reason: String| PkiError::Invalid {
            path: ca_path.to_path_buf(),
            reason,
        };
        let mut roots = RootCertStore::empty();
        roots
            .add(ca.clone())
            .map_err(|e| invalid(format!("not usable as a trust anchor: {e}")))?;
        let roots = Arc::new(roots);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| invalid(format!("not usable as a trust anchor: {e}")))?;
        let client = WebPkiClientVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| invalid(format!("not usable as a trust anchor: {e}")))?;
        Ok(ChainChecker { server, client })
    }

    fn verify_server(&self, der: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        let name = ServerName::try_from("localhost").expect("localhost is a valid server name");
        self.server
            .verify_server_cert(der, &[], &name, &[], UnixTime::now())
            .map(|_| ())
    }

    fn verify_client(&self, der: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        self.client
            .verify_client_cert(der, &[], UnixTime::now())
            .map(|_| ())
    }
}

fn validate_identity_part(value: &str) -> Result<(), PkiError> {
    let invalid = |reason: &str| PkiError::InvalidIdentity {
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    if value.is_empty() {
        return Err(invalid("empty"));
    }
    if value.len() > 64 {
        return Err(invalid(
            "longer than 64 characters (the X.509 limit for CN and O)",
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid("contains control characters"));
    }
    Ok(())
}

fn distinguished_name(common_name: &str, organizations: &[String]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for org in organizations {
        dn.push(DnType::OrganizationName, org.as_str());
    }
    dn.push(DnType::CommonName, common_name);
    dn
}

fn set_validity(params: &mut CertificateParams, days: u64) {
    let now = unix_now_secs().max(0) as u64;
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + Duration::from_secs(now.saturating_sub(BACKDATE_SECS));
    params.not_after = epoch + Duration::from_secs(now + days * SECS_PER_DAY);
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

fn generate_key(what: &str) -> Result<KeyPair, PkiError> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|source| PkiError::Generate {
        what: what.to_owned(),
        source,
    })
}

fn unix_now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn parse_key(path: &Path, pem: &str) -> Result<KeyPair, PkiError> {
    KeyPair::from_pem(pem).map_err(|e| PkiError::Invalid {
        path: path.to_path_buf(),
        reason: format!("not a usable private key: {e}"),
    })
}

fn parse_cert_der(path: &Path, pem: &str) -> Result<CertificateDer<'static>, PkiError> {
    CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| PkiError::Invalid {
        path: path.to_path_buf(),
        reason: format!("not a PEM certificate: {e}"),
    })
}

fn parse_x509<'a>(
    path: &Path,
    der: &'a CertificateDer<'_>,
) -> Result<(&'a [u8], X509Certificate<'a>), PkiError> {
    x509_parser::parse_x509_certificate(der).map_err(|e| PkiError::Invalid {
        path: path.to_path_buf(),
        reason: format!("not a parsable certificate: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_validated() {
        assert!(validate_identity_part("alice").is_ok());
        assert!(validate_identity_part("").is_err());
        assert!(validate_identity_part("a\nb").is_err());
        assert!(validate_identity_part(&"x".repeat(65)).is_err());
    }
}
