//! Property-based fuzzing of JSON Schema loading: every schema loads or is
//! refused with a typed error, and deep or shared schemas are refused, not
//! followed. Run with `cargo test --lib fuzz`.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::schema::{CheckedSchema, MAX_NESTING, MAX_SCHEMA_BYTES, SchemaError, measure};
use toolhost_fuzz::{check, json};

/// A schema built from the keywords that reach the measuring code, with
/// local references among its own `$defs`.
fn schema(depth: u32) -> impl Strategy<Value = Value> {
    let reference = prop_oneof![
        Just("#".to_string()),
        (0_usize..4).prop_map(|n| format!("#/$defs/d{n}")),
        (0_usize..4).prop_map(|n| format!("#/$defs/d{n}/anyOf/0")),
        Just("#/properties/a".to_string()),
        Just("#/properties".to_string()),
        Just("#anchor".to_string()),
        Just("#/$defs/d%30".to_string()),
        Just("#/$defs/d%".to_string()),
        Just("http://example.com/x".to_string()),
        "#\\PC{0,6}",
    ];
    let leaf = prop_oneof![
        Just(json!({})),
        Just(json!(true)),
        Just(json!(false)),
        prop::sample::select(
            &[
                "string", "integer", "number", "object", "array", "boolean", "null", "nope"
            ][..]
        )
        .prop_map(|t| json!({"type": t})),
        reference.clone().prop_map(|r| json!({"$ref": r})),
        "[a-z.*+?()\\[\\]{}|^$\\\\0-9]{0,10}".prop_map(|p| json!({"type": "string", "pattern": p})),
        (0_u64..5, 0_u64..5).prop_map(|(a, b)| json!({"minLength": a, "maxItems": b})),
        json(2).prop_map(|v| json!({"const": v})),
        prop::collection::vec(json(1), 0..3).prop_map(|v| json!({"enum": v})),
        Just(json!({"$anchor": "anchor"})),
        Just(json!({"$dynamicRef": "#x"})),
        Just(json!({"$id": "http://example.com/inner"})),
        json(2),
    ];
    leaf.prop_recursive(depth, 48, 4, move |inner| {
        let list = prop::collection::vec(inner.clone(), 0..4);
        let map = prop::collection::btree_map("a|b|c|d|[a-z~/]{1,4}", inner.clone(), 0..4)
            .prop_map(|m| Value::Object(m.into_iter().collect()));
        prop_oneof![
            list.clone().prop_map(|l| json!({"anyOf": l})),
            list.clone().prop_map(|l| json!({"allOf": l})),
            list.clone().prop_map(|l| json!({"oneOf": l})),
            list.clone().prop_map(|l| json!({"prefixItems": l})),
            inner.clone().prop_map(|s| json!({"not": s})),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(i, t, e)| json!({"if": i, "then": t, "else": e})),
            inner
                .clone()
                .prop_map(|s| json!({"type": "array", "items": s})),
            inner
                .clone()
                .prop_map(|s| json!({"additionalProperties": s, "unevaluatedProperties": false})),
            map.clone()
                .prop_map(|m| json!({"type": "object", "properties": m})),
            map.clone().prop_map(|m| json!({"patternProperties": m})),
            map.clone().prop_map(|m| json!({"dependentSchemas": m})),
            (inner.clone(), reference.clone())
                .prop_map(|(s, r)| json!({"allOf": [s, {"$ref": r}]})),
            (inner.clone(), prop::collection::vec(inner, 1..4)).prop_map(|(s, defs)| {
                let defs: Map<String, Value> = defs
                    .into_iter()
                    .enumerate()
                    .map(|(n, d)| (format!("d{n}"), d))
                    .collect();
                let mut s = if s.is_object() {
                    s
                } else {
                    json!({"allOf": [s]})
                };
                s["$defs"] = Value::Object(defs);
                s
            }),
        ]
    })
}

/// How deep schema objects nest (the root is 0).
fn nesting(value: &Value) -> usize {
    match value {
        Value::Object(map) => map.values().map(|v| 1 + nesting(v)).max().unwrap_or(0),
        Value::Array(items) => items.iter().map(nesting).max().unwrap_or(0),
        _ => 0,
    }
}

#[test]
fn fuzz_schemas_load_or_are_refused_with_a_typed_error() {
    check(
        "schemas",
        256,
        (schema(5), prop::collection::vec(json(3), 0..4)),
        |(schema, inputs)| {
            let text = schema.to_string();
            match CheckedSchema::parse(&text) {
                Ok((_, checked)) => {
                    prop_assert!(text.len() <= MAX_SCHEMA_BYTES);
                    let cost = measure(&schema).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert!(cost.work <= super::schema::MAX_WORK_PER_VALUE);
                    prop_assert!(checked.work_per_byte() >= 1);
                    // Wrapping a schema never makes it cheaper to validate.
                    let wrapped = measure(&json!({"allOf": [schema.clone()], "$defs": {}}));
                    if let Ok(wrapped) = wrapped {
                        prop_assert!(wrapped.work >= cost.work);
                    }
                    for input in &inputs {
                        let _ = checked.validator.is_valid(input);
                    }
                }
                Err(error) => {
                    prop_assert!(!error.to_string().is_empty());
                    if let SchemaError::TooDeep { .. } = error {
                        prop_assert!(nesting(&schema) > MAX_NESTING);
                    }
                }
            }
            Ok(())
        },
    );
}

#[test]
fn fuzz_deep_and_shared_schemas_are_refused_not_followed() {
    let keyword = prop::sample::select(
        &[
            "items",
            "not",
            "anyOf",
            "properties",
            "additionalProperties",
            "allOf",
        ][..],
    );
    check(
        "deep schemas",
        128,
        (prop::collection::vec(keyword, 1..200), 1_usize..40),
        |(chain, levels)| {
            // Nested as deep as the chain says.
            let mut schema = json!({"type": "integer"});
            for keyword in chain.iter().rev() {
                schema = match *keyword {
                    "anyOf" | "allOf" => json!({ *keyword: [schema] }),
                    "properties" => json!({"properties": {"x": schema}}),
                    other => json!({ other: schema }),
                };
            }
            // Every keyword is one schema level; arrays and `properties` add a JSON level.
            let json_depth: usize = 1 + chain
                .iter()
                .map(|k| {
                    if matches!(*k, "anyOf" | "allOf" | "properties") {
                        2
                    } else {
                        1
                    }
                })
                .sum::<usize>();
            match CheckedSchema::parse(&schema.to_string()) {
                Ok(_) => prop_assert!(chain.len() <= MAX_NESTING),
                Err(error) => {
                    prop_assert!(
                        chain.len() > MAX_NESTING || json_depth > 120,
                        "{} levels refused: {}",
                        chain.len(),
                        error
                    );
                    prop_assert!(
                        matches!(error, SchemaError::TooDeep { .. } | SchemaError::NotJson(_)),
                        "{}",
                        error
                    );
                }
            }
            // The `$ref` + `anyOf` bomb: 2^levels checks, refused from 2^16 on.
            let bomb = super::schema::tests::bomb(levels);
            match measure(&bomb) {
                Ok(cost) => prop_assert!(levels < 16 && cost.work >= 1 << levels),
                Err(error) => prop_assert_eq!(error, SchemaError::TooMuchWork),
            }
            Ok(())
        },
    );
}
