//! Property-based fuzzing of the catalog's converters of outside input:
//! JSON arguments to component values and back, for generated WIT shapes,
//! and JSON Schema loading. Run with `cargo test --lib fuzz`.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::{BoxedStrategy, Union};
use serde_json::{Map, Value, json};
use wasmtime::component::Val;

use super::schema::{CheckedSchema, MAX_NESTING, MAX_SCHEMA_BYTES, SchemaError, measure};
use super::shape::{Case, Field, Shape};
use super::values::{to_json, to_val};
use crate::fuzzing::{check, json};

/// Distinct names for fields, cases and flags.
fn names(max: usize) -> impl Strategy<Value = Vec<String>> {
    prop::collection::btree_set("[a-z][a-z0-9-]{0,6}", 1..=max)
        .prop_map(|s| s.into_iter().collect())
}

fn cases(payloads: bool, inner: BoxedStrategy<Shape>) -> impl Strategy<Value = Vec<Case>> {
    names(5).prop_flat_map(move |names| {
        let payload = if payloads {
            prop::option::of(inner.clone()).boxed()
        } else {
            Just(None).boxed()
        };
        prop::collection::vec(payload, names.len()).prop_map(move |payloads| {
            names
                .iter()
                .zip(payloads)
                .map(|(name, payload)| Case {
                    name: name.clone(),
                    payload,
                    docs: None,
                })
                .collect()
        })
    })
}

/// Any WIT shape the host converts, nested a few levels.
fn shape() -> impl Strategy<Value = Shape> {
    let leaf = prop_oneof![
        Just(Shape::Bool),
        Just(Shape::S8),
        Just(Shape::U8),
        Just(Shape::S16),
        Just(Shape::U16),
        Just(Shape::S32),
        Just(Shape::U32),
        Just(Shape::S64),
        Just(Shape::U64),
        Just(Shape::F32),
        Just(Shape::F64),
        Just(Shape::Char),
        Just(Shape::String),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        let boxed = inner.clone().boxed();
        prop_oneof![
            inner.clone().prop_map(|s| Shape::List(Box::new(s))),
            (inner.clone(), 0_u32..4).prop_map(|(s, n)| Shape::FixedList(Box::new(s), n)),
            names(4)
                .prop_flat_map({
                    let inner = inner.clone();
                    move |names| {
                        (
                            Just(names.clone()),
                            prop::collection::vec(inner.clone(), names.len()),
                        )
                    }
                })
                .prop_map(|(names, shapes)| {
                    let fields = names
                        .into_iter()
                        .zip(shapes)
                        .map(|(name, shape)| Field {
                            name,
                            shape,
                            docs: None,
                        })
                        .collect();
                    Shape::Record(fields, None)
                }),
            prop::collection::vec(inner.clone(), 0..4).prop_map(Shape::Tuple),
            cases(true, boxed.clone()).prop_map(|c| Shape::Variant(c, None)),
            cases(false, boxed.clone()).prop_map(|c| Shape::Enum(c, None)),
            cases(false, boxed).prop_map(|c| Shape::Flags(c, None)),
            inner.clone().prop_map(|s| Shape::Option(Box::new(s))),
            (prop::option::of(inner.clone()), prop::option::of(inner))
                .prop_map(|(ok, err)| Shape::Result(ok.map(Box::new), err.map(Box::new))),
        ]
    })
}

/// Any value of `shape`.
fn value_of(shape: &Shape) -> BoxedStrategy<Val> {
    match shape {
        Shape::Bool => any::<bool>().prop_map(Val::Bool).boxed(),
        Shape::S8 => any::<i8>().prop_map(Val::S8).boxed(),
        Shape::U8 => any::<u8>().prop_map(Val::U8).boxed(),
        Shape::S16 => any::<i16>().prop_map(Val::S16).boxed(),
        Shape::U16 => any::<u16>().prop_map(Val::U16).boxed(),
        Shape::S32 => any::<i32>().prop_map(Val::S32).boxed(),
        Shape::U32 => any::<u32>().prop_map(Val::U32).boxed(),
        Shape::S64 => any::<i64>().prop_map(Val::S64).boxed(),
        Shape::U64 => any::<u64>().prop_map(Val::U64).boxed(),
        Shape::F32 => any::<f32>().prop_map(Val::Float32).boxed(),
        Shape::F64 => any::<f64>().prop_map(Val::Float64).boxed(),
        Shape::Char => any::<char>().prop_map(Val::Char).boxed(),
        Shape::String => any::<String>().prop_map(Val::String).boxed(),
        Shape::List(inner) => prop::collection::vec(value_of(inner), 0..4)
            .prop_map(Val::List)
            .boxed(),
        Shape::FixedList(inner, n) => prop::collection::vec(value_of(inner), *n as usize)
            .prop_map(Val::FixedLengthList)
            .boxed(),
        Shape::Record(fields, _) => {
            let names: Vec<String> = fields.iter().map(|f| f.name.clone()).collect();
            fields
                .iter()
                .map(|f| value_of(&f.shape))
                .collect::<Vec<_>>()
                .prop_map(move |vals| Val::Record(names.iter().cloned().zip(vals).collect()))
                .boxed()
        }
        Shape::Tuple(shapes) => shapes
            .iter()
            .map(value_of)
            .collect::<Vec<_>>()
            .prop_map(Val::Tuple)
            .boxed(),
        Shape::Variant(cases, _) => Union::new(cases.iter().map(|case| {
            let name = case.name.clone();
            match &case.payload {
                Some(payload) => value_of(payload)
                    .prop_map(move |v| Val::Variant(name.clone(), Some(Box::new(v))))
                    .boxed(),
                None => Just(Val::Variant(name, None)).boxed(),
            }
        }))
        .boxed(),
        Shape::Enum(cases, _) => {
            prop::sample::select(cases.iter().map(|c| c.name.clone()).collect::<Vec<_>>())
                .prop_map(Val::Enum)
                .boxed()
        }
        Shape::Flags(cases, _) => {
            let names: Vec<String> = cases.iter().map(|c| c.name.clone()).collect();
            prop::collection::vec(any::<bool>(), names.len())
                .prop_map(move |set| {
                    Val::Flags(
                        names
                            .iter()
                            .zip(set)
                            .filter(|(_, on)| *on)
                            .map(|(n, _)| n.clone())
                            .collect(),
                    )
                })
                .boxed()
        }
        Shape::Option(inner) => prop::option::of(value_of(inner))
            .prop_map(|v| Val::Option(v.map(Box::new)))
            .boxed(),
        Shape::Result(ok, err) => {
            let side = |shape: &Option<Box<Shape>>| match shape {
                Some(shape) => value_of(shape).prop_map(|v| Some(Box::new(v))).boxed(),
                None => Just(None).boxed(),
            };
            prop_oneof![
                side(ok).prop_map(|v| Val::Result(Ok(v))),
                side(err).prop_map(|v| Val::Result(Err(v))),
            ]
            .boxed()
        }
    }
}

fn shape_and_value() -> impl Strategy<Value = (Shape, Val)> {
    shape().prop_flat_map(|shape| {
        let values = value_of(&shape);
        (Just(shape), values)
    })
}

/// Every JSON Pointer inside `value`.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                pointers(item, format!("{at}/{i}"), out);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                pointers(
                    item,
                    format!("{at}/{}", key.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        _ => {}
    }
    out.push(at);
}

fn validator(shape: &Shape) -> Result<jsonschema::Validator, TestCaseError> {
    jsonschema::validator_for(&shape.schema()).map_err(|e| TestCaseError::fail(e.to_string()))
}

#[test]
fn fuzz_component_values_round_trip_through_json_and_fit_their_schema() {
    check(
        "values round trip",
        512,
        shape_and_value(),
        |(shape, val)| {
            let json = to_json(&val);
            let back = to_val(&shape, &json, "")
                .map_err(|e| TestCaseError::fail(format!("{} of {}: {e}", json, shape.wit())))?;
            prop_assert_eq!(to_json(&back), json.clone());
            // Through text, as arguments arrive and results leave.
            let text =
                serde_json::to_string(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let reread: Value =
                serde_json::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(
                to_val(&shape, &reread, "").is_ok(),
                "{} of {}",
                text,
                shape.wit()
            );
            prop_assert!(
                validator(&shape)?.is_valid(&json),
                "{} fails the schema of {}",
                json,
                shape.wit()
            );
            Ok(())
        },
    );
}

#[test]
fn fuzz_any_json_against_any_shape_converts_or_names_the_place() {
    // Arbitrary JSON, and valid JSON with one part replaced by arbitrary JSON.
    let mutated =
        (shape_and_value(), any::<Index>(), json(2)).prop_map(|((shape, val), at, junk)| {
            let mut json = to_json(&val);
            let mut all = Vec::new();
            pointers(&json, String::new(), &mut all);
            let at = at.get(&all).clone();
            if let Some(slot) = json.pointer_mut(&at) {
                *slot = junk;
            }
            (shape, json)
        });
    let input = prop_oneof![(shape(), json(4)), mutated];
    check("values of any json", 1024, input, |(shape, json)| {
        match to_val(&shape, &json, "") {
            Ok(val) => {
                // What converts is what the schema accepts, and converts again the same.
                prop_assert!(
                    validator(&shape)?.is_valid(&json),
                    "{} passes {} but not its schema",
                    json,
                    shape.wit()
                );
                let again = to_json(&val);
                let back =
                    to_val(&shape, &again, "").map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(to_json(&back), again);
            }
            Err(error) => {
                prop_assert!(error.path.is_empty() || error.path.starts_with('/'));
                prop_assert!(!error.expected.is_empty() && !error.found.is_empty());
                prop_assert!(!error.to_string().is_empty());
            }
        }
        Ok(())
    });
}

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
