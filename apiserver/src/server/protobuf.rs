//! Decoding of Kubernetes protobuf request bodies for the core kinds the embedded server owns.
//!
//! kubectl ≥ 1.33 sends built-in kinds (`kubectl create secret`, `kubectl create namespace`) as
//! `application/vnd.kubernetes.protobuf` with no JSON fallback, so the embedded server reads
//! them: the `k8s\0` envelope, `runtime.Unknown`, and the fields of Secret and Namespace a client
//! can set (metadata, data, stringData, type, immutable, spec.finalizers). Responses stay JSON,
//! which every client accepts.

use serde_json::{Map, Value, json};

/// The four bytes every Kubernetes protobuf body starts with.
const MAGIC: &[u8] = b"k8s\0";

/// Why a protobuf body could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtobufError {
    /// Not a Kubernetes protobuf envelope.
    #[error("the protobuf body does not start with the Kubernetes envelope")]
    NoEnvelope,
    /// Truncated or malformed wire data.
    #[error("malformed protobuf body: {0}")]
    Malformed(&'static str),
    /// A kind this server does not decode from protobuf.
    #[error("protobuf bodies are supported for Secret and Namespace only, not {0}; send JSON")]
    UnsupportedKind(String),
}

/// One decoded field: its number and value.
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, ProtobufError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self
                .data
                .split_first()
                .ok_or(ProtobufError::Malformed("truncated varint"))?;
            self.data = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ProtobufError::Malformed("varint too long"))
    }

    fn next(&mut self) -> Result<Option<(u64, Field<'a>)>, ProtobufError> {
        if self.data.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let (number, wire) = (key >> 3, key & 7);
        let field = match wire {
            0 => Field::Varint(self.varint()?),
            2 => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| ProtobufError::Malformed("length"))?;
                if len > self.data.len() {
                    return Err(ProtobufError::Malformed("truncated field"));
                }
                let (bytes, rest) = self.data.split_at(len);
                self.data = rest;
                Field::Bytes(bytes)
            }
            1 => {
                self.skip(8)?;
                Field::Varint(0)
            }
            5 => {
                self.skip(4)?;
                Field::Varint(0)
            }
            _ => return Err(ProtobufError::Malformed("unsupported wire type")),
        };
        Ok(Some((number, field)))
    }

    fn skip(&mut self, n: usize) -> Result<(), ProtobufError> {
        if n > self.data.len() {
            return Err(ProtobufError::Malformed("truncated fixed field"));
        }
        self.data = &self.data[n..];
        Ok(())
    }
}

fn fields(data: &[u8]) -> Result<Vec<(u64, Field<'_>)>, ProtobufError> {
    let mut reader = Reader { data };
    let mut out = Vec::new();
    while let Some(f) = reader.next()? {
        out.push(f);
    }
    Ok(out)
}

fn text(bytes: &[u8]) -> Result<String, ProtobufError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| ProtobufError::Malformed("string is not UTF-8"))
}

/// A `map<string, string>` (or bytes, base64-encoded as JSON does) entry.
fn map_entry(bytes: &[u8], base64_values: bool) -> Result<(String, String), ProtobufError> {
    let (mut key, mut value) = (String::new(), String::new());
    for (n, f) in fields(bytes)? {
        match (n, f) {
            (1, Field::Bytes(b)) => key = text(b)?,
            (2, Field::Bytes(b)) if base64_values => {
                use base64::Engine;
                value = base64::engine::general_purpose::STANDARD.encode(b);
            }
            (2, Field::Bytes(b)) => value = text(b)?,
            _ => {}
        }
    }
    Ok((key, value))
}

fn object_meta(bytes: &[u8]) -> Result<Value, ProtobufError> {
    let mut meta = Map::new();
    let (mut labels, mut annotations, mut finalizers) = (Map::new(), Map::new(), Vec::new());
    for (n, f) in fields(bytes)? {
        match (n, f) {
            (1, Field::Bytes(b)) => _ = meta.insert("name".into(), json!(text(b)?)),
            (2, Field::Bytes(b)) => _ = meta.insert("generateName".into(), json!(text(b)?)),
            (3, Field::Bytes(b)) => _ = meta.insert("namespace".into(), json!(text(b)?)),
            (5, Field::Bytes(b)) => _ = meta.insert("uid".into(), json!(text(b)?)),
            (6, Field::Bytes(b)) => _ = meta.insert("resourceVersion".into(), json!(text(b)?)),
            (11, Field::Bytes(b)) => {
                let (k, v) = map_entry(b, false)?;
                labels.insert(k, json!(v));
            }
            (12, Field::Bytes(b)) => {
                let (k, v) = map_entry(b, false)?;
                annotations.insert(k, json!(v));
            }
            (14, Field::Bytes(b)) => finalizers.push(json!(text(b)?)),
            _ => {}
        }
    }
    if !labels.is_empty() {
        meta.insert("labels".into(), Value::Object(labels));
    }
    if !annotations.is_empty() {
        meta.insert("annotations".into(), Value::Object(annotations));
    }
    if !finalizers.is_empty() {
        meta.insert("finalizers".into(), Value::Array(finalizers));
    }
    meta.retain(|_, v| v.as_str() != Some(""));
    Ok(Value::Object(meta))
}

fn secret(bytes: &[u8]) -> Result<Value, ProtobufError> {
    let mut object = json!({"apiVersion": "v1", "kind": "Secret"});
    let (mut data, mut string_data) = (Map::new(), Map::new());
    for (n, f) in fields(bytes)? {
        match (n, f) {
            (1, Field::Bytes(b)) => object["metadata"] = object_meta(b)?,
            (2, Field::Bytes(b)) => {
                let (k, v) = map_entry(b, true)?;
                data.insert(k, json!(v));
            }
            (3, Field::Bytes(b)) => object["type"] = json!(text(b)?),
            (4, Field::Bytes(b)) => {
                let (k, v) = map_entry(b, false)?;
                string_data.insert(k, json!(v));
            }
            (5, Field::Varint(v)) => object["immutable"] = json!(v != 0),
            _ => {}
        }
    }
    if !data.is_empty() {
        object["data"] = Value::Object(data);
    }
    if !string_data.is_empty() {
        object["stringData"] = Value::Object(string_data);
    }
    Ok(object)
}

fn namespace(bytes: &[u8]) -> Result<Value, ProtobufError> {
    let mut object = json!({"apiVersion": "v1", "kind": "Namespace"});
    for (n, f) in fields(bytes)? {
        match (n, f) {
            (1, Field::Bytes(b)) => object["metadata"] = object_meta(b)?,
            (2, Field::Bytes(b)) => {
                let mut finalizers = Vec::new();
                for (m, g) in fields(b)? {
                    if let (1, Field::Bytes(s)) = (m, g) {
                        finalizers.push(json!(text(s)?));
                    }
                }
                object["spec"] = json!({"finalizers": finalizers});
            }
            _ => {}
        }
    }
    Ok(object)
}

/// Decodes a `application/vnd.kubernetes.protobuf` body into the JSON object it represents.
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    let envelope = body.strip_prefix(MAGIC).ok_or(ProtobufError::NoEnvelope)?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), None);
    for (n, f) in fields(envelope)? {
        match (n, f) {
            (1, Field::Bytes(type_meta)) => {
                for (m, g) in fields(type_meta)? {
                    match (m, g) {
                        (1, Field::Bytes(b)) => api_version = text(b)?,
                        (2, Field::Bytes(b)) => kind = text(b)?,
                        _ => {}
                    }
                }
            }
            (2, Field::Bytes(b)) => raw = Some(b),
            _ => {}
        }
    }
    let raw = raw.ok_or(ProtobufError::Malformed("no object in the envelope"))?;
    match (api_version.as_str(), kind.as_str()) {
        ("v1", "Secret") => secret(raw),
        ("v1", "Namespace") => namespace(raw),
        _ => Err(ProtobufError::UnsupportedKind(format!(
            "{api_version}/{kind}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(number: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut key = (number << 3) | 2;
        let mut len = bytes.len() as u64;
        loop {
            let b = (key & 0x7f) as u8;
            key >>= 7;
            if key == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
        loop {
            let b = (len & 0x7f) as u8;
            len >>= 7;
            if len == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn decodes_a_secret_like_kubectl_sends_it() {
        let meta = [
            field(1, b"creds"),
            field(11, &[field(1, b"app"), field(2, b"arc")].concat()),
        ]
        .concat();
        let data_entry = [field(1, b"password"), field(2, b"s3cret")].concat();
        let secret = [field(1, &meta), field(2, &data_entry), field(3, b"Opaque")].concat();
        let type_meta = [field(1, b"v1"), field(2, b"Secret")].concat();
        let body = [MAGIC.to_vec(), field(1, &type_meta), field(2, &secret)].concat();
        let object = decode(&body).unwrap();
        assert_eq!(object["metadata"]["name"], "creds");
        assert_eq!(object["metadata"]["labels"]["app"], "arc");
        assert_eq!(object["data"]["password"], "czNjcmV0");
        assert_eq!(object["type"], "Opaque");
    }

    #[test]
    fn rejects_garbage_and_other_kinds() {
        assert_eq!(decode(b"{}"), Err(ProtobufError::NoEnvelope));
        assert!(decode(&[MAGIC, &[0x0a, 0xff]].concat()).is_err());
        let type_meta = [field(1, b"v1"), field(2, b"Pod")].concat();
        let body = [MAGIC.to_vec(), field(1, &type_meta), field(2, b"")].concat();
        assert!(matches!(
            decode(&body),
            Err(ProtobufError::UnsupportedKind(_))
        ));
    }
}
