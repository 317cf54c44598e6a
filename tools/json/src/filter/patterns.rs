//! The regex builtins `test`, `sub` and `gsub`, on the `regex` crate (so
//! matching takes linear time whatever the pattern).

use regex::{Regex, RegexBuilder};
use serde_json::Value;

use super::builtins::{needs, string, unknown};
use super::eval::{Interp, Out};
use super::{Filter, FilterError};
use crate::span::Span;

/// `test`, `sub` and `gsub`.
#[inline(never)]
pub(crate) fn call(it: &mut Interp, name: &str, args: &[Filter], input: &Value, span: Span) -> Out {
    let text = string(input, name, span)?;
    let (pattern, replacement, flags) = match (name, args) {
        ("test", [pattern]) => (pattern, None, None),
        ("test", [pattern, flags]) => (pattern, None, Some(flags)),
        (_, [pattern, replacement]) => (pattern, Some(replacement), None),
        (_, [pattern, replacement, flags]) => (pattern, Some(replacement), Some(flags)),
        _ => return Err(unknown(name, args, span)),
    };
    let flags = match flags {
        Some(f) => it.eval(f, input)?.into_iter().next().unwrap_or(Value::Null),
        None => Value::Null,
    };
    let flags = match flags {
        Value::Null => String::new(),
        Value::String(s) => s,
        other => return Err(needs(name, "flags as a string, e.g. \"i\"", &other, span)),
    };
    let mut out = Vec::new();
    for pattern in it.eval(pattern, input)? {
        let Value::String(pattern) = pattern else {
            return Err(needs(name, "a regex string", &pattern, span));
        };
        let re = compiled(it, &pattern, &flags, span)?;
        let Some(replacement) = replacement else {
            out.push(Value::Bool(re.is_match(text)));
            continue;
        };
        for with in it.eval(replacement, input)? {
            let Value::String(with) = with else {
                return Err(needs(name, "a replacement string", &with, span));
            };
            let mut replacer = Limited {
                with: &with,
                over: false,
            };
            let replaced = if name == "gsub" || flags.contains('g') {
                re.replace_all(text, &mut replacer)
            } else {
                re.replace(text, &mut replacer)
            };
            if replacer.over {
                let message = format!("{name} would make a string longer than {MAX_STRING} bytes");
                return Err(FilterError::at(span, message).fatal());
            }
            it.charge(replaced.len() as u64 / 16)?;
            out.push(Value::String(replaced.into_owned()));
        }
    }
    Ok(out)
}

/// The longest string `sub` and `gsub` may make, in bytes.
const MAX_STRING: usize = 16 * 1024 * 1024;

/// Expands a replacement (`$1`, `${name}`) until the result would pass
/// [`MAX_STRING`].
struct Limited<'a> {
    with: &'a str,
    over: bool,
}

impl regex::Replacer for &mut Limited<'_> {
    fn replace_append(&mut self, caps: &regex::Captures<'_>, dst: &mut String) {
        if self.over || dst.len() > MAX_STRING {
            self.over = true;
            return;
        }
        caps.expand(self.with, dst);
    }
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
