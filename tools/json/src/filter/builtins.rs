//! The builtin functions of the filter language.

use std::cmp::Ordering;

use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value};

use super::eval::{Interp, Out, recurse_refs};
use super::value::{self, as_f64, compare, describe, number, truthy, type_name};
use super::{Filter, FilterError, paths};
use crate::span::Span;

/// A builtin: its name, how many arguments it takes, and how to call it.
#[derive(Debug)]
pub(crate) struct Builtin {
    pub name: &'static str,
    pub arities: &'static [usize],
    pub usage: &'static str,
}

const fn b(name: &'static str, arities: &'static [usize], usage: &'static str) -> Builtin {
    Builtin {
        name,
        arities,
        usage,
    }
}

/// Every builtin.
pub(crate) const BUILTINS: &[Builtin] = &[
    b("empty", &[0], "empty"),
    b("error", &[0, 1], "error or error(message)"),
    b("not", &[0], "f | not"),
    b("length", &[0], "length"),
    b("utf8bytelength", &[0], "utf8bytelength"),
    b("keys", &[0], "keys"),
    b("keys_unsorted", &[0], "keys_unsorted"),
    b("values", &[0], "values"),
    b("has", &[1], "has(key)"),
    b("contains", &[1], "contains(value)"),
    b("inside", &[1], "inside(value)"),
    b("first", &[0, 1], "first or first(f)"),
    b("last", &[0, 1], "last or last(f)"),
    b("limit", &[2], "limit(n; f)"),
    b("range", &[1, 2], "range(n) or range(from; upto)"),
    b("map", &[1], "map(f)"),
    b("map_values", &[1], "map_values(f)"),
    b("select", &[1], "select(condition)"),
    b("recurse", &[0, 1], "recurse or recurse(f)"),
    b("walk", &[1], "walk(f)"),
    b("type", &[0], "type"),
    b("tostring", &[0], "tostring"),
    b("tonumber", &[0], "tonumber"),
    b("tojson", &[0], "tojson"),
    b("fromjson", &[0], "fromjson"),
    b("ascii_downcase", &[0], "ascii_downcase"),
    b("ascii_upcase", &[0], "ascii_upcase"),
    b("trim", &[0], "trim"),
    b("ltrim", &[0], "ltrim"),
    b("rtrim", &[0], "rtrim"),
    b("ltrimstr", &[1], "ltrimstr(prefix)"),
    b("rtrimstr", &[1], "rtrimstr(suffix)"),
    b("startswith", &[1], "startswith(prefix)"),
    b("endswith", &[1], "endswith(suffix)"),
    b("split", &[1], "split(separator)"),
    b("join", &[1], "join(separator)"),
    b("test", &[1, 2], "test(regex) or test(regex; flags)"),
    b(
        "sub",
        &[2, 3],
        "sub(regex; replacement) or sub(regex; replacement; flags)",
    ),
    b(
        "gsub",
        &[2, 3],
        "gsub(regex; replacement) or gsub(regex; replacement; flags)",
    ),
    b("add", &[0], "add"),
    b("any", &[0, 1], "any or any(condition)"),
    b("all", &[0, 1], "all or all(condition)"),
    b("min", &[0], "min"),
    b("max", &[0], "max"),
    b("min_by", &[1], "min_by(f)"),
    b("max_by", &[1], "max_by(f)"),
    b("sort", &[0], "sort"),
    b("sort_by", &[1], "sort_by(f)"),
    b("group_by", &[1], "group_by(f)"),
    b("unique", &[0], "unique"),
    b("unique_by", &[1], "unique_by(f)"),
    b("reverse", &[0], "reverse"),
    b("flatten", &[0, 1], "flatten or flatten(depth)"),
    b("to_entries", &[0], "to_entries"),
    b("from_entries", &[0], "from_entries"),
    b("with_entries", &[1], "with_entries(f)"),
    b("floor", &[0], "floor"),
    b("ceil", &[0], "ceil"),
    b("round", &[0], "round"),
    b("sqrt", &[0], "sqrt"),
    b("abs", &[0], "abs"),
    b("objects", &[0], "objects"),
    b("arrays", &[0], "arrays"),
    b("strings", &[0], "strings"),
    b("numbers", &[0], "numbers"),
    b("booleans", &[0], "booleans"),
    b("nulls", &[0], "nulls"),
    b("iterables", &[0], "iterables"),
    b("scalars", &[0], "scalars"),
    b("isempty", &[1], "isempty(f)"),
    b("path", &[1], "path(f)"),
    b("paths", &[0, 1], "paths or paths(condition)"),
    b("getpath", &[1], "getpath([\"a\", 0])"),
    b("setpath", &[2], "setpath([\"a\", 0]; value)"),
    b("del", &[1], "del(.a, .b[0])"),
    b("pick", &[1], "pick(.a, .b.c)"),
];

/// The builtin named `name`.
pub(crate) fn lookup(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

/// The most elements `range` and string repetition may make.
const MAX_RANGE: f64 = 1_000_000.0;

/// Runs the builtin `name` on `input`.
pub(crate) fn call(it: &mut Interp, name: &str, args: &[Filter], input: &Value, span: Span) -> Out {
    let arg = |i: usize| &args[i];
    let one = |v: Value| Ok(vec![v]);
    match (name, args.len()) {
        ("empty", 0) => Ok(Vec::new()),
        ("error", 0) => Err(raised(it.copy(input)?)),
        ("error", _) => match it.eval(arg(0), input)?.into_iter().next() {
            Some(message) => Err(raised(message)),
            None => Ok(Vec::new()),
        },
        ("not", 0) => one(Value::Bool(!truthy(input))),
        ("length", 0) => one(match input {
            Value::Null => Value::from(0),
            Value::Bool(_) => return Err(FilterError::at(span, "a boolean has no length")),
            Value::Number(n) => {
                number(n.as_f64().unwrap_or(0.0).abs()).map_err(|m| FilterError::at(span, m))?
            }
            Value::String(s) => Value::from(s.chars().count()),
            Value::Array(items) => Value::from(items.len()),
            Value::Object(map) => Value::from(map.len()),
        }),
        ("utf8bytelength", 0) => one(Value::from(string(input, name, span)?.len())),
        ("keys" | "keys_unsorted", 0) => one(match input {
            Value::Object(map) => map.keys().map(|k| Value::String(k.clone())).collect(),
            Value::Array(items) => (0..items.len()).map(Value::from).collect(),
            other => return Err(needs(name, "an object or an array", other, span)),
        }),
        ("values", 0) => one(match input {
            Value::Object(map) => it.copy(&Value::Array(map.values().cloned().collect()))?,
            Value::Array(_) => it.copy(input)?,
            other => return Err(needs(name, "an object or an array", other, span)),
        }),
        ("has", 1) => per_value(it, arg(0), input, |_, key| {
            Ok(Value::Bool(match (input, &key) {
                (Value::Object(map), Value::String(k)) => map.contains_key(k),
                (Value::Array(items), Value::Number(n)) => n
                    .as_f64()
                    .is_some_and(|i| i >= 0.0 && i < items.len() as f64),
                _ => {
                    return Err(FilterError::at(
                        span,
                        format!(
                            "cannot check whether {} has the key {}",
                            describe(input),
                            describe(&key)
                        ),
                    ));
                }
            }))
        }),
        ("contains", 1) => per_value(it, arg(0), input, |_, b| {
            Ok(Value::Bool(contains(input, &b, span)?))
        }),
        ("inside", 1) => per_value(it, arg(0), input, |_, b| {
            Ok(Value::Bool(contains(&b, input, span)?))
        }),
        ("first", 0) => Ok(vec![it.copy(super::eval::index(
            input,
            &Value::from(0),
            span,
        )?)?]),
        ("last", 0) => Ok(vec![it.copy(super::eval::index(
            input,
            &Value::from(-1),
            span,
        )?)?]),
        ("first", 1) => Ok(it.eval(arg(0), input)?.into_iter().take(1).collect()),
        ("last", 1) => Ok(it.eval(arg(0), input)?.pop().into_iter().collect()),
        ("limit", 2) => {
            let mut out = Vec::new();
            for n in it.eval(arg(0), input)? {
                let n = as_f64(&n)
                    .ok_or_else(|| needs("limit", "a number as its first argument", &n, span))?;
                let values = it.eval(arg(1), input)?;
                out.extend(values.into_iter().take(n.max(0.0) as usize));
            }
            Ok(out)
        }
        ("range", _) => range(it, args, input, span),
        ("map", 1) => {
            let mut out = Vec::new();
            for item in elements(input, name, span)? {
                out.extend(it.eval(arg(0), item)?);
            }
            Ok(vec![it.built(Value::Array(out), Some(span))?])
        }
        ("map_values", 1) => one(map_values(it, arg(0), input, span)?),
        ("select", 1) => {
            let mut out = Vec::new();
            for c in it.eval(arg(0), input)? {
                if truthy(&c) {
                    out.push(it.copy(input)?);
                }
            }
            Ok(out)
        }
        ("recurse", 0) => recurse_refs(input)
            .into_iter()
            .map(|v| it.copy(v))
            .collect(),
        ("recurse", 1) => {
            let mut out = Vec::new();
            let mut stack = vec![it.copy(input)?];
            while let Some(v) = stack.pop() {
                let children = it.eval(arg(0), &v)?;
                stack.extend(children.into_iter().rev());
                out.push(v);
            }
            Ok(out)
        }
        ("walk", 1) => {
            let value = it.copy(input)?;
            walk(it, arg(0), value, span)
        }
        ("type", 0) => one(Value::String(type_name(input).into())),
        ("tostring", 0) => one(match input {
            Value::String(_) => input.clone(),
            other => Value::String(other.to_string()),
        }),
        ("tonumber", 0) => one(match input {
            Value::Number(_) => input.clone(),
            Value::String(s) => match s.trim().parse::<f64>() {
                Ok(x) => number(x).map_err(|m| FilterError::at(span, m))?,
                Err(_) => {
                    return Err(FilterError::at(
                        span,
                        format!("cannot parse {} as a number", describe(input)),
                    ));
                }
            },
            other => return Err(needs(name, "a string or a number", other, span)),
        }),
        ("tojson", 0) => one(Value::String(input.to_string())),
        ("fromjson", 0) => {
            let text = string(input, name, span)?;
            let parsed: Value = serde_json::from_str(text).map_err(|e| {
                FilterError::at(
                    span,
                    format!("fromjson: {} is not valid JSON: {e}", value::short(input)),
                )
            })?;
            Ok(vec![it.built(parsed, Some(span))?])
        }
        ("ascii_downcase", 0) => one(Value::String(
            string(input, name, span)?.to_ascii_lowercase(),
        )),
        ("ascii_upcase", 0) => one(Value::String(
            string(input, name, span)?.to_ascii_uppercase(),
        )),
        ("trim", 0) => one(Value::String(string(input, name, span)?.trim().into())),
        ("ltrim", 0) => one(Value::String(
            string(input, name, span)?.trim_start().into(),
        )),
        ("rtrim", 0) => one(Value::String(string(input, name, span)?.trim_end().into())),
        ("ltrimstr" | "rtrimstr", 1) => per_value(it, arg(0), input, |_, affix| {
            let (Value::String(s), Value::String(a)) = (input, &affix) else {
                return Ok(input.clone());
            };
            let trimmed = if name == "ltrimstr" {
                s.strip_prefix(a.as_str())
            } else {
                s.strip_suffix(a.as_str())
            };
            Ok(Value::String(trimmed.unwrap_or(s).to_string()))
        }),
        ("startswith" | "endswith", 1) => per_value(it, arg(0), input, |_, affix| {
            let (Value::String(s), Value::String(a)) = (input, &affix) else {
                return Err(FilterError::at(
                    span,
                    format!(
                        "{name} needs a string input and a string argument, got {} and {}",
                        describe(input),
                        describe(&affix)
                    ),
                ));
            };
            Ok(Value::Bool(if name == "startswith" {
                s.starts_with(a.as_str())
            } else {
                s.ends_with(a.as_str())
            }))
        }),
        ("split", 1) => per_value(it, arg(0), input, |_, sep| {
            let text = string(input, name, span)?;
            let Value::String(sep) = sep else {
                return Err(needs(name, "a string separator", &sep, span));
            };
            Ok(value::split(text, &sep))
        }),
        ("join", 1) => per_value(it, arg(0), input, |_, sep| join(input, &sep, span)),
        ("test", _) | ("sub", _) | ("gsub", _) => regex_call(it, name, args, input, span),
        ("add", 0) => {
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
            Ok(vec![acc])
        }
        ("any" | "all", 0) => {
            let items = elements(input, name, span)?;
            let found = if name == "any" {
                items.iter().any(|v| truthy(v))
            } else {
                items.iter().all(|v| truthy(v))
            };
            one(Value::Bool(found))
        }
        ("any" | "all", 1) => {
            let mut results = Vec::new();
            for item in elements(input, name, span)? {
                results.extend(it.eval(arg(0), item)?.iter().map(truthy));
            }
            let found = if name == "any" {
                results.iter().any(|&b| b)
            } else {
                results.iter().all(|&b| b)
            };
            one(Value::Bool(found))
        }
        ("min" | "max", 0) => {
            let items = array(input, name, span)?;
            let pick = if name == "min" {
                items.iter().min_by(|a, b| compare(a, b))
            } else {
                items.iter().max_by(|a, b| compare(a, b))
            };
            Ok(vec![it.copy(pick.unwrap_or(&Value::Null))?])
        }
        ("min_by" | "max_by", 1) => {
            let keyed = keyed(it, arg(0), input, name, span)?;
            let pick = if name == "min_by" {
                keyed.into_iter().min_by(|a, b| compare(&a.0, &b.0))
            } else {
                keyed.into_iter().max_by(|a, b| compare(&a.0, &b.0))
            };
            Ok(vec![pick.map_or(Value::Null, |(_, v)| v)])
        }
        ("sort", 0) => {
            let mut items = array(input, name, span)?.clone();
            it.charge(items.len() as u64)?;
            items.sort_by(compare);
            one(Value::Array(items))
        }
        ("sort_by", 1) => {
            let mut keyed = keyed(it, arg(0), input, name, span)?;
            keyed.sort_by(|a, b| compare(&a.0, &b.0));
            one(keyed.into_iter().map(|(_, v)| v).collect())
        }
        ("group_by" | "unique_by", 1) => {
            let mut keyed = keyed(it, arg(0), input, name, span)?;
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
        ("unique", 0) => {
            let mut items = array(input, name, span)?.clone();
            it.charge(items.len() as u64)?;
            items.sort_by(compare);
            items.dedup_by(|a, b| compare(a, b) == Ordering::Equal);
            one(Value::Array(items))
        }
        ("reverse", 0) => one(match input {
            Value::Null => Value::Array(Vec::new()),
            Value::String(s) => Value::String(s.chars().rev().collect()),
            Value::Array(items) => it.copy(&Value::Array(items.iter().rev().cloned().collect()))?,
            other => return Err(needs(name, "an array or a string", other, span)),
        }),
        ("flatten", _) => {
            let depths = if args.is_empty() {
                vec![Value::from(MAX_RANGE)]
            } else {
                it.eval(arg(0), input)?
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
            Ok(out)
        }
        ("to_entries", 0) => Ok(vec![it.built(to_entries(input, span)?, Some(span))?]),
        ("from_entries", 0) => Ok(vec![it.built(from_entries(input, span)?, Some(span))?]),
        ("with_entries", 1) => {
            let entries = to_entries(input, span)?;
            let mut mapped = Vec::new();
            for entry in elements(&entries, name, span)? {
                mapped.extend(it.eval(arg(0), entry)?);
            }
            Ok(vec![it.built(
                from_entries(&Value::Array(mapped), span)?,
                Some(span),
            )?])
        }
        ("floor" | "ceil" | "round" | "sqrt" | "abs", 0) => {
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
            one(number(y).map_err(|m| FilterError::at(span, m))?)
        }
        (
            "objects" | "arrays" | "strings" | "numbers" | "booleans" | "nulls" | "iterables"
            | "scalars",
            0,
        ) => {
            let keep = match name {
                "iterables" => matches!(input, Value::Array(_) | Value::Object(_)),
                "scalars" => !matches!(input, Value::Array(_) | Value::Object(_)),
                _ => name.trim_end_matches('s') == type_name(input),
            };
            if keep {
                Ok(vec![it.copy(input)?])
            } else {
                Ok(Vec::new())
            }
        }
        ("isempty", 1) => one(Value::Bool(it.eval(arg(0), input)?.is_empty())),
        ("path" | "paths" | "getpath" | "setpath" | "del" | "pick", _) => {
            paths::call(it, name, args, input, span)
        }
        _ => Err(FilterError::at(
            span,
            format!("`{name}` cannot take {} arguments", args.len()),
        )),
    }
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
fn needs(name: &str, what: &str, got: &Value, span: Span) -> FilterError {
    FilterError::at(span, format!("{name} needs {what}, got {}", describe(got)))
}

fn string<'a>(input: &'a Value, name: &str, span: Span) -> Result<&'a str, FilterError> {
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
        _ => return Err(FilterError::at(span, "range takes 1 or 2 arguments")),
    };
    let mut out = Vec::new();
    for &start in &starts {
        for &end in &ends {
            if end - start > MAX_RANGE {
                return Err(FilterError::at(
                    span,
                    format!("range would make more than {MAX_RANGE} numbers"),
                )
                .fatal());
            }
            let mut x = start;
            while x < end {
                out.push(number(x).map_err(|m| FilterError::at(span, m))?);
                x += 1.0;
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
    it.eval(f, &rebuilt)
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
            return Err(FilterError::at(
                span,
                format!(
                    "cannot check whether {} contains {}",
                    describe(a),
                    describe(b)
                ),
            )
            .hint("both sides must have the same type"));
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

/// An object from `[{"key": k, "value": v}, ...]`; also accepts `k`/`name`
/// for the key and `v` for the value.
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
                return Err(FilterError::at(
                    span,
                    format!(
                        "from_entries: the entry {} has no `key`",
                        value::short(entry)
                    ),
                ));
            }
        };
        let value = e
            .get("value")
            .or_else(|| e.get("v"))
            .or_else(|| e.get("Value"))
            .cloned()
            .unwrap_or(Value::Null);
        out.insert(key, value);
    }
    Ok(Value::Object(out))
}

/// `test`, `sub` and `gsub`.
fn regex_call(it: &mut Interp, name: &str, args: &[Filter], input: &Value, span: Span) -> Out {
    let text = string(input, name, span)?;
    let flags_arg = if name == "test" {
        args.get(1)
    } else {
        args.get(2)
    };
    let flags = match flags_arg {
        Some(f) => it.eval(f, input)?.into_iter().next().unwrap_or(Value::Null),
        None => Value::Null,
    };
    let flags = match flags {
        Value::Null => String::new(),
        Value::String(s) => s,
        other => return Err(needs(name, "flags as a string, e.g. \"i\"", &other, span)),
    };
    let mut out = Vec::new();
    for pattern in it.eval(&args[0], input)? {
        let Value::String(pattern) = pattern else {
            return Err(needs(name, "a regex string", &pattern, span));
        };
        let re = compiled(it, &pattern, &flags, span)?;
        if name == "test" {
            out.push(Value::Bool(re.is_match(text)));
            continue;
        }
        for replacement in it.eval(&args[1], input)? {
            let Value::String(replacement) = replacement else {
                return Err(needs(name, "a replacement string", &replacement, span));
            };
            let replaced = if name == "gsub" || flags.contains('g') {
                re.replace_all(text, replacement.as_str())
            } else {
                re.replace(text, replacement.as_str())
            };
            it.charge(replaced.len() as u64 / 16)?;
            out.push(Value::String(replaced.into_owned()));
        }
    }
    Ok(out)
}

/// The compiled regex, from the cache if it was compiled before.
fn compiled(it: &mut Interp, pattern: &str, flags: &str, span: Span) -> Result<Regex, FilterError> {
    let key = (pattern.to_string(), flags.to_string());
    if let Some(re) = it.regexes.get(&key) {
        return Ok(re.clone());
    }
    let mut builder = RegexBuilder::new(pattern);
    builder.size_limit(1 << 20).dfa_size_limit(1 << 22);
    for flag in flags.chars() {
        match flag {
            'i' => builder.case_insensitive(true),
            'x' => builder.ignore_whitespace(true),
            's' => builder.dot_matches_new_line(true),
            'm' => builder.multi_line(true),
            'g' | 'n' => &mut builder,
            other => {
                return Err(
                    FilterError::at(span, format!("unknown regex flag `{other}`"))
                        .hint("flags are i, x, s, m and g"),
                );
            }
        };
    }
    let re = builder
        .build()
        .map_err(|e| FilterError::at(span, format!("invalid regex: {e}")))?;
    it.charge(100)?;
    it.regexes.insert(key, re.clone());
    Ok(re)
}
