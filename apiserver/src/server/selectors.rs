//! Label and field selectors (`labelSelector`, `fieldSelector` query parameters), parsed and
//! matched as apimachinery does (`pkg/labels/selector.go`, `pkg/fields/selector.go`), with its
//! error texts. Parse errors are 400 `BadRequest` for the handlers.
//!
//! Label grammar: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, `k>N`, `k<N`,
//! comma = AND, whitespace allowed. `k=` selects the empty value (as upstream).
//! Field grammar: `field=value`, `field==value`, `field!=value`, comma = AND, with `\,` `\=`
//! `\\` escapes in values; fields are `metadata.name`, `metadata.namespace` and the kind's
//! extra selectable fields ([`crate::server::kinds::selectable_fields`]).

use std::fmt;

use serde_json::Value;

use super::kinds::selectable_fields;
use super::registry::ResourceKind;
use super::validation::FieldError;
use super::validation::names::{is_qualified_name, is_valid_label_value};

mod lexer;

use lexer::{Lexer, Token};

/// A selector that cannot be parsed or uses a field the kind does not support.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// A malformed label requirement (bad key, value or operator arguments).
    #[error("unable to parse requirement: {0}")]
    Requirement(String),
    /// A label selector with a syntax error outside a requirement.
    #[error("{0}")]
    Syntax(String),
    /// A field selector term without an operator.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    FieldTerm {
        /// The whole selector.
        selector: String,
        /// The term that has no operator.
        term: String,
    },
    /// A field selector value with a backslash not followed by `\`, `,` or `=`.
    #[error("invalid field selector: invalid escape sequence: {0}")]
    InvalidEscape(String),
    /// A field selector value with an unescaped `,` or `=`.
    #[error("invalid field selector: unescaped character in value: {0}")]
    UnescapedCharacter(char),
    /// A field the kind cannot be selected by.
    #[error("field label not supported: {0}")]
    UnsupportedField(String),
}

// ------------------------------------------------------------------------------------------------
// Label selectors
// ------------------------------------------------------------------------------------------------

/// A label requirement operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelOperator {
    /// `k=v`
    Equals,
    /// `k==v`
    DoubleEquals,
    /// `k!=v`
    NotEquals,
    /// `k in (a,b)`
    In,
    /// `k notin (a,b)`
    NotIn,
    /// `k`
    Exists,
    /// `!k`
    DoesNotExist,
    /// `k>N`
    GreaterThan,
    /// `k<N`
    LessThan,
}

/// One requirement of a label selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelRequirement {
    /// The label key.
    pub key: String,
    /// The operator.
    pub operator: LabelOperator,
    /// The values, sorted and without duplicates (empty for exists / does-not-exist).
    pub values: Vec<String>,
}

impl LabelRequirement {
    /// Validates and builds a requirement (apimachinery `NewRequirement`).
    pub fn new(
        key: &str,
        operator: LabelOperator,
        mut values: Vec<String>,
    ) -> Result<Self, SelectorError> {
        values.sort();
        values.dedup();
        let mut errs: Vec<FieldError> = Vec::new();
        for msg in is_qualified_name(key) {
            errs.push(FieldError::invalid("key", key, msg));
        }
        use LabelOperator::*;
        match operator {
            In | NotIn if values.is_empty() => {
                errs.push(FieldError::invalid(
                    "values",
                    values.clone(),
                    "for 'in', 'notin' operators, values set can't be empty",
                ));
            }
            Equals | DoubleEquals | NotEquals if values.len() != 1 => {
                errs.push(FieldError::invalid(
                    "values",
                    values.clone(),
                    "exact-match compatibility requires one single value",
                ));
            }
            Exists | DoesNotExist if !values.is_empty() => {
                errs.push(FieldError::invalid(
                    "values",
                    values.clone(),
                    "values set must be empty for exists and does not exist",
                ));
            }
            GreaterThan | LessThan => {
                if values.len() != 1 {
                    errs.push(FieldError::invalid(
                        "values",
                        values.clone(),
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(FieldError::invalid(
                            format!("values[{i}]"),
                            v.as_str(),
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
            _ => {}
        }
        for (i, v) in values.iter().enumerate() {
            for msg in is_valid_label_value(v) {
                errs.push(FieldError::invalid(
                    format!("values[{i}][{key}]"),
                    v.as_str(),
                    msg,
                ));
            }
        }
        if errs.is_empty() {
            return Ok(Self {
                key: key.to_string(),
                operator,
                values,
            });
        }
        let mut parts: Vec<String> = errs.iter().map(ToString::to_string).collect();
        parts.dedup();
        let text = if parts.len() == 1 {
            parts.remove(0)
        } else {
            format!("[{}]", parts.join(", "))
        };
        Err(SelectorError::Requirement(text))
    }

    /// Whether a label set (a JSON object of strings) satisfies the requirement.
    pub fn matches(&self, labels: Option<&serde_json::Map<String, Value>>) -> bool {
        let value = labels
            .and_then(|l| l.get(&self.key))
            .map(|v| v.as_str().unwrap_or_default());
        use LabelOperator::*;
        match self.operator {
            Equals | DoubleEquals | In => value.is_some_and(|v| self.values.iter().any(|x| x == v)),
            NotEquals | NotIn => value.is_none_or(|v| !self.values.iter().any(|x| x == v)),
            Exists => value.is_some(),
            DoesNotExist => value.is_none(),
            GreaterThan | LessThan => {
                let (Some(actual), Some(bound)) = (
                    value.and_then(|v| v.parse::<i64>().ok()),
                    self.values.first().and_then(|v| v.parse::<i64>().ok()),
                ) else {
                    return false;
                };
                if self.operator == GreaterThan {
                    actual > bound
                } else {
                    actual < bound
                }
            }
        }
    }
}

impl fmt::Display for LabelRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use LabelOperator::*;
        let one = self.values.first().map(String::as_str).unwrap_or("");
        match self.operator {
            Equals => write!(f, "{}={one}", self.key),
            DoubleEquals => write!(f, "{}=={one}", self.key),
            NotEquals => write!(f, "{}!={one}", self.key),
            In => write!(f, "{} in ({})", self.key, self.values.join(",")),
            NotIn => write!(f, "{} notin ({})", self.key, self.values.join(",")),
            Exists => write!(f, "{}", self.key),
            DoesNotExist => write!(f, "!{}", self.key),
            GreaterThan => write!(f, "{}>{one}", self.key),
            LessThan => write!(f, "{}<{one}", self.key),
        }
    }
}

/// A parsed label selector: all requirements must hold. Empty selects everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    /// The requirements, sorted by key.
    pub requirements: Vec<LabelRequirement>,
}

impl LabelSelector {
    /// Parses a `labelSelector` query value.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        let mut parser = Parser {
            tokens: Lexer::new(selector).tokens(),
            position: 0,
        };
        let mut requirements = parser.parse()?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Self { requirements })
    }

    /// Whether this selects every object.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether `object`'s `metadata.labels` satisfy every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = object
            .pointer("/metadata/labels")
            .and_then(Value::as_object);
        self.requirements.iter().all(|r| r.matches(labels))
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.requirements.iter().map(ToString::to_string).collect();
        write!(f, "{}", parts.join(","))
    }
}

/// Whether the parser reads values (where `in`/`notin` are plain identifiers) or operators.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

struct Parser {
    tokens: Vec<(Token, String)>,
    position: usize,
}

impl Parser {
    fn lookahead(&self, context: Context) -> (Token, String) {
        let (mut token, literal) = self
            .tokens
            .get(self.position)
            .cloned()
            .unwrap_or((Token::EndOfString, String::new()));
        if context == Context::Values && matches!(token, Token::In | Token::NotIn) {
            token = Token::Identifier;
        }
        (token, literal)
    }

    fn consume(&mut self, context: Context) -> (Token, String) {
        let next = self.lookahead(context);
        self.position += 1;
        next
    }

    fn parse(&mut self) -> Result<Vec<LabelRequirement>, SelectorError> {
        let mut requirements = Vec::new();
        loop {
            let (token, literal) = self.lookahead(Context::Values);
            match token {
                Token::Identifier | Token::DoesNotExist => {
                    requirements.push(self.parse_requirement().map_err(|e| match e {
                        SelectorError::Syntax(m) => SelectorError::Requirement(m),
                        other => other,
                    })?);
                    let (token, literal) = self.consume(Context::Values);
                    match token {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (next, next_literal) = self.lookahead(Context::Values);
                            if !matches!(next, Token::Identifier | Token::DoesNotExist) {
                                return Err(syntax(format!(
                                    "found '{next_literal}', expected: identifier after ','"
                                )));
                            }
                        }
                        _ => {
                            return Err(syntax(format!(
                                "found '{literal}', expected: ',' or 'end of string'"
                            )));
                        }
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => {
                    return Err(syntax(format!(
                        "found '{literal}', expected: !, identifier, or 'end of string'"
                    )));
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<LabelRequirement, SelectorError> {
        let (key, operator) = self.parse_key_and_infer_operator()?;
        if let Some(op @ (LabelOperator::Exists | LabelOperator::DoesNotExist)) = operator {
            return LabelRequirement::new(&key, op, Vec::new());
        }
        let operator = self.parse_operator()?;
        let values = match operator {
            LabelOperator::In | LabelOperator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        LabelRequirement::new(&key, operator, values)
    }

    fn parse_key_and_infer_operator(
        &mut self,
    ) -> Result<(String, Option<LabelOperator>), SelectorError> {
        let mut operator = None;
        let (mut token, mut literal) = self.consume(Context::Values);
        if token == Token::DoesNotExist {
            operator = Some(LabelOperator::DoesNotExist);
            (token, literal) = self.consume(Context::Values);
        }
        if token != Token::Identifier {
            return Err(syntax(format!("found '{literal}', expected: identifier")));
        }
        let errs = is_qualified_name(&literal);
        if !errs.is_empty() {
            return Err(syntax(
                FieldError::invalid("key", literal.as_str(), errs.join("; ")).to_string(),
            ));
        }
        let (next, _) = self.lookahead(Context::Values);
        if matches!(next, Token::EndOfString | Token::Comma) && operator.is_none() {
            operator = Some(LabelOperator::Exists);
        }
        Ok((literal, operator))
    }

    fn parse_operator(&mut self) -> Result<LabelOperator, SelectorError> {
        let (token, literal) = self.consume(Context::KeyAndOperator);
        Ok(match token {
            Token::In => LabelOperator::In,
            Token::Equals => LabelOperator::Equals,
            Token::DoubleEquals => LabelOperator::DoubleEquals,
            Token::GreaterThan => LabelOperator::GreaterThan,
            Token::LessThan => LabelOperator::LessThan,
            Token::NotIn => LabelOperator::NotIn,
            Token::NotEquals => LabelOperator::NotEquals,
            _ => {
                return Err(syntax(format!(
                    "found '{literal}', expected: in, notin, =, ==, !=, gt, lt"
                )));
            }
        })
    }

    fn parse_values(&mut self) -> Result<Vec<String>, SelectorError> {
        let (token, literal) = self.consume(Context::Values);
        if token != Token::OpenParen {
            return Err(syntax(format!("found '{literal}' expected: '('")));
        }
        let (token, literal) = self.lookahead(Context::Values);
        match token {
            Token::Identifier | Token::Comma => {
                let values = self.parse_identifiers_list()?;
                let (token, _) = self.consume(Context::Values);
                if token != Token::CloseParen {
                    return Err(syntax(format!("found '{literal}', expected: ')'")));
                }
                Ok(values)
            }
            Token::CloseParen => {
                self.consume(Context::Values);
                Ok(vec![String::new()])
            }
            _ => Err(syntax(format!(
                "found '{literal}', expected: ',', ')' or identifier"
            ))),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<Vec<String>, SelectorError> {
        let mut values = Vec::new();
        loop {
            let (token, literal) = self.consume(Context::Values);
            match token {
                Token::Identifier => {
                    values.push(literal);
                    let (next, next_literal) = self.lookahead(Context::Values);
                    match next {
                        Token::Comma => continue,
                        Token::CloseParen => return Ok(values),
                        _ => {
                            return Err(syntax(format!(
                                "found '{next_literal}', expected: ',' or ')'"
                            )));
                        }
                    }
                }
                Token::Comma => {
                    // `(,a`, `a,,b` and `a,)` each contribute an empty value.
                    if values.is_empty() {
                        values.push(String::new());
                    }
                    let (next, _) = self.lookahead(Context::Values);
                    if next == Token::CloseParen {
                        values.push(String::new());
                        return Ok(values);
                    }
                    if next == Token::Comma {
                        self.consume(Context::Values);
                        values.push(String::new());
                    }
                }
                _ => {
                    return Err(syntax(format!(
                        "found '{literal}', expected: ',', or identifier"
                    )));
                }
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<Vec<String>, SelectorError> {
        let (token, _) = self.lookahead(Context::Values);
        if matches!(token, Token::EndOfString | Token::Comma) {
            return Ok(vec![String::new()]);
        }
        let (token, literal) = self.consume(Context::Values);
        if token == Token::Identifier {
            return Ok(vec![literal]);
        }
        Err(syntax(format!("found '{literal}', expected: identifier")))
    }
}

fn syntax(message: String) -> SelectorError {
    SelectorError::Syntax(message)
}

// ------------------------------------------------------------------------------------------------
// Field selectors
// ------------------------------------------------------------------------------------------------

/// A field requirement operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldOperator {
    /// `field=value` or `field==value`
    Equals,
    /// `field!=value`
    NotEquals,
}

/// One term of a field selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRequirement {
    /// The field label, e.g. `metadata.name`.
    pub field: String,
    /// The operator.
    pub operator: FieldOperator,
    /// The unescaped value.
    pub value: String,
}

/// A parsed field selector: all terms must hold. Empty selects everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    /// The terms, in the order given.
    pub requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses a `fieldSelector` query value (syntax only; see [`FieldSelector::parse_for`]).
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        let mut requirements = Vec::new();
        for term in split_unescaped(selector) {
            if term.is_empty() {
                continue;
            }
            let (field, operator, raw) =
                split_term(term).ok_or_else(|| SelectorError::FieldTerm {
                    selector: selector.to_string(),
                    term: term.to_string(),
                })?;
            requirements.push(FieldRequirement {
                field: field.to_string(),
                operator,
                value: unescape_value(raw)?,
            });
        }
        Ok(Self { requirements })
    }

    /// Parses a `fieldSelector` for `kind`: every field must be selectable on it.
    pub fn parse_for(kind: &ResourceKind, selector: &str) -> Result<Self, SelectorError> {
        let parsed = Self::parse(selector)?;
        let extra = selectable_fields(kind);
        for r in &parsed.requirements {
            let known = matches!(r.field.as_str(), "metadata.name" | "metadata.namespace")
                || extra.iter().any(|(label, _)| *label == r.field);
            if !known {
                return Err(SelectorError::UnsupportedField(r.field.clone()));
            }
        }
        Ok(parsed)
    }

    /// Whether this selects every object.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The value `field` must equal, if a `=`/`==` term pins it (e.g. the one object a
    /// `metadata.name=X` list or watch is about).
    pub fn exact_match(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && r.operator == FieldOperator::Equals)
            .map(|r| r.value.as_str())
    }

    /// Whether `object` (of `kind`) satisfies every term. Absent fields compare as `""`.
    pub fn matches(&self, kind: &ResourceKind, object: &Value) -> bool {
        self.matches_with(selectable_fields(kind), object)
    }

    /// [`FieldSelector::matches`] with the kind's extra selectable fields given directly
    /// ([`crate::server::kinds::selectable_fields`]).
    pub fn matches_with(&self, extra: &[(&str, &str)], object: &Value) -> bool {
        self.requirements.iter().all(|r| {
            let actual = lookup_field(extra, object, &r.field);
            (actual == r.value) == (r.operator == FieldOperator::Equals)
        })
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .requirements
            .iter()
            .map(|r| {
                let op = if r.operator == FieldOperator::Equals {
                    "="
                } else {
                    "!="
                };
                format!("{}{op}{}", r.field, escape_value(&r.value))
            })
            .collect();
        write!(f, "{}", parts.join(","))
    }
}

/// The value of field label `label` of `object`, as a string (`""` when absent).
pub fn field_value(kind: &ResourceKind, object: &Value, label: &str) -> String {
    lookup_field(selectable_fields(kind), object, label)
}

fn lookup_field(extra: &[(&str, &str)], object: &Value, label: &str) -> String {
    let path = match label {
        "metadata.name" | "metadata.namespace" => label,
        _ => match extra.iter().find(|(l, _)| *l == label) {
            Some((_, path)) => path,
            None => return String::new(),
        },
    };
    let mut current = object;
    for part in path.split('.') {
        match current.get(part) {
            Some(next) => current = next,
            None => return String::new(),
        }
    }
    match current {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(_) | Value::Number(_) => current.to_string(),
        other => other.to_string(),
    }
}

/// Splits on commas not preceded by a backslash escape.
fn split_unescaped(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_escape = false;
    for (i, c) in selector.char_indices() {
        if in_escape {
            in_escape = false;
        } else if c == '\\' {
            in_escape = true;
        } else if c == ',' {
            terms.push(&selector[start..i]);
            start = i + 1;
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// Finds the first operator (`!=`, `==`, `=`, tried in that order at each position).
fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, operator) in [
            ("!=", FieldOperator::NotEquals),
            ("==", FieldOperator::Equals),
            ("=", FieldOperator::Equals),
        ] {
            if let Some(value) = rest.strip_prefix(op) {
                return Some((&term[..i], operator, value));
            }
        }
    }
    None
}

/// Undoes `\\`, `\,` and `\=` escapes; any other escape or an unescaped `,`/`=` is an error.
pub fn unescape_value(raw: &str) -> Result<String, SelectorError> {
    let mut out = String::with_capacity(raw.len());
    let mut in_escape = false;
    for c in raw.chars() {
        if in_escape {
            match c {
                '\\' | ',' | '=' => out.push(c),
                other => return Err(SelectorError::InvalidEscape(format!("\\{other}"))),
            }
            in_escape = false;
            continue;
        }
        match c {
            '\\' => in_escape = true,
            ',' | '=' => return Err(SelectorError::UnescapedCharacter(c)),
            other => out.push(other),
        }
    }
    if in_escape {
        return Err(SelectorError::InvalidEscape("\\".to_string()));
    }
    Ok(out)
}

/// Escapes `\`, `,` and `=` in a field selector value.
pub fn escape_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace(',', "\\,")
        .replace('=', "\\=")
}

// ------------------------------------------------------------------------------------------------
// Both together
// ------------------------------------------------------------------------------------------------

/// The label and field selectors of one list or watch request on one kind.
#[derive(Clone, Debug)]
pub struct Selectors {
    /// `labelSelector`.
    pub labels: LabelSelector,
    /// `fieldSelector`.
    pub fields: FieldSelector,
    extra_fields: &'static [(&'static str, &'static str)],
}

impl Selectors {
    /// Parses both query parameters for `kind` (absent or empty = everything).
    pub fn parse(
        kind: &ResourceKind,
        label_selector: Option<&str>,
        field_selector: Option<&str>,
    ) -> Result<Self, SelectorError> {
        Ok(Self {
            labels: LabelSelector::parse(label_selector.unwrap_or(""))?,
            fields: FieldSelector::parse_for(kind, field_selector.unwrap_or(""))?,
            extra_fields: selectable_fields(kind),
        })
    }

    /// Whether both selectors are empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    /// The object name a `metadata.name=X` term pins, if any.
    pub fn pinned_name(&self) -> Option<&str> {
        self.fields.exact_match("metadata.name")
    }

    /// The namespace a `metadata.namespace=X` term pins, if any.
    pub fn pinned_namespace(&self) -> Option<&str> {
        self.fields.exact_match("metadata.namespace")
    }

    /// Whether `object` matches both selectors.
    pub fn matches(&self, object: &Value) -> bool {
        self.labels.matches(object) && self.fields.matches_with(self.extra_fields, object)
    }
}

#[cfg(test)]
mod tests;
