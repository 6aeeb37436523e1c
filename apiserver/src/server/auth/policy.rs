//! Authorization: the [`Authorizer`] interface and the standalone [`LocalPolicy`].

use std::future::Future;
use std::pin::Pin;

use super::{Identity, RequestAttributes, is_always_allowed_path};
use crate::server::pki::{ADMIN_GROUP, VIEWER_GROUP};

/// Non-resource paths every authenticated user may read (upstream `system:discovery`); a
/// trailing `*` matches any continuation.
const DISCOVERY_PATHS: [&str; 8] = [
    "/api",
    "/api/*",
    "/apis",
    "/apis/*",
    "/openapi",
    "/openapi/*",
    "/version",
    "/version/",
];

/// An authorization decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The request may proceed.
    Allow,
    /// The request is forbidden; the reason (if any) is appended to the 403 message.
    Deny {
        /// Why, e.g. a SubjectAccessReview's `status.reason`.
        reason: Option<String>,
    },
}

/// Decides whether an identity may do what a request asks.
pub trait Authorizer: Send + Sync + 'static {
    /// The decision for `identity` doing `attributes`.
    fn authorize<'a>(
        &'a self,
        identity: &'a Identity,
        attributes: &'a RequestAttributes,
    ) -> Pin<Box<dyn Future<Output = Decision> + Send + 'a>>;
}

/// The standalone policy: the admin groups may do everything; the read-only groups may
/// `get`/`list`/`watch` every resource except core Secrets and `GET` every non-resource path;
/// every authenticated user may read the discovery, OpenAPI and version paths; health paths are
/// open to all. Everything else is denied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalPolicy {
    /// Groups allowed everything (default `system:masters`).
    pub admin_groups: Vec<String>,
    /// Groups allowed to read (default `arc:viewers`).
    pub read_only_groups: Vec<String>,
}

impl Default for LocalPolicy {
    fn default() -> Self {
        LocalPolicy {
            admin_groups: vec![ADMIN_GROUP.to_owned()],
            read_only_groups: vec![VIEWER_GROUP.to_owned()],
        }
    }
}

impl LocalPolicy {
    /// The decision, synchronously.
    pub fn decide(&self, identity: &Identity, attributes: &RequestAttributes) -> Decision {
        if is_always_allowed_path(&attributes.path) && attributes.resource.is_none() {
            return Decision::Allow;
        }
        if identity.is_anonymous() {
            return Decision::Deny { reason: None };
        }
        if self.admin_groups.iter().any(|g| identity.in_group(g)) {
            return Decision::Allow;
        }
        let reads = attributes.is_read_only();
        if reads && self.read_only_groups.iter().any(|g| identity.in_group(g)) {
            let secret = attributes
                .resource
                .as_ref()
                .is_some_and(|r| r.api_group.is_empty() && r.resource == "secrets");
            if !secret {
                return Decision::Allow;
            }
        }
        if reads && attributes.resource.is_none() && is_discovery_path(&attributes.path) {
            return Decision::Allow;
        }
        Decision::Deny { reason: None }
    }
}

impl Authorizer for LocalPolicy {
    fn authorize<'a>(
        &'a self,
        identity: &'a Identity,
        attributes: &'a RequestAttributes,
    ) -> Pin<Box<dyn Future<Output = Decision> + Send + 'a>> {
        let decision = self.decide(identity, attributes);
        Box::pin(std::future::ready(decision))
    }
}

fn is_discovery_path(path: &str) -> bool {
    DISCOVERY_PATHS.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => path == *p,
    })
}
