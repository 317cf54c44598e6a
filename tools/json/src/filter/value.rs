//! What the filter language needs of JSON values: types, truth, order and
//! arithmetic, following jq.

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

/// The deepest value a filter may build.
pub(crate) const MAX_VALUE_DEPTH: usize = 256;

/// Whole numbers up to this magnitude are written without a fraction.
const MAX_EXACT: f64 = 9_007_199_254_740_992.0;

/// The jq name of the value's type.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Everything but `null` and `false` is true.
pub(crate) fn truthy(value: &Value) -> bool {
    !matches!(value, Value::Null | Value::Bool(false))
}

/// A number as a value: whole numbers as integers; an error if not finite.
pub(crate) fn number(x: f64) -> Result<Value, String> {
    if !x.is_finite() {
        return Err("the result is not a finite number".to_string());
    }
    if x.fract() == 0.0 && x.abs() <= MAX_EXACT {
        return Ok(Value::from(x as i64));
    }
    Number::from_f64(x)
        .map(Value::Number)
        .ok_or_else(|| "the result is not a finite number".to_string())
}

/// The number in `value` as a float.
pub(crate) fn as_f64(value: &Value) -> Option<f64> {
    value.as_number().and_then(Number::as_f64)
}

/// The value in a message: compact JSON, cut short if long.
pub(crate) fn short(value: &Value) -> String {
    const LIMIT: usize = 40;
    let text = value.to_string();
    if text.chars().count() <= LIMIT {
        return text;
    }
    let cut: String = text.chars().take(LIMIT).collect();
    format!("{cut}…")
}

/// `type (value)` for a message, e.g. `number (3)`.
pub(crate) fn describe(value: &Value) -> String {
    format!("{} ({})", type_name(value), short(value))
}

/// jq's total order: null < false < true < numbers < strings < arrays <
/// objects; arrays element by element; objects by their sorted keys, then
/// their values key by key.
pub(crate) fn compare(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(false) => 1,
            Value::Bool(true) => 2,
            Value::Number(_) => 3,
            Value::String(_) => 4,
            Value::Array(_) => 5,
            Value::Object(_) => 6,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                let order = compare(p, q);
                if order != Ordering::Equal {
                    return order;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let keys = x.keys().cmp(y.keys());
            if keys != Ordering::Equal {
                return keys;
            }
            for (p, q) in x.values().zip(y.values()) {
                let order = compare(p, q);
                if order != Ordering::Equal {
                    return order;
                }
            }
            Ordering::Equal
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

fn compare_numbers(x: &Number, y: &Number) -> Ordering {
    if let (Some(a), Some(b)) = (x.as_i64(), y.as_i64()) {
        return a.cmp(&b);
    }
    if let (Some(a), Some(b)) = (x.as_u64(), y.as_u64()) {
        return a.cmp(&b);
    }
    let (a, b) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
    a.partial_cmp(&b).unwrap_or(Ordering::Equal)
}

/// `a op b` for `+ - * / %`, as jq does it.
pub(crate) fn arith(op: &str, a: Value, b: Value) -> Result<Value, String> {
    let fail = |a: &Value, b: &Value, verb: &str| {
        Err(format!("cannot {verb} {} and {}", describe(a), describe(b)))
    };
    match (op, a, b) {
        ("+", Value::Null, b) => Ok(b),
        ("+", a, Value::Null) => Ok(a),
        ("+", Value::Number(x), Value::Number(y)) => {
            if let (Some(p), Some(q)) = (x.as_i64(), y.as_i64())
                && let Some(sum) = p.checked_add(q)
            {
                return Ok(Value::from(sum));
            }
            number(x.as_f64().unwrap_or(0.0) + y.as_f64().unwrap_or(0.0))
        }
        ("+", Value::String(x), Value::String(y)) => Ok(Value::String(x + &y)),
        ("+", Value::Array(mut x), Value::Array(y)) => {
            x.extend(y);
            Ok(Value::Array(x))
        }
        ("+", Value::Object(mut x), Value::Object(y)) => {
            x.extend(y);
            Ok(Value::Object(x))
        }
        ("+", a, b) => fail(&a, &b, "add"),
        ("-", Value::Number(x), Value::Number(y)) => {
            if let (Some(p), Some(q)) = (x.as_i64(), y.as_i64())
                && let Some(difference) = p.checked_sub(q)
            {
                return Ok(Value::from(difference));
            }
            number(x.as_f64().unwrap_or(0.0) - y.as_f64().unwrap_or(0.0))
        }
        ("-", Value::Array(x), Value::Array(y)) => Ok(Value::Array(
            x.into_iter()
                .filter(|v| !y.iter().any(|w| compare(v, w) == Ordering::Equal))
                .collect(),
        )),
        ("-", a, b) => fail(&a, &b, "subtract"),
        ("*", Value::Number(x), Value::Number(y)) => {
            if let (Some(p), Some(q)) = (x.as_i64(), y.as_i64())
                && let Some(product) = p.checked_mul(q)
            {
                return Ok(Value::from(product));
            }
            number(x.as_f64().unwrap_or(0.0) * y.as_f64().unwrap_or(0.0))
        }
        ("*", Value::Object(x), Value::Object(y)) => Ok(Value::Object(deep_merge(x, y))),
        ("*", a, b) => fail(&a, &b, "multiply"),
        ("/", Value::Number(x), Value::Number(y)) => {
            let divisor = y.as_f64().unwrap_or(0.0);
            if divisor == 0.0 {
                return Err(format!("cannot divide {x} by zero"));
            }
            number(x.as_f64().unwrap_or(0.0) / divisor)
        }
        ("/", Value::String(x), Value::String(y)) => Ok(split(&x, &y)),
        ("/", a, b) => fail(&a, &b, "divide"),
        ("%", Value::Number(x), Value::Number(y)) => {
            let (p, q) = (
                x.as_f64().unwrap_or(0.0) as i64,
                y.as_f64().unwrap_or(0.0) as i64,
            );
            if q == 0 {
                return Err(format!("cannot take {x} modulo zero"));
            }
            Ok(Value::from(p.wrapping_rem(q)))
        }
        ("%", a, b) => fail(&a, &b, "take the remainder of"),
        (op, a, b) => fail(&a, &b, &format!("apply `{op}` to")),
    }
}

/// `a` with `b` merged in: objects in both merge, anything else from `b` wins.
fn deep_merge(mut a: Map<String, Value>, b: Map<String, Value>) -> Map<String, Value> {
    for (key, value) in b {
        let merged = match (a.remove(&key), value) {
            (Some(Value::Object(x)), Value::Object(y)) => Value::Object(deep_merge(x, y)),
            (_, value) => value,
        };
        a.insert(key, merged);
    }
    a
}

/// `text` split at each `separator`; an empty separator splits characters.
pub(crate) fn split(text: &str, separator: &str) -> Value {
    if text.is_empty() {
        return Value::Array(Vec::new());
    }
    if separator.is_empty() {
        return text.chars().map(|c| Value::String(c.to_string())).collect();
    }
    text.split(separator)
        .map(|part| Value::String(part.to_string()))
        .collect()
}

/// How many values `value` holds, itself included, with strings counting one
/// per 16 bytes, counting no further than `limit`.
pub(crate) fn size(value: &Value, limit: u64) -> u64 {
    let weight = |v: &Value| match v {
        Value::String(s) => 1 + s.len() as u64 / 16,
        _ => 1,
    };
    let (Value::Array(_) | Value::Object(_)) = value else {
        return weight(value);
    };
    let mut count = 0;
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        count += weight(v);
        if count > limit {
            break;
        }
        match v {
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => {
                count += map.keys().map(|k| k.len() as u64 / 16).sum::<u64>();
                stack.extend(map.values());
            }
            _ => {}
        }
    }
    count
}

/// How deeply `value` nests (a scalar is 0, `[1]` is 1), counting no
/// further than `limit + 1`.
pub(crate) fn depth(value: &Value, limit: usize) -> usize {
    let (Value::Array(_) | Value::Object(_)) = value else {
        return 0;
    };
    let mut deepest = 0;
    let mut stack = vec![(value, 0)];
    while let Some((v, d)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        deepest = deepest.max(d + 1);
        if deepest > limit {
            break;
        }
        stack.extend(children.map(|c| (c, d + 1)));
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn order_follows_jq() {
        let mut values = vec![
            json!({"a": 1}),
            json!([1, 2]),
            json!("b"),
            json!(2.5),
            json!(true),
            json!(null),
            json!(false),
            json!([1]),
            json!("a"),
            json!(-1),
            json!({"a": 0}),
        ];
        values.sort_by(compare);
        assert_eq!(
            Value::Array(values),
            json!([null, false, true, -1, 2.5, "a", "b", [1], [1, 2], {"a": 0}, {"a": 1}])
        );
        assert_eq!(compare(&json!(1), &json!(1.0)), Ordering::Equal);
        assert_eq!(
            compare(&json!({"b": 0}), &json!({"a": 5})),
            Ordering::Greater
        );
        assert_eq!(
            compare(&json!(u64::MAX), &json!(i64::MAX)),
            Ordering::Greater
        );
    }

    #[test]
    fn arithmetic_follows_jq() {
        assert_eq!(arith("+", json!(1), json!(2)), Ok(json!(3)));
        assert_eq!(arith("+", json!(0.5), json!(0.5)), Ok(json!(1)));
        assert_eq!(arith("+", json!(null), json!("x")), Ok(json!("x")));
        assert_eq!(arith("+", json!([1]), json!([2])), Ok(json!([1, 2])));
        assert_eq!(
            arith("+", json!({"a": 1}), json!({"a": 2, "b": 3})),
            Ok(json!({"a": 2, "b": 3}))
        );
        assert_eq!(
            arith("-", json!([1, 2, 1, 3]), json!([1])),
            Ok(json!([2, 3]))
        );
        assert_eq!(
            arith("*", json!({"a": {"x": 1}}), json!({"a": {"y": 2}})),
            Ok(json!({"a": {"x": 1, "y": 2}}))
        );
        assert_eq!(arith("/", json!(7), json!(2)), Ok(json!(3.5)));
        assert_eq!(arith("/", json!("a,b"), json!(",")), Ok(json!(["a", "b"])));
        assert_eq!(arith("%", json!(-7), json!(3)), Ok(json!(-1)));
        assert_eq!(
            arith("*", json!(i64::MAX), json!(2)),
            Ok(json!(1.8446744073709552e19))
        );
        assert_eq!(
            arith("+", json!(1), json!("a")),
            Err("cannot add number (1) and string (\"a\")".into())
        );
        assert!(
            arith("/", json!(1), json!(0))
                .unwrap_err()
                .contains("by zero")
        );
        assert!(
            arith("%", json!(1), json!(0.5))
                .unwrap_err()
                .contains("modulo zero")
        );
        assert!(
            arith("*", json!(1e308), json!(10))
                .unwrap_err()
                .contains("finite")
        );
    }

    #[test]
    fn sizes_and_depths() {
        let v = json!({"a": [1, {"b": [2]}], "c": 3});
        assert_eq!(size(&v, 100), 7);
        assert_eq!(size(&json!("x".repeat(160)), 100), 11);
        assert_eq!(size(&v, 3), 4);
        assert_eq!(depth(&v, 100), 4);
        assert_eq!(depth(&json!(1), 100), 0);
        assert_eq!(depth(&json!([[]]), 100), 2);
        assert_eq!(split("a,b,", ","), json!(["a", "b", ""]));
        assert_eq!(split("ab", ""), json!(["a", "b"]));
        assert_eq!(short(&json!("x".repeat(50))).chars().count(), 41);
    }
}
