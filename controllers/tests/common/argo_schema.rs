//! A focused JSON-schema validator for Argo's own schema (`shared/reference/argo-workflows.schema.json`
//! beside the checkout, argo-workflows commit f016ad89). The schema uses only `$ref`, `type`, `properties`,
//! `required`, `items`, `additionalProperties`, `const`, `enum`, `oneOf` and integer `format`s,
//! so these forty lines cover it completely; a general validator crate would pull in dozens of
//! dependencies (regex engines, URL and e-mail parsers, an HTTP client for remote refs) for
//! keywords the schema never uses.
//!
//! It is also stricter than the schema where that catches real mistakes: an object whose schema
//! lists `properties` and says nothing about `additionalProperties` may not carry other keys
//! (a misspelt field would otherwise pass silently, and Argo's controller would drop it).

use serde_json::Value;

/// Argo's schema, loaded once per test.
pub struct ArgoSchema {
    root: Value,
}

impl ArgoSchema {
    /// Loads Argo's schema from `shared/reference/` beside the checkout (CI has it there). A
    /// missing schema fails under CI and skips the check loudly elsewhere (`None`).
    pub fn load() -> Option<Self> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/reference/argo-workflows.schema.json"
        );
        let path =
            arc_tests::tools::require(path, "validating Argo objects against Argo's JSON schema")?;
        let text = std::fs::read_to_string(path).expect("read Argo schema");
        Some(Self {
            root: serde_json::from_str(&text).expect("Argo schema is JSON"),
        })
    }

    /// Every violation of `value` against definition `io.argoproj.workflow.v1alpha1.<kind>`,
    /// as `path: problem`.
    pub fn validate(&self, kind: &str, value: &Value) -> Vec<String> {
        let reference = format!("#/definitions/io.argoproj.workflow.v1alpha1.{kind}");
        let mut errors = Vec::new();
        self.check(
            &serde_json::json!({ "$ref": reference }),
            value,
            "$",
            &mut errors,
        );
        errors
    }

    fn resolve(&self, reference: &str) -> &Value {
        let name = reference
            .strip_prefix("#/definitions/")
            .unwrap_or_else(|| panic!("unsupported $ref {reference}"));
        self.root["definitions"]
            .get(name)
            .unwrap_or_else(|| panic!("unknown definition {name}"))
    }

    fn check(&self, schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            self.check(self.resolve(r), value, path, errors);
        }
        if let Some(t) = schema.get("type").and_then(Value::as_str) {
            let ok = match t {
                "object" => value.is_object(),
                "array" => value.is_array(),
                "string" => value.is_string(),
                "boolean" => value.is_boolean(),
                "integer" => value.is_i64() || value.is_u64(),
                "number" => value.is_number(),
                other => panic!("unsupported type {other}"),
            };
            if !ok {
                errors.push(format!("{path}: expected {t}, found {value}"));
                return;
            }
        }
        if let Some(c) = schema.get("const")
            && c != value
        {
            errors.push(format!("{path}: expected {c}, found {value}"));
        }
        if let Some(options) = schema.get("enum").and_then(Value::as_array)
            && !options.contains(value)
        {
            errors.push(format!("{path}: {value} is not one of {options:?}"));
        }
        if schema.get("format").and_then(Value::as_str) == Some("int32")
            && value.as_i64().is_some_and(|n| i32::try_from(n).is_err())
        {
            errors.push(format!("{path}: {value} does not fit int32"));
        }
        if let Some(alternatives) = schema.get("oneOf").and_then(Value::as_array) {
            let passing = alternatives
                .iter()
                .filter(|alt| {
                    let mut e = Vec::new();
                    self.check(alt, value, path, &mut e);
                    e.is_empty()
                })
                .count();
            if passing != 1 {
                errors.push(format!(
                    "{path}: matches {passing} of the oneOf alternatives, not exactly one"
                ));
            }
        }
        if let Some(obj) = value.as_object() {
            for key in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let key = key.as_str().unwrap_or_default();
                if !obj.contains_key(key) {
                    errors.push(format!("{path}: required field `{key}` is missing"));
                }
            }
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            for (key, child) in obj {
                let child_path = format!("{path}.{key}");
                match (properties.and_then(|p| p.get(key)), additional) {
                    (Some(s), _) => self.check(s, child, &child_path, errors),
                    (None, Some(Value::Bool(false))) => {
                        errors.push(format!("{child_path}: unknown field"))
                    }
                    (None, Some(Value::Bool(true))) => {}
                    (None, Some(s)) => self.check(s, child, &child_path, errors),
                    (None, None) if properties.is_some() => {
                        errors.push(format!("{child_path}: unknown field"))
                    }
                    (None, None) => {}
                }
            }
        }
        if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
            for (i, item) in array.iter().enumerate() {
                self.check(items, item, &format!("{path}[{i}]"), errors);
            }
        }
    }
}
