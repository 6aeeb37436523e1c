//! YAML documents with positions: parses a (multi-document) YAML text into JSON values and
//! remembers where every field came from, so errors found later — by the structural checks, by
//! the API server's validation (`spec.artifacts[0].type: Required value`) — can be reported as
//! `file:line:col`.

use std::collections::HashMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use serde_saphyr::{MessageFormatter, Spanned};

use crate::diagnostic::Position;

/// One YAML document of a file, as JSON, with the position of each field.
#[derive(Clone, Debug)]
pub struct Document {
    /// The document's content.
    pub value: Value,
    /// Where the document's root node starts.
    pub start: Position,
    positions: HashMap<String, Position>,
}

impl Document {
    /// The position of the field at `path` (Kubernetes field-path syntax: `spec.artifacts[0].type`,
    /// `metadata.labels[app.kubernetes.io/name]`). A path that does not exist (a missing required
    /// field) resolves to its nearest existing parent, and at worst to the document's start.
    pub fn position_of(&self, path: &str) -> Position {
        let mut path = path.trim_start_matches('.');
        loop {
            if let Some(position) = self.positions.get(path) {
                return *position;
            }
            match parent_path(path) {
                Some(parent) => path = parent,
                None => return self.start,
            }
        }
    }
}

/// A YAML syntax or structure error, with its position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YamlError {
    /// Where the parser stopped.
    pub position: Position,
    /// What it found wrong (without the position).
    pub message: String,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}",
            self.position.line, self.position.column, self.message
        )
    }
}

impl std::error::Error for YamlError {}

impl YamlError {
    /// Converts a serde-saphyr error into a position and a one-line message.
    pub fn from_saphyr(error: &serde_saphyr::Error) -> Self {
        let position = error
            .location()
            .map(|l| Position::new(l.line(), l.column()))
            .unwrap_or_default();
        let message = serde_saphyr::DefaultMessageFormatter.format_message(error.without_snippet());
        Self {
            position,
            message: one_line(&message),
        }
    }
}

/// Collapses control characters (line breaks in multi-line parser messages) into spaces.
fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            if !out.ends_with(' ') {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
    out.trim().to_string()
}

/// Parses every document of `text`. Empty documents (only comments, or `---` alone) are skipped.
/// Duplicate keys, tabs in indentation and other YAML errors fail the whole text.
pub fn parse_documents(text: &str) -> Result<Vec<Document>, YamlError> {
    let roots: Vec<Spanned<Node>> =
        serde_saphyr::from_multiple(text).map_err(|e| YamlError::from_saphyr(&e))?;
    roots
        .into_iter()
        .map(|root| {
            let start = position(&root);
            let mut positions = HashMap::new();
            let value = to_json(root.value, String::new(), &mut positions)?;
            Ok(Document {
                value,
                start,
                positions,
            })
        })
        .filter(|doc| {
            !matches!(
                doc,
                Ok(Document {
                    value: Value::Null,
                    ..
                })
            )
        })
        .collect()
}

fn position<T>(spanned: &Spanned<T>) -> Position {
    Position::new(spanned.referenced.line(), spanned.referenced.column())
}

/// A YAML node whose children carry their positions.
#[derive(Debug)]
enum Node {
    Null,
    Bool(bool),
    Signed(i64),
    Unsigned(u64),
    Float(f64),
    String(String),
    Sequence(Vec<Spanned<Node>>),
    Mapping(Vec<(Spanned<Node>, Spanned<Node>)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Signed(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Unsigned(v))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        i64::try_from(v)
            .map(Node::Signed)
            .map_err(|_| E::custom(format!("integer {v} is out of range")))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        u64::try_from(v)
            .map(Node::Unsigned)
            .map_err(|_| E::custom(format!("integer {v} is out of range")))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::String(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Node, E> {
        String::from_utf8(v.to_vec())
            .map(Node::String)
            .map_err(|_| E::custom("binary value is not UTF-8"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Sequence(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Node>>()? {
            let value = map.next_value::<Spanned<Node>>()?;
            entries.push((key, value));
        }
        Ok(Node::Mapping(entries))
    }
}

/// Whether a map key can be written as `.key` in a field path (otherwise `[key]`).
fn is_plain_path_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The field path of `key` under `parent` (`a.key`, or `a[key]` for keys with dots or slashes).
pub fn child_path(parent: &str, key: &str) -> String {
    if is_plain_path_key(key) {
        if parent.is_empty() {
            key.to_string()
        } else {
            format!("{parent}.{key}")
        }
    } else {
        format!("{parent}[{key}]")
    }
}

/// The parent of a field path: `a.b[0].c` → `a.b[0]` → `a.b` → `a` → none.
fn parent_path(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    if path.ends_with(']')
        && let Some(open) = path.rfind('[')
    {
        return Some(&path[..open]);
    }
    Some(path.rfind('.').map(|dot| &path[..dot]).unwrap_or(""))
}

fn key_string(node: &Node, at: Position) -> Result<String, YamlError> {
    Ok(match node {
        Node::String(s) => s.clone(),
        Node::Bool(b) => b.to_string(),
        Node::Signed(i) => i.to_string(),
        Node::Unsigned(u) => u.to_string(),
        Node::Float(f) => f.to_string(),
        Node::Null => "null".to_string(),
        Node::Sequence(_) | Node::Mapping(_) => {
            return Err(YamlError {
                position: at,
                message: "a mapping key must be a scalar".to_string(),
            });
        }
    })
}

fn to_json(
    node: Node,
    path: String,
    positions: &mut HashMap<String, Position>,
) -> Result<Value, YamlError> {
    Ok(match node {
        Node::Null => Value::Null,
        Node::Bool(b) => Value::Bool(b),
        Node::Signed(i) => Value::Number(i.into()),
        Node::Unsigned(u) => Value::Number(u.into()),
        Node::Float(f) => match Number::from_f64(f) {
            Some(n) => Value::Number(n),
            None => {
                return Err(YamlError {
                    position: positions.get(&path).copied().unwrap_or_default(),
                    message: format!("{f} is not a number JSON can hold"),
                });
            }
        },
        Node::String(s) => Value::String(s),
        Node::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (index, item) in items.into_iter().enumerate() {
                let item_path = format!("{path}[{index}]");
                positions.insert(item_path.clone(), position(&item));
                out.push(to_json(item.value, item_path, positions)?);
            }
            Value::Array(out)
        }
        Node::Mapping(entries) => {
            let mut out = Map::new();
            for (key, value) in entries {
                let key_position = position(&key);
                let key = key_string(&key.value, key_position)?;
                let value_path = child_path(&path, &key);
                positions.insert(value_path.clone(), key_position);
                if is_plain_path_key(&key) {
                    // Map entries are also written `a[key]` (apimachinery does so for labels).
                    positions.insert(format!("{path}[{key}]"), key_position);
                }
                out.insert(key, to_json(value.value, value_path, positions)?);
            }
            Value::Object(out)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_many_documents_with_positions() {
        let text = "# comment\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n---\n---\nkind: Order\nspec:\n  artifacts:\n    - type: oci\n      spec:\n        image: alpine\n";
        let docs = parse_documents(text).unwrap();
        assert_eq!(docs.len(), 2, "empty documents are skipped");
        assert_eq!(docs[0].value["kind"], "Secret");
        assert_eq!(docs[0].start, Position::new(3, 1));
        assert_eq!(docs[0].position_of("metadata.name"), Position::new(6, 3));
        assert_eq!(
            docs[1].position_of("spec.artifacts[0]"),
            Position::new(12, 7)
        );
        assert_eq!(
            docs[1].position_of("spec.artifacts[0].spec.image"),
            Position::new(14, 9)
        );
        // A missing field resolves to its nearest parent.
        assert_eq!(
            docs[1].position_of("spec.artifacts[0].srcRef.name"),
            Position::new(12, 7)
        );
        assert_eq!(docs[1].position_of("nothing.here"), docs[1].start);
    }

    #[test]
    fn keys_with_dots_use_brackets() {
        let docs =
            parse_documents("metadata:\n  labels:\n    app.kubernetes.io/name: x\n").unwrap();
        assert_eq!(
            docs[0].position_of("metadata.labels[app.kubernetes.io/name]"),
            Position::new(3, 5)
        );
    }

    #[test]
    fn scalars_become_json_types() {
        let docs =
            parse_documents("a: 1\nb: -2\nc: 1.5\nd: true\ne: null\nf: '1'\ng: [x, 2]\n").unwrap();
        assert_eq!(
            docs[0].value,
            serde_json::json!({"a": 1, "b": -2, "c": 1.5, "d": true, "e": null, "f": "1", "g": ["x", 2]})
        );
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = parse_documents("kind: Order\nspec:\n  artifacts: [a, b\n").unwrap_err();
        assert!(err.position.line >= 3, "{err}");
        assert!(!err.message.is_empty());
        let dup = parse_documents("a: 1\na: 2\n").unwrap_err();
        assert_eq!(dup.position.line, 2, "{dup}");
        assert!(dup.message.to_lowercase().contains("duplicate"), "{dup}");
    }

    #[test]
    fn parent_paths() {
        assert_eq!(parent_path("a.b[0].c"), Some("a.b[0]"));
        assert_eq!(parent_path("a.b[0]"), Some("a.b"));
        assert_eq!(parent_path("a.b[x.y]"), Some("a.b"));
        assert_eq!(parent_path("a"), Some(""));
        assert_eq!(parent_path(""), None);
    }
}
