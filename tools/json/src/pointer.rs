//! RFC 6901 JSON Pointers, with errors that say which segment failed.

use serde_json::Value;

use crate::span::did_you_mean;

/// How many keys an error lists.
const MAX_LISTED: usize = 20;

/// The value `pointer` points at in `document`.
pub(crate) fn resolve<'a>(document: &'a Value, pointer: &str) -> Result<&'a Value, String> {
    if pointer.is_empty() {
        return Ok(document);
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(not_a_pointer(pointer));
    };
    let mut current = document;
    let mut walked = String::new();
    for (n, raw) in rest.split('/').enumerate() {
        let segment = unescape(raw)
            .map_err(|m| format!("pointer `{pointer}`: segment {} (`{raw}`) {m}", n + 1))?;
        let at = if walked.is_empty() {
            "the document root".to_string()
        } else {
            format!("`{walked}`")
        };
        current = match current {
            Value::Object(map) => match map.get(&segment) {
                Some(v) => v,
                None => return Err(missing_key(pointer, &at, &segment, map)),
            },
            Value::Array(items) => {
                let index = array_index(&segment, items.len()).map_err(|m| {
                    let count = match items.len() {
                        1 => "1 element".to_string(),
                        n => format!("{n} elements"),
                    };
                    format!("pointer `{pointer}`: {at} is an array of {count}; {m}")
                })?;
                &items[index]
            }
            scalar => {
                return Err(format!(
                    "pointer `{pointer}`: cannot look up `{segment}` in {at}, which is {} ({}), not an object or array",
                    kind(scalar),
                    scalar
                ));
            }
        };
        walked.push('/');
        walked.push_str(raw);
    }
    Ok(current)
}

/// Decodes `~1` to `/` and `~0` to `~`.
fn unescape(raw: &str) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '~' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => out.push('~'),
            Some('1') => out.push('/'),
            _ => return Err("has a `~` that is not `~0` (for `~`) or `~1` (for `/`)".to_string()),
        }
    }
    Ok(out)
}

/// The position `segment` names in an array of `len` elements.
fn array_index(segment: &str, len: usize) -> Result<usize, String> {
    if segment == "-" {
        return Err(
            "`-` names the position after the last element, which holds no value".to_string(),
        );
    }
    let digits = !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit());
    if !digits || (segment.len() > 1 && segment.starts_with('0')) {
        return Err(format!(
            "`{segment}` is not an index (a non-negative integer without leading zeros)"
        ));
    }
    match segment.parse::<usize>() {
        Ok(i) if i < len => Ok(i),
        _ if len == 0 => Err(format!(
            "index {segment} is out of range (the array is empty)"
        )),
        _ => Err(format!(
            "index {segment} is out of range (valid: 0 to {})",
            len - 1
        )),
    }
}

fn missing_key(
    pointer: &str,
    at: &str,
    segment: &str,
    map: &serde_json::Map<String, Value>,
) -> String {
    let mut message = format!("pointer `{pointer}`: {at} has no key `{segment}`");
    if let Some(close) = did_you_mean(segment, map.keys().map(String::as_str)) {
        message.push_str(&format!("; did you mean `{close}`?"));
    }
    if map.is_empty() {
        message.push_str(" (it is an empty object)");
    } else {
        let keys: Vec<String> = map
            .keys()
            .take(MAX_LISTED)
            .map(|k| Value::from(k.as_str()).to_string())
            .collect();
        let more = map.len().saturating_sub(MAX_LISTED);
        message.push_str(&format!(" (keys: {}", keys.join(", ")));
        if more > 0 {
            message.push_str(&format!(" and {more} more"));
        }
        message.push(')');
    }
    message
}

fn not_a_pointer(pointer: &str) -> String {
    let mut message = format!(
        "`{pointer}` is not a JSON Pointer: it must be empty (the whole document) or start with `/`"
    );
    let guess: String = pointer
        .trim_start_matches(['.', '$'])
        .replace(['.', '['], "/")
        .replace(']', "");
    if !guess.is_empty() {
        message.push_str(&format!(
            "; did you mean `/{}`?",
            guess.trim_start_matches('/')
        ));
    }
    message
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({"items": [{"name": "apple", "price": 3}, {"name": "pear"}], "a/b": 1, "m~n": 2, "": 3, "empty": {}})
    }

    #[test]
    fn resolves_like_serde_json() {
        let doc = doc();
        for pointer in [
            "",
            "/items",
            "/items/0/name",
            "/items/1",
            "/a~1b",
            "/m~0n",
            "/",
            "/empty",
        ] {
            assert_eq!(
                resolve(&doc, pointer).ok(),
                doc.pointer(pointer),
                "{pointer}"
            );
        }
        assert_eq!(resolve(&doc, "/items/0/name"), Ok(&json!("apple")));
    }

    #[test]
    fn missing_keys_name_the_segment() {
        let doc = doc();
        assert_eq!(
            resolve(&doc, "/items/1/price").unwrap_err(),
            "pointer `/items/1/price`: `/items/1` has no key `price` (keys: \"name\")"
        );
        assert_eq!(
            resolve(&doc, "/itemz/0").unwrap_err(),
            r#"pointer `/itemz/0`: the document root has no key `itemz`; did you mean `items`? (keys: "", "a/b", "empty", "items", "m~n")"#
        );
        assert!(
            resolve(&doc, "/empty/x")
                .unwrap_err()
                .ends_with("has no key `x` (it is an empty object)")
        );
    }

    #[test]
    fn array_indices_are_strict() {
        let doc = doc();
        assert_eq!(
            resolve(&doc, "/items/5").unwrap_err(),
            "pointer `/items/5`: `/items` is an array of 2 elements; index 5 is out of range (valid: 0 to 1)"
        );
        assert!(
            resolve(&doc, "/items/01")
                .unwrap_err()
                .contains("without leading zeros")
        );
        assert!(
            resolve(&doc, "/items/-1")
                .unwrap_err()
                .contains("not an index")
        );
        assert!(
            resolve(&doc, "/items/-")
                .unwrap_err()
                .contains("after the last element")
        );
        assert!(
            resolve(&json!([]), "/0")
                .unwrap_err()
                .contains("the array is empty")
        );
        assert_eq!(
            resolve(&json!([7]), "/1").unwrap_err(),
            "pointer `/1`: the document root is an array of 1 element; index 1 is out of range (valid: 0 to 0)"
        );
    }

    #[test]
    fn scalars_and_bad_pointers() {
        let doc = doc();
        assert_eq!(
            resolve(&doc, "/items/0/price/x").unwrap_err(),
            "pointer `/items/0/price/x`: cannot look up `x` in `/items/0/price`, which is a number (3), not an object or array"
        );
        assert_eq!(
            resolve(&doc, "items.0.name").unwrap_err(),
            "`items.0.name` is not a JSON Pointer: it must be empty (the whole document) or start with `/`; did you mean `/items/0/name`?"
        );
        assert!(
            resolve(&doc, ".items[0]")
                .unwrap_err()
                .ends_with("did you mean `/items/0`?")
        );
        assert!(
            resolve(&doc, "/a~2")
                .unwrap_err()
                .contains("`~0` (for `~`) or `~1` (for `/`)")
        );
    }
}
