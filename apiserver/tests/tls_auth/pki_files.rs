//! The PKI and kubeconfig files: modes, reuse across starts, repair, and what they contain.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use apiserver::server::auth::{Authentication, ClientCertAuthenticator, Identity};
use apiserver::server::kubeconfig;
use apiserver::server::pki::{Pki, PkiError};
use base64::Engine;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

fn san_names(pem: &str) -> Vec<String> {
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    san.value
        .general_names
        .iter()
        .map(|n| match n {
            x509_parser::extensions::GeneralName::DNSName(d) => (*d).to_owned(),
            x509_parser::extensions::GeneralName::IPAddress(ip) if ip.len() == 4 => {
                std::net::IpAddr::from(<[u8; 4]>::try_from(*ip).unwrap()).to_string()
            }
            x509_parser::extensions::GeneralName::IPAddress(ip) => {
                std::net::IpAddr::from(<[u8; 16]>::try_from(*ip).unwrap()).to_string()
            }
            other => format!("{other:?}"),
        })
        .collect()
}

#[test]
fn pki_is_private_reused_and_repaired() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("pki");
    let first = Pki::load_or_create(&dir, &[]).unwrap();
    assert_eq!(mode(&dir), 0o700);
    let files = [
        "ca.crt",
        "ca.key",
        "apiserver.crt",
        "apiserver.key",
        "admin.crt",
        "admin.key",
        "viewer.crt",
        "viewer.key",
    ];
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut expected: Vec<String> = files.iter().map(|f| (*f).to_owned()).collect();
    expected.sort();
    assert_eq!(names, expected);
    for file in files {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
    let sans = san_names(&first.serving().cert_pem);
    for name in ["localhost", "127.0.0.1", "::1"] {
        assert!(sans.iter().any(|s| s == name), "{name} in {sans:?}");
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_ascii_lowercase();
    if host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        assert!(sans.contains(&host), "host name {host} in {sans:?}");
    }

    // A second start reuses everything.
    let second = Pki::load_or_create(&dir, &[]).unwrap();
    assert_eq!(second.ca_cert_pem(), first.ca_cert_pem());
    assert_eq!(second.serving(), first.serving());
    assert_eq!(second.admin(), first.admin());
    assert_eq!(second.viewer(), first.viewer());

    // A new host name re-issues only the serving certificate.
    let third = Pki::load_or_create(&dir, &["arc.example.org".into(), "192.0.2.7".into()]).unwrap();
    assert_eq!(third.ca_cert_pem(), first.ca_cert_pem());
    assert_ne!(third.serving(), first.serving());
    assert_eq!(third.admin(), first.admin());
    let sans = san_names(&third.serving().cert_pem);
    assert!(
        sans.contains(&"arc.example.org".to_owned()) && sans.contains(&"192.0.2.7".to_owned()),
        "{sans:?}"
    );
    assert_eq!(mode(&dir.join("apiserver.key")), 0o600);
    assert!(matches!(
        Pki::load_or_create(&dir, &["not a host".into()]),
        Err(PkiError::InvalidHostName { .. })
    ));

    // A key that no longer matches its certificate (a crash between the two writes) is repaired.
    std::fs::write(dir.join("viewer.key"), read(&dir.join("admin.key"))).unwrap();
    // A stale temporary file is removed, a loosened mode is tightened.
    std::fs::write(dir.join(".admin.crt.tmp-1-0"), "partial").unwrap();
    std::fs::set_permissions(
        dir.join("admin.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    // The CA certificate lost after its key was written is re-created from the key; what it
    // signed stays valid.
    std::fs::remove_file(dir.join("ca.crt")).unwrap();
    let fourth =
        Pki::load_or_create(&dir, &["arc.example.org".into(), "192.0.2.7".into()]).unwrap();
    assert_ne!(fourth.viewer(), first.viewer());
    assert_eq!(fourth.admin(), first.admin());
    assert_eq!(fourth.serving(), third.serving());
    assert!(!dir.join(".admin.crt.tmp-1-0").exists());
    assert_eq!(mode(&dir.join("admin.key")), 0o600);
    assert_eq!(mode(&dir.join("ca.crt")), 0o600);
    let authenticator =
        ClientCertAuthenticator::new(std::slice::from_ref(fourth.ca_cert_der())).unwrap();
    for (creds, user, group) in [
        (fourth.admin(), "admin", "system:masters"),
        (fourth.viewer(), "viewer", "arc:viewers"),
    ] {
        assert_eq!(
            authenticator.authenticate(&[creds.cert_der().unwrap()]),
            Authentication::Authenticated(Identity {
                user: user.into(),
                groups: vec![group.into(), "system:authenticated".into()]
            })
        );
    }
    // Certificates issued after a reload chain to the same CA.
    let alice = fourth.issue_client_cert("alice", &["dev"]).unwrap();
    let first_authenticator =
        ClientCertAuthenticator::new(std::slice::from_ref(first.ca_cert_der())).unwrap();
    assert!(matches!(
        first_authenticator.authenticate(&[alice.cert_der().unwrap()]),
        Authentication::Authenticated(Identity { ref user, .. }) if user == "alice"
    ));

    // A CA certificate without its key is an error naming the key, not a silent new CA.
    std::fs::remove_file(dir.join("ca.key")).unwrap();
    let error = Pki::load_or_create(&dir, &[]).unwrap_err();
    assert!(matches!(error, PkiError::MissingCaKey { .. }), "{error}");
    assert!(error.to_string().contains("ca.key"), "{error}");
    assert_eq!(
        read(&dir.join("ca.crt")),
        fourth.ca_cert_pem(),
        "the CA certificate is kept"
    );
}

#[test]
fn kubeconfig_files_are_private_and_complete() {
    let data = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(&data.path().join("pki"), &[]).unwrap();
    let path = data.path().join("admin.kubeconfig");
    kubeconfig::write_admin(&path, &pki, "https://127.0.0.1:6443").unwrap();
    assert_eq!(mode(&path), 0o600);
    let parsed = kube::config::Kubeconfig::read_from(&path).unwrap();
    assert_eq!(parsed.current_context.as_deref(), Some("arc"));
    let cluster = parsed.clusters[0].cluster.as_ref().unwrap();
    assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:6443"));
    let decode = |s: &str| {
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(s).unwrap()).unwrap()
    };
    assert_eq!(
        decode(cluster.certificate_authority_data.as_deref().unwrap()),
        pki.ca_cert_pem()
    );
    let user = parsed.auth_infos[0].auth_info.as_ref().unwrap();
    assert_eq!(
        decode(user.client_certificate_data.as_deref().unwrap()),
        pki.admin().cert_pem
    );
    assert!(matches!(
        kubeconfig::write_admin(&path, &pki, "http://127.0.0.1:6443"),
        Err(kubeconfig::KubeconfigError::NotHttps { .. })
    ));
    assert!(matches!(
        kubeconfig::write_admin(&data.path().join("missing/dir/k"), &pki, "https://h:1"),
        Err(kubeconfig::KubeconfigError::Write { .. })
    ));
}
