//! The catalog of builtins: names, arities and usage, which the parser
//! checks calls against.

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
