//! Registry authentication: which credentials of a secret directory a registry gets
//! (`username` + `password`, `token`, the `.dockerconfigjson` entry for its host),
//! `WWW-Authenticate` challenges, and bearer tokens fetched from the token endpoint per scope.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::error::Result;
use crate::secrets::{Credentials, SecretString};

/// How we authenticate to one registry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum RegistryAuth {
    /// No credentials.
    #[default]
    Anonymous,
    /// Username and password: sent as HTTP Basic, or to the token endpoint.
    Basic {
        /// User name.
        username: String,
        /// Password, or an access token used as a password.
        password: SecretString,
    },
    /// A ready bearer token, sent as is.
    Bearer(SecretString),
}

impl RegistryAuth {
    /// Picks the credentials for registry `host` (`host[:port]`) from one side's secret files:
    /// `username` + `password`; else `username` + `token` (the token as the password); else a
    /// lone `token` as a bearer token; else the `.dockerconfigjson` entry for `host`; else none.
    pub fn from_credentials(credentials: &Credentials, host: &str) -> Result<Self> {
        if let Some((username, password)) = credentials.basic() {
            return Ok(Self::Basic {
                username: username.to_string(),
                password: SecretString::new(password),
            });
        }
        match (&credentials.username, &credentials.token) {
            (Some(username), Some(token)) => {
                return Ok(Self::Basic {
                    username: username.clone(),
                    password: token.clone(),
                });
            }
            (None, Some(token)) => return Ok(Self::Bearer(token.clone())),
            _ => {}
        }
        Ok(match credentials.docker_auth_for(host)? {
            Some((username, password)) => Self::Basic { username, password },
            None => Self::Anonymous,
        })
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    /// HTTP Basic.
    Basic,
    /// Token authentication: get a token from `realm`.
    Bearer {
        /// The token endpoint.
        realm: String,
        /// The `service` parameter to pass on.
        service: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` header value.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header
        .split_once(char::is_whitespace)
        .unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_auth_params(rest);
    let realm = params.get("realm")?.clone();
    Some(Challenge::Bearer {
        realm,
        service: params.get("service").cloned(),
    })
}

fn parse_auth_params(input: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut chars = input.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.is_empty() || chars.next() != Some('=') {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ','))
                .collect::<String>()
                .trim()
                .to_string();
        }
        out.insert(key.trim().to_ascii_lowercase(), value);
    }
    out
}

/// Cached authentication state of one registry client: the challenge and tokens per scope.
#[derive(Debug, Default)]
pub(crate) struct AuthState {
    /// The challenge the registry answered with, once seen.
    pub challenge: Option<Challenge>,
    /// Bearer tokens by scope string, with their expiry.
    pub tokens: HashMap<String, (String, Instant)>,
}

/// Lifetime assumed for a token whose response gives none (the distribution spec's default).
pub(crate) const TOKEN_DEFAULT_LIFETIME_SECS: u64 = 60;
/// Tokens are renewed this long before they expire.
pub(crate) const TOKEN_RENEW_MARGIN_SECS: u64 = 10;

impl AuthState {
    /// The `Authorization` header for `scope`, if we have what it takes.
    pub fn header(&self, auth: &RegistryAuth, scope: &str) -> Option<String> {
        match (&self.challenge, auth) {
            (_, RegistryAuth::Bearer(token)) => Some(format!("Bearer {}", token.expose())),
            (Some(Challenge::Basic), RegistryAuth::Basic { username, password }) => {
                Some(basic_header(username, password))
            }
            (Some(Challenge::Bearer { .. }), _) => self
                .tokens
                .get(scope)
                .filter(|(_, expiry)| {
                    *expiry > Instant::now() + Duration::from_secs(TOKEN_RENEW_MARGIN_SECS)
                })
                .map(|(t, _)| format!("Bearer {t}")),
            _ => None,
        }
    }
}

/// An HTTP Basic `Authorization` header value.
pub(crate) fn basic_header(username: &str, password: &SecretString) -> String {
    format!(
        "Basic {}",
        BASE64.encode(format!("{username}:{}", password.expose()))
    )
}

/// The token endpoint's answer.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge("Basic realm=\"Registry Realm\""),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into())
            })
        );
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn credentials_choice() {
        let dir = tempfile::tempdir().unwrap();
        let load = || Credentials::load(dir.path()).unwrap();
        assert_eq!(
            RegistryAuth::from_credentials(&load(), "h:5000").unwrap(),
            RegistryAuth::Anonymous
        );
        let auth = BASE64.encode("bob:secret");
        std::fs::write(
            dir.path().join(".dockerconfigjson"),
            format!(r#"{{"auths":{{"https://h:5000/v1/":{{"auth":"{auth}"}}}}}}"#),
        )
        .unwrap();
        assert_eq!(
            RegistryAuth::from_credentials(&load(), "h:5000").unwrap(),
            RegistryAuth::Basic {
                username: "bob".into(),
                password: SecretString::new("secret")
            }
        );
        assert_eq!(
            RegistryAuth::from_credentials(&load(), "other").unwrap(),
            RegistryAuth::Anonymous
        );
        std::fs::write(dir.path().join("token"), "tok\n").unwrap();
        assert_eq!(
            RegistryAuth::from_credentials(&load(), "h:5000").unwrap(),
            RegistryAuth::Bearer(SecretString::new("tok"))
        );
        std::fs::write(dir.path().join("username"), "alice").unwrap();
        assert_eq!(
            RegistryAuth::from_credentials(&load(), "h:5000").unwrap(),
            RegistryAuth::Basic {
                username: "alice".into(),
                password: SecretString::new("tok")
            }
        );
    }
}
