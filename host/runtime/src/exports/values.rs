//! JSON arguments to component values and results back to JSON.
//!
//! The mapping, which [`Shape::schema`] describes as JSON Schema:
//!
//! | WIT | JSON |
//! |---|---|
//! | `bool`, `string` | boolean, string |
//! | integers | integers in the type's range |
//! | `f32`, `f64` | numbers; `"NaN"`, `"Infinity"`, `"-Infinity"` for the others |
//! | `char` | a string of one character |
//! | `list<T>`, `tuple<..>` | arrays |
//! | `record` | an object with one key per field |
//! | `option<T>` | `null` or the value (`{"some": ..}` when `T` is itself an option) |
//! | `result<T, E>` | `{"ok": ..}` or `{"err": ..}` |
//! | `variant` | `{"case": payload}`, or `"case"` for a case without payload |
//! | `enum` | the case's name |
//! | `flags` | an array of the names of the flags that are set |

use std::fmt;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};
use wasmtime::component::Val;

use super::shape::Shape;

/// A JSON value that does not fit the WIT type at `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ValueError {
    /// A JSON Pointer to the offending value (empty for the whole input).
    pub(crate) path: String,
    /// What was expected there.
    pub(crate) expected: String,
    /// What was found.
    pub(crate) found: String,
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        write!(
            f,
            "at `{at}`: expected {}, got {}",
            self.expected, self.found
        )
    }
}

/// Converts `json` to a value of `shape`; `path` names where it is.
pub(crate) fn to_val(shape: &Shape, json: &Value, path: &str) -> Result<Val, ValueError> {
    let fail = |expected: String| ValueError {
        path: path.to_string(),
        expected,
        found: describe(json),
    };
    let at = |key: &str| format!("{path}/{}", key.replace('~', "~0").replace('/', "~1"));
    Ok(match shape {
        Shape::Bool => Val::Bool(
            json.as_bool()
                .ok_or_else(|| fail("a boolean (bool)".into()))?,
        ),
        Shape::S8
        | Shape::U8
        | Shape::S16
        | Shape::U16
        | Shape::S32
        | Shape::U32
        | Shape::S64
        | Shape::U64 => integer(shape, json).ok_or_else(|| {
            let (min, max) = shape.int_range().unwrap_or((0, 0));
            fail(format!("an integer from {min} to {max} ({})", shape.wit()))
        })?,
        Shape::F32 => {
            let x = float(json).ok_or_else(|| fail("a number (f32)".into()))?;
            if x.is_finite() && x.abs() > f64::from(f32::MAX) {
                return Err(fail("a number within the range of f32".into()));
            }
            // Rounding to the nearest f32 is what the type means.
            #[expect(
                clippy::cast_possible_truncation,
                reason = "f64 to f32 rounds by design"
            )]
            Val::Float32(x as f32)
        }
        Shape::F64 => Val::Float64(float(json).ok_or_else(|| fail("a number (f64)".into()))?),
        Shape::Char => {
            let text = json
                .as_str()
                .ok_or_else(|| fail("a string of one character (char)".into()))?;
            let mut chars = text.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Val::Char(c),
                _ => return Err(fail("a string of exactly one character (char)".into())),
            }
        }
        Shape::String => Val::String(
            json.as_str()
                .ok_or_else(|| fail("a string".into()))?
                .to_string(),
        ),
        Shape::List(inner) => {
            let items = json
                .as_array()
                .ok_or_else(|| fail(format!("an array ({})", shape.wit())))?;
            Val::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| to_val(inner, item, &at(&i.to_string())))
                    .collect::<Result<_, _>>()?,
            )
        }
        Shape::FixedList(inner, n) => {
            let items = json
                .as_array()
                .filter(|items| items.len() == *n as usize)
                .ok_or_else(|| fail(format!("an array of exactly {n} items ({})", shape.wit())))?;
            Val::FixedLengthList(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| to_val(inner, item, &at(&i.to_string())))
                    .collect::<Result<_, _>>()?,
            )
        }
        Shape::Tuple(shapes) => {
            let items = json
                .as_array()
                .filter(|items| items.len() == shapes.len())
                .ok_or_else(|| {
                    fail(format!(
                        "an array of {} items ({})",
                        shapes.len(),
                        shape.wit()
                    ))
                })?;
            Val::Tuple(
                shapes
                    .iter()
                    .zip(items)
                    .enumerate()
                    .map(|(i, (shape, item))| to_val(shape, item, &at(&i.to_string())))
                    .collect::<Result<_, _>>()?,
            )
        }
        Shape::Record(fields, _) => {
            let object = json
                .as_object()
                .ok_or_else(|| fail(format!("an object ({})", shape.wit())))?;
            Val::Record(fields_to_vals(
                fields.iter().map(|f| (f.name.as_str(), &f.shape)),
                object,
                path,
            )?)
        }
        Shape::Variant(cases, _) => {
            let expected = || format!("one of the cases of {}", shape.wit());
            let (name, payload) = match json {
                Value::String(name) => (name.as_str(), None),
                Value::Object(map) if map.len() == 1 => {
                    let (name, payload) = map.iter().next().ok_or_else(|| fail(expected()))?;
                    (name.as_str(), Some(payload))
                }
                _ => return Err(fail(expected())),
            };
            let case = cases
                .iter()
                .find(|c| c.name == name)
                .ok_or_else(|| fail(expected()))?;
            let payload = match (&case.payload, payload) {
                (None, None | Some(Value::Null)) => None,
                (Some(shape), Some(value)) => Some(Box::new(to_val(shape, value, &at(name))?)),
                (Some(payload), None) => {
                    return Err(fail(format!(
                        "`{{\"{name}\": ...}}` with a {} payload",
                        payload.wit()
                    )));
                }
                (None, Some(_)) => {
                    return Err(fail(format!("`\"{name}\"` (the case has no payload)")));
                }
            };
            Val::Variant(name.to_string(), payload)
        }
        Shape::Enum(cases, _) => {
            let name = json
                .as_str()
                .filter(|name| cases.iter().any(|c| c.name == *name))
                .ok_or_else(|| {
                    fail(format!(
                        "one of {}",
                        quoted(cases.iter().map(|c| c.name.as_str()))
                    ))
                })?;
            Val::Enum(name.to_string())
        }
        Shape::Flags(cases, _) => {
            let expected = || {
                format!(
                    "an array of flags from {}",
                    quoted(cases.iter().map(|c| c.name.as_str()))
                )
            };
            let items = json.as_array().ok_or_else(|| fail(expected()))?;
            let mut set = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let name = item
                    .as_str()
                    .filter(|name| cases.iter().any(|c| c.name == *name))
                    .ok_or_else(|| ValueError {
                        path: at(&i.to_string()),
                        expected: expected(),
                        found: describe(item),
                    })?;
                if !set.iter().any(|s: &String| s == name) {
                    set.push(name.to_string());
                }
            }
            Val::Flags(set)
        }
        Shape::Option(inner) => match (json, &**inner) {
            (Value::Null, _) => Val::Option(None),
            (Value::Object(map), Shape::Option(_)) => {
                let some = map
                    .get("some")
                    .filter(|_| map.len() == 1)
                    .ok_or_else(|| fail(format!("null or {{\"some\": ...}} ({})", shape.wit())))?;
                Val::Option(Some(Box::new(to_val(inner, some, &at("some"))?)))
            }
            (_, Shape::Option(_)) => {
                return Err(fail(format!("null or {{\"some\": ...}} ({})", shape.wit())));
            }
            (value, _) => Val::Option(Some(Box::new(to_val(inner, value, path)?))),
        },
        Shape::Result(ok, err) => {
            let expected = || format!("{{\"ok\": ...}} or {{\"err\": ...}} ({})", shape.wit());
            let map = json
                .as_object()
                .filter(|map| map.len() == 1)
                .ok_or_else(|| fail(expected()))?;
            let side =
                |name: &str, shape: &Option<Box<Shape>>| -> Result<Option<Box<Val>>, ValueError> {
                    let value = &map[name];
                    match shape {
                        Some(shape) => Ok(Some(Box::new(to_val(shape, value, &at(name))?))),
                        None if value.is_null() => Ok(None),
                        None => Err(ValueError {
                            path: at(name),
                            expected: "null (this side of the result has no payload)".into(),
                            found: describe(value),
                        }),
                    }
                };
            if map.contains_key("ok") {
                Val::Result(Ok(side("ok", ok)?))
            } else if map.contains_key("err") {
                Val::Result(Err(side("err", err)?))
            } else {
                return Err(fail(expected()));
            }
        }
    })
}

/// Converts the keys of `object` named by `fields`, in their order. A missing
/// option is `none`; a missing anything else, or an unknown key, is an error.
pub(crate) fn fields_to_vals<'a>(
    fields: impl Iterator<Item = (&'a str, &'a Shape)> + Clone,
    object: &Map<String, Value>,
    path: &str,
) -> Result<Vec<(String, Val)>, ValueError> {
    if let Some(unknown) = object
        .keys()
        .find(|key| !fields.clone().any(|(name, _)| name == key.as_str()))
    {
        return Err(ValueError {
            path: format!("{path}/{unknown}"),
            expected: format!(
                "no such key (known: {})",
                quoted(fields.map(|(name, _)| name))
            ),
            found: "a key that is not one".into(),
        });
    }
    fields
        .map(|(name, shape)| {
            let value = match (object.get(name), shape) {
                (Some(value), _) => to_val(shape, value, &format!("{path}/{name}"))?,
                (None, Shape::Option(_)) => Val::Option(None),
                (None, _) => {
                    return Err(ValueError {
                        path: format!("{path}/{name}"),
                        expected: format!("a value ({})", shape.wit()),
                        found: "nothing (the key is required)".into(),
                    });
                }
            };
            Ok((name.to_string(), value))
        })
        .collect()
}

/// A component value as JSON, the inverse of [`to_val`], written straight
/// to a serializer: no JSON tree is built, so a writer that stops at a cap
/// (`lift::json_text`) stops the work there. Record fields are written in
/// the order of their names, as a [`serde_json::Map`] holds them.
pub(crate) struct Json<'a>(pub(crate) &'a Val);

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Val::Bool(b) => serializer.serialize_bool(*b),
            Val::S8(n) => serializer.serialize_i8(*n),
            Val::U8(n) => serializer.serialize_u8(*n),
            Val::S16(n) => serializer.serialize_i16(*n),
            Val::U16(n) => serializer.serialize_u16(*n),
            Val::S32(n) => serializer.serialize_i32(*n),
            Val::U32(n) => serializer.serialize_u32(*n),
            Val::S64(n) => serializer.serialize_i64(*n),
            Val::U64(n) => serializer.serialize_u64(*n),
            // As f64, as the values came in: an f32 written as f32 would
            // print its shortest f32 digits, not the f64 ones.
            Val::Float32(x) => number(serializer, f64::from(*x)),
            Val::Float64(x) => number(serializer, *x),
            Val::Char(c) => serializer.serialize_str(c.encode_utf8(&mut [0; 4])),
            Val::String(s) => serializer.serialize_str(s),
            Val::List(items) | Val::Tuple(items) | Val::FixedLengthList(items) => {
                serializer.collect_seq(items.iter().map(Json))
            }
            Val::Record(fields) => {
                let mut sorted: Vec<&(String, Val)> = fields.iter().collect();
                sorted.sort_by(|a, b| a.0.cmp(&b.0));
                serializer.collect_map(sorted.into_iter().map(|(name, value)| (name, Json(value))))
            }
            Val::Variant(name, None) | Val::Enum(name) => serializer.serialize_str(name),
            Val::Variant(name, Some(payload)) => single(serializer, name, Some(payload)),
            Val::Option(None) => serializer.serialize_unit(),
            Val::Option(Some(inner)) => match **inner {
                Val::Option(_) => single(serializer, "some", Some(inner)),
                _ => Json(inner).serialize(serializer),
            },
            Val::Result(Ok(value)) => single(serializer, "ok", value.as_deref()),
            Val::Result(Err(value)) => single(serializer, "err", value.as_deref()),
            Val::Flags(names) => serializer.collect_seq(names),
            Val::Map(pairs) => {
                serializer.collect_seq(pairs.iter().map(|(k, v)| (Json(k), Json(v))))
            }
            // Refused at load: a function that passes these never runs.
            Val::Resource(_) | Val::Future(_) | Val::Stream(_) | Val::ErrorContext(_) => {
                serializer.serialize_unit()
            }
        }
    }
}

/// `{key: value}`, with `null` for no value.
fn single<S: Serializer>(serializer: S, key: &str, value: Option<&Val>) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(1))?;
    map.serialize_entry(key, &value.map(Json))?;
    map.end()
}

/// A number, or `"NaN"`, `"Infinity"`, `"-Infinity"`, which JSON has no number for.
fn number<S: Serializer>(serializer: S, x: f64) -> Result<S::Ok, S::Error> {
    match float_text(x) {
        Some(text) => serializer.serialize_str(text),
        None => serializer.serialize_f64(x),
    }
}

fn float_text(x: f64) -> Option<&'static str> {
    match x {
        x if x.is_nan() => Some("NaN"),
        x if x.is_infinite() && x > 0.0 => Some("Infinity"),
        x if x.is_infinite() => Some("-Infinity"),
        _ => None,
    }
}

/// The text a value is as JSON when it is a JSON string (a string, a char,
/// a case without payload, a non-finite float, an option of one), else none.
pub(crate) fn as_text(val: &Val) -> Option<String> {
    match val {
        Val::String(s) => Some(s.clone()),
        Val::Char(c) => Some(c.to_string()),
        Val::Variant(name, None) | Val::Enum(name) => Some(name.clone()),
        Val::Float32(x) => float_text(f64::from(*x)).map(str::to_string),
        Val::Float64(x) => float_text(*x).map(str::to_string),
        Val::Option(Some(inner)) if !matches!(**inner, Val::Option(_)) => as_text(inner),
        _ => None,
    }
}

/// A component value as a JSON tree (tests compare values as trees).
#[cfg(test)]
pub(crate) fn to_json(val: &Val) -> Value {
    serde_json::to_value(Json(val)).expect("a component value is always JSON")
}

fn integer(shape: &Shape, json: &Value) -> Option<Val> {
    let n: i128 = match json.as_number()? {
        n if n.is_i64() => n.as_i64()?.into(),
        n if n.is_u64() => n.as_u64()?.into(),
        // 3.0 is an integer; 3.5 is not.
        n => {
            let x = n.as_f64()?;
            if x.fract() != 0.0 || x.abs() > 1.9e19 {
                return None;
            }
            #[expect(
                clippy::cast_possible_truncation,
                reason = "checked to be integral and in range"
            )]
            let n = x as i128;
            n
        }
    };
    Some(match shape {
        Shape::S8 => Val::S8(n.try_into().ok()?),
        Shape::U8 => Val::U8(n.try_into().ok()?),
        Shape::S16 => Val::S16(n.try_into().ok()?),
        Shape::U16 => Val::U16(n.try_into().ok()?),
        Shape::S32 => Val::S32(n.try_into().ok()?),
        Shape::U32 => Val::U32(n.try_into().ok()?),
        Shape::S64 => Val::S64(n.try_into().ok()?),
        Shape::U64 => Val::U64(n.try_into().ok()?),
        _ => return None,
    })
}

fn float(json: &Value) -> Option<f64> {
    match json {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

fn quoted<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A short description of a JSON value for messages.
fn describe(json: &Value) -> String {
    let text = json.to_string();
    let text = if text.chars().count() > 40 {
        format!("{}…", text.chars().take(40).collect::<String>())
    } else {
        text
    };
    let kind = match json {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    if json.is_null() {
        kind.into()
    } else {
        format!("{kind} {text}")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::exports::shape::{Case, Field};

    fn boxed(shape: Shape) -> Box<Shape> {
        Box::new(shape)
    }

    fn round_trip(shape: &Shape, json: Value) {
        let val = to_val(shape, &json, "").unwrap_or_else(|e| panic!("{json}: {e}"));
        assert_eq!(to_json(&val), json, "{}", shape.wit());
        // Every accepted value also passes the shape's schema.
        let validator = jsonschema::validator_for(&shape.schema()).unwrap();
        assert!(
            validator.is_valid(&json),
            "{json} fails the schema of {}",
            shape.wit()
        );
    }

    fn error(shape: &Shape, json: Value) -> String {
        let err = to_val(shape, &json, "")
            .expect_err("must not convert")
            .to_string();
        let validator = jsonschema::validator_for(&shape.schema()).unwrap();
        assert!(
            !validator.is_valid(&json),
            "{json} passes the schema of {}",
            shape.wit()
        );
        err
    }

    fn case(name: &str, payload: Option<Shape>) -> Case {
        Case {
            name: name.into(),
            payload,
            docs: None,
        }
    }

    #[test]
    fn scalars() {
        round_trip(&Shape::Bool, json!(true));
        round_trip(&Shape::U8, json!(255));
        round_trip(&Shape::S64, json!(i64::MIN));
        round_trip(&Shape::U64, json!(u64::MAX));
        round_trip(&Shape::F64, json!(1.5));
        round_trip(&Shape::F64, json!("NaN"));
        round_trip(&Shape::F32, json!("-Infinity"));
        round_trip(&Shape::Char, json!("é"));
        round_trip(&Shape::String, json!("hello"));
        assert!(matches!(
            to_val(&Shape::U8, &json!(3.0), "").unwrap(),
            Val::U8(3)
        ));
    }

    #[test]
    fn scalar_errors_name_the_range() {
        assert_eq!(
            error(&Shape::U8, json!(256)),
            "at `/`: expected an integer from 0 to 255 (u8), got a number 256"
        );
        assert!(error(&Shape::S8, json!(-129)).contains("from -128 to 127 (s8)"));
        assert!(error(&Shape::U32, json!(1.5)).contains("(u32)"));
        assert!(error(&Shape::Char, json!("ab")).contains("exactly one character"));
        assert!(error(&Shape::Bool, json!("true")).contains("a boolean"));
        assert!(to_val(&Shape::F32, &json!(1e300), "").is_err());
    }

    #[test]
    fn compounds() {
        let record = Shape::Record(
            vec![
                Field {
                    name: "x".into(),
                    shape: Shape::S32,
                    docs: None,
                },
                Field {
                    name: "tags".into(),
                    shape: Shape::List(boxed(Shape::String)),
                    docs: None,
                },
                Field {
                    name: "note".into(),
                    shape: Shape::Option(boxed(Shape::String)),
                    docs: None,
                },
            ],
            None,
        );
        round_trip(&record, json!({"x": -1, "tags": ["a"], "note": null}));
        round_trip(
            &Shape::Tuple(vec![Shape::U8, Shape::String]),
            json!([1, "a"]),
        );
        round_trip(&Shape::FixedList(boxed(Shape::U8), 2), json!([1, 2]));
        let variant = Shape::Variant(
            vec![case("none", None), case("num", Some(Shape::F64))],
            None,
        );
        round_trip(&variant, json!("none"));
        round_trip(&variant, json!({"num": 2.5}));
        let colors = Shape::Enum(vec![case("red", None), case("green", None)], None);
        round_trip(&colors, json!("green"));
        let flags = Shape::Flags(vec![case("read", None), case("write", None)], None);
        round_trip(&flags, json!(["read", "write"]));
        round_trip(&flags, json!([]));
        let result = Shape::Result(Some(boxed(Shape::U8)), None);
        round_trip(&result, json!({"ok": 1}));
        round_trip(&result, json!({"err": null}));
        let nested = Shape::Option(boxed(Shape::Option(boxed(Shape::U8))));
        round_trip(&nested, json!(null));
        round_trip(&nested, json!({"some": null}));
        round_trip(&nested, json!({"some": 4}));
    }

    #[test]
    fn compound_errors_have_paths() {
        let record = Shape::Record(
            vec![Field {
                name: "p".into(),
                shape: Shape::List(boxed(Shape::U8)),
                docs: None,
            }],
            None,
        );
        assert_eq!(
            error(&record, json!({"p": [1, 300]})),
            "at `/p/1`: expected an integer from 0 to 255 (u8), got a number 300"
        );
        assert!(error(&record, json!({})).contains("at `/p`: expected a value (list<u8>)"));
        assert!(error(&record, json!({"p": [], "q": 1})).contains("at `/q`"));
        let variant = Shape::Variant(vec![case("a", None), case("b", Some(Shape::U8))], None);
        assert!(error(&variant, json!("c")).contains("one of the cases"));
        assert!(error(&variant, json!({"b": "x"})).contains("at `/b`"));
        assert!(error(&variant, json!("b")).contains("payload"));
        let flags = Shape::Flags(vec![case("read", None)], None);
        assert!(error(&flags, json!(["read", "exec"])).contains("at `/1`"));
        let result = Shape::Result(None, Some(boxed(Shape::String)));
        assert!(error(&result, json!({"ok": 1})).contains("no payload"));
        assert!(error(&result, json!({"maybe": 1})).contains("{\"ok\": ...}"));
        assert!(error(&Shape::Tuple(vec![Shape::U8]), json!([1, 2])).contains("1 items"));
    }

    #[test]
    fn written_json_is_the_text_of_the_tree() {
        let boxed = |val: Val| Some(Box::new(val));
        let val = Val::Record(vec![
            ("zeta".into(), Val::Float32(0.1)),
            (
                "alpha".into(),
                Val::List(vec![
                    Val::Float64(f64::NAN),
                    Val::Float64(1.0),
                    Val::Char('é'),
                ]),
            ),
            ("mid".into(), Val::Option(boxed(Val::Option(None)))),
            ("r".into(), Val::Result(Ok(None))),
            ("v".into(), Val::Variant("c".into(), boxed(Val::S8(-3)))),
            (
                "m".into(),
                Val::Map(vec![(Val::String("k\"".into()), Val::U64(u64::MAX))]),
            ),
            ("f".into(), Val::Flags(vec!["a".into()])),
        ]);
        let text = serde_json::to_string(&Json(&val)).unwrap();
        // What the JSON tree (keys in order, f32 widened to f64) wrote.
        assert_eq!(
            text,
            r#"{"alpha":["NaN",1.0,"é"],"f":["a"],"m":[["k\"",18446744073709551615]],"mid":{"some":null},"r":{"ok":null},"v":{"c":-3},"zeta":0.10000000149011612}"#
        );
        assert_eq!(text, to_json(&val).to_string());
        assert_eq!(
            as_text(&Val::Option(boxed(Val::Char('x')))),
            Some("x".into())
        );
        assert_eq!(
            as_text(&Val::Float32(f32::NEG_INFINITY)),
            Some("-Infinity".into())
        );
        assert_eq!(as_text(&Val::Option(boxed(Val::Option(None)))), None);
        assert_eq!(as_text(&Val::U8(1)), None);
    }
}
