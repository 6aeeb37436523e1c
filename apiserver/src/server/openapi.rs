//! OpenAPI documents built from the registry: v3 per group-version (`/openapi/v3/apis/{g}/{v}`,
//! `/openapi/v3/api/v1` for core kinds in embedded mode), the v3 root listing exactly those
//! with content-hash URLs, and one Swagger 2.0 document (`/openapi/v2`).
//!
//! Every document is self-contained (each `$ref` resolves inside it). Kind definitions carry
//! `x-kubernetes-group-version-kind` lists and every operation a single GVK object, an
//! `x-kubernetes-action`, an `operationId` and its parameters — `fieldValidation`, `dryRun`,
//! `fieldManager` on writes, `force` on PATCH — which is what `kubectl explain` and kubectl's
//! server-side field validation look for. The v2 document is also served as gnostic protobuf,
//! the only form kubectl 1.27/1.28 `explain` reads.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha512};

use super::registry::ResourceKind;

pub mod definitions;
pub mod paths;
pub mod protobuf;

use definitions::{Flavour, definition_name, kind_definition, list_definition, meta_definitions};
use paths::kind_paths;
pub use protobuf::PROTOBUF_V2_CONTENT_TYPE;

fn info() -> Value {
    json!({"title": "ARC API (arc.opendefense.cloud)", "version": env!("CARGO_PKG_VERSION")})
}

/// The group-versions served by `kinds`, in registry order, without duplicates.
fn group_versions(kinds: &[ResourceKind]) -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for k in kinds {
        if !out.contains(&(k.group, k.version)) {
            out.push((k.group, k.version));
        }
    }
    out
}

/// The key of a group-version in the v3 root: `apis/{g}/{v}`, or `api/v1` for core.
pub fn v3_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The OpenAPI 3.0 document of one group-version, or `None` if no kind of it is served.
pub fn v3_document(kinds: &[ResourceKind], group: &str, version: &str) -> Option<Value> {
    let selected: Vec<&ResourceKind> = kinds
        .iter()
        .filter(|k| k.group == group && k.version == version)
        .collect();
    if selected.is_empty() {
        return None;
    }
    let mut schemas: BTreeMap<String, Value> = meta_definitions(Flavour::V3).into_iter().collect();
    let mut paths = Map::new();
    for k in &selected {
        schemas.insert(definition_name(k, k.kind), kind_definition(k, Flavour::V3));
        schemas.insert(
            definition_name(k, k.list_kind),
            list_definition(k, Flavour::V3),
        );
        for (path, item) in kind_paths(k, Flavour::V3) {
            paths.insert(path, item);
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": info(),
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

/// The Swagger 2.0 document of every served kind.
pub fn v2_document(kinds: &[ResourceKind]) -> Value {
    let mut definitions: BTreeMap<String, Value> =
        meta_definitions(Flavour::V2).into_iter().collect();
    let mut paths = Map::new();
    for k in kinds {
        definitions.insert(definition_name(k, k.kind), kind_definition(k, Flavour::V2));
        definitions.insert(
            definition_name(k, k.list_kind),
            list_definition(k, Flavour::V2),
        );
        for (path, item) in kind_paths(k, Flavour::V2) {
            paths.insert(path, item);
        }
    }
    json!({"swagger": "2.0", "info": info(), "paths": paths, "definitions": definitions})
}

/// The uppercase hex SHA-512 of a served document (the `hash` in its URL, and its ETag).
pub fn content_hash(body: &[u8]) -> String {
    hex::encode_upper(Sha512::digest(body))
}

/// One served document: its compact JSON bytes and their hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServedDocument {
    /// The document as served (compact JSON).
    pub body: Vec<u8>,
    /// Uppercase hex SHA-512 of `body`.
    pub hash: String,
}

impl ServedDocument {
    fn new(document: &Value) -> Self {
        let body = serde_json::to_vec(document).expect("a JSON value serialises");
        let hash = content_hash(&body);
        Self { body, hash }
    }

    /// The `ETag` header value: the quoted hash.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.hash)
    }
}

/// How to answer `GET /openapi/v3/<key>?hash=…` (kube-openapi handler3 behaviour).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HashCheck {
    /// No `hash` parameter: 200, ordinary caching.
    Unpinned,
    /// The current hash: 200 with `Cache-Control: public, immutable` and a far `Expires`.
    Current,
    /// A stale hash: 301 to this location (the current URL).
    Redirect(String),
}

/// The representation of `/openapi/v2` an Accept header asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum V2Format {
    /// Swagger 2.0 JSON (`application/json`, `*/*`, no Accept).
    Json,
    /// gnostic protobuf ([`PROTOBUF_V2_CONTENT_TYPE`]).
    Protobuf,
}

impl V2Format {
    /// The first Accept clause we can satisfy; `None` means 406.
    pub fn negotiate(accept: Option<&str>) -> Option<Self> {
        let accept = accept.map(str::trim).unwrap_or("");
        if accept.is_empty() {
            return Some(Self::Json);
        }
        accept.split(',').find_map(|clause| {
            let media = clause
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            match media.as_str() {
                "application/json" | "application/*" | "*/*" => Some(Self::Json),
                "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
                | "application/com.github.proto-openapi.spec.v2.v1.0+protobuf" => {
                    Some(Self::Protobuf)
                }
                _ => None,
            }
        })
    }

    /// The response Content-Type. The protobuf media type contains `@`, which Go's
    /// `mime.ParseMediaType` rejects, so (like kube-openapi's handler, which leaves it to
    /// `http.ServeContent`) protobuf is sent as `application/octet-stream`.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Protobuf => "application/octet-stream",
        }
    }
}

/// All OpenAPI documents of a registry, rendered once (they never change while serving).
#[derive(Clone, Debug)]
pub struct OpenApi {
    v3: BTreeMap<String, ServedDocument>,
    v2: ServedDocument,
    v2_protobuf: ServedDocument,
}

impl OpenApi {
    /// Renders every document for `kinds`.
    pub fn new(kinds: &[ResourceKind]) -> Self {
        let v3 = group_versions(kinds)
            .into_iter()
            .filter_map(|(g, v)| {
                Some((
                    v3_key(g, v),
                    ServedDocument::new(&v3_document(kinds, g, v)?),
                ))
            })
            .collect();
        let v2 = v2_document(kinds);
        let v2_protobuf = protobuf::encode_document(&v2);
        let v2_protobuf = ServedDocument {
            hash: content_hash(&v2_protobuf),
            body: v2_protobuf,
        };
        Self {
            v3,
            v2: ServedDocument::new(&v2),
            v2_protobuf,
        }
    }

    /// `GET /openapi/v3`: `{"paths": {"apis/g/v": {"serverRelativeURL": "/openapi/v3/apis/g/v?hash=…"}}}`,
    /// listing only the group-versions served here.
    pub fn v3_root(&self) -> Value {
        let paths: Map<String, Value> = self
            .v3
            .iter()
            .map(|(key, doc)| {
                (
                    key.clone(),
                    json!({"serverRelativeURL": server_relative_url(key, &doc.hash)}),
                )
            })
            .collect();
        json!({"paths": paths})
    }

    /// The v3 document under `key` (`apis/{g}/{v}` or `api/v1`, without leading slash).
    pub fn v3(&self, key: &str) -> Option<&ServedDocument> {
        self.v3.get(key.trim_start_matches('/'))
    }

    /// The Swagger 2.0 document (JSON).
    pub fn v2(&self) -> &ServedDocument {
        &self.v2
    }

    /// The Swagger 2.0 document in the representation `format`.
    pub fn v2_as(&self, format: V2Format) -> &ServedDocument {
        match format {
            V2Format::Json => &self.v2,
            V2Format::Protobuf => &self.v2_protobuf,
        }
    }

    /// What to do with the `hash` query parameter of a request for the document under `key`.
    pub fn check_hash(&self, key: &str, requested: Option<&str>) -> Option<HashCheck> {
        let doc = self.v3(key)?;
        Some(match requested {
            None => HashCheck::Unpinned,
            Some(h) if h == doc.hash => HashCheck::Current,
            Some(_) => {
                HashCheck::Redirect(server_relative_url(key.trim_start_matches('/'), &doc.hash))
            }
        })
    }
}

fn server_relative_url(key: &str, hash: &str) -> String {
    format!("/openapi/v3/{key}?hash={hash}")
}

#[cfg(test)]
mod tests;
