//! ArtifactWorkflow names: `<order name, truncated>-<16 hex>`, where the hex is the start of a
//! SHA-256 over a canonical encoding of everything that decides what the workflow moves — the
//! namespace, the artifact (type, spec, resolved Endpoint names), the Endpoints' generations, the
//! digests of the referenced Secrets' data and the last `force-at` value acted on.
//!
//! Same inputs, same name, in every release: the encoding is versioned and pinned by golden
//! tests. Change it only together with a new encoding version.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use k8s_openapi::ByteString;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Hex digits of the hash kept in a name.
pub const HASH_HEX_LEN: usize = 16;
/// Longest ArtifactWorkflow name: a DNS label, so the name also fits label values (Argo labels
/// every pod with its workflow's name) and Argo's pod names stay readable.
pub const NAME_MAX_LEN: usize = 63;
/// Version of the canonical encoding; part of the hashed bytes.
const ENCODING_VERSION: u32 = 1;

/// One resolved side (source or destination) of an artifact, as far as it affects the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SideIdentity {
    /// The Endpoint's name.
    pub endpoint: String,
    /// The Endpoint's `metadata.generation`.
    pub generation: i64,
    /// The referenced Secret's name and data digest, if the Endpoint names one.
    pub secret: Option<(String, String)>,
}

/// Everything that identifies one ArtifactWorkflow of an Order.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowIdentity<'a> {
    /// The Order's namespace.
    pub namespace: &'a str,
    /// The Order's name (hashed only when [`workflow_name`] has to truncate it).
    pub order_name: &'a str,
    /// The artifact's `type`.
    pub artifact_type: &'a str,
    /// The artifact's `spec` (`null` when absent).
    pub spec: &'a Value,
    /// The source side.
    pub src: SideIdentity,
    /// The destination side.
    pub dst: SideIdentity,
    /// The `force-at` value in effect, if any.
    pub force_at: Option<&'a str>,
}

impl WorkflowIdentity<'_> {
    /// The canonical bytes that are hashed.
    pub fn canonical_encoding(&self) -> String {
        let side = |s: &SideIdentity| {
            let mut m = serde_json::Map::new();
            m.insert("endpoint".into(), Value::from(s.endpoint.clone()));
            m.insert("generation".into(), Value::from(s.generation));
            if let Some((name, digest)) = &s.secret {
                m.insert("secret".into(), Value::from(name.clone()));
                m.insert("secretDigest".into(), Value::from(digest.clone()));
            }
            Value::Object(m)
        };
        let mut root = serde_json::Map::new();
        root.insert("version".into(), Value::from(ENCODING_VERSION));
        root.insert("namespace".into(), Value::from(self.namespace));
        root.insert("type".into(), Value::from(self.artifact_type));
        root.insert("spec".into(), self.spec.clone());
        root.insert("src".into(), side(&self.src));
        root.insert("dst".into(), side(&self.dst));
        if let Some(force_at) = self.force_at {
            root.insert("forceAt".into(), Value::from(force_at));
        }
        if self.order_name.len() > NAME_MAX_LEN - HASH_HEX_LEN - 1 {
            root.insert("order".into(), Value::from(self.order_name));
        }
        let mut out = String::new();
        write_canonical(&Value::Object(root), &mut out);
        out
    }

    /// The first [`HASH_HEX_LEN`] hex digits of the SHA-256 of the canonical encoding.
    pub fn hash(&self) -> String {
        let digest = Sha256::digest(self.canonical_encoding().as_bytes());
        let mut hex = hex::encode(digest);
        hex.truncate(HASH_HEX_LEN);
        hex
    }
}

/// Canonical JSON: object keys sorted by their bytes, no whitespace, serde_json's escaping and
/// number formatting.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::from(key.as_str()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// `<order name, truncated>-<hash>`, at most [`NAME_MAX_LEN`] characters, ending in an
/// alphanumeric character as object names must.
pub fn workflow_name(order_name: &str, hash: &str) -> String {
    let room = NAME_MAX_LEN.saturating_sub(hash.len() + 1);
    let mut prefix: String = order_name.chars().take(room).collect();
    while prefix.ends_with(|c: char| !c.is_ascii_alphanumeric()) {
        prefix.pop();
    }
    if prefix.is_empty() {
        return hash.to_string();
    }
    format!("{prefix}-{hash}")
}

/// The hash part of a name made by [`workflow_name`], if it has one.
pub fn hash_of_name(name: &str) -> Option<&str> {
    let hash = name.get(name.len().checked_sub(HASH_HEX_LEN)?..)?;
    hash.bytes().all(|b| b.is_ascii_hexdigit()).then_some(hash)
}

/// A digest of a Secret's data (`data` and `stringData` merged, as the API server stores them):
/// `sha256:<hex>` over the sorted keys and their values, each length-prefixed.
pub fn secret_data_digest(
    data: Option<&BTreeMap<String, ByteString>>,
    string_data: Option<&BTreeMap<String, String>>,
) -> String {
    let mut merged: BTreeMap<&str, &[u8]> = BTreeMap::new();
    for (k, v) in data.into_iter().flatten() {
        merged.insert(k, &v.0);
    }
    for (k, v) in string_data.into_iter().flatten() {
        merged.insert(k, v.as_bytes());
    }
    let mut hasher = Sha256::new();
    for (k, v) in merged {
        hasher.update((k.len() as u64).to_be_bytes());
        hasher.update(k.as_bytes());
        hasher.update((v.len() as u64).to_be_bytes());
        hasher.update(v);
    }
    let mut out = String::from("sha256:");
    for b in hasher.finalize() {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn side(endpoint: &str, generation: i64, secret: Option<(&str, &str)>) -> SideIdentity {
        SideIdentity {
            endpoint: endpoint.into(),
            generation,
            secret: secret.map(|(n, d)| (n.into(), d.into())),
        }
    }

    fn identity<'a>(spec: &'a Value, force_at: Option<&'a str>) -> WorkflowIdentity<'a> {
        WorkflowIdentity {
            namespace: "default",
            order_name: "nightly",
            artifact_type: "oci",
            spec,
            src: side("docker-hub", 1, None),
            dst: side("mirror", 3, Some(("mirror-creds", "sha256:00"))),
            force_at,
        }
    }

    #[test]
    fn canonical_encoding_sorts_keys_at_every_level() {
        let a = json!({"b": {"y": 1, "x": [{"q": 1, "p": 2}]}, "a": "s"});
        let b = json!({"a": "s", "b": {"x": [{"p": 2, "q": 1}], "y": 1}});
        assert_eq!(
            identity(&a, None).canonical_encoding(),
            identity(&b, None).canonical_encoding()
        );
        assert_eq!(
            identity(&a, None).canonical_encoding(),
            r#"{"dst":{"endpoint":"mirror","generation":3,"secret":"mirror-creds","secretDigest":"sha256:00"},"namespace":"default","spec":{"a":"s","b":{"x":[{"p":2,"q":1}],"y":1}},"src":{"endpoint":"docker-hub","generation":1},"type":"oci","version":1}"#
        );
    }

    /// The expected values were computed independently (Python: `json.dumps(sort_keys=True,
    /// separators=(",", ":"))` and `hashlib.sha256`). These names are part of ARC's compatibility promise: an upgrade must not re-run every
    /// artifact. If this test fails, the encoding changed; bump `ENCODING_VERSION` deliberately
    /// and document it instead of updating the expected values.
    #[test]
    fn golden_hashes_stay_stable() {
        let spec = json!({"image": "library/alpine:3.20", "override": "mirror/alpine:3.20"});
        assert_eq!(identity(&spec, None).hash(), "17f9013ac8efacca");
        assert_eq!(
            identity(&spec, Some("2025-01-01T00:00:00Z")).hash(),
            "66751181e71dccc0"
        );
        assert_eq!(identity(&Value::Null, None).hash(), "328cf515a8c9c914");
        let data: BTreeMap<String, ByteString> = [("username", "u"), ("password", "p")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
            .collect();
        assert_eq!(
            secret_data_digest(Some(&data), None),
            "sha256:fbedcfbc84ceb7f2e1f78d86f683c704d16af03e08192eef2468f0787d3049a7"
        );
    }

    #[test]
    fn every_input_changes_the_hash() {
        let spec = json!({"image": "a"});
        let base = identity(&spec, None);
        let h = base.hash();
        let other_spec = json!({"image": "b"});
        let mut changed = vec![
            identity(&other_spec, None).hash(),
            identity(&spec, Some("1")).hash(),
        ];
        let mut i = base.clone();
        i.namespace = "other";
        changed.push(i.hash());
        let mut i = base.clone();
        i.artifact_type = "helm";
        changed.push(i.hash());
        let mut i = base.clone();
        i.src.generation = 2;
        changed.push(i.hash());
        let mut i = base.clone();
        i.dst.secret = Some(("mirror-creds".into(), "sha256:01".into()));
        changed.push(i.hash());
        let mut i = base.clone();
        i.dst.endpoint = "mirror2".into();
        changed.push(i.hash());
        // A short Order name is not hashed; a long one is.
        let mut i = base.clone();
        i.order_name = "weekly";
        assert_eq!(i.hash(), h);
        let long_a = format!("{}-a", "x".repeat(50));
        let long_b = format!("{}-b", "x".repeat(50));
        let mut a = base.clone();
        a.order_name = &long_a;
        let mut b = base.clone();
        b.order_name = &long_b;
        assert_ne!(a.hash(), b.hash());
        assert_eq!(
            workflow_name(&long_a, &h),
            workflow_name(&long_b, &h),
            "same prefix"
        );
        for c in &changed {
            assert_ne!(c, &h);
        }
        assert_eq!(h.len(), HASH_HEX_LEN);
    }

    #[test]
    fn names_are_truncated_to_a_dns_label() {
        assert_eq!(
            workflow_name("nightly", "0123456789abcdef"),
            "nightly-0123456789abcdef"
        );
        let long = "a".repeat(100);
        let name = workflow_name(&long, "0123456789abcdef");
        assert_eq!(name.len(), NAME_MAX_LEN);
        assert!(name.ends_with("-0123456789abcdef"));
        // A cut that ends in a dash or dot drops it.
        let tricky = format!("{}-.b", "a".repeat(45));
        assert_eq!(
            workflow_name(&tricky, "0123456789abcdef"),
            format!("{}-0123456789abcdef", "a".repeat(45))
        );
        assert_eq!(hash_of_name(&name), Some("0123456789abcdef"));
        assert_eq!(hash_of_name("short"), None);
        assert_eq!(hash_of_name("order-0123456789abcdeg"), None);
    }

    #[test]
    fn secret_digest_covers_keys_values_and_string_data() {
        let data = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect::<BTreeMap<_, _>>()
        };
        let a = secret_data_digest(Some(&data(&[("username", "u"), ("password", "p")])), None);
        let b = secret_data_digest(Some(&data(&[("password", "p"), ("username", "u")])), None);
        assert_eq!(a, b);
        assert_ne!(
            a,
            secret_data_digest(Some(&data(&[("username", "u"), ("password", "q")])), None)
        );
        // Moving bytes between key and value must change the digest.
        assert_ne!(
            secret_data_digest(Some(&data(&[("ab", "c")])), None),
            secret_data_digest(Some(&data(&[("a", "bc")])), None)
        );
        let sd: BTreeMap<String, String> = [("password".to_string(), "p".to_string())].into();
        assert_eq!(
            a,
            secret_data_digest(Some(&data(&[("username", "u")])), Some(&sd))
        );
        assert_eq!(
            secret_data_digest(None, None),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
