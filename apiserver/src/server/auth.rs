//! Authentication (client certificates) and authorization (admin and read-only groups).
//!
//! The TLS layer ([`crate::server::tls`]) accepts any client certificate whose owner proves
//! possession of its key and records the chain in [`ConnectionInfo`]. The [`layer`] middleware
//! then, for every request:
//!
//! 1. parses the request into [`RequestAttributes`] (verb, resource, namespace, name, … — the
//!    upstream RequestInfo rules, [`request_attributes`]);
//! 2. authenticates it: a chain that verifies against the client CA with EKU clientAuth gives
//!    [`Identity`] `{user: CN, groups: O values + system:authenticated}`; no certificate is
//!    anonymous; a certificate that does not verify is rejected (401);
//! 3. lets `/healthz`, `/livez`, `/readyz` and their sub-paths through for anyone; answers
//!    every other anonymous or rejected request with the `Unauthorized` Status (401);
//! 4. applies `Impersonate-User` / `Impersonate-Group` headers (allowed only where the policy
//!    allows the `impersonate` verb, i.e. for administrators) and strips them;
//! 5. asks the [`Authorizer`] (by default [`LocalPolicy`]) and answers a denial with the
//!    `Forbidden` Status (403) worded exactly as kube-apiserver words it;
//! 6. hands the request on with the [`Identity`] and [`RequestAttributes`] as extensions.
//!
//! Verification of a connection's chain is done once per connection and remembered.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, Request, StatusCode};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;

use crate::server::pki::Pki;
use crate::server::tls::ConnectionInfo;

mod attributes;
mod policy;
mod status;

pub use attributes::{
    RequestAttributes, ResourceAttributes, is_always_allowed_path, request_attributes,
};
pub use policy::{Authorizer, Decision, LocalPolicy};
use status::status_response;
pub use status::{forbidden_message, forbidden_response, unauthorized_response};

/// Group every authenticated user belongs to.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";
/// User name of requests without credentials.
pub const ANONYMOUS_USER: &str = "system:anonymous";
/// Group of requests without credentials.
pub const UNAUTHENTICATED_GROUP: &str = "system:unauthenticated";
/// Header naming the user to impersonate.
pub const IMPERSONATE_USER_HEADER: &str = "impersonate-user";
/// Header (repeatable) naming a group to impersonate.
pub const IMPERSONATE_GROUP_HEADER: &str = "impersonate-group";
/// Prefix of the other impersonation headers (`Impersonate-Uid`, `Impersonate-Extra-*`),
/// which are stripped and otherwise ignored.
pub const IMPERSONATE_HEADER_PREFIX: &str = "impersonate-";

/// Who sent a request. Handlers read it from the request extensions
/// (`Extension<Identity>`), e.g. for `fieldManager` defaults and logs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    /// The user name (a client certificate's CN).
    pub user: String,
    /// The groups (a client certificate's O values, then `system:authenticated`).
    pub groups: Vec<String>,
}

impl Identity {
    /// The identity of a request without credentials.
    pub fn anonymous() -> Self {
        Identity {
            user: ANONYMOUS_USER.to_owned(),
            groups: vec![UNAUTHENTICATED_GROUP.to_owned()],
        }
    }

    /// Whether this is [`Identity::anonymous`].
    pub fn is_anonymous(&self) -> bool {
        self.user == ANONYMOUS_USER
    }

    /// Whether the identity is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

/// A failure to set up authentication.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A client CA certificate cannot be used as a trust anchor.
    #[error("client CA certificate not usable as a trust anchor: {0}")]
    ClientCa(String),
}

/// The outcome of authenticating a connection's client certificate chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Authentication {
    /// The chain verified.
    Authenticated(Identity),
    /// No certificate was presented.
    Anonymous,
    /// A certificate was presented but is not acceptable; the reason is logged, never sent.
    Rejected(String),
}

/// Verifies client certificate chains against a CA bundle (x509 authentication: user = CN,
/// groups = O values + `system:authenticated`).
#[derive(Debug)]
pub struct ClientCertAuthenticator {
    id: u64,
    verifier: Arc<dyn ClientCertVerifier>,
}

/// Distinguishes authenticators so a connection's remembered result is used only by the one
/// that produced it.
static NEXT_AUTHENTICATOR_ID: AtomicU64 = AtomicU64::new(1);

/// A connection's remembered authentication: (authenticator id, result, leaf `notAfter`).
pub(crate) type AuthenticationMemo = (u64, Authentication, i64);

impl ClientCertAuthenticator {
    /// An authenticator trusting the given CA certificates.
    pub fn new(client_cas: &[CertificateDer<'static>]) -> Result<Self, AuthError> {
        let mut roots = RootCertStore::empty();
        for ca in client_cas {
            roots
                .add(ca.clone())
                .map_err(|e| AuthError::ClientCa(e.to_string()))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .map_err(|e| AuthError::ClientCa(e.to_string()))?;
        Ok(ClientCertAuthenticator {
            id: NEXT_AUTHENTICATOR_ID.fetch_add(1, Ordering::Relaxed),
            verifier,
        })
    }

    /// Authenticates a peer chain (leaf first).
    pub fn authenticate(&self, chain: &[CertificateDer<'static>]) -> Authentication {
        self.authenticate_with_expiry(chain).0
    }

    fn authenticate_with_expiry(&self, chain: &[CertificateDer<'static>]) -> (Authentication, i64) {
        let Some((leaf, intermediates)) = chain.split_first() else {
            return (Authentication::Anonymous, i64::MAX);
        };
        if let Err(e) = self
            .verifier
            .verify_client_cert(leaf, intermediates, UnixTime::now())
        {
            return (
                Authentication::Rejected(format!("client certificate: {e}")),
                0,
            );
        }
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf) else {
            return (
                Authentication::Rejected("client certificate cannot be parsed".to_owned()),
                0,
            );
        };
        let user = cert
            .subject()
            .iter_common_name()
            .filter_map(|a| a.as_str().ok())
            .last()
            .unwrap_or("")
            .to_owned();
        if user.is_empty() {
            return (
                Authentication::Rejected("client certificate has no common name".to_owned()),
                0,
            );
        }
        let mut groups: Vec<String> = cert
            .subject()
            .iter_organization()
            .filter_map(|a| a.as_str().ok())
            .map(str::to_owned)
            .collect();
        groups.push(AUTHENTICATED_GROUP.to_owned());
        (
            Authentication::Authenticated(Identity { user, groups }),
            cert.validity().not_after.timestamp(),
        )
    }

    /// Authenticates a connection, remembering the result for its later requests.
    pub fn authenticate_connection(&self, connection: &ConnectionInfo) -> Authentication {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let memo = connection.authentication.get_or_init(|| {
            let (result, valid_until) =
                self.authenticate_with_expiry(&connection.peer_certificates);
            (self.id, result, valid_until)
        });
        match memo {
            (id, result, valid_until) if *id == self.id && now <= *valid_until => result.clone(),
            (id, _, _) if *id == self.id => {
                Authentication::Rejected("client certificate has expired".to_owned())
            }
            _ => self.authenticate(&connection.peer_certificates),
        }
    }
}

/// Authentication and authorization for the API server, shared by every request.
pub struct Auth {
    authenticator: ClientCertAuthenticator,
    authorizer: Arc<dyn Authorizer>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("authenticator", &self.authenticator)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Authentication by `authenticator`, authorization by `authorizer`.
    pub fn new(authenticator: ClientCertAuthenticator, authorizer: Arc<dyn Authorizer>) -> Self {
        Auth {
            authenticator,
            authorizer,
        }
    }

    /// The embedded server's setup: client certificates signed by the PKI's CA, authorized by
    /// the default [`LocalPolicy`].
    pub fn from_pki(pki: &Pki) -> Result<Self, AuthError> {
        Ok(Auth::new(
            ClientCertAuthenticator::new(std::slice::from_ref(pki.ca_cert_der()))?,
            Arc::new(LocalPolicy::default()),
        ))
    }

    /// Authenticates and authorizes `request`. On success returns the identity and attributes
    /// (and strips the impersonation headers); otherwise the 401/403 response to send.
    pub async fn check<B>(
        &self,
        request: &mut Request<B>,
    ) -> Result<(Identity, RequestAttributes), Response> {
        let attributes = request_attributes(
            request.method(),
            request.uri().path(),
            request.uri().query(),
        );
        let connection = request.extensions().get::<Arc<ConnectionInfo>>().cloned();
        let authentication = match &connection {
            Some(c) => self.authenticator.authenticate_connection(c),
            None => Authentication::Anonymous,
        };
        let remote = connection.as_ref().map(|c| c.remote_addr);

        if is_always_allowed_path(&attributes.path) && !attributes.is_resource_request() {
            strip_impersonation_headers(request.headers_mut());
            let identity = match authentication {
                Authentication::Authenticated(identity) => identity,
                _ => Identity::anonymous(),
            };
            return Ok((identity, attributes));
        }
        let identity = match authentication {
            Authentication::Authenticated(identity) => identity,
            Authentication::Anonymous => {
                tracing::debug!(?remote, path = %attributes.path, "unauthorized: no client certificate");
                return Err(unauthorized_response());
            }
            Authentication::Rejected(reason) => {
                tracing::debug!(?remote, path = %attributes.path, %reason, "unauthorized");
                return Err(unauthorized_response());
            }
        };

        let identity = self.impersonate(identity, request.headers()).await?;
        strip_impersonation_headers(request.headers_mut());

        match self.authorizer.authorize(&identity, &attributes).await {
            Decision::Allow => Ok((identity, attributes)),
            Decision::Deny { reason } => {
                tracing::debug!(
                    user = %identity.user, verb = %attributes.verb, path = %attributes.path,
                    "forbidden"
                );
                Err(forbidden_response(
                    &identity,
                    &attributes,
                    reason.as_deref(),
                ))
            }
        }
    }

    /// Applies `Impersonate-User`/`Impersonate-Group`, if present and allowed.
    async fn impersonate(
        &self,
        identity: Identity,
        headers: &HeaderMap,
    ) -> Result<Identity, Response> {
        let user = headers
            .get(IMPERSONATE_USER_HEADER)
            .map(|v| v.to_str().unwrap_or_default().to_owned());
        let groups: Vec<String> = headers
            .get_all(IMPERSONATE_GROUP_HEADER)
            .iter()
            .map(|v| v.to_str().unwrap_or_default().to_owned())
            .collect();
        let Some(user) = user else {
            if groups.is_empty() {
                return Ok(identity);
            }
            return Err(status_response(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!("requested {groups:?} without impersonating a user"),
                None,
            ));
        };
        let mut checks = vec![("users", user.clone())];
        checks.extend(groups.iter().map(|g| ("groups", g.clone())));
        for (resource, name) in checks {
            let attributes = RequestAttributes {
                verb: "impersonate".to_owned(),
                path: String::new(),
                resource: Some(ResourceAttributes {
                    resource: resource.to_owned(),
                    name,
                    ..ResourceAttributes::default()
                }),
            };
            if let Decision::Deny { reason } =
                self.authorizer.authorize(&identity, &attributes).await
            {
                return Err(forbidden_response(
                    &identity,
                    &attributes,
                    reason.as_deref(),
                ));
            }
        }
        let mut impersonated_groups = groups;
        if user != ANONYMOUS_USER && !impersonated_groups.iter().any(|g| g == AUTHENTICATED_GROUP) {
            impersonated_groups.push(AUTHENTICATED_GROUP.to_owned());
        }
        tracing::debug!(user = %identity.user, as_user = %user, "impersonating");
        Ok(Identity {
            user,
            groups: impersonated_groups,
        })
    }
}

fn strip_impersonation_headers(headers: &mut HeaderMap) {
    let names: Vec<_> = headers
        .keys()
        .filter(|k| k.as_str().starts_with(IMPERSONATE_HEADER_PREFIX))
        .cloned()
        .collect();
    for name in names {
        headers.remove(name);
    }
}

/// The middleware enforcing authentication and authorization on every request:
/// `Router::new()…​.layer(auth::layer(auth))`. Allowed requests carry [`Identity`] and
/// [`RequestAttributes`] extensions; others get the 401/403 Status.
pub fn layer(auth: Arc<Auth>) -> AuthLayer {
    AuthLayer { auth }
}

/// The [`tower::Layer`] returned by [`layer`].
#[derive(Clone, Debug)]
pub struct AuthLayer {
    auth: Arc<Auth>,
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            auth: self.auth.clone(),
        }
    }
}

/// The [`tower::Service`] wrapping a router with [`Auth`].
#[derive(Clone, Debug)]
pub struct AuthService<S> {
    inner: S,
    auth: Arc<Auth>,
}

impl<S> tower::Service<Request<Body>> for AuthService<S>
where
    S: tower::Service<Request<Body>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        // The clone is not ready; keep the ready one for this call (tower's usual pattern).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let auth = self.auth.clone();
        Box::pin(async move {
            match auth.check(&mut request).await {
                Ok((identity, attributes)) => {
                    request.extensions_mut().insert(identity);
                    request.extensions_mut().insert(attributes);
                    inner.call(request).await
                }
                Err(response) => Ok(response),
            }
        })
    }
}

#[cfg(test)]
mod tests;
