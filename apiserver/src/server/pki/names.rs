//! The host names the serving certificate covers: normalising and validating them, the
//! machine's own name, and reading them back from a certificate.

use std::collections::BTreeSet;
use std::net::IpAddr;

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use super::PkiError;

/// The names the serving certificate must cover: the loopback names, the machine's host name
/// and the extra names, normalised (lower case, IPs in canonical form) and de-duplicated.
pub(super) fn serving_names(
    extra: &[String],
    machine: Option<&str>,
) -> Result<Vec<String>, PkiError> {
    let mut names = Vec::new();
    let mut seen = BTreeSet::new();
    let mut push = |name: String| {
        if seen.insert(name.clone()) {
            names.push(name);
        }
    };
    for fixed in ["localhost", "127.0.0.1", "::1"] {
        push(fixed.to_owned());
    }
    if let Some(host) = machine {
        match normalise_host_name(host) {
            Ok(name) => push(name),
            Err(e) => tracing::warn!(
                "leaving the machine's host name out of the serving certificate: {e}"
            ),
        }
    }
    for name in extra {
        push(normalise_host_name(name)?);
    }
    Ok(names)
}

/// Accepts an IP address (optionally in brackets) or a DNS name (letters, digits, `-`, `.`,
/// with an optional leading `*.`) and returns its canonical form.
fn normalise_host_name(name: &str) -> Result<String, PkiError> {
    let invalid = |reason: &str| PkiError::InvalidHostName {
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    let trimmed = name.trim();
    let unbracketed = trimmed
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(trimmed);
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    let lower = trimmed.trim_end_matches('.').to_ascii_lowercase();
    if lower.is_empty() {
        return Err(invalid("empty"));
    }
    if lower.len() > 253 {
        return Err(invalid("longer than 253 characters"));
    }
    let body = lower.strip_prefix("*.").unwrap_or(&lower);
    for label in body.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(invalid(
                "each dot-separated label must have 1 to 63 characters",
            ));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(invalid(
                "labels may contain only letters, digits and '-', and not start or end with '-'",
            ));
        }
    }
    Ok(lower)
}

/// The machine's host name, if it can be read.
pub(super) fn machine_host_name() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .find(|s| !s.is_empty())
}

/// DNS and IP names in a certificate's subjectAltName, normalised like [`serving_names`].
pub(super) fn san_names(cert: &X509Certificate<'_>) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => {
                    names.insert(dns.to_ascii_lowercase());
                }
                GeneralName::IPAddress(bytes) => {
                    let ip = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from),
                        16 => <[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from),
                        _ => None,
                    };
                    if let Some(ip) = ip {
                        names.insert(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_normalised_and_validated() {
        assert_eq!(
            normalise_host_name("Node-1.Example.").unwrap(),
            "node-1.example"
        );
        assert_eq!(normalise_host_name("[::1]").unwrap(), "::1");
        assert_eq!(normalise_host_name("192.168.1.2").unwrap(), "192.168.1.2");
        assert!(normalise_host_name("bad_name").is_err());
        assert!(normalise_host_name("").is_err());
        assert!(normalise_host_name("-x.example").is_err());
        let names =
            serving_names(&["arc.example".into(), "LOCALHOST".into()], Some("box")).unwrap();
        assert_eq!(
            names,
            ["localhost", "127.0.0.1", "::1", "box", "arc.example"]
        );
    }
}
