//! The builtin functions of the filter language.
//!
//! [`call`] dispatches to one function per group of builtins, so that a
//! nested call (`select(select(...))`) keeps only its group's locals on the
//! stack.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::eval::{Interp, Out, index, recurse_refs};
use super::value::{self, as_f64, compare, describe, number, truthy, type_name};
use super::{Filter, FilterError, paths, patterns};
use crate::span::Span;

/// The most numbers `range` may make.
const MAX_RANGE: f64 = 1_000_000.0;

/// Runs the builtin `name` (whose arity the parser checked) on `input`.
pub(crate) fn call(it: &mut Interp, name: &str, args: &[Filter], input: &Value, span: Span) -> Out {
    match name {
        "empty" | "error" | "not" | "first" | "last" | "limit" | "range" | "select" | "recurse"
        | "walk" | "isempty" => control(it, name, args, input, span),
        "map" | "map_values" | "min_by" | "max_by" | "sort_by" | "group_by" | "unique_by"
        | "with_entries" => higher_order(it, name, args, input, span),
        "any" | "all" if args.len() == 1 => higher_order(it, name, args, input, span),
        "length" | "utf8bytelength" | "keys" | "keys_unsorted" | "values" | "has" | "contains"
        | "inside" | "add" | "any" | "all" | "min" | "max" | "sort" | "unique" | "reverse"
        | "flatten" | "to_entries" | "from_entries" => collections(it, name, args, input, span),
        "path" | "paths" | "getpath" | "setpath" | "del" | "pick" => {
            paths::call(it, name, args, input, span)
        }
        "test" | "sub" | "gsub" => patterns::call(it, name, args, input, span),
        _ => scalars(it, name, args, input, span),
    }
}

/// Control flow: `empty`, `error`, `not`, `first`, `last`, `limit`,
/// `range`, `select`, `recurse`, `walk`, `isempty`.
#[inline(never)]
fn control(it: &mut Interp, name: &str, args: &[Filter], input: &Value, span: Span) -> Out {
    match (name, args) {
        ("empty", []) => Ok(Vec::new()),
        ("error", []) => Err(raised(it.copy(input)?)),
        ("error", [message]) => match it.eval(message, input)?.into_iter().next() {
            Some(message) => Err(raised(message)),
            None => Ok(Vec::new()),
        },
        ("not", []) => Ok(vec![Value::Bool(!truthy(input))]),
        ("first", []) => Ok(vec![it.copy(index(input, &Value::from(0), span)?)?]),
        ("last", []) => Ok(vec![it.copy(index(input, &Value::from(-1), span)?)?]),
        ("first", [f]) => Ok(it.eval(f, input)?.into_iter().take(1).collect()),
        ("last", [f]) => Ok(it.eval(f, input)?.pop().into_iter().collect()),
        ("limit", [n, f]) => {
            let mut out = Vec::new();
            for n in it.eval(n, input)? {
                let n = as_f64(&n)
                    .ok_or_else(|| needs("limit", "a number as its first argument", &n, span))?;
                let values = it.eval(f, input)?;
                out.extend(values.into_iter().take(n.max(0.0) as usize));
            }
            Ok(out)
        }
        ("range", _) => range(it, args, input, span),
        ("select", [condition]) => {
            let mut out = Vec::new();
            for c in it.eval(condition, input)? {
                if truthy(&c) {
                    out.push(it.copy(input)?);
                }
            }
            Ok(out)
        }
        ("recurse", []) => recurse_refs(input)
            .into_iter()
            .map(|v| it.copy(v))
            .collect(),
        ("recurse", [f]) => {
            let mut out = Vec::new();
            let mut stack = vec![it.copy(input)?];
            while let Some(v) = stack.pop() {
                let children = it.eval(f, &v)?;
                stack.extend(children.into_iter().rev());
                out.push(v);
            }
            Ok(out)
        }
        ("walk", [f]) => {
            let value = it.copy(input)?;
            walk(it, f, value, span)
        }
        ("isempty", [f]) => Ok(vec![Value::Bool(it.eval(f, input)?.is_empty())]),
        _ => Err(unknown(name, args, span)),
    }
}

/// Builtins that run a filter on each element: `map`, `map_values`,
/// `any(f)`, `all(f)`, `min_by`, `max_by`, `sort_by`, `group_by`,
/// `unique_by`, `with_entries`.
#[inline(never)]
fn higher_order(it: &mut Interp, name: &str, args: &[Filter], input: &Value, span: Span) -> Out {
    let [f] = args else {
        return Err(unknown(name, args, span));
    };
    match name {
        "map" => {
            let mut out = Vec::new();
            for item in elements(input, name, span)? {
                out.extend(it.eval(f, item)?);
            }
            Ok(vec![it.built(Value::Array(out), Some(span))?])
        }
        "map_values" => Ok(vec![map_values(it, f, input, span)?]),
        "any" | "all" => {
            let mut results = Vec::new();
            for item in elements(input, name, span)? {
                results.extend(it.eval(f, item)?.iter().map(truthy));
            }
            let found = if name == "any" {
                results.iter().any(|&b| b)
            } else {
                results.iter().all(|&b| b)
            };
            Ok(vec![Value::Bool(found)])
        }
        "min_by" | "max_by" => {
            let keyed = keyed(it, f, input, name, span)?;
            let pick = if name == "min_by" {
                keyed.into_iter().min_by(|a, b| compare(&a.0, &b.0))
            } else {
                keyed.into_iter().max_by(|a, b| compare(&a.0, &b.0))
            };
            Ok(vec![pick.map_or(Value::Null, |(_, v)| v)])
        }
        "sort_by" => {
            let mut keyed = keyed(it, f, input, name, span)?;
            keyed.sort_by(|a, b| compare(&a.0, &b.0));
            Ok(vec![keyed.into_iter().map(|(_, v)| v).collect()])
        }
        "group_by" | "unique_by" => {
            let mut keyed = keyed(it, f, input, name, span)?;
            keyed.sort_by(|a, b| compare(&a.0, &b.0));
            let mut groups: Vec<(Value, Vec<Value>)> = Vec::new();
            for (key, v) in keyed {
                match groups.last_mut() {
                    Some((k, group)) if compare(k, &key) == Ordering::Equal => group.push(v),
                    _ => groups.push((key, vec![v])),
                }
            }
            let out: Value = if name == "group_by" {
                groups.into_iter().map(|(_, g)| Value::Array(g)).collect()
            } else {
                groups
                    .into_iter()
                    .filter_map(|(_, g)| g.into_iter().next())
                    .collect()
            };
            Ok(vec![it.built(out, Some(span))?])
        }
        "with_entries" => {
            let entries = to_entries(input, span)?;
            let mut mapped = Vec::new();
            for entry in elements(&entries, name, span)? {
                mapped.extend(it.eval(f, entry)?);
            }
            let object = from_entries(&Value::Array(mapped), span)?;
            Ok(vec![it.built(object, Some(span))?])
        }
        _ => Err(unknown(name, args, span)),
    }
}

/// Builtins on arrays and objects that take no filter per element.
#[inline(never)]
fn collections(it: &mut Interp, name: &str, args: &[Filter], input: &Value, span: Span) -> Out {
    let value = match (name, args) {
        ("length", []) => match input {
            Value::Null => Value::from(0),
            Value::Bool(_) => return Err(FilterError::at(span, "a boolean has no length")),
            Value::Number(n) => {
                number(n.as_f64().unwrap_or(0.0).abs()).map_err(|m| FilterError::at(span, m))?
            }
            Value::String(s) => Value::from(s.chars().count()),
            Value::Array(items) => Value::from(items.len()),
            Value::Object(map) => Value::from(map.len()),
        },
        ("utf8bytelength", []) => Value::from(string(input, name, span)?.len()),
        ("keys" | "keys_unsorted", []) => match input {
            Value::Object(map) => map.keys().map(|k| Value::String(k.clone())).collect(),
            Value::Array(items) => (0..items.len()).map(Value::from).collect(),
            other => return Err(needs(name, "an object or an array", other, span)),
        },
        ("values", []) => match input {
            Value::Object(map) => it.copy(&Value::Array(map.values().cloned().collect()))?,
            Value::Array(_) => it.copy(input)?,
            other => return Err(needs(name, "an object or an array", other, span)),
        },
        ("has", [key]) => {
            return per_value(it, key, input, |_, key| has(input, &key, span));
        }
        ("contains", [b]) => {
            return per_value(it, b, input, |_, b| {
                Ok(Value::Bool(contains(input, &b, span)?))
            });
        }
        ("inside", [b]) => {
            return per_value(it, b, input, |_, b| {
                Ok(Value::Bool(contains(&b, input, span)?))
            });
        }
        ("add", []) => {
            let items: Vec<&Value> = match input {
                Value::Null => Vec::new(),
                Value::Array(items) => items.iter().collect(),
                Value::Object(map) => map.values().collect(),
                other => return Err(needs(name, "an array", other, span)),
            };
            let mut acc = Value::Null;
            for item in items {
                let item = it.copy(item)?;
                acc = value::arith("+", acc, item).map_err(|m| FilterError::at(span, m))?;
            }
            acc
        }
        ("any" | "all", []) => {
            let items = elements(input, name, span)?;
            Value::Bool(if name == "any" {
                items.iter().any(|v| truthy(v))
            } else {
                items.iter().all(|v| truthy(v))
            })
        }
        ("min" | "max", []) => {
            let items = array(input, name, span)?;
            let pick = if name == "min" {
                items.iter().min_by(|a, b| compare(a, b))
            } else {
                items.iter().max_by(|a, b| compare(a, b))
            };
            it.copy(pick.unwrap_or(&Value::Null))?
        }
        ("sort" | "unique", []) => {
            let Value::Array(mut items) =
                it.copy(&Value::Array(array(input, name, span)?.clone()))?
            else {
                return Err(needs(name, "an array", input, span));
            };
            items.sort_by(compare);
            if name == "unique" {
                items.dedup_by(|a, b| compare(a, b) == Ordering::Equal);
            }
            Value::Array(items)
        }
        ("reverse", []) => match input {
            Value::Null => Value::Array(Vec::new()),
            Value::String(s) => Value::String(s.chars().rev().collect()),
            Value::Array(items) => it.copy(&Value::Array(items.iter().rev().cloned().collect()))?,
            other => return Err(needs(name, "an array or a string", other, span)),
        },
        ("flatten", _) => {
            let depths = match args {
                [depth] => it.eval(depth, input)?,
                _ => vec![Value::from(MAX_RANGE)],
            };
            let mut out = Vec::new();
            for depth in depths {
                let depth = as_f64(&depth).filter(|d| *d >= 0.0).ok_or_else(|| {
                    needs(name, "a depth that is a non-negative number", &depth, span)
                })?;
                let mut flat = Vec::new();
                flatten(array(input, name, span)?, depth as usize, &mut flat);
                out.push(it.copy(&Value::Array(flat))?);
            }
            return Ok(out);
        }
        ("to_entries", []) => it.built(to_entries(input, span)?, Some(span))?,
        ("from_entries", []) => it.built(from_entries(input, span)?, Some(span))?,
        _ => return Err(unknown(name, args, span)),
    };
    Ok(vec![value])
}

/// Builtins on strings, numbers and types.
#[inline(never)]
fn scalars(it: &mut Interp, name: &str, args: &[Filter], input: &Value, span: Span) -> Out {
    let value = match (name, args) {
        ("type", []) => Value::String(type_name(input).into()),
        ("tostring", []) => match input {
            Value::String(_) => input.clone(),
            other => Value::String(other.to_string()),
        },
        ("tonumber", []) => match input {
            Value::Number(_) => input.clone(),
            Value::String(s) => match s.trim().parse::<f64>() {
                Ok(x) => number(x).map_err(|m| FilterError::at(span, m))?,
                Err(_) => {
                    let message = format!("cannot parse {} as a number", describe(input));
                    return Err(FilterError::at(span, message));
                }
            },
            other => return Err(needs(name, "a string or a number", other, span)),
        },
        ("tojson", []) => Value::String(input.to_string()),
        ("fromjson", []) => {
            let text = string(input, name, span)?;
            let parsed: Value = serde_json::from_str(text).map_err(|e| {
                let shown = value::short(input);
                FilterError::at(span, format!("fromjson: {shown} is not valid JSON: {e}"))
            })?;
            it.built(parsed, Some(span))?
        }
        ("ascii_downcase", []) => Value::String(string(input, name, span)?.to_ascii_lowercase()),
        ("ascii_upcase", []) => Value::String(string(input, name, span)?.to_ascii_uppercase()),
        ("trim", []) => Value::String(string(input, name, span)?.trim().into()),
        ("ltrim", []) => Value::String(string(input, name, span)?.trim_start().into()),
        ("rtrim", []) => Value::String(string(input, name, span)?.trim_end().into()),
        ("ltrimstr" | "rtrimstr", [affix]) => {
            return per_value(it, affix, input, |_, affix| {
                let (Value::String(s), Value::String(a)) = (input, &affix) else {
                    return Ok(input.clone());
                };
                let trimmed = if name == "ltrimstr" {
                    s.strip_prefix(a.as_str())
                } else {
                    s.strip_suffix(a.as_str())
                };
                Ok(Value::String(trimmed.unwrap_or(s).to_string()))
            });
        }
        ("startswith" | "endswith", [affix]) => {
            return per_value(it, affix, input, |_, affix| {
                let (Value::String(s), Value::String(a)) = (input, &affix) else {
                    let message = format!(
                        "{name} needs a string input and a string argument, got {} and {}",
                        describe(input),
                        describe(&affix)
                    );
                    return Err(FilterError::at(span, message));
                };
                Ok(Value::Bool(if name == "startswith" {
                    s.starts_with(a.as_str())
                } else {
                    s.ends_with(a.as_str())
                }))
            });
        }
        ("split", [separator]) => {
            return per_value(it, separator, input, |_, separator| {
                let text = string(input, name, span)?;
                let Value::String(separator) = separator else {
                    return Err(needs(name, "a string separator", &separator, span));
                };
                Ok(value::split(text, &separator))
            });
        }
        ("join", [separator]) => {
            return per_value(it, separator, input, |_, separator| {
                join(input, &separator, span)
            });
        }
        ("floor" | "ceil" | "round" | "sqrt" | "abs", []) => {
            let x = as_f64(input).ok_or_else(|| needs(name, "a number", input, span))?;
            let y = match name {
                "floor" => x.floor(),
                "ceil" => x.ceil(),
                "round" => x.round(),
                "abs" => x.abs(),
                _ if x < 0.0 => {
                    return Err(FilterError::at(
                        span,
                        format!("sqrt of a negative number ({x})"),
                    ));
                }
                _ => x.sqrt(),
            };
            number(y).map_err(|m| FilterError::at(span, m))?
        }
        (
            "objects" | "arrays" | "strings" | "numbers" | "booleans" | "nulls" | "iterables"
            | "scalars",
            [],
        ) => {
            let keep = match name {
                "iterables" => matches!(input, Value::Array(_) | Value::Object(_)),
                "scalars" => !matches!(input, Value::Array(_) | Value::Object(_)),
                _ => name.trim_end_matches('s') == type_name(input),
            };
            if !keep {
                return Ok(Vec::new());
            }
            it.copy(input)?
        }
        _ => return Err(unknown(name, args, span)),
    };
    Ok(vec![value])
}

/// A builtin the parser let through with arguments it cannot take.
pub(crate) fn unknown(name: &str, args: &[Filter], span: Span) -> FilterError {
    FilterError::at(
        span,
        format!("`{name}` cannot take {} arguments", args.len()),
    )
}

/// The error `error` raises with `value`.
fn raised(value: Value) -> FilterError {
    FilterError {
        value,
        span: None,
        hint: None,
        fatal: false,
    }
}

/// "`name` needs what, got ...".
pub(crate) fn needs(name: &str, what: &str, got: &Value, span: Span) -> FilterError {
    FilterError::at(span, format!("{name} needs {what}, got {}", describe(got)))
}

pub(crate) fn string<'a>(input: &'a Value, name: &str, span: Span) -> Result<&'a str, FilterError> {
    input
        .as_str()
        .ok_or_else(|| needs(name, "a string", input, span))
}

fn array<'a>(input: &'a Value, name: &str, span: Span) -> Result<&'a Vec<Value>, FilterError> {
    input
        .as_array()
        .ok_or_else(|| needs(name, "an array", input, span))
}

/// The elements of an array or the values of an object.
fn elements<'a>(input: &'a Value, name: &str, span: Span) -> Result<Vec<&'a Value>, FilterError> {
    match input {
        Value::Array(items) => Ok(items.iter().collect()),
        Value::Object(map) => Ok(map.values().collect()),
        other => Err(needs(name, "an array or an object", other, span)),
    }
}

/// `f(v)` for each output `v` of `arg` on `input`.
fn per_value(
    it: &mut Interp,
    arg: &Filter,
    input: &Value,
    mut f: impl FnMut(&mut Interp, Value) -> Result<Value, FilterError>,
) -> Out {
    let mut out = Vec::new();
    for v in it.eval(arg, input)? {
        out.push(f(it, v)?);
    }
    Ok(out)
}

/// `has(key)`: an object's key or an array's index.
fn has(input: &Value, key: &Value, span: Span) -> Result<Value, FilterError> {
    Ok(Value::Bool(match (input, key) {
        (Value::Object(map), Value::String(k)) => map.contains_key(k),
        (Value::Array(items), Value::Number(n)) => n
            .as_f64()
            .is_some_and(|i| i >= 0.0 && i < items.len() as f64),
        _ => {
            let message = format!(
                "cannot check whether {} has the key {}",
                describe(input),
                describe(key)
            );
            return Err(FilterError::at(span, message));
        }
    }))
}

/// Each element of the input array with its key: the outputs of `f`.
fn keyed(
    it: &mut Interp,
    f: &Filter,
    input: &Value,
    name: &str,
    span: Span,
) -> Result<Vec<(Value, Value)>, FilterError> {
    let mut out = Vec::new();
    for item in array(input, name, span)? {
        let key = Value::Array(it.eval(f, item)?);
        out.push((key, it.copy(item)?));
    }
    Ok(out)
}

/// `range(n)` and `range(from; upto)`.
fn range(it: &mut Interp, args: &[Filter], input: &Value, span: Span) -> Out {
    let numbers = |it: &mut Interp, f: &Filter| -> Result<Vec<f64>, FilterError> {
        it.eval(f, input)?
            .iter()
            .map(|v| as_f64(v).ok_or_else(|| needs("range", "numbers", v, span)))
            .collect()
    };
    let (starts, ends) = match args {
        [upto] => (vec![0.0], numbers(it, upto)?),
        [from, upto] => (numbers(it, from)?, numbers(it, upto)?),
        _ => return Err(unknown("range", args, span)),
    };
    let mut out = Vec::new();
    for &start in &starts {
        for &end in &ends {
            if end - start > MAX_RANGE {
                let message = format!("range would make more than {MAX_RANGE} numbers");
                return Err(FilterError::at(span, message).fatal());
            }
            let count = (end - start).ceil().max(0.0) as u64;
            for k in 0..count {
                out.push(number(start + k as f64).map_err(|m| FilterError::at(span, m))?);
            }
            it.charge(out.len() as u64)?;
        }
    }
    Ok(out)
}

/// `map_values(f)`: each value becomes the first output of `f`, or goes.
fn map_values(
    it: &mut Interp,
    f: &Filter,
    input: &Value,
    span: Span,
) -> Result<Value, FilterError> {
    match input {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                if let Some(first) = it.eval(f, v)?.into_iter().next() {
                    out.insert(k.clone(), first);
                }
            }
            it.built(Value::Object(out), Some(span))
        }
        Value::Array(items) => {
            let mut out = Vec::new();
            for v in items {
                out.extend(it.eval(f, v)?.into_iter().next());
            }
            it.built(Value::Array(out), Some(span))
        }
        other => Err(needs("map_values", "an object or an array", other, span)),
    }
}

/// `walk(f)`: applies `f` bottom-up to every value.
fn walk(it: &mut Interp, f: &Filter, value: Value, span: Span) -> Out {
    let rebuilt = match value {
        Value::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                out.extend(walk(it, f, item, span)?);
            }
            Value::Array(out)
        }
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                if let Some(first) = walk(it, f, v, span)?.into_iter().next() {
                    out.insert(k, first);
                }
            }
            Value::Object(out)
        }
        scalar => scalar,
    };
    it.charge(1)?;
    let results = it.eval(f, &rebuilt)?;
    results
        .into_iter()
        .map(|v| it.built(v, Some(span)))
        .collect()
}

/// jq's `contains`: substrings, subsets of arrays, sub-objects.
fn contains(a: &Value, b: &Value, span: Span) -> Result<bool, FilterError> {
    Ok(match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, yv) in y {
                match x.get(k) {
                    Some(xv) if contains(xv, yv, span)? => {}
                    _ => return Ok(false),
                }
            }
            true
        }
        (Value::Array(x), Value::Array(y)) => {
            for yv in y {
                let mut found = false;
                for xv in x {
                    if contains(xv, yv, span)? {
                        found = true;
                        break;
                    }
                }
                if !found {
                    return Ok(false);
                }
            }
            true
        }
        (Value::String(x), Value::String(y)) => x.contains(y.as_str()),
        _ if type_name(a) == type_name(b) => compare(a, b) == Ordering::Equal,
        _ => {
            let message = format!(
                "cannot check whether {} contains {}",
                describe(a),
                describe(b)
            );
            return Err(FilterError::at(span, message).hint("both sides must have the same type"));
        }
    })
}

/// `join(separator)`.
fn join(input: &Value, separator: &Value, span: Span) -> Result<Value, FilterError> {
    let Value::String(separator) = separator else {
        return Err(needs("join", "a string separator", separator, span));
    };
    let mut parts = Vec::new();
    for item in array(input, "join", span)? {
        parts.push(match item {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            Value::Bool(_) | Value::Number(_) => item.to_string(),
            other => {
                return Err(FilterError::at(
                    span,
                    format!("join cannot join {}", describe(other)),
                ));
            }
        });
    }
    Ok(Value::String(parts.join(separator)))
}

/// Appends the elements of `items` to `out`, flattening arrays `depth` deep.
fn flatten(items: &[Value], depth: usize, out: &mut Vec<Value>) {
    for item in items {
        match item {
            Value::Array(inner) if depth > 0 => flatten(inner, depth - 1, out),
            other => out.push(other.clone()),
        }
    }
}

/// `[{"key": k, "value": v}, ...]` for an object (or an array, keyed by index).
fn to_entries(input: &Value, span: Span) -> Result<Value, FilterError> {
    let entry = |key: Value, value: &Value| {
        let mut map = Map::new();
        map.insert("key".into(), key);
        map.insert("value".into(), value.clone());
        Value::Object(map)
    };
    match input {
        Value::Object(map) => Ok(map
            .iter()
            .map(|(k, v)| entry(Value::String(k.clone()), v))
            .collect()),
        Value::Array(items) => Ok(items
            .iter()
            .enumerate()
            .map(|(i, v)| entry(Value::from(i), v))
            .collect()),
        other => Err(needs("to_entries", "an object", other, span)),
    }
}

/// An object from `[{"key": k, "value": v}, ...]`; also accepts `k`, `name`,
/// `Name`, `K` or `Key` for the key and `v` or `Value` for the value.
fn from_entries(input: &Value, span: Span) -> Result<Value, FilterError> {
    let mut out = Map::new();
    for entry in array(input, "from_entries", span)? {
        let Value::Object(e) = entry else {
            return Err(needs("from_entries", "an array of objects", entry, span));
        };
        let key = ["key", "k", "name", "Name", "K", "Key"]
            .iter()
            .find_map(|k| e.get(*k).filter(|v| truthy(v)));
        let key = match key {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => {
                let shown = value::short(entry);
                return Err(FilterError::at(
                    span,
                    format!("from_entries: {shown} has no `key`"),
                ));
            }
        };
        let value = e
            .get("value")
            .or_else(|| e.get("v"))
            .or_else(|| e.get("Value"));
        out.insert(key, value.cloned().unwrap_or(Value::Null));
    }
    Ok(Value::Object(out))
}
