//! Property-based fuzzing of the plain-export converters of outside input:
//! JSON arguments to component values and back, for generated WIT shapes.
//! Run with `cargo test --lib fuzz`.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::{BoxedStrategy, Union};
use serde_json::Value;
use wasmtime::component::Val;

use super::shape::{Case, Field, Shape};
use super::values::{to_json, to_val};
use toolhost_fuzz::{check, json};

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
