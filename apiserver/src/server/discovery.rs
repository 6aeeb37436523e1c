//! Legacy and aggregated discovery documents built from the registry.
//!
//! Legacy: `/apis` (`APIGroupList`), `/apis/{g}` (`APIGroup`), `/apis/{g}/{v}` and `/api/v1`
//! (`APIResourceList`), `/api` (`APIVersions`). Aggregated (`apidiscovery.k8s.io/v2` and
//! `v2beta1` `APIGroupDiscoveryList`): `/apis` (every named group) and `/api` (the core group),
//! answered only when the Accept header asks for it, with its own Content-Type and an ETag.
//! Groups are ordered as kube-apiserver orders them (group priority, then name), versions
//! newest-stable first, resources by name.

use std::cmp::Ordering;

use base64::Engine;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256, Sha512};

use super::registry::ResourceKind;

/// The verbs of every served resource.
pub const RESOURCE_VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
/// The verbs of a `/status` subresource.
pub const STATUS_VERBS: [&str; 3] = ["get", "patch", "update"];

/// What a discovery request (`/apis` or `/api`) is answered with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiscoveryFormat {
    /// `APIGroupList` / `APIVersions`, Content-Type `application/json`.
    Legacy,
    /// `apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`.
    AggregatedV2,
    /// `apidiscovery.k8s.io/v2beta1` `APIGroupDiscoveryList` (client-go 1.27–1.29).
    AggregatedV2beta1,
}

impl DiscoveryFormat {
    /// The response Content-Type. client-go checks the g/v/as parameters of the aggregated ones.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Legacy => "application/json",
            Self::AggregatedV2 => {
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
            }
            Self::AggregatedV2beta1 => {
                "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
            }
        }
    }

    fn api_version(self) -> &'static str {
        match self {
            Self::AggregatedV2beta1 => "apidiscovery.k8s.io/v2beta1",
            _ => "apidiscovery.k8s.io/v2",
        }
    }
}

/// Picks the format for an `Accept` header: the first clause we can satisfy. No header (or
/// plain JSON, `*/*`) means legacy; `None` means nothing acceptable (answer 406).
pub fn negotiate_discovery(accept: Option<&str>) -> Option<DiscoveryFormat> {
    let accept = accept.map(str::trim).unwrap_or("");
    if accept.is_empty() {
        return Some(DiscoveryFormat::Legacy);
    }
    for clause in accept.split(',') {
        let mut parts = clause.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        if !matches!(media.as_str(), "application/json" | "application/*" | "*/*") {
            continue;
        }
        let (mut as_, mut g, mut v) = (None, None, None);
        for param in parts {
            if let Some((k, val)) = param.split_once('=') {
                let val = val.trim().trim_matches('"');
                match k.trim() {
                    "as" => as_ = Some(val),
                    "g" => g = Some(val),
                    "v" => v = Some(val),
                    _ => {}
                }
            }
        }
        match (as_, g, v) {
            (None, _, _) => return Some(DiscoveryFormat::Legacy),
            (Some("APIGroupDiscoveryList"), Some("apidiscovery.k8s.io"), Some("v2")) => {
                return Some(DiscoveryFormat::AggregatedV2);
            }
            (Some("APIGroupDiscoveryList"), Some("apidiscovery.k8s.io"), Some("v2beta1")) => {
                return Some(DiscoveryFormat::AggregatedV2beta1);
            }
            _ => continue,
        }
    }
    None
}

/// The ETag of a discovery body: the quoted uppercase hex SHA-512 of its bytes (as
/// kube-apiserver's aggregated discovery computes it).
pub fn etag(body: &[u8]) -> String {
    format!("\"{}\"", hex::encode_upper(Sha512::digest(body)))
}

/// Whether an `If-None-Match` header value matches `etag` (then answer 304 without a body).
pub fn if_none_match(header: Option<&str>, etag: &str) -> bool {
    header.is_some_and(|h| {
        h.split(',')
            .map(str::trim)
            .any(|t| t == etag || t == "*" || t.strip_prefix("W/") == Some(etag))
    })
}

/// Upstream group priority (kube-apiserver `apiVersionPriorities`); other groups get the
/// priority of CRD/aggregated groups.
fn group_priority(group: &str) -> i64 {
    match group {
        "" => 18000,
        "events.k8s.io" => 17750,
        _ => 1000,
    }
}

/// kube-aware version order: GA before beta before alpha, higher numbers first, then
/// anything else alphabetically (apimachinery `CompareKubeAwareVersionStrings`, reversed to
/// sort newest first).
fn compare_versions(a: &str, b: &str) -> Ordering {
    fn parse(v: &str) -> Option<(u64, u8, u64)> {
        let rest = v.strip_prefix('v')?;
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let major: u64 = rest[..digits].parse().ok()?;
        let tail = &rest[digits..];
        if tail.is_empty() {
            return Some((major, 2, 0));
        }
        let (stage, num) = if let Some(n) = tail.strip_prefix("beta") {
            (1, n)
        } else if let Some(n) = tail.strip_prefix("alpha") {
            (0, n)
        } else {
            return None;
        };
        Some((major, stage, num.parse().ok()?))
    }
    match (parse(a), parse(b)) {
        (Some((ma, sa, na)), Some((mb, sb, nb))) => sb.cmp(&sa).then(mb.cmp(&ma)).then(nb.cmp(&na)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// The named groups (not core), ordered; each with its versions, newest first.
fn groups(kinds: &[ResourceKind]) -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for k in kinds.iter().filter(|k| !k.group.is_empty()) {
        match out.iter_mut().find(|(g, _)| *g == k.group) {
            Some((_, versions)) if !versions.contains(&k.version) => versions.push(k.version),
            Some(_) => {}
            None => out.push((k.group, vec![k.version])),
        }
    }
    for (_, versions) in &mut out {
        versions.sort_by(|a, b| compare_versions(a, b));
    }
    out.sort_by(|(a, _), (b, _)| group_priority(b).cmp(&group_priority(a)).then(a.cmp(b)));
    out
}

fn group_version(group: &str, version: &str) -> Value {
    json!({"groupVersion": format!("{group}/{version}"), "version": version})
}

fn api_group_value(group: &str, versions: &[&str]) -> Value {
    json!({
        "name": group,
        "versions": versions.iter().map(|v| group_version(group, v)).collect::<Vec<_>>(),
        "preferredVersion": group_version(group, versions[0]),
    })
}

/// `GET /apis` (legacy): the `APIGroupList` of every named group.
pub fn api_group_list(kinds: &[ResourceKind]) -> Value {
    let groups: Vec<Value> = groups(kinds)
        .iter()
        .map(|(g, vs)| api_group_value(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/{group}`: the `APIGroup`, or `None` if the group is not served.
pub fn api_group(kinds: &[ResourceKind], group: &str) -> Option<Value> {
    let groups = groups(kinds);
    let (g, versions) = groups.iter().find(|(g, _)| *g == group)?;
    let mut value = api_group_value(g, versions);
    let map = value.as_object_mut()?;
    let mut out = Map::new();
    out.insert("kind".into(), json!("APIGroup"));
    out.insert("apiVersion".into(), json!("v1"));
    out.append(map);
    Some(Value::Object(out))
}

/// `GET /api` (embedded mode): `APIVersions` listing `v1`, or `None` when no core kind is
/// served (then `/api` is a 404, which client-go tolerates).
pub fn api_versions(kinds: &[ResourceKind], server_address: Option<&str>) -> Option<Value> {
    let mut versions: Vec<&str> = kinds
        .iter()
        .filter(|k| k.group.is_empty())
        .map(|k| k.version)
        .collect();
    if versions.is_empty() {
        return None;
    }
    versions.sort_by(|a, b| compare_versions(a, b));
    versions.dedup();
    let addresses: Vec<Value> = server_address
        .map(|a| json!({"clientCIDR": "0.0.0.0/0", "serverAddress": a}))
        .into_iter()
        .collect();
    Some(
        json!({"kind": "APIVersions", "versions": versions, "serverAddressByClientCIDRs": addresses}),
    )
}

/// The `storageVersionHash` of a kind: base64 of the first 8 bytes of SHA-256 over
/// `group/version/kind` (apiserver `discovery.StorageVersionHash`).
pub fn storage_version_hash(kind: &ResourceKind) -> String {
    let digest = Sha256::digest(format!("{}/{}/{}", kind.group, kind.version, kind.kind));
    base64::engine::general_purpose::STANDARD.encode(&digest[..8])
}

fn sorted_kinds<'a>(
    kinds: &'a [ResourceKind],
    group: &str,
    version: &str,
) -> Vec<&'a ResourceKind> {
    let mut selected: Vec<&ResourceKind> = kinds
        .iter()
        .filter(|k| k.group == group && k.version == version)
        .collect();
    selected.sort_by(|a, b| a.plural.cmp(b.plural));
    selected
}

/// `GET /apis/{group}/{version}` or `/api/v1` (group `""`): the `APIResourceList` with one
/// entry per resource and one per `/status` subresource, or `None` if not served.
pub fn api_resource_list(kinds: &[ResourceKind], group: &str, version: &str) -> Option<Value> {
    let selected = sorted_kinds(kinds, group, version);
    if selected.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for k in selected {
        let mut r = Map::new();
        r.insert("name".into(), json!(k.plural));
        r.insert("singularName".into(), json!(k.singular));
        r.insert("namespaced".into(), json!(k.namespaced));
        r.insert("kind".into(), json!(k.kind));
        r.insert("verbs".into(), json!(RESOURCE_VERBS));
        if !k.short_names.is_empty() {
            r.insert("shortNames".into(), json!(k.short_names));
        }
        if !k.categories.is_empty() {
            r.insert("categories".into(), json!(k.categories));
        }
        r.insert("storageVersionHash".into(), json!(storage_version_hash(k)));
        resources.push(Value::Object(r));
        if k.has_status {
            resources.push(json!({
                "name": format!("{}/status", k.plural),
                "singularName": "",
                "namespaced": k.namespaced,
                "kind": k.kind,
                "verbs": STATUS_VERBS,
            }));
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
    )
}

fn aggregated_version(kinds: &[ResourceKind], group: &str, version: &str) -> Value {
    let resources: Vec<Value> = sorted_kinds(kinds, group, version)
        .into_iter()
        .map(|k| {
            let response_kind = json!({"group": k.group, "version": k.version, "kind": k.kind});
            let mut r = Map::new();
            r.insert("resource".into(), json!(k.plural));
            r.insert("responseKind".into(), response_kind.clone());
            r.insert("scope".into(), json!(if k.namespaced { "Namespaced" } else { "Cluster" }));
            r.insert("singularResource".into(), json!(k.singular));
            r.insert("verbs".into(), json!(RESOURCE_VERBS));
            if !k.short_names.is_empty() {
                r.insert("shortNames".into(), json!(k.short_names));
            }
            if !k.categories.is_empty() {
                r.insert("categories".into(), json!(k.categories));
            }
            if k.has_status {
                r.insert(
                    "subresources".into(),
                    json!([{"subresource": "status", "responseKind": response_kind, "verbs": STATUS_VERBS}]),
                );
            }
            Value::Object(r)
        })
        .collect();
    json!({"version": version, "resources": resources, "freshness": "Current"})
}

/// `GET /apis` with an aggregated Accept: every named group as an `APIGroupDiscoveryList`.
pub fn aggregated_apis(kinds: &[ResourceKind], format: DiscoveryFormat) -> Value {
    let items: Vec<Value> = groups(kinds)
        .iter()
        .map(|(g, versions)| {
            json!({
                "metadata": {"name": g},
                "versions": versions.iter().map(|v| aggregated_version(kinds, g, v)).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": format.api_version(), "metadata": {}, "items": items})
}

/// `GET /api` with an aggregated Accept: the core group (one unnamed item), or an empty list
/// when no core kind is served.
pub fn aggregated_core(kinds: &[ResourceKind], format: DiscoveryFormat) -> Value {
    let mut versions: Vec<&str> = kinds
        .iter()
        .filter(|k| k.group.is_empty())
        .map(|k| k.version)
        .collect();
    versions.sort_by(|a, b| compare_versions(a, b));
    versions.dedup();
    let items: Vec<Value> = if versions.is_empty() {
        Vec::new()
    } else {
        vec![json!({
            "metadata": {},
            "versions": versions.iter().map(|v| aggregated_version(kinds, "", v)).collect::<Vec<_>>(),
        })]
    };
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": format.api_version(), "metadata": {}, "items": items})
}

/// The body for `/apis` in `format` (legacy or aggregated).
pub fn apis(kinds: &[ResourceKind], format: DiscoveryFormat) -> Value {
    match format {
        DiscoveryFormat::Legacy => api_group_list(kinds),
        aggregated => aggregated_apis(kinds, aggregated),
    }
}

#[cfg(test)]
mod tests;
