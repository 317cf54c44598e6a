//! Paths into a value: `path`, `paths`, `getpath`, `setpath`, `del`, `pick`
//! and the assignment operators.
//!
//! A path is a list of object keys (strings) and array indices (numbers).
//! Only path expressions have paths: `.`, `..`, `.a`, `.[i]`, `.[]`, pipes
//! and commas of them, `select(...)`, `if`, `//`, `?`, `first`, `last`,
//! `recurse`, `getpath(p)` and `empty`.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::eval::{Interp, Out};
use super::value::{self, MAX_VALUE_DEPTH, compare, describe, truthy};
use super::{Filter, FilterError, Step};
use crate::span::Span;

static NULL: Value = Value::Null;

/// The most nulls `setpath` may add to reach an array index.
const MAX_PADDING: usize = 100_000;

/// The path builtins.
pub(crate) fn call(it: &mut Interp, name: &str, args: &[Filter], input: &Value, span: Span) -> Out {
    match name {
        "path" => Ok(paths(it, &args[0], input)?
            .into_iter()
            .map(Value::Array)
            .collect()),
        "paths" => {
            let mut out = Vec::new();
            for path in paths(it, &Filter::Recurse, input)?.into_iter().skip(1) {
                if let Some(condition) = args.first() {
                    let found = it.eval(condition, get(input, &path))?;
                    if !found.iter().any(truthy) {
                        continue;
                    }
                }
                it.charge(path.len() as u64)?;
                out.push(Value::Array(path));
            }
            Ok(out)
        }
        "getpath" => {
            let mut out = Vec::new();
            for path in it.eval(&args[0], input)? {
                let path = as_path(&path, span)?;
                let found = get_checked(input, &path).map_err(|m| FilterError::at(span, m))?;
                out.push(it.copy(found)?);
            }
            Ok(out)
        }
        "setpath" => {
            let mut out = Vec::new();
            for new in it.eval(&args[1], input)? {
                for path in it.eval(&args[0], input)? {
                    let path = as_path(&path, span)?;
                    let mut result = it.copy(input)?;
                    set(&mut result, &path, new.clone()).map_err(|m| FilterError::at(span, m))?;
                    out.push(it.built(result, Some(span))?);
                }
            }
            Ok(out)
        }
        "del" => {
            let found = paths(it, &args[0], input)?;
            let mut result = it.copy(input)?;
            delete_all(&mut result, found).map_err(|m| FilterError::at(span, m))?;
            Ok(vec![result])
        }
        "pick" => {
            let mut result = Value::Null;
            for path in paths(it, &args[0], input)? {
                let found = it.copy(get(input, &path))?;
                set(&mut result, &path, found).map_err(|m| FilterError::at(span, m))?;
            }
            Ok(vec![it.built(result, Some(span))?])
        }
        _ => Err(FilterError::at(
            span,
            format!("`{name}` is not a path builtin"),
        )),
    }
}

/// `path op value`: `=` sets each path to each output of `value`, `|=`
/// updates each path with `value` run on its old value, and `+=` and the
/// like combine the old value with each output of `value`.
pub(crate) fn assign(it: &mut Interp, op: &str, lhs: &Filter, rhs: &Filter, input: &Value) -> Out {
    let targets = paths(it, lhs, input)?;
    if op == "|=" {
        let mut result = it.copy(input)?;
        let mut doomed = Vec::new();
        for path in targets {
            let old = it.copy(get(&result, &path))?;
            match it.eval(rhs, &old)?.into_iter().next() {
                Some(new) => set(&mut result, &path, new).map_err(FilterError::general)?,
                None => doomed.push(path),
            }
        }
        delete_all(&mut result, doomed).map_err(FilterError::general)?;
        return Ok(vec![it.built(result, None)?]);
    }
    let mut out = Vec::new();
    for new in it.eval(rhs, input)? {
        let mut result = it.copy(input)?;
        for path in &targets {
            let value = match op {
                "=" => new.clone(),
                "//=" => {
                    let old = get(&result, path);
                    if truthy(old) {
                        old.clone()
                    } else {
                        new.clone()
                    }
                }
                _ => {
                    let old = it.copy(get(&result, path))?;
                    value::arith(op.trim_end_matches('='), old, new.clone())
                        .map_err(FilterError::general)?
                }
            };
            set(&mut result, path, value).map_err(FilterError::general)?;
        }
        out.push(it.built(result, None)?);
    }
    Ok(out)
}

/// Every path `filter` selects in `input`.
pub(crate) fn paths(
    it: &mut Interp,
    filter: &Filter,
    input: &Value,
) -> Result<Vec<Vec<Value>>, FilterError> {
    let mut out = Vec::new();
    collect(it, filter, input, &[], &mut out)?;
    Ok(out)
}

/// Adds to `out` the paths `filter` selects, run at `prefix` in `root`.
fn collect(
    it: &mut Interp,
    filter: &Filter,
    root: &Value,
    prefix: &[Value],
    out: &mut Vec<Vec<Value>>,
) -> Result<(), FilterError> {
    it.charge(1 + prefix.len() as u64)?;
    let current = get(root, prefix);
    let extend = |key: Value| {
        let mut path = prefix.to_vec();
        path.push(key);
        path
    };
    if *filter == Filter::Recurse || is_call(filter, "recurse", 0) {
        let mut stack = vec![prefix.to_vec()];
        while let Some(path) = stack.pop() {
            let children: Vec<Value> = match get(root, &path) {
                Value::Array(items) => (0..items.len()).rev().map(Value::from).collect(),
                Value::Object(map) => map.keys().rev().map(|k| Value::String(k.clone())).collect(),
                _ => Vec::new(),
            };
            it.charge(1 + children.len() as u64)?;
            for key in children {
                let mut child = path.clone();
                child.push(key);
                stack.push(child);
            }
            out.push(path);
        }
        return Ok(());
    }
    match filter {
        Filter::Identity => out.push(prefix.to_vec()),
        Filter::Path { base, steps } => {
            let mut found = Vec::new();
            collect(it, base, root, prefix, &mut found)?;
            for step in steps {
                let mut next = Vec::new();
                for path in &found {
                    step_paths(it, step, root, path, current, &mut next)?;
                }
                found = next;
            }
            out.extend(found);
        }
        Filter::Pipe(stages) => {
            let mut found = vec![prefix.to_vec()];
            for stage in stages {
                let mut next = Vec::new();
                for path in &found {
                    collect(it, stage, root, path, &mut next)?;
                }
                found = next;
            }
            out.extend(found);
        }
        Filter::Comma(items) => {
            for item in items {
                collect(it, item, root, prefix, out)?;
            }
        }
        Filter::Try {
            body,
            handler: None,
        } => {
            let mut found = Vec::new();
            match collect(it, body, root, prefix, &mut found) {
                Ok(()) => out.extend(found),
                Err(error) if error.fatal => return Err(error),
                Err(_) => {}
            }
        }
        Filter::If {
            branches,
            otherwise,
        } => {
            let Some(((condition, then), rest)) = branches.split_first() else {
                return match otherwise {
                    Some(f) => collect(it, f, root, prefix, out),
                    None => {
                        out.push(prefix.to_vec());
                        Ok(())
                    }
                };
            };
            let rest = Filter::If {
                branches: rest.to_vec(),
                otherwise: otherwise.clone(),
            };
            for c in it.eval(condition, current)? {
                collect(it, if truthy(&c) { then } else { &rest }, root, prefix, out)?;
            }
        }
        Filter::Alt(items) => {
            let Some((last, rest)) = items.split_last() else {
                return Ok(());
            };
            for item in rest {
                let mut found = Vec::new();
                match collect(it, item, root, prefix, &mut found) {
                    Err(error) if error.fatal => return Err(error),
                    Err(_) => continue,
                    Ok(()) => {}
                }
                found.retain(|p| truthy(get(root, p)));
                if !found.is_empty() {
                    out.extend(found);
                    return Ok(());
                }
            }
            collect(it, last, root, prefix, out)?;
        }
        Filter::Call { name, args, span } => match (name.as_str(), args.as_slice()) {
            ("empty", []) => {}
            ("select", [condition]) => {
                for c in it.eval(condition, current)? {
                    if truthy(&c) {
                        out.push(prefix.to_vec());
                    }
                }
            }
            ("first", []) => out.push(extend(Value::from(0))),
            ("last", []) => {
                let len = current.as_array().map_or(0, Vec::len);
                out.push(extend(if len > 0 {
                    Value::from(len - 1)
                } else {
                    Value::from(-1)
                }));
            }
            ("first", [f]) | ("last", [f]) => {
                let mut found = Vec::new();
                collect(it, f, root, prefix, &mut found)?;
                let pick = if name == "first" {
                    found.into_iter().next()
                } else {
                    found.pop()
                };
                out.extend(pick);
            }
            ("getpath", [p]) => {
                for path in it.eval(p, current)? {
                    let mut full = prefix.to_vec();
                    full.extend(as_path(&path, *span)?);
                    out.push(full);
                }
            }
            _ => return Err(not_a_path(filter, Some(*span))),
        },
        _ => return Err(not_a_path(filter, None)),
    }
    Ok(())
}

fn is_call(filter: &Filter, wanted: &str, arity: usize) -> bool {
    matches!(filter, Filter::Call { name, args, .. } if name == wanted && args.len() == arity)
}

/// The paths one step leads to from `path`. Index filters run on `input`,
/// the value the whole path expression started from.
fn step_paths(
    it: &mut Interp,
    step: &Step,
    root: &Value,
    path: &[Value],
    input: &Value,
    out: &mut Vec<Vec<Value>>,
) -> Result<(), FilterError> {
    let at = get(root, path);
    let mut push = |key: Value, span: Span| -> Result<(), FilterError> {
        // A negative index counts from the end: make it absolute, so that
        // deleting several paths removes the right elements.
        let key = match (at, key.as_f64()) {
            (Value::Array(items), Some(i)) if i < 0.0 && i.floor() + items.len() as f64 >= 0.0 => {
                Value::from((i.floor() + items.len() as f64) as usize)
            }
            _ => key,
        };
        let fits = matches!(
            (at, &key),
            (Value::Null, Value::String(_) | Value::Number(_))
                | (Value::Object(_), Value::String(_))
                | (Value::Array(_), Value::Number(_))
        );
        if !fits {
            return Err(FilterError::at(
                span,
                format!("cannot index {} with {}", describe(at), describe(&key)),
            ));
        }
        let mut next = path.to_vec();
        next.push(key);
        out.push(next);
        Ok(())
    };
    match step {
        Step::Field(name, span) => push(Value::String(name.clone()), *span),
        Step::Index(filter, span) => {
            for key in it.eval(filter, input)? {
                push(key, *span)?;
            }
            Ok(())
        }
        Step::Iterate(span) => {
            let keys: Vec<Value> = match at {
                Value::Array(items) => (0..items.len()).map(Value::from).collect(),
                Value::Object(map) => map.keys().map(|k| Value::String(k.clone())).collect(),
                other => {
                    return Err(FilterError::at(
                        *span,
                        format!("cannot iterate over {}", describe(other)),
                    ));
                }
            };
            it.charge(keys.len() as u64)?;
            for key in keys {
                push(key, *span)?;
            }
            Ok(())
        }
        Step::Slice(_, _, span) => Err(FilterError::at(
            *span,
            "slices cannot be used as paths (in del, path, pick or an assignment)",
        )),
    }
}

fn not_a_path(filter: &Filter, span: Option<Span>) -> FilterError {
    let what = match filter {
        Filter::Call { name, .. } => format!("`{name}`"),
        Filter::Literal(v) => format!("the value {}", value::short(v)),
        _ => "this expression".to_string(),
    };
    let error = FilterError::general(format!("{what} is not a path"))
        .hint("del, path, paths, pick and assignments need paths such as `.a`, `.a[0]`, `.[]`, `..` or `select(...)`");
    match span {
        Some(span) => error.or_at(span),
        None => error,
    }
}

/// A path given as a value: an array of strings and numbers.
fn as_path(value: &Value, span: Span) -> Result<Vec<Value>, FilterError> {
    match value {
        Value::Array(keys) if keys.iter().all(|k| k.is_string() || k.is_number()) => {
            if keys.len() > MAX_VALUE_DEPTH {
                return Err(FilterError::at(
                    span,
                    format!("paths may be at most {MAX_VALUE_DEPTH} long"),
                ));
            }
            Ok(keys.clone())
        }
        other => Err(FilterError::at(
            span,
            format!(
                "a path must be an array of strings and numbers, got {}",
                describe(other)
            ),
        )),
    }
}

/// The array position `key` names in an array of `len` elements, counting
/// negative keys from the end.
fn position(key: &serde_json::Number, len: usize) -> Option<usize> {
    let i = key.as_f64()?.floor();
    let i = if i < 0.0 { i + len as f64 } else { i };
    (i >= 0.0).then_some(i as usize)
}

/// The value at `path`, or null where it does not exist.
pub(crate) fn get<'a>(root: &'a Value, path: &[Value]) -> &'a Value {
    get_checked(root, path).unwrap_or(&NULL)
}

/// The value at `path`: null where a key is missing, an error where a key
/// does not fit the value (a key into an array, say).
fn get_checked<'a>(root: &'a Value, path: &[Value]) -> Result<&'a Value, String> {
    let mut current = root;
    for key in path {
        current = match (current, key) {
            (Value::Null, _) => return Ok(&NULL),
            (Value::Object(map), Value::String(k)) => map.get(k).unwrap_or(&NULL),
            (Value::Array(items), Value::Number(n)) => position(n, items.len())
                .and_then(|i| items.get(i))
                .unwrap_or(&NULL),
            (other, key) => {
                return Err(format!(
                    "cannot index {} with {}",
                    describe(other),
                    describe(key)
                ));
            }
        };
    }
    Ok(current)
}

/// Sets the value at `path`, making objects and arrays on the way.
fn set(root: &mut Value, path: &[Value], new: Value) -> Result<(), String> {
    if path.len() > MAX_VALUE_DEPTH {
        return Err(format!(
            "cannot set a path more than {MAX_VALUE_DEPTH} levels deep"
        ));
    }
    let mut current = root;
    for key in path {
        if current.is_null() {
            *current = if key.is_number() {
                Value::Array(Vec::new())
            } else {
                Value::Object(Map::new())
            };
        }
        current = match (current, key) {
            (Value::Object(map), Value::String(k)) => map.entry(k.clone()).or_insert(Value::Null),
            (Value::Array(items), Value::Number(n)) => {
                let i = position(n, items.len())
                    .ok_or_else(|| format!("the array index {n} is out of bounds"))?;
                if i >= items.len() {
                    if i - items.len() > MAX_PADDING {
                        return Err(format!("the array index {n} is too far past the end"));
                    }
                    items.resize(i + 1, Value::Null);
                }
                &mut items[i]
            }
            (other, key) => {
                return Err(format!(
                    "cannot index {} with {}",
                    describe(other),
                    describe(key)
                ));
            }
        };
    }
    *current = new;
    Ok(())
}

/// Deletes every path, deepest and last first so earlier deletions do not
/// move the targets of later ones.
fn delete_all(root: &mut Value, mut paths: Vec<Vec<Value>>) -> Result<(), String> {
    paths.sort_by(|a, b| compare_paths(b, a));
    paths.dedup();
    for path in paths {
        delete(root, &path)?;
    }
    Ok(())
}

fn compare_paths(a: &[Value], b: &[Value]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let order = compare(x, y);
        if order != Ordering::Equal {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

/// Deletes the value at `path`; a path that does not exist is no error.
fn delete(root: &mut Value, path: &[Value]) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        *root = Value::Null;
        return Ok(());
    };
    let mut current = root;
    for key in parents {
        current = match (current, key) {
            (Value::Null, _) => return Ok(()),
            (Value::Object(map), Value::String(k)) => match map.get_mut(k) {
                Some(v) => v,
                None => return Ok(()),
            },
            (Value::Array(items), Value::Number(n)) => {
                let len = items.len();
                match position(n, len).and_then(|i| items.get_mut(i)) {
                    Some(v) => v,
                    None => return Ok(()),
                }
            }
            (other, key) => {
                return Err(format!(
                    "cannot delete inside {} at {}",
                    describe(other),
                    describe(key)
                ));
            }
        };
    }
    match (current, last) {
        (Value::Null, _) => {}
        (Value::Object(map), Value::String(k)) => {
            map.remove(k);
        }
        (Value::Array(items), Value::Number(n)) => {
            if let Some(i) = position(n, items.len()).filter(|&i| i < items.len()) {
                items.remove(i);
            }
        }
        (other, key) => {
            return Err(format!(
                "cannot delete {} from {}",
                describe(key),
                describe(other)
            ));
        }
    }
    Ok(())
}
