//! `json`: read, filter and reformat JSON.
//!
//! - `query` reads values at RFC 6901 JSON Pointers ([`pointer`]);
//! - `filter` runs a small jq-like language, written by hand ([`filter`]);
//! - `format` pretty-prints or minifies JSON text with a strict parser of its
//!   own that keeps strings and numbers exactly as written ([`jsontext`],
//!   [`format`]).
//!
//! All three are pure, and every input size and nesting depth is capped.

mod filter;
mod format;
mod jsontext;
mod pointer;
mod span;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use toolhost_sdk::{Ctx, Tool, ToolError};

/// The longest filter accepted, in characters.
const MAX_FILTER_CHARS: usize = 10_000;

/// The most pointers one `query` call may ask for.
const MAX_POINTERS: usize = 1_000;

/// The longest text `format` accepts, in bytes.
const MAX_TEXT_BYTES: usize = 4 * 1024 * 1024;

/// The largest `indent`.
const MAX_INDENT: u8 = 16;

const QUERY: &str = "Read values out of a JSON document by RFC 6901 JSON Pointer: `/items/0/name` is key \
`items`, then element 0, then key `name`; the empty pointer \"\" is the whole document; write `~1` for a \
`/` inside a key and `~0` for `~`. Give `pointer` for one value (returned as `value`) or `pointers` for several \
(returned as `values`, in order). A pointer that does not resolve is an error naming the segment that \
failed and the keys or indices that exist there.";

const FILTER: &str = "Run a jq-style filter over a JSON document and return all its outputs as `results`. \
Syntax: `.` (the input); `.a.b`, `.[\"key with space\"]`, `.[0]`, `.[-1]` (from the end), `.[2:5]` (slice), \
`.[]` (each element or value), `..` (every value, recursively); `f?` or `try f catch g` (skip or handle \
errors); `f | g` (pipe); `f, g` (both); literals (numbers, \"strings\", true, false, null); `[f]` (collect \
into an array); `{name, price: .cost, (.k): .v}` (build objects); `+ - * / %`; `== != < <= > >=`; `and`, \
`or`, `not` (written `f | not`); `a // b` (a, unless it is null, false or an error); `if c then a elif d \
then b else e end`; assignments `.a = v`, `.a |= f`, `.a += v` (also -= *= /= %= //=). Builtins: length \
utf8bytelength keys keys_unsorted values (an object's values as an array) has(k) contains(x) inside(x) \
first last first(f) last(f) limit(n; f) range(n) range(a; b) map(f) map_values(f) select(f) recurse \
recurse(f) walk(f) type tostring tonumber tojson fromjson ascii_downcase ascii_upcase trim ltrim rtrim \
ltrimstr(s) rtrimstr(s) startswith(s) endswith(s) split(s) join(s) test(re) test(re; flags) sub(re; s) \
gsub(re; s) (Rust regex syntax, flags i x s m g, `$1` in replacements) add any all any(f) all(f) min max \
min_by(f) max_by(f) sort sort_by(f) group_by(f) unique unique_by(f) reverse flatten flatten(n) to_entries \
from_entries with_entries(f) floor ceil round sqrt abs objects arrays strings numbers booleans nulls \
iterables scalars isempty(f) empty error(msg) path(f) paths paths(f) getpath(p) setpath(p; v) del(f) \
pick(f). Not supported: variables (`$x`, `as`), reduce, foreach, def, string interpolation, @formats. \
Objects in the results have their keys sorted. Example: document {\"items\": [{\"name\": \"a\", \"price\": 5}, \
{\"name\": \"b\", \"price\": 2}]} with filter `.items[] | select(.price > 3) | .name` gives {\"results\": \
[\"a\"]}. Errors name the column of the filter where they happened.";

const FORMAT: &str = "Pretty-print or minify JSON text, optionally sorting object keys. Strings and \
numbers are kept exactly as written and members stay in their order unless `sort_keys` is set. The \
parser is strict (RFC 8259): invalid JSON is an error giving the line and column and what to fix \
(single quotes, trailing commas, comments, unquoted keys, ...), so this also validates JSON.";

/// Where to read.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct QueryInput {
    /// The JSON document to read from: any JSON value.
    document: Value,
    /// One JSON Pointer, e.g. `/items/0/name`; empty for the whole document. Give this or `pointers`.
    #[serde(default)]
    pointer: Option<String>,
    /// Several JSON Pointers, read in one call; the values come back in the same order.
    #[serde(default)]
    pointers: Option<Vec<String>>,
}

/// What was there.
#[derive(Serialize, JsonSchema)]
struct QueryOutput {
    /// The value at `pointer`, when `pointer` was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<Value>,
    /// The values at `pointers`, in order, when `pointers` was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    values: Option<Vec<Value>>,
}

fn query(_: &Ctx, input: QueryInput) -> Result<QueryOutput, ToolError> {
    let document = &input.document;
    let read = |p: &str| {
        pointer::resolve(document, p)
            .cloned()
            .map_err(|m| ToolError::invalid_input(with_note(m, document)))
    };
    match (input.pointer, input.pointers) {
        (Some(p), None) => Ok(QueryOutput {
            value: Some(read(&p)?),
            values: None,
        }),
        (None, Some(ps)) => {
            if ps.len() > MAX_POINTERS {
                return Err(ToolError::invalid_input(format!(
                    "{} pointers given; the limit is {MAX_POINTERS}",
                    ps.len()
                )));
            }
            let values = ps
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    pointer::resolve(document, p).cloned().map_err(|m| {
                        let m = with_note(format!("pointers[{i}]: {m}"), document);
                        ToolError::invalid_input(m)
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(QueryOutput {
                value: None,
                values: Some(values),
            })
        }
        (Some(_), Some(_)) => Err(ToolError::invalid_input(
            "give either `pointer` or `pointers`, not both",
        )),
        (None, None) => Err(ToolError::invalid_input(
            "give `pointer` (one JSON Pointer, e.g. \"/items/0\") or `pointers` (a list of them)",
        )),
    }
}

/// What to filter, and how.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FilterInput {
    /// The JSON document to filter: any JSON value.
    document: Value,
    /// The filter, e.g. `.items[] | select(.price > 3) | .name`. At most 10000 characters.
    filter: String,
}

/// The filter's outputs.
#[derive(Serialize, JsonSchema)]
struct FilterOutput {
    /// Every output of the filter, in order: a filter may give none, one or many.
    results: Vec<Value>,
}

fn run_filter(ctx: &Ctx, input: FilterInput) -> Result<FilterOutput, ToolError> {
    let length = input.filter.chars().count();
    if length > MAX_FILTER_CHARS {
        return Err(ToolError::invalid_input(format!(
            "the filter is {length} characters long; the limit is {MAX_FILTER_CHARS}"
        )));
    }
    let results = filter::run(&input.filter, &input.document)
        .map_err(|m| ToolError::invalid_input(with_note(m, &input.document)))?;
    ctx.debug(&format!("filter gave {} results", results.len()));
    Ok(FilterOutput { results })
}

/// `message`, with a note if `document` is a string holding JSON text: a
/// common mistake, since then every path into it fails.
fn with_note(message: String, document: &Value) -> String {
    let Value::String(text) = document else {
        return message;
    };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(_) | Value::Object(_)) => format!(
            "{message}\nnote: `document` is a string holding JSON text; pass the JSON value itself, \
not a string, or start the filter with `fromjson | `"
        ),
        _ => message,
    }
}

/// The layout `format` produces.
#[derive(Deserialize, JsonSchema, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Style {
    /// One element or member per line, indented.
    #[default]
    Pretty,
    /// No whitespace at all.
    Minify,
}

/// What to reformat.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FormatInput {
    /// The JSON text, at most 4 MiB.
    text: String,
    /// `pretty` (the default) or `minify`.
    #[serde(default)]
    style: Style,
    /// Sort the members of every object by key (by Unicode code point). Default false: keep them
    /// in the order written.
    #[serde(default)]
    sort_keys: bool,
    /// Spaces per indentation level for `pretty`, 0 to 16. Default 2.
    #[serde(default = "default_indent")]
    indent: u8,
}

fn default_indent() -> u8 {
    2
}

/// The reformatted text.
#[derive(Serialize, JsonSchema)]
struct FormatOutput {
    /// The JSON text, laid out as asked.
    text: String,
}

fn run_format(_: &Ctx, input: FormatInput) -> Result<FormatOutput, ToolError> {
    if input.text.len() > MAX_TEXT_BYTES {
        return Err(ToolError::invalid_input(format!(
            "the text is {} bytes; the limit is {MAX_TEXT_BYTES}",
            input.text.len()
        )));
    }
    if input.indent > MAX_INDENT {
        return Err(ToolError::invalid_input(format!(
            "indent must be 0 to {MAX_INDENT}, got {}",
            input.indent
        )));
    }
    let layout = format::Layout {
        pretty: matches!(input.style, Style::Pretty),
        indent: usize::from(input.indent),
        sort_keys: input.sort_keys,
    };
    let text = format::format(&input.text, layout).map_err(ToolError::invalid_input)?;
    Ok(FormatOutput { text })
}

fn tools() -> Vec<Tool> {
    vec![
        Tool::new("query", QUERY, query).pure(),
        Tool::new("filter", FILTER, run_filter).pure(),
        Tool::new("format", FORMAT, run_format).pure(),
    ]
}

toolhost_sdk::export!(tools);

#[cfg(test)]
mod tests;
