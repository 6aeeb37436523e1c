//! Request attributes: what a request asks to do, parsed from its method, path and query the way
//! upstream `RequestInfoFactory` does (kube-api-contract §17.6).

use http::Method;

/// What a request asks to do, in the terms authorization uses (upstream `RequestInfo`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestAttributes {
    /// For resource requests one of `get`, `list`, `watch`, `create`, `update`, `patch`,
    /// `delete`, `deletecollection` (or `proxy`, `impersonate`); for non-resource requests the
    /// lower-cased HTTP method (`get`, `post`, …).
    pub verb: String,
    /// The URL path.
    pub path: String,
    /// The resource addressed, for resource requests (`/api/v1/…`, `/apis/<group>/<version>/…`).
    pub resource: Option<ResourceAttributes>,
}

/// The resource part of [`RequestAttributes`]. Empty strings mean "not given", as upstream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ResourceAttributes {
    /// API group (`""` for the core group under `/api`).
    pub api_group: String,
    /// API version.
    pub api_version: String,
    /// Resource (plural), e.g. `orders`.
    pub resource: String,
    /// Subresource, e.g. `status`.
    pub subresource: String,
    /// Namespace; empty for cluster-scoped requests and lists across namespaces.
    pub namespace: String,
    /// Object name; for list/watch set from `fieldSelector=metadata.name=<name>`.
    pub name: String,
}

impl RequestAttributes {
    /// Whether the request addresses an API resource (rather than a path such as `/apis`).
    pub fn is_resource_request(&self) -> bool {
        self.resource.is_some()
    }

    /// Whether the verb only reads.
    pub fn is_read_only(&self) -> bool {
        match self.resource {
            Some(_) => matches!(self.verb.as_str(), "get" | "list" | "watch"),
            None => matches!(self.verb.as_str(), "get" | "head"),
        }
    }

    /// Whether the verb keeps the response open indefinitely (watches): such responses are cut
    /// at shutdown rather than waited for.
    pub fn is_long_running(&self) -> bool {
        self.resource.is_some() && matches!(self.verb.as_str(), "watch" | "proxy")
    }
}

/// Paths anyone may request, with or without credentials (and their sub-paths).
const ALWAYS_ALLOWED_PATHS: [&str; 3] = ["/healthz", "/livez", "/readyz"];
/// Whether `path` is served to anyone, credentials or not: the health endpoints.
/// Paths with `.` or `..` segments never qualify.
pub fn is_always_allowed_path(path: &str) -> bool {
    ALWAYS_ALLOWED_PATHS.iter().any(|p| {
        path.strip_prefix(p).is_some_and(|rest| {
            rest.is_empty()
                || (rest.starts_with('/') && !rest.split('/').any(|s| s == "." || s == ".."))
        })
    })
}

/// Parses a request into [`RequestAttributes`] following upstream `RequestInfoFactory`
/// (kube-api-contract §17.6): `/api/<v>/…` and `/apis/<g>/<v>/…` with at least one part after
/// the version are resource requests; GET/HEAD without a name is `list`, or `watch` with a
/// `watch` parameter other than `false`/`0`; DELETE without a name is `deletecollection`;
/// `fieldSelector=metadata.name=<n>` sets the name of a list or watch. Everything else is a
/// non-resource request with the lower-cased method as verb.
pub fn request_attributes(method: &Method, path: &str, query: Option<&str>) -> RequestAttributes {
    let non_resource = || RequestAttributes {
        verb: method.as_str().to_ascii_lowercase(),
        path: path.to_owned(),
        resource: None,
    };
    let trimmed = path.trim_matches('/');
    let parts: Vec<&str> = if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('/').collect()
    };
    if parts.len() < 3 {
        return non_resource();
    }
    let (api_group, rest) = match parts[0] {
        "api" => ("", &parts[1..]),
        "apis" if parts.len() >= 4 => (parts[1], &parts[2..]),
        _ => return non_resource(),
    };
    let api_version = rest[0];
    let mut rest = &rest[1..];

    let mut verb = match *method {
        Method::POST => "create",
        Method::GET | Method::HEAD => "get",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "",
    };
    if matches!(rest.first(), Some(&"watch") | Some(&"proxy")) && rest.len() >= 2 {
        verb = rest[0];
        rest = &rest[1..];
    }

    let mut namespace = "";
    if rest.first() == Some(&"namespaces") && rest.len() > 1 {
        namespace = rest[1];
        // `namespaces/<ns>/status|finalize` address the namespace itself.
        if rest.len() > 2 && !matches!(rest[2], "status" | "finalize") {
            rest = &rest[2..];
        }
    }

    let mut attrs = ResourceAttributes {
        api_group: api_group.to_owned(),
        api_version: api_version.to_owned(),
        namespace: namespace.to_owned(),
        ..ResourceAttributes::default()
    };
    if rest.len() >= 3 && verb != "proxy" {
        attrs.subresource = rest[2].to_owned();
    }
    if rest.len() >= 2 {
        attrs.name = rest[1].to_owned();
    }
    if let Some(resource) = rest.first() {
        attrs.resource = (*resource).to_owned();
    }

    let mut verb = verb.to_owned();
    if attrs.name.is_empty() && verb == "get" {
        let params = QueryParams::parse(query.unwrap_or(""));
        let watch = params
            .first("watch")
            .is_some_and(|v| v != "0" && !v.eq_ignore_ascii_case("false"));
        verb = if watch { "watch" } else { "list" }.to_owned();
        if let Some(name) = params
            .first("fieldSelector")
            .and_then(|s| exact_field_match(&s, "metadata.name"))
            .filter(|n| is_valid_path_segment_name(n))
        {
            attrs.name = name;
        }
    }
    if attrs.name.is_empty() && verb == "delete" {
        verb = "deletecollection".to_owned();
    }
    RequestAttributes {
        verb,
        path: path.to_owned(),
        resource: Some(attrs),
    }
}

/// Query parameters, percent-decoded, in order.
struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    fn parse(query: &str) -> Self {
        QueryParams(
            query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect(),
        )
    }

    /// The first value of `key` (upstream: repeated keys, first wins).
    fn first(&self, key: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }
}

pub(super) fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value `field` must equal for `selector` to match (`field=v` or `field==v`), if any
/// (upstream `fields.Selector.RequiresExactMatch`). Honours `\`-escapes of `,`, `=` and `\`.
pub(super) fn exact_field_match(selector: &str, field: &str) -> Option<String> {
    split_unescaped(selector, ',').into_iter().find_map(|term| {
        if term.contains("!=") {
            return None;
        }
        let (key, value) = term.split_once("==").or_else(|| term.split_once('='))?;
        (key.trim() == field).then(|| unescape_field_value(value))
    })
}

fn split_unescaped(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(&s[start..i]);
            start = i + 1;
        }
    }
    parts.push(&s[start..]);
    parts
}

fn unescape_field_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Upstream `path.IsValidPathSegmentName`.
fn is_valid_path_segment_name(name: &str) -> bool {
    name != "." && name != ".." && !name.contains('/') && !name.contains('%')
}
