//! Tests of label and field selectors, with apimachinery's parse results and messages.

use super::*;
use crate::server::kinds::{arc_kinds, core_kinds};
use serde_json::json;

fn obj(labels: Value) -> Value {
    json!({"metadata": {"name": "o", "namespace": "default", "labels": labels}})
}

fn select(selector: &str, labels: Value) -> bool {
    LabelSelector::parse(selector)
        .unwrap_or_else(|e| panic!("{selector}: {e}"))
        .matches(&obj(labels))
}

#[test]
fn label_selector_grammar() {
    let a = json!({"tier": "a", "env": "x", "n": "5"});
    let b = json!({"tier": "b"});
    let none = json!({});
    let cases: &[(&str, [bool; 3])] = &[
        ("tier=a", [true, false, false]),
        ("tier==a", [true, false, false]),
        ("tier!=a", [false, true, true]),
        ("tier in (a,b)", [true, true, false]),
        ("tier in(a, b )", [true, true, false]),
        ("tier notin (a)", [false, true, true]),
        ("tier", [true, true, false]),
        ("!tier", [false, false, true]),
        ("tier=a,env=x", [true, false, false]),
        (" tier = a , env = x ", [true, false, false]),
        ("n>4", [true, false, false]),
        ("n<5", [false, false, false]),
        ("n>4,tier", [true, false, false]),
        ("", [true, true, true]),
        ("tier=", [false, false, false]),
        ("in in (in)", [false, false, false]),
    ];
    for (selector, expected) in cases {
        let got = [
            select(selector, a.clone()),
            select(selector, b.clone()),
            select(selector, none.clone()),
        ];
        assert_eq!(&got, expected, "{selector}");
    }
    assert!(
        select("tier=", json!({"tier": ""})),
        "k= selects the empty value"
    );
    assert!(select("x in (,a)", json!({"x": ""})));
    assert!(select("x in (a,)", json!({"x": ""})));
    assert!(select(
        "example.com/team=blue",
        json!({"example.com/team": "blue"})
    ));
}

#[test]
fn label_selectors_round_trip_through_display() {
    let s = LabelSelector::parse("z notin (b,a),!y,x>3,w in (q),v!=u,t").unwrap();
    assert_eq!(s.to_string(), "t,v!=u,w in (q),x>3,!y,z notin (a,b)");
    assert_eq!(LabelSelector::parse(&s.to_string()).unwrap(), s);
}

#[test]
fn label_selector_errors_use_apimachinery_texts() {
    let err = |s: &str| LabelSelector::parse(s).unwrap_err().to_string();
    assert_eq!(
        err("tier in (a"),
        "unable to parse requirement: found '', expected: ',' or ')'"
    );
    assert_eq!(
        err("tier notin a"),
        "unable to parse requirement: found 'a' expected: '('"
    );
    assert_eq!(
        err("=a"),
        "found '=', expected: !, identifier, or 'end of string'"
    );
    assert_eq!(err("a=b,"), "found '', expected: identifier after ','");
    assert_eq!(
        err("a b"),
        "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
    );
    assert_eq!(err("a=b c"), "found 'c', expected: ',' or 'end of string'");
    assert_eq!(err("!a=b"), "found '=', expected: ',' or 'end of string'");
    assert_eq!(
        err("n>x"),
        "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators, the value must be an integer"
    );
    assert!(err("a=b c d").starts_with("found 'c'"));
    assert!(
        err("-a=b").starts_with(
            "unable to parse requirement: key: Invalid value: \"-a\": name part must consist of"
        ),
        "{}",
        err("-a=b")
    );
    assert!(
        err("a=b!c").starts_with("unable to parse requirement:")
            || err("a=b!c").starts_with("found")
    );
    let long = "v".repeat(64);
    assert_eq!(
        err(&format!("a={long}")),
        format!(
            "unable to parse requirement: values[0][a]: Invalid value: \"{long}\": must be no more than 63 characters"
        )
    );
    assert!(
        LabelSelector::parse("a in ()").is_ok(),
        "`()` is the empty value, as upstream"
    );
}

#[test]
fn field_selectors_parse_and_escape() {
    let s = FieldSelector::parse("metadata.name=o3,metadata.namespace!=ns2").unwrap();
    assert_eq!(s.requirements.len(), 2);
    assert_eq!(s.exact_match("metadata.name"), Some("o3"));
    assert_eq!(s.exact_match("metadata.namespace"), None);
    let s = FieldSelector::parse("metadata.name==a\\,b\\=c\\\\d").unwrap();
    assert_eq!(s.requirements[0].value, "a,b=c\\d");
    assert_eq!(s.to_string(), "metadata.name=a\\,b\\=c\\\\d");
    assert_eq!(FieldSelector::parse("").unwrap(), FieldSelector::default());
    assert_eq!(
        FieldSelector::parse("a=1,,b=2").unwrap().requirements.len(),
        2
    );
    let err = |s: &str| FieldSelector::parse(s).unwrap_err().to_string();
    assert_eq!(
        err("metadata.name"),
        "invalid selector: 'metadata.name'; can't understand 'metadata.name'"
    );
    assert_eq!(
        err("a=b\\x"),
        "invalid field selector: invalid escape sequence: \\x"
    );
    assert_eq!(
        err("a=b\\"),
        "invalid field selector: invalid escape sequence: \\"
    );
    assert_eq!(
        err("a=b=c"),
        "invalid field selector: unescaped character in value: ="
    );
}

#[test]
fn field_selectors_check_supported_fields_per_kind() {
    let order = arc_kinds().into_iter().find(|k| k.kind == "Order").unwrap();
    assert_eq!(
        FieldSelector::parse_for(&order, "spec.artifact=x")
            .unwrap_err()
            .to_string(),
        "field label not supported: spec.artifact"
    );
    let objects: Vec<Value> = ["o1", "o2", "o3"]
        .iter()
        .map(|n| json!({"metadata": {"name": n, "namespace": if *n == "o3" { "ns2" } else { "default" }}}))
        .collect();
    let names = |sel: &str| -> Vec<String> {
        let s = FieldSelector::parse_for(&order, sel).unwrap();
        objects
            .iter()
            .filter(|o| s.matches(&order, o))
            .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names("metadata.name=o3"), ["o3"]);
    assert_eq!(names("metadata.name!=o3"), ["o1", "o2"]);
    assert_eq!(names("metadata.namespace=ns2"), ["o3"]);
    assert_eq!(
        names("metadata.namespace=default,metadata.name!=o1"),
        ["o2"]
    );

    let core = core_kinds();
    let event = core.iter().find(|k| k.kind == "Event").unwrap();
    let ev = json!({"metadata": {"name": "e1", "namespace": "default"},
        "involvedObject": {"kind": "Order", "name": "o1", "namespace": "default", "uid": "u-1"},
        "source": {"component": "arcd"}, "type": "Normal", "count": 2});
    let describe = "involvedObject.name=o1,involvedObject.namespace=default,involvedObject.kind=Order,involvedObject.uid=u-1";
    assert!(
        FieldSelector::parse_for(event, describe)
            .unwrap()
            .matches(event, &ev)
    );
    assert!(
        !FieldSelector::parse_for(event, "involvedObject.uid=u-2")
            .unwrap()
            .matches(event, &ev)
    );
    assert!(
        FieldSelector::parse_for(event, "source=arcd,type!=Warning")
            .unwrap()
            .matches(event, &ev)
    );
    let secret = core.iter().find(|k| k.kind == "Secret").unwrap();
    assert!(
        FieldSelector::parse_for(secret, "type=Opaque")
            .unwrap()
            .matches(secret, &json!({"type": "Opaque"}))
    );
    assert!(FieldSelector::parse_for(secret, "involvedObject.name=x").is_err());
    assert_eq!(field_value(event, &ev, "involvedObject.fieldPath"), "");
}

#[test]
fn selectors_together() {
    let order = arc_kinds().into_iter().find(|k| k.kind == "Order").unwrap();
    let s = Selectors::parse(&order, Some("tier in (a)"), Some("metadata.name=o1")).unwrap();
    assert!(!s.is_empty());
    assert_eq!(s.pinned_name(), Some("o1"));
    let o1 = json!({"metadata": {"name": "o1", "labels": {"tier": "a"}}});
    let o2 = json!({"metadata": {"name": "o2", "labels": {"tier": "a"}}});
    assert!(s.matches(&o1) && !s.matches(&o2));
    assert!(Selectors::parse(&order, None, Some("")).unwrap().is_empty());
    assert!(matches!(
        Selectors::parse(&order, Some("a in ("), None),
        Err(SelectorError::Requirement(_))
    ));
}
