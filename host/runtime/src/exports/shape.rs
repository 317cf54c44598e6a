//! The shape of a WIT value, as a tool's JSON sees it, and its JSON Schema.
//!
//! A [`Shape`] is built once per exported function from wasmtime's component
//! types, so that converting arguments and results needs no wasmtime type
//! handles and the conversion is plain, testable data. Resources, streams,
//! futures and error contexts have no JSON form: building a shape for one
//! fails, and the function is refused at load.

use serde_json::{Map, Value, json};
use wasmtime::component::types::Type;

/// A WIT type, with the doc comments that describe it when they are known.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Shape {
    Bool,
    S8,
    U8,
    S16,
    U16,
    S32,
    U32,
    S64,
    U64,
    F32,
    F64,
    Char,
    String,
    List(Box<Shape>),
    /// `list<T, N>`: exactly `N` elements.
    FixedList(Box<Shape>, u32),
    Record(Vec<Field>, Docs),
    Tuple(Vec<Shape>),
    Variant(Vec<Case>, Docs),
    Enum(Vec<Case>, Docs),
    Option(Box<Shape>),
    Result(Option<Box<Shape>>, Option<Box<Shape>>),
    Flags(Vec<Case>, Docs),
}

/// A doc comment, if the component's WIT carried one.
pub(crate) type Docs = Option<String>;

/// A record field.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Field {
    pub(crate) name: String,
    pub(crate) shape: Shape,
    pub(crate) docs: Docs,
}

/// A variant case (with an optional payload), an enum case or a flag.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Case {
    pub(crate) name: String,
    pub(crate) payload: Option<Shape>,
    pub(crate) docs: Docs,
}

impl Shape {
    /// Takes from `room` what this shape's schema takes as text at the
    /// least (16 bytes a type, and each member's name); false once `room`
    /// runs out, counting no further. A type the component model shares
    /// is a tree here, which may reach a million nodes.
    pub(crate) fn fits(&self, room: &mut usize) -> bool {
        if !take(room, 16) {
            return false;
        }
        match self {
            Self::List(inner) | Self::FixedList(inner, _) | Self::Option(inner) => inner.fits(room),
            Self::Record(fields, _) => fields
                .iter()
                .all(|field| take(room, field.name.len()) && field.shape.fits(room)),
            Self::Tuple(items) => items.iter().all(|item| item.fits(room)),
            Self::Variant(cases, _) | Self::Enum(cases, _) | Self::Flags(cases, _) => {
                cases.iter().all(|case| {
                    take(room, case.name.len())
                        && case
                            .payload
                            .as_ref()
                            .is_none_or(|payload| payload.fits(room))
                })
            }
            Self::Result(ok, err) => [ok, err].into_iter().flatten().all(|side| side.fits(room)),
            _ => true,
        }
    }

    /// The shape of a wasmtime type, or the name of the part that has no
    /// JSON form (a resource, a stream, ...).
    pub(crate) fn of(ty: &Type) -> Result<Self, &'static str> {
        Ok(match ty {
            Type::Bool => Self::Bool,
            Type::S8 => Self::S8,
            Type::U8 => Self::U8,
            Type::S16 => Self::S16,
            Type::U16 => Self::U16,
            Type::S32 => Self::S32,
            Type::U32 => Self::U32,
            Type::S64 => Self::S64,
            Type::U64 => Self::U64,
            Type::Float32 => Self::F32,
            Type::Float64 => Self::F64,
            Type::Char => Self::Char,
            Type::String => Self::String,
            Type::List(list) => Self::List(Box::new(Self::of(&list.ty())?)),
            Type::FixedLengthList(list) => {
                Self::FixedList(Box::new(Self::of(&list.ty())?), list.len())
            }
            Type::Record(record) => Self::Record(
                record
                    .fields()
                    .map(|field| -> Result<Field, &'static str> {
                        Ok(Field {
                            name: field.name.to_string(),
                            shape: Self::of(&field.ty)?,
                            docs: None,
                        })
                    })
                    .collect::<Result<_, _>>()?,
                None,
            ),
            Type::Tuple(tuple) => Self::Tuple(
                tuple
                    .types()
                    .map(|t| Self::of(&t))
                    .collect::<Result<_, _>>()?,
            ),
            Type::Variant(variant) => Self::Variant(
                variant
                    .cases()
                    .map(|case| -> Result<Case, &'static str> {
                        Ok(Case {
                            name: case.name.to_string(),
                            payload: case.ty.as_ref().map(Self::of).transpose()?,
                            docs: None,
                        })
                    })
                    .collect::<Result<_, _>>()?,
                None,
            ),
            Type::Enum(e) => Self::Enum(cases(e.names()), None),
            Type::Flags(flags) => Self::Flags(cases(flags.names()), None),
            Type::Option(option) => Self::Option(Box::new(Self::of(&option.ty())?)),
            Type::Result(result) => Self::Result(
                result
                    .ok()
                    .as_ref()
                    .map(Self::of)
                    .transpose()?
                    .map(Box::new),
                result
                    .err()
                    .as_ref()
                    .map(Self::of)
                    .transpose()?
                    .map(Box::new),
            ),
            Type::Map(_) => return Err("a map"),
            Type::Own(_) | Type::Borrow(_) => return Err("a resource"),
            Type::Future(_) => return Err("a future"),
            Type::Stream(_) => return Err("a stream"),
            Type::ErrorContext => return Err("an error-context"),
        })
    }

    /// The WIT spelling of the shape, for messages: `u8`, `list<string>`, `record { x, y }`.
    pub(crate) fn wit(&self) -> String {
        match self {
            Self::Bool => "bool".into(),
            Self::S8 => "s8".into(),
            Self::U8 => "u8".into(),
            Self::S16 => "s16".into(),
            Self::U16 => "u16".into(),
            Self::S32 => "s32".into(),
            Self::U32 => "u32".into(),
            Self::S64 => "s64".into(),
            Self::U64 => "u64".into(),
            Self::F32 => "f32".into(),
            Self::F64 => "f64".into(),
            Self::Char => "char".into(),
            Self::String => "string".into(),
            Self::List(inner) => format!("list<{}>", inner.wit()),
            Self::FixedList(inner, n) => format!("list<{}, {n}>", inner.wit()),
            Self::Record(fields, _) => {
                format!("record {{ {} }}", names(fields.iter().map(|f| &f.name)))
            }
            Self::Tuple(items) => format!(
                "tuple<{}>",
                items.iter().map(Self::wit).collect::<Vec<_>>().join(", ")
            ),
            Self::Variant(cases, _) => {
                format!("variant {{ {} }}", names(cases.iter().map(|c| &c.name)))
            }
            Self::Enum(cases, _) => format!("enum {{ {} }}", names(cases.iter().map(|c| &c.name))),
            Self::Flags(cases, _) => {
                format!("flags {{ {} }}", names(cases.iter().map(|c| &c.name)))
            }
            Self::Option(inner) => format!("option<{}>", inner.wit()),
            Self::Result(ok, err) => {
                let part = |s: &Option<Box<Shape>>| s.as_ref().map_or("_".to_string(), |s| s.wit());
                format!("result<{}, {}>", part(ok), part(err))
            }
        }
    }

    /// The integer range of an integer shape.
    pub(crate) fn int_range(&self) -> Option<(i128, i128)> {
        Some(match self {
            Self::S8 => (i8::MIN.into(), i8::MAX.into()),
            Self::U8 => (0, u8::MAX.into()),
            Self::S16 => (i16::MIN.into(), i16::MAX.into()),
            Self::U16 => (0, u16::MAX.into()),
            Self::S32 => (i32::MIN.into(), i32::MAX.into()),
            Self::U32 => (0, u32::MAX.into()),
            Self::S64 => (i64::MIN.into(), i64::MAX.into()),
            Self::U64 => (0, u64::MAX.into()),
            _ => return None,
        })
    }

    /// The JSON Schema of values of this shape (see `values.rs` for the mapping).
    pub(crate) fn schema(&self) -> Value {
        let mut schema = match self {
            Self::Bool => json!({"type": "boolean"}),
            Self::S8
            | Self::U8
            | Self::S16
            | Self::U16
            | Self::S32
            | Self::U32
            | Self::S64
            | Self::U64 => {
                let (min, max) = self.int_range().unwrap_or((0, 0));
                json!({"type": "integer", "minimum": number(min), "maximum": number(max)})
            }
            Self::F32 | Self::F64 => json!({"anyOf": [
                {"type": "number"},
                {"enum": ["NaN", "Infinity", "-Infinity"]},
            ]}),
            Self::Char => json!({"type": "string", "minLength": 1, "maxLength": 1}),
            Self::String => json!({"type": "string"}),
            Self::List(inner) => json!({"type": "array", "items": inner.schema()}),
            Self::FixedList(inner, n) => {
                json!({"type": "array", "items": inner.schema(), "minItems": n, "maxItems": n})
            }
            // `prefixItems` may not be empty: a schema with `[]` there is invalid.
            Self::Tuple(items) if items.is_empty() => json!({"type": "array", "maxItems": 0}),
            Self::Tuple(items) => json!({
                "type": "array",
                "prefixItems": items.iter().map(Self::schema).collect::<Vec<_>>(),
                "items": false,
                "minItems": items.len(),
            }),
            Self::Record(fields, docs) => {
                let mut schema =
                    object_schema(fields.iter().map(|f| (f.name.as_str(), &f.shape, &f.docs)));
                describe(&mut schema, docs);
                schema
            }
            Self::Variant(cases, docs) => {
                let one_of: Vec<Value> = cases
                    .iter()
                    .map(|case| {
                        let mut schema = match &case.payload {
                            None => json!({"const": case.name}),
                            Some(payload) => json!({
                                "type": "object",
                                "properties": {case.name.as_str(): payload.schema()},
                                "required": [case.name],
                                "additionalProperties": false,
                            }),
                        };
                        describe(&mut schema, &case.docs);
                        schema
                    })
                    .collect();
                let mut schema = json!({"oneOf": one_of});
                describe(&mut schema, docs);
                schema
            }
            Self::Enum(cases, docs) => {
                let mut schema = json!({
                    "type": "string",
                    "enum": cases.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
                });
                describe(&mut schema, &case_docs(cases).or_else(|| docs.clone()));
                schema
            }
            Self::Flags(cases, docs) => {
                let mut schema = json!({
                    "type": "array",
                    "items": {"enum": cases.iter().map(|c| c.name.as_str()).collect::<Vec<_>>()},
                    "uniqueItems": true,
                });
                describe(&mut schema, &case_docs(cases).or_else(|| docs.clone()));
                schema
            }
            Self::Option(inner) => match **inner {
                // `none` is null; `some(none)` needs a wrapper to differ from it.
                Self::Option(_) => json!({"anyOf": [
                    {"type": "null"},
                    {"type": "object", "properties": {"some": inner.schema()}, "required": ["some"], "additionalProperties": false},
                ]}),
                _ => json!({"anyOf": [{"type": "null"}, inner.schema()]}),
            },
            Self::Result(ok, err) => {
                let side = |name: &str, shape: &Option<Box<Shape>>| {
                    json!({
                        "type": "object",
                        "properties": {name: shape.as_ref().map_or(json!({"type": "null"}), |s| s.schema())},
                        "required": [name],
                        "additionalProperties": false,
                    })
                };
                json!({"oneOf": [side("ok", ok), side("err", err)]})
            }
        };
        if let Some(map) = schema.as_object_mut() {
            map.entry("x-wit-type")
                .or_insert_with(|| Value::String(self.wit()));
        }
        schema
    }
}

/// The schema of a JSON object with one property per named shape: a record,
/// or a function's parameters. Options may be left out (they mean `none`);
/// everything else is required.
pub(crate) fn object_schema<'a>(
    fields: impl Iterator<Item = (&'a str, &'a Shape, &'a Docs)>,
) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (name, shape, docs) in fields {
        let mut schema = shape.schema();
        describe(&mut schema, docs);
        properties.insert(name.to_string(), schema);
        if !matches!(shape, Shape::Option(_)) {
            required.push(Value::String(name.to_string()));
        }
    }
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

fn cases<'a>(names: impl Iterator<Item = &'a str>) -> Vec<Case> {
    names
        .map(|name| Case {
            name: name.to_string(),
            payload: None,
            docs: None,
        })
        .collect()
}

fn names<'a>(names: impl Iterator<Item = &'a String>) -> String {
    names.map(String::as_str).collect::<Vec<_>>().join(", ")
}

/// Enum cases and flags have no place of their own for a description, so
/// their docs are listed in the schema's description.
fn case_docs(cases: &[Case]) -> Docs {
    let documented: Vec<String> = cases
        .iter()
        .filter_map(|c| {
            c.docs
                .as_ref()
                .map(|d| format!("`{}`: {}", c.name, one_line(d)))
        })
        .collect();
    (!documented.is_empty()).then(|| documented.join("; "))
}

fn describe(schema: &mut Value, docs: &Docs) {
    if let (Some(map), Some(docs)) = (schema.as_object_mut(), docs) {
        map.entry("description")
            .or_insert_with(|| Value::String(docs.trim().to_string()));
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A JSON number for an integer bound (all of them fit i64 or u64).
fn number(n: i128) -> Value {
    if let Ok(n) = i64::try_from(n) {
        Value::from(n)
    } else {
        Value::from(u64::try_from(n).unwrap_or(u64::MAX))
    }
}

/// Takes `n` from `room`; false, taking nothing, when it holds less.
pub(crate) fn take(room: &mut usize, n: usize) -> bool {
    match room.checked_sub(n) {
        Some(left) => {
            *room = left;
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_empty_tuple_has_a_valid_schema_that_takes_only_the_empty_array() {
        let validator = jsonschema::validator_for(&Shape::Tuple(Vec::new()).schema()).unwrap();
        assert!(validator.is_valid(&json!([])));
        assert!(!validator.is_valid(&json!([1])));
    }

    #[test]
    fn integers_carry_their_ranges() {
        assert_eq!(Shape::U8.schema()["maximum"], 255);
        assert_eq!(Shape::S64.schema()["minimum"], i64::MIN);
        assert_eq!(Shape::U64.schema()["maximum"], u64::MAX);
        assert_eq!(Shape::S16.schema()["x-wit-type"], "s16");
    }

    #[test]
    fn options_are_not_required_and_nested_options_are_wrapped() {
        let a = Shape::Option(Box::new(Shape::U8));
        let b = Shape::Option(Box::new(Shape::Option(Box::new(Shape::U8))));
        let fields = [
            ("a".to_string(), a),
            ("b".to_string(), b),
            ("c".to_string(), Shape::String),
        ];
        let schema = object_schema(fields.iter().map(|(n, s)| (n.as_str(), s, &None)));
        assert_eq!(schema["required"], json!(["c"]));
        assert_eq!(
            schema["properties"]["b"]["anyOf"][1]["required"],
            json!(["some"])
        );
        assert_eq!(schema["properties"]["a"]["anyOf"][1]["type"], "integer");
    }

    #[test]
    fn docs_become_descriptions() {
        let shape = Shape::Record(
            vec![Field {
                name: "x".into(),
                shape: Shape::F64,
                docs: Some("The x coordinate.".into()),
            }],
            Some("A point.".into()),
        );
        let schema = shape.schema();
        assert_eq!(schema["description"], "A point.");
        assert_eq!(
            schema["properties"]["x"]["description"],
            "The x coordinate."
        );
        let colors = Shape::Enum(
            vec![Case {
                name: "red".into(),
                payload: None,
                docs: Some("Warm.".into()),
            }],
            None,
        );
        assert_eq!(colors.schema()["description"], "`red`: Warm.");
    }

    #[test]
    fn wit_spelling() {
        let shape = Shape::Result(Some(Box::new(Shape::List(Box::new(Shape::U8)))), None);
        assert_eq!(shape.wit(), "result<list<u8>, _>");
    }
}
