//! Runs a [`Filter`] over a JSON value. Evaluation is eager: each filter
//! returns all its outputs as a vector.
//!
//! Paths (`.a.b[0][]`) walk the input by reference and clone only what they
//! output, and the leading path stages of a pipe hand references on, so
//! `.items[] | select(.price > 3) | .name` copies little more than the names.

use std::collections::HashMap;

use regex::Regex;
use serde_json::{Map, Value};

use super::value::{self, MAX_VALUE_DEPTH, describe, truthy};
use super::{Filter, FilterError, Key, Step, builtins, paths};
use crate::span::Span;

/// How much work one run may do: roughly, values visited, built or copied
/// (a string counts one per 16 bytes). Filters over a 1 MB document need
/// well under a million; in the sandbox a step costs a few hundred units of
/// fuel, so a runaway filter stops here with a clear message before it
/// exhausts a typical fuel budget of two billion.
pub(crate) const MAX_STEPS: u64 = 3_000_000;

/// The outputs of a filter.
pub(crate) type Out = Result<Vec<Value>, FilterError>;

static NULL: Value = Value::Null;

/// The state of one run: the work done so far, and compiled regexes.
#[derive(Debug, Default)]
pub(crate) struct Interp {
    steps: u64,
    pub(crate) regexes: HashMap<(String, String), Regex>,
}

impl Interp {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts `n` units of work, failing once past [`MAX_STEPS`].
    pub fn charge(&mut self, n: u64) -> Result<(), FilterError> {
        self.steps = self.steps.saturating_add(n);
        if self.steps > MAX_STEPS {
            return Err(FilterError::general(format!(
                "the filter needs too much work (over {MAX_STEPS} steps) on this document"
            ))
            .hint("narrow it, e.g. select earlier or use `first(f)` / `limit(n; f)`")
            .fatal());
        }
        Ok(())
    }

    /// A copy of `value`, charged by its size.
    pub fn copy(&mut self, value: &Value) -> Result<Value, FilterError> {
        let remaining = MAX_STEPS.saturating_sub(self.steps);
        self.charge(value::size(value, remaining))?;
        Ok(value.clone())
    }

    /// `value`, if it nests no deeper than [`MAX_VALUE_DEPTH`].
    pub fn built(&mut self, value: Value, span: Option<Span>) -> Result<Value, FilterError> {
        let remaining = MAX_STEPS.saturating_sub(self.steps);
        self.charge(value::size(&value, remaining))?;
        // `depth` counts scalars as 0, so only containers can be too deep.
        if value::depth(&value, MAX_VALUE_DEPTH) > MAX_VALUE_DEPTH {
            let error = FilterError::general(format!(
                "the filter builds a value nested more than {MAX_VALUE_DEPTH} levels deep"
            ));
            return Err(match span {
                Some(span) => error.or_at(span),
                None => error,
            }
            .fatal());
        }
        Ok(value)
    }

    /// All outputs of `filter` on `input`.
    pub fn eval(&mut self, filter: &Filter, input: &Value) -> Out {
        self.charge(1)?;
        match filter {
            Filter::Identity => Ok(vec![self.copy(input)?]),
            Filter::Recurse => {
                let all = recurse_refs(input);
                all.into_iter().map(|v| self.copy(v)).collect()
            }
            Filter::Literal(value) => Ok(vec![self.copy(value)?]),
            Filter::Path { base, steps } => self.path(base, steps, input),
            Filter::Pipe(stages) => self.pipe(stages, input),
            Filter::Comma(items) => self.comma(items, input),
            Filter::Alt(items) => self.alternative(items, input),
            Filter::Or(items) => self.logic(items, input, true),
            Filter::And(items) => self.logic(items, input, false),
            Filter::Compare { op, lhs, rhs, span } => self.compare(op, lhs, rhs, input, *span),
            Filter::Arith { first, rest } => self.arith(first, rest, input),
            Filter::Neg { operand, span } => self.negate(operand, input, *span),
            Filter::Array(None) => Ok(vec![Value::Array(Vec::new())]),
            Filter::Array(Some(inner)) => self.array(inner, input),
            Filter::Object(entries) => self.object(entries, input),
            Filter::If {
                branches,
                otherwise,
            } => self.conditional(branches, otherwise.as_deref(), input),
            Filter::Try { body, handler } => self.attempt(body, handler.as_deref(), input),
            Filter::Call { name, args, span } => {
                builtins::call(self, name, args, input, *span).map_err(|e| e.or_at(*span))
            }
            Filter::Assign {
                op,
                path,
                value,
                span,
            } => paths::assign(self, op, path, value, input).map_err(|e| e.or_at(*span)),
        }
    }

    /// `a, b, c`
    #[inline(never)]
    fn comma(&mut self, items: &[Filter], input: &Value) -> Out {
        let mut out = Vec::new();
        for item in items {
            out.extend(self.eval(item, input)?);
        }
        Ok(out)
    }

    /// `lhs op rhs` for `== != < <= > >=`, for each pair of outputs.
    #[inline(never)]
    fn compare(&mut self, op: &str, lhs: &Filter, rhs: &Filter, input: &Value, span: Span) -> Out {
        let right = self.eval(rhs, input)?;
        let left = self.eval(lhs, input)?;
        let mut out = Vec::with_capacity(right.len() * left.len());
        for r in &right {
            for l in &left {
                let order = value::compare(l, r);
                let result = match op {
                    "==" => order.is_eq(),
                    "!=" => order.is_ne(),
                    "<" => order.is_lt(),
                    "<=" => order.is_le(),
                    ">" => order.is_gt(),
                    ">=" => order.is_ge(),
                    _ => return Err(FilterError::at(span, format!("unknown comparison `{op}`"))),
                };
                out.push(Value::Bool(result));
            }
        }
        self.charge(out.len() as u64)?;
        Ok(out)
    }

    /// A chain of `+ -` or `* / %`, left to right, for each pair of outputs.
    #[inline(never)]
    fn arith(
        &mut self,
        first: &Filter,
        rest: &[(&'static str, Span, Filter)],
        input: &Value,
    ) -> Out {
        let mut acc = self.eval(first, input)?;
        for (op, span, operand) in rest {
            let right = self.eval(operand, input)?;
            let mut next = Vec::with_capacity(right.len() * acc.len());
            for r in &right {
                for l in &acc {
                    let (l, r) = (self.copy(l)?, self.copy(r)?);
                    let result = value::arith(op, l, r).map_err(|m| FilterError::at(*span, m))?;
                    next.push(self.built(result, Some(*span))?);
                }
            }
            acc = next;
        }
        Ok(acc)
    }

    /// `-f`
    #[inline(never)]
    fn negate(&mut self, operand: &Filter, input: &Value, span: Span) -> Out {
        let values = self.eval(operand, input)?;
        values
            .into_iter()
            .map(|v| match value::as_f64(&v) {
                Some(x) => value::number(-x).map_err(|m| FilterError::at(span, m)),
                None => Err(FilterError::at(
                    span,
                    format!("cannot negate {}", describe(&v)),
                )),
            })
            .collect()
    }

    /// `[f]`
    #[inline(never)]
    fn array(&mut self, inner: &Filter, input: &Value) -> Out {
        let items = self.eval(inner, input)?;
        Ok(vec![self.built(Value::Array(items), None)?])
    }

    /// `try body catch handler`, or `body?` when there is no handler.
    #[inline(never)]
    fn attempt(&mut self, body: &Filter, handler: Option<&Filter>, input: &Value) -> Out {
        match self.eval(body, input) {
            Ok(values) => Ok(values),
            Err(error) if error.fatal => Err(error),
            Err(error) => match handler {
                Some(handler) => self.eval(handler, &error.value),
                None => Ok(Vec::new()),
            },
        }
    }

    /// `a | b | c`: leading path stages pass references on without copying.
    #[inline(never)]
    fn pipe(&mut self, stages: &[Filter], input: &Value) -> Out {
        let mut refs = vec![input];
        let mut next = 0;
        while next < stages.len() {
            let mut gathered = Vec::new();
            let mut by_reference = true;
            for &r in &refs {
                match self.refs(&stages[next], r)? {
                    Some(found) => gathered.extend(found),
                    None => {
                        by_reference = false;
                        break;
                    }
                }
            }
            if !by_reference {
                break;
            }
            self.charge(gathered.len() as u64)?;
            refs = gathered;
            next += 1;
        }
        let mut values = Vec::new();
        match stages.get(next) {
            None => {
                for r in refs {
                    values.push(self.copy(r)?);
                }
                return Ok(values);
            }
            Some(stage) => {
                for r in refs {
                    values.extend(self.eval(stage, r)?);
                }
            }
        }
        for stage in &stages[next + 1..] {
            let mut out = Vec::new();
            for v in &values {
                out.extend(self.eval(stage, v)?);
            }
            values = out;
        }
        Ok(values)
    }

    /// The outputs of `filter` as references into `input`, if it is a plain
    /// path (`.`, `..`, `.a[0][]` and the like); `None` if it is not.
    fn refs<'a>(
        &mut self,
        filter: &Filter,
        input: &'a Value,
    ) -> Result<Option<Vec<&'a Value>>, FilterError> {
        match filter {
            Filter::Identity => Ok(Some(vec![input])),
            Filter::Recurse => Ok(Some(recurse_refs(input))),
            Filter::Path { base, steps }
                if **base == Filter::Identity
                    && !steps.iter().any(|s| matches!(s, Step::Slice(..))) =>
            {
                self.walk(steps, vec![input], input).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// `base` followed by `steps`.
    #[inline(never)]
    fn path(&mut self, base: &Filter, steps: &[Step], input: &Value) -> Out {
        let mut owned = Vec::new();
        let mut from_input = *base == Filter::Identity;
        if !from_input {
            owned = self.eval(base, input)?;
        }
        let mut rest = steps;
        loop {
            let cut = rest
                .iter()
                .position(|s| matches!(s, Step::Slice(..)))
                .unwrap_or(rest.len());
            let starts: Vec<&Value> = if from_input {
                vec![input]
            } else {
                owned.iter().collect()
            };
            let found = self.walk(&rest[..cut], starts, input)?;
            let Some(Step::Slice(from, to, span)) = rest.get(cut) else {
                return found.into_iter().map(|v| self.copy(v)).collect();
            };
            let mut sliced = Vec::new();
            for v in found {
                sliced.extend(self.slice(v, from.as_ref(), to.as_ref(), input, *span)?);
            }
            owned = sliced;
            from_input = false;
            rest = &rest[cut + 1..];
        }
    }

    /// Applies field, index and iterate steps by reference. Index filters
    /// run on `input`, the path's own input.
    fn walk<'a>(
        &mut self,
        steps: &[Step],
        starts: Vec<&'a Value>,
        input: &Value,
    ) -> Result<Vec<&'a Value>, FilterError> {
        let mut current = starts;
        for step in steps {
            let mut next = Vec::with_capacity(current.len());
            match step {
                Step::Field(name, span) => {
                    for v in current {
                        next.push(index(v, &Value::String(name.clone()), *span)?);
                    }
                }
                Step::Index(filter, span) => {
                    let keys = self.eval(filter, input)?;
                    for v in current {
                        for key in &keys {
                            next.push(index(v, key, *span)?);
                        }
                    }
                }
                Step::Iterate(span) => {
                    for v in current {
                        match v {
                            Value::Array(items) => next.extend(items),
                            Value::Object(map) => next.extend(map.values()),
                            other => {
                                return Err(FilterError::at(
                                    *span,
                                    format!("cannot iterate over {}", describe(other)),
                                )
                                .hint("`.[]?` skips values that are not arrays or objects"));
                            }
                        }
                    }
                }
                Step::Slice(_, _, span) => {
                    return Err(FilterError::at(*span, "internal: a slice reached walk"));
                }
            }
            self.charge(next.len() as u64)?;
            current = next;
        }
        Ok(current)
    }

    /// `value[from:to]` for each pair of bounds.
    fn slice(
        &mut self,
        value: &Value,
        from: Option<&Filter>,
        to: Option<&Filter>,
        input: &Value,
        span: Span,
    ) -> Out {
        let bounds = |it: &mut Self, bound: Option<&Filter>| -> Out {
            match bound {
                Some(f) => it.eval(f, input),
                None => Ok(vec![Value::Null]),
            }
        };
        let starts = bounds(self, from)?;
        let ends = bounds(self, to)?;
        let mut out = Vec::new();
        for end in &ends {
            for start in &starts {
                let item = match value {
                    Value::Null => Value::Null,
                    Value::Array(items) => {
                        let (a, b) = range(items.len(), start, end, span)?;
                        let part = Value::Array(items[a..b].to_vec());
                        self.charge(value::size(&part, MAX_STEPS))?;
                        part
                    }
                    Value::String(text) => {
                        let chars: Vec<char> = text.chars().collect();
                        let (a, b) = range(chars.len(), start, end, span)?;
                        Value::String(chars[a..b].iter().collect())
                    }
                    other => {
                        return Err(FilterError::at(
                            span,
                            format!("cannot slice {}", describe(other)),
                        ));
                    }
                };
                out.push(item);
            }
        }
        Ok(out)
    }

    /// `a // b // c`: the true outputs of the first alternative that has
    /// any (errors count as none), else all outputs of the last.
    #[inline(never)]
    fn alternative(&mut self, items: &[Filter], input: &Value) -> Out {
        let (last, rest) = items
            .split_last()
            .ok_or_else(|| FilterError::general("empty alternative"))?;
        for item in rest {
            match self.eval(item, input) {
                Ok(values) => {
                    let kept: Vec<Value> = values.into_iter().filter(truthy).collect();
                    if !kept.is_empty() {
                        return Ok(kept);
                    }
                }
                Err(error) if error.fatal => return Err(error),
                Err(_) => {}
            }
        }
        self.eval(last, input)
    }

    /// `a or b ...` (`is_or`) or `a and b ...`, short-circuiting per output.
    #[inline(never)]
    fn logic(&mut self, items: &[Filter], input: &Value, is_or: bool) -> Out {
        let mut acc: Vec<bool> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            if i == 0 {
                acc = self.eval(item, input)?.iter().map(truthy).collect();
                continue;
            }
            let mut next = Vec::new();
            let mut right: Option<Vec<bool>> = None;
            for &a in &acc {
                if a == is_or {
                    next.push(a);
                    continue;
                }
                if right.is_none() {
                    right = Some(self.eval(item, input)?.iter().map(truthy).collect());
                }
                next.extend(right.iter().flatten());
            }
            acc = next;
        }
        self.charge(acc.len() as u64)?;
        Ok(acc.into_iter().map(Value::Bool).collect())
    }

    /// `{k: v, ...}`: one object per combination of key and value outputs.
    #[inline(never)]
    fn object(&mut self, entries: &[(Key, Filter)], input: &Value) -> Out {
        let mut objects = vec![Map::new()];
        for (key, value_filter) in entries {
            let keys = match key {
                Key::Literal(name) => vec![name.clone()],
                Key::Computed(filter, span) => self
                    .eval(filter, input)?
                    .into_iter()
                    .map(|k| match k {
                        Value::String(s) => Ok(s),
                        other => Err(FilterError::at(
                            *span,
                            format!("object keys must be strings, got {}", describe(&other)),
                        )
                        .hint("convert with `tostring`")),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            };
            let values = self.eval(value_filter, input)?;
            let mut next = Vec::with_capacity(objects.len() * keys.len() * values.len());
            for object in &objects {
                for k in &keys {
                    for v in &values {
                        let mut object = object.clone();
                        object.insert(k.clone(), self.copy(v)?);
                        next.push(object);
                    }
                }
            }
            objects = next;
        }
        objects
            .into_iter()
            .map(|o| self.built(Value::Object(o), None))
            .collect()
    }

    /// `if` with its `elif` branches, then `else` (or `.`).
    #[inline(never)]
    fn conditional(
        &mut self,
        branches: &[(Filter, Filter)],
        otherwise: Option<&Filter>,
        input: &Value,
    ) -> Out {
        let Some(((condition, then), rest)) = branches.split_first() else {
            return match otherwise {
                Some(f) => self.eval(f, input),
                None => Ok(vec![self.copy(input)?]),
            };
        };
        let mut out = Vec::new();
        for c in self.eval(condition, input)? {
            if truthy(&c) {
                out.extend(self.eval(then, input)?);
            } else {
                out.extend(self.conditional(rest, otherwise, input)?);
            }
        }
        Ok(out)
    }
}

/// `value` and every value inside it, parents before children.
pub(crate) fn recurse_refs(value: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        out.push(v);
        match v {
            Value::Array(items) => stack.extend(items.iter().rev()),
            Value::Object(map) => stack.extend(map.values().rev()),
            _ => {}
        }
    }
    out
}

/// `value[key]`: an object by a string, an array by a number (negative
/// counts from the end); missing gives null, and so does indexing null.
pub(crate) fn index<'a>(
    value: &'a Value,
    key: &Value,
    span: Span,
) -> Result<&'a Value, FilterError> {
    match (value, key) {
        (Value::Object(map), Value::String(k)) => Ok(map.get(k).unwrap_or(&NULL)),
        (Value::Array(items), Value::Number(n)) => {
            let i = n.as_f64().unwrap_or(0.0).floor();
            let i = if i < 0.0 { i + items.len() as f64 } else { i };
            if i < 0.0 || i >= items.len() as f64 {
                return Ok(&NULL);
            }
            Ok(&items[i as usize])
        }
        (Value::Null, Value::String(_) | Value::Number(_)) => Ok(&NULL),
        (Value::Array(_), Value::String(k)) => Err(FilterError::at(span, format!("cannot index an array with the key \"{k}\""))
            .hint("arrays take numbers, as in `.[0]`; use `.[] | .key` or `map(.key)` to read a key of every element")),
        (Value::Object(_), Value::Number(n)) => Err(FilterError::at(span, format!("cannot index an object with the number {n}"))
            .hint("objects take keys, as in `.name` or `.[\"name\"]`")),
        (other, Value::String(k)) => Err(FilterError::at(span, format!("cannot index {} with \"{k}\"", describe(other)))
            .hint("`.key?` skips values that are not objects")),
        (other, key) => Err(FilterError::at(span, format!("cannot index {} with {}", describe(other), describe(key)))),
    }
}

/// The element range `[start, end)` of a slice of `len` elements.
fn range(
    len: usize,
    start: &Value,
    end: &Value,
    span: Span,
) -> Result<(usize, usize), FilterError> {
    let bound = |v: &Value, default: f64, round: fn(f64) -> f64| -> Result<usize, FilterError> {
        let x = match v {
            Value::Null => default,
            Value::Number(n) => round(n.as_f64().unwrap_or(0.0)),
            other => {
                return Err(FilterError::at(
                    span,
                    format!("slice bounds must be numbers, got {}", describe(other)),
                ));
            }
        };
        let x = if x < 0.0 { x + len as f64 } else { x };
        Ok(x.clamp(0.0, len as f64) as usize)
    };
    let a = bound(start, 0.0, f64::floor)?;
    let b = bound(end, len as f64, f64::ceil)?;
    Ok((a, b.max(a)))
}
