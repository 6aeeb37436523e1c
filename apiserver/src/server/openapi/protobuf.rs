//! The Swagger 2.0 document as gnostic's `openapi.v2.Document` protobuf
//! (`Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`). kubectl 1.27 and
//! 1.28 fetch only this form for `explain` (and for client-side apply's patch-type check), so
//! without it `kubectl explain` fails on them.
//!
//! A small hand-written encoder of the proto3 wire format over the JSON document: the messages
//! and field numbers are those of gnostic's `openapiv2/OpenAPIv2.proto`. Values kept as `Any`
//! (defaults, enums, examples, vendor extensions) carry their JSON text in `Any.yaml` — JSON is
//! YAML, and that is the field kube-openapi reads.

use serde_json::Value;

/// The media type of the protobuf document.
pub const PROTOBUF_V2_CONTENT_TYPE: &str =
    "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// A message being encoded.
#[derive(Default)]
struct Message(Vec<u8>);

impl Message {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire_type: u8) {
        self.varint(u64::from(field) << 3 | u64::from(wire_type));
    }

    fn bytes(&mut self, field: u32, data: &[u8]) {
        self.key(field, 2);
        self.varint(data.len() as u64);
        self.0.extend_from_slice(data);
    }

    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }

    fn message(&mut self, field: u32, m: Message) {
        self.bytes(field, &m.0);
    }

    /// A bool that is written even when false (members of a `oneof`).
    fn bool_always(&mut self, field: u32, b: bool) {
        self.key(field, 0);
        self.varint(u64::from(b));
    }

    fn bool(&mut self, field: u32, b: bool) {
        if b {
            self.bool_always(field, b);
        }
    }

    fn int64(&mut self, field: u32, v: i64) {
        if v != 0 {
            self.key(field, 0);
            self.varint(v as u64);
        }
    }

    fn double(&mut self, field: u32, v: f64) {
        if v != 0.0 {
            self.key(field, 1);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// Optional fields of a JSON object, by kind.
    fn str_of(&mut self, field: u32, v: &Value, key: &str) {
        if let Some(s) = v.get(key).and_then(Value::as_str) {
            self.string(field, s);
        }
    }

    fn strings_of(&mut self, field: u32, v: &Value, key: &str) {
        for s in v
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            self.bytes(field, s.as_bytes());
        }
    }

    fn bool_of(&mut self, field: u32, v: &Value, key: &str) {
        self.bool(field, v.get(key).and_then(Value::as_bool).unwrap_or(false));
    }

    fn int_of(&mut self, field: u32, v: &Value, key: &str) {
        if let Some(i) = v.get(key).and_then(Value::as_i64) {
            self.int64(field, i);
        }
    }

    fn double_of(&mut self, field: u32, v: &Value, key: &str) {
        if let Some(f) = v.get(key).and_then(Value::as_f64) {
            self.double(field, f);
        }
    }
}

/// `Any { yaml = 2 }` holding a JSON value's text.
fn any(v: &Value) -> Message {
    let mut m = Message::default();
    m.bytes(2, v.to_string().as_bytes());
    m
}

/// The `x-…` keys of an object as `repeated NamedAny` at `field`.
fn vendor_extensions(m: &mut Message, field: u32, v: &Value) {
    for (k, x) in v
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.starts_with("x-"))
    {
        let mut named = Message::default();
        named.string(1, k);
        named.message(2, any(x));
        m.message(field, named);
    }
}

/// `openapi.v2.Document` for a Swagger 2.0 JSON document.
pub fn encode_document(doc: &Value) -> Vec<u8> {
    let mut m = Message::default();
    m.str_of(1, doc, "swagger");
    if let Some(info) = doc.get("info") {
        let mut i = Message::default();
        i.str_of(1, info, "title");
        i.str_of(2, info, "version");
        i.str_of(3, info, "description");
        m.message(2, i);
    }
    m.strings_of(5, doc, "schemes");
    m.strings_of(6, doc, "consumes");
    m.strings_of(7, doc, "produces");
    let mut paths = Message::default();
    for (path, item) in doc
        .get("paths")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let mut named = Message::default();
        named.string(1, path);
        named.message(2, path_item(item));
        paths.message(2, named);
    }
    m.message(8, paths);
    let mut definitions = Message::default();
    for (name, schema) in doc
        .get("definitions")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        definitions.message(1, named_schema(name, schema));
    }
    m.message(9, definitions);
    m.0
}

fn named_schema(name: &str, s: &Value) -> Message {
    let mut named = Message::default();
    named.string(1, name);
    named.message(2, schema(s));
    named
}

fn path_item(item: &Value) -> Message {
    let mut m = Message::default();
    for (verb, field) in [
        ("get", 2),
        ("put", 3),
        ("post", 4),
        ("delete", 5),
        ("options", 6),
        ("head", 7),
        ("patch", 8),
    ] {
        if let Some(op) = item.get(verb) {
            m.message(field, operation(op));
        }
    }
    for p in item
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(9, parameters_item(p));
    }
    vendor_extensions(&mut m, 10, item);
    m
}

fn operation(op: &Value) -> Message {
    let mut m = Message::default();
    m.strings_of(1, op, "tags");
    m.str_of(2, op, "summary");
    m.str_of(3, op, "description");
    m.str_of(5, op, "operationId");
    m.strings_of(6, op, "produces");
    m.strings_of(7, op, "consumes");
    for p in op
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(8, parameters_item(p));
    }
    let mut responses = Message::default();
    for (code, r) in op
        .get("responses")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let mut response = Message::default();
        response.str_of(1, r, "description");
        if let Some(s) = r.get("schema") {
            let mut item = Message::default();
            item.message(1, schema(s));
            response.message(2, item);
        }
        let mut value = Message::default();
        value.message(1, response);
        let mut named = Message::default();
        named.string(1, code);
        named.message(2, value);
        responses.message(1, named);
    }
    m.message(9, responses);
    m.strings_of(10, op, "schemes");
    m.bool_of(11, op, "deprecated");
    vendor_extensions(&mut m, 13, op);
    m
}

/// `ParametersItem { Parameter { BodyParameter | NonBodyParameter { Query | Path … } } }`.
fn parameters_item(p: &Value) -> Message {
    let location = p.get("in").and_then(Value::as_str).unwrap_or("");
    let mut parameter = Message::default();
    if location == "body" {
        let mut body = Message::default();
        body.str_of(1, p, "description");
        body.str_of(2, p, "name");
        body.str_of(3, p, "in");
        body.bool_of(4, p, "required");
        if let Some(s) = p.get("schema") {
            body.message(5, schema(s));
        }
        vendor_extensions(&mut body, 6, p);
        parameter.message(1, body);
    } else {
        // Field numbers of (type, unique_items, vendor_extension) per sub-schema; required,
        // in, description and name are 1–4 in all of them.
        let (one_of, type_field, unique_field, vendor_field) = match location {
            "header" => (1, 5, 19, 22),
            "formData" => (2, 6, 20, 23),
            "path" => (4, 5, 19, 22),
            _ => (3, 6, 20, 23),
        };
        let mut sub = Message::default();
        sub.bool_of(1, p, "required");
        sub.str_of(2, p, "in");
        sub.str_of(3, p, "description");
        sub.str_of(4, p, "name");
        sub.str_of(type_field, p, "type");
        sub.bool_of(unique_field, p, "uniqueItems");
        vendor_extensions(&mut sub, vendor_field, p);
        let mut non_body = Message::default();
        non_body.message(one_of, sub);
        parameter.message(2, non_body);
    }
    let mut item = Message::default();
    item.message(1, parameter);
    item
}

/// `openapi.v2.Schema`.
fn schema(s: &Value) -> Message {
    let mut m = Message::default();
    m.str_of(1, s, "$ref");
    m.str_of(2, s, "format");
    m.str_of(3, s, "title");
    m.str_of(4, s, "description");
    if let Some(d) = s.get("default") {
        m.message(5, any(d));
    }
    m.double_of(6, s, "multipleOf");
    m.double_of(7, s, "maximum");
    m.bool_of(8, s, "exclusiveMaximum");
    m.double_of(9, s, "minimum");
    m.bool_of(10, s, "exclusiveMinimum");
    m.int_of(11, s, "maxLength");
    m.int_of(12, s, "minLength");
    m.str_of(13, s, "pattern");
    m.int_of(14, s, "maxItems");
    m.int_of(15, s, "minItems");
    m.bool_of(16, s, "uniqueItems");
    m.int_of(17, s, "maxProperties");
    m.int_of(18, s, "minProperties");
    m.strings_of(19, s, "required");
    for e in s
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(20, any(e));
    }
    match s.get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut item = Message::default();
            item.bool_always(2, *b);
            m.message(21, item);
        }
        Some(a @ Value::Object(_)) => {
            let mut item = Message::default();
            item.message(1, schema(a));
            m.message(21, item);
        }
        _ => {}
    }
    match s.get("type") {
        Some(Value::String(t)) => {
            let mut item = Message::default();
            item.string(1, t);
            m.message(22, item);
        }
        Some(Value::Array(types)) => {
            let mut item = Message::default();
            for t in types.iter().filter_map(Value::as_str) {
                item.bytes(1, t.as_bytes());
            }
            m.message(22, item);
        }
        _ => {}
    }
    if let Some(items) = s.get("items") {
        let mut item = Message::default();
        match items {
            Value::Array(list) => list.iter().for_each(|i| item.message(1, schema(i))),
            single => item.message(1, schema(single)),
        }
        m.message(23, item);
    }
    for a in s
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(24, schema(a));
    }
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        let mut p = Message::default();
        for (name, prop) in props {
            p.message(1, named_schema(name, prop));
        }
        m.message(25, p);
    }
    m.str_of(26, s, "discriminator");
    m.bool_of(27, s, "readOnly");
    if let Some(e) = s.get("example") {
        m.message(30, any(e));
    }
    vendor_extensions(&mut m, 31, s);
    m
}
