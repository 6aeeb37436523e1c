//! Validated Kubernetes names used in the configuration.

use std::fmt;

/// Why a name is not a valid DNS-1123 label.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{name}` is not a valid name: {reason}")]
pub struct InvalidName {
    /// The rejected name.
    pub name: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// A DNS-1123 label (what Kubernetes requires of a namespace name): at most 63 characters,
/// lowercase letters, digits and `-`, starting and ending with a letter or digit.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DnsLabel(String);

impl DnsLabel {
    /// Checks `name` and wraps it.
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidName> {
        let name = name.into();
        let reason = if name.is_empty() {
            Some("must not be empty")
        } else if name.len() > 63 {
            Some("must be at most 63 characters")
        } else if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            Some("may contain only lowercase letters, digits and `-`")
        } else if name.starts_with('-') || name.ends_with('-') {
            Some("must start and end with a letter or digit")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(InvalidName { name, reason }),
            None => Ok(Self(name)),
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DnsLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for DnsLabel {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_rejects() {
        assert!(DnsLabel::new("arc-system").is_ok());
        assert!(DnsLabel::new("default").is_ok());
        assert!(DnsLabel::new("").is_err());
        assert!(
            DnsLabel::new("Upper")
                .unwrap_err()
                .reason
                .contains("lowercase")
        );
        assert!(DnsLabel::new("-x").is_err());
        assert!(DnsLabel::new("a".repeat(64)).is_err());
    }
}
