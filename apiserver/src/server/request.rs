//! Request parsing: which kind, namespace, name and subresource a URL addresses, and the query
//! options Kubernetes clients send (booleans as `true|1`, the first of repeated keys wins).

use std::collections::HashMap;

use super::errors::ApiError;
use super::registry::ResourceKind;

/// What a resource URL addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Index of the kind in the server's registry.
    pub kind: usize,
    /// The namespace from the URL (`None` for cluster-scoped kinds and all-namespace requests).
    pub namespace: Option<String>,
    /// The object name, if the URL names one.
    pub name: Option<String>,
    /// The subresource (`status`), if any.
    pub subresource: Option<String>,
}

/// Subresources of namespaces that are not namespaced resources (`/api/v1/namespaces/x/status`).
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["status", "finalize"];

/// Resolves a request path against the registry. Returns `Ok(None)` for paths that are not
/// resource paths at all (discovery, health, ...), `Err(UnknownPath)` for resource-shaped paths
/// that name no served resource.
pub fn parse_target(path: &str, kinds: &[ResourceKind]) -> Result<Option<Target>, ApiError> {
    let parts: Vec<&str> = path
        .trim_start_matches('/')
        .split('/')
        .filter(|p| !p.is_empty())
        .collect();
    let (group, version, mut rest) = match parts.as_slice() {
        ["api", version, rest @ ..] if !rest.is_empty() => ("", *version, rest.to_vec()),
        ["apis", group, version, rest @ ..] if !rest.is_empty() => {
            (*group, *version, rest.to_vec())
        }
        _ => return Ok(None),
    };
    let mut namespace = None;
    if rest.len() >= 2 && rest[0] == "namespaces" {
        namespace = Some(rest[1].to_string());
        if rest.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&rest[2]) {
            rest = rest[2..].to_vec();
        }
    }
    let plural = rest[0];
    let index = kinds
        .iter()
        .position(|k| k.group == group && k.version == version && k.plural == plural)
        .ok_or(ApiError::UnknownPath)?;
    let kind = &kinds[index];
    // `namespaces/{name}[/status]` addresses the namespace object itself.
    if plural == "namespaces" && !kind.namespaced {
        let name = rest.get(1).map(|s| s.to_string());
        let subresource = rest.get(2).map(|s| s.to_string());
        if rest.len() > 3 {
            return Err(ApiError::UnknownPath);
        }
        return Ok(Some(Target {
            kind: index,
            namespace: None,
            name,
            subresource,
        }));
    }
    if namespace.is_some() && !kind.namespaced {
        return Err(ApiError::UnknownPath);
    }
    if rest.len() > 3 {
        return Err(ApiError::UnknownPath);
    }
    let name = rest.get(1).map(|s| s.to_string());
    let subresource = rest.get(2).map(|s| s.to_string());
    if let Some(sub) = &subresource
        && (sub != "status" || !kind.has_status)
    {
        return Err(ApiError::UnknownPath);
    }
    Ok(Some(Target {
        kind: index,
        namespace,
        name,
        subresource,
    }))
}

/// The query string, decoded; the first value of a repeated key wins.
#[derive(Clone, Debug, Default)]
pub struct Query(HashMap<String, String>);

impl Query {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> Self {
        let mut map = HashMap::new();
        for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = percent_decode(k);
            let v = percent_decode(v);
            map.entry(k).or_insert(v);
        }
        Self(map)
    }

    /// A parameter's value, if present (possibly empty).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A parameter's value if present and not empty.
    pub fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// A boolean parameter (`true`/`1` → true; absent, `false`, `0` → false).
    pub fn flag(&self, key: &str) -> Result<bool, ApiError> {
        match self.get(key) {
            None | Some("") | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") => Ok(true),
            Some(other) => Err(ApiError::BadRequest(format!(
                "invalid value {other:?} for boolean parameter {key}"
            ))),
        }
    }

    /// An optional boolean parameter: `None` when absent.
    pub fn optional_flag(&self, key: &str) -> Result<Option<bool>, ApiError> {
        if self.get(key).is_none() {
            Ok(None)
        } else {
            self.flag(key).map(Some)
        }
    }

    /// A non-negative integer parameter.
    pub fn integer(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.non_empty(key) {
            None => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .map(Some)
                .ok_or_else(|| {
                    ApiError::BadRequest(format!("invalid value {v:?} for parameter {key}"))
                }),
        }
    }

    /// Whether `dryRun=All` was asked for (any other value is rejected).
    pub fn dry_run(&self) -> Result<bool, ApiError> {
        match self.get("dryRun") {
            None | Some("") => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(ApiError::BadRequest(format!(
                "Invalid dry run value: {other:?}: supported values: \"All\""
            ))),
        }
    }
}

/// Decodes `%XX` escapes and `+` (as space) in a query component.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::registry::ResourceKind;
    use serde_json::json;

    fn kind(group: &'static str, plural: &'static str, namespaced: bool) -> ResourceKind {
        ResourceKind {
            group,
            version: if group.is_empty() { "v1" } else { "v1alpha1" },
            kind: "K",
            list_kind: "KList",
            plural,
            singular: "k",
            namespaced,
            short_names: &[],
            categories: &[],
            has_status: true,
            schema: json!({}),
            columns: vec![],
            description: "",
        }
    }

    fn kinds() -> Vec<ResourceKind> {
        vec![
            kind("arc.opendefense.cloud", "orders", true),
            kind("arc.opendefense.cloud", "clusterartifacttypes", false),
            kind("", "namespaces", false),
            kind("", "secrets", true),
        ]
    }

    #[test]
    fn parses_namespaced_and_cluster_paths() {
        let k = kinds();
        let t = parse_target(
            "/apis/arc.opendefense.cloud/v1alpha1/namespaces/default/orders/o1/status",
            &k,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (
                t.kind,
                t.namespace.as_deref(),
                t.name.as_deref(),
                t.subresource.as_deref()
            ),
            (0, Some("default"), Some("o1"), Some("status"))
        );
        let t = parse_target("/apis/arc.opendefense.cloud/v1alpha1/orders", &k)
            .unwrap()
            .unwrap();
        assert_eq!((t.namespace, t.name), (None, None));
        let t = parse_target(
            "/apis/arc.opendefense.cloud/v1alpha1/clusterartifacttypes/oci",
            &k,
        )
        .unwrap()
        .unwrap();
        assert_eq!((t.kind, t.name.as_deref()), (1, Some("oci")));
        assert!(
            parse_target(
                "/apis/arc.opendefense.cloud/v1alpha1/namespaces/default/clusterartifacttypes",
                &k
            )
            .is_err()
        );
        assert!(
            parse_target(
                "/apis/arc.opendefense.cloud/v1alpha1/namespaces/default/orders/o1/scale",
                &k
            )
            .is_err()
        );
        assert!(
            parse_target("/apis/arc.opendefense.cloud/v1alpha1", &k)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn parses_core_namespace_paths() {
        let k = kinds();
        let t = parse_target("/api/v1/namespaces/default", &k)
            .unwrap()
            .unwrap();
        assert_eq!(
            (t.kind, t.name.as_deref(), t.namespace),
            (2, Some("default"), None)
        );
        let t = parse_target("/api/v1/namespaces/default/status", &k)
            .unwrap()
            .unwrap();
        assert_eq!((t.kind, t.subresource.as_deref()), (2, Some("status")));
        let t = parse_target("/api/v1/namespaces/default/secrets/s", &k)
            .unwrap()
            .unwrap();
        assert_eq!(
            (t.kind, t.namespace.as_deref(), t.name.as_deref()),
            (3, Some("default"), Some("s"))
        );
        let t = parse_target("/api/v1/namespaces", &k).unwrap().unwrap();
        assert_eq!((t.kind, t.name), (2, None));
    }

    #[test]
    fn query_decoding_and_flags() {
        let q = Query::parse(Some(
            "fieldSelector=metadata.name%3Do1&watch=1&watch=false&labelSelector=a+in+(b)",
        ));
        assert_eq!(q.get("fieldSelector"), Some("metadata.name=o1"));
        assert!(q.flag("watch").unwrap());
        assert_eq!(q.get("labelSelector"), Some("a in (b)"));
        assert!(Query::parse(Some("watch=yes")).flag("watch").is_err());
        assert_eq!(percent_decode("100%"), "100%");
    }
}
