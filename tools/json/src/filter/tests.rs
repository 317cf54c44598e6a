//! The filter language end to end: text in, outputs or an error out.

use serde_json::{Value, json};

fn run(filter: &str, document: Value) -> Vec<Value> {
    match super::run(filter, &document) {
        Ok(values) => values,
        Err(e) => panic!("{filter}: {e}"),
    }
}

fn one(filter: &str, document: Value) -> Value {
    let values = run(filter, document);
    assert_eq!(values.len(), 1, "{filter}: {values:?}");
    values.into_iter().next().unwrap()
}

fn error(filter: &str, document: Value) -> String {
    match super::run(filter, &document) {
        Ok(values) => panic!("{filter}: expected an error, got {values:?}"),
        Err(e) => e,
    }
}

fn shop() -> Value {
    json!({
        "store": "corner",
        "items": [
            {"name": "apple", "price": 3, "tags": ["fruit", "red"]},
            {"name": "pear", "price": 4.5, "tags": ["fruit"]},
            {"name": "soap", "price": 2, "tags": []},
            {"name": "kiwi", "price": 6, "tags": ["fruit", "green"], "stock": null}
        ],
        "key with space": 1
    })
}

#[test]
fn paths_and_iteration() {
    assert_eq!(one(".", json!(1)), json!(1));
    assert_eq!(one(".store", shop()), json!("corner"));
    assert_eq!(one(".items[0].name", shop()), json!("apple"));
    assert_eq!(one(".items[-1].name", shop()), json!("kiwi"));
    assert_eq!(one(".items[10]", shop()), json!(null));
    assert_eq!(one(".[\"key with space\"]", shop()), json!(1));
    assert_eq!(one(".\"key with space\"", shop()), json!(1));
    assert_eq!(one(".missing.deeper", shop()), json!(null));
    assert_eq!(
        run(".items[].name", shop()),
        [json!("apple"), json!("pear"), json!("soap"), json!("kiwi")]
    );
    assert_eq!(
        run(".items[0].tags[]", shop()),
        [json!("fruit"), json!("red")]
    );
    assert_eq!(
        run("{\"a\": 1, \"b\": 2} | .[]", Value::Null),
        [json!(1), json!(2)]
    );
    assert_eq!(
        one(".items[1:3] | map(.name)", shop()),
        json!(["pear", "soap"])
    );
    assert_eq!(
        one(".items[-2:] | map(.name)", shop()),
        json!(["soap", "kiwi"])
    );
    assert_eq!(one(".items[:1] | length", shop()), json!(1));
    assert_eq!(one(".store[1:3]", shop()), json!("or"));
    assert_eq!(
        one(".items[.items | length - 1].name", shop()),
        json!("kiwi")
    );
    assert_eq!(one(".items.[0].name", shop()), json!("apple"));
    assert_eq!(run(".[0, 2]", json!([10, 20, 30])), [json!(10), json!(30)]);
}

#[test]
fn the_documented_example() {
    assert_eq!(
        run(".items[] | select(.price > 3) | .name", shop()),
        [json!("pear"), json!("kiwi")]
    );
}

#[test]
fn pipes_commas_and_constructors() {
    assert_eq!(
        run(".store, .items[0].price", shop()),
        [json!("corner"), json!(3)]
    );
    assert_eq!(one("[.items[] | .price]", shop()), json!([3, 4.5, 2, 6]));
    assert_eq!(one("[]", Value::Null), json!([]));
    assert_eq!(
        one(".items[0] | {name, cost: .price}", shop()),
        json!({"name": "apple", "cost": 3})
    );
    assert_eq!(
        one("{(.store): 1, \"x y\": 2, if: 3}", shop()),
        json!({"corner": 1, "x y": 2, "if": 3})
    );
    assert_eq!(
        run("{a: (1, 2)}", Value::Null),
        [json!({"a": 1}), json!({"a": 2})]
    );
    assert_eq!(
        one("{a: .x | . + 1, b: 2}", json!({"x": 1})),
        json!({"a": 2, "b": 2})
    );
    assert_eq!(one("[.[] | {k: .}]", json!([1])), json!([{"k": 1}]));
}

#[test]
fn comparisons_and_logic() {
    assert_eq!(one("1 == 1.0", Value::Null), json!(true));
    assert_eq!(one("\"a\" < \"b\"", Value::Null), json!(true));
    assert_eq!(one("null < false", Value::Null), json!(true));
    assert_eq!(one("[1] != [1]", Value::Null), json!(false));
    assert_eq!(one("{\"a\": 1} == {\"a\": 1}", Value::Null), json!(true));
    assert_eq!(one("true and (1 > 2 or 3 >= 3)", Value::Null), json!(true));
    assert_eq!(one("false and error(\"never\")", Value::Null), json!(false));
    assert_eq!(one("true or error(\"never\")", Value::Null), json!(true));
    assert_eq!(one("null | not", Value::Null), json!(true));
    assert_eq!(
        run("(true, false) and true", Value::Null),
        [json!(true), json!(false)]
    );
    assert_eq!(
        run(
            ".items[] | select(.price >= 3 and (.tags | length) > 1) | .name",
            shop()
        ),
        [json!("apple"), json!("kiwi")]
    );
    assert_eq!(
        run(
            ".items[] | select(.stock == null and .price < 3) | .name",
            shop()
        ),
        [json!("soap")]
    );
}

#[test]
fn arithmetic() {
    assert_eq!(one("1 + 2 * 3 - 4 / 2", Value::Null), json!(5));
    assert_eq!(one("(1 + 2) * 3", Value::Null), json!(9));
    assert_eq!(one("10 % 3", Value::Null), json!(1));
    assert_eq!(one("-.a + 1", json!({"a": 5})), json!(-4));
    assert_eq!(one(".a - -1", json!({"a": 5})), json!(6));
    assert_eq!(one("\"ab\" + \"cd\"", Value::Null), json!("abcd"));
    assert_eq!(one("[1, 2] + [3] - [1]", Value::Null), json!([2, 3]));
    assert_eq!(one("{a: 1} + {b: 2}", Value::Null), json!({"a": 1, "b": 2}));
    assert_eq!(one(".items | map(.price) | add", shop()), json!(15.5));
    assert_eq!(
        run("(1, 2) + (10, 20)", Value::Null),
        [json!(11), json!(12), json!(21), json!(22)]
    );
}

#[test]
fn alternatives_conditionals_and_errors() {
    assert_eq!(one(".missing // \"default\"", shop()), json!("default"));
    assert_eq!(one(".store // \"default\"", shop()), json!("corner"));
    assert_eq!(one("(false, null) // 3", Value::Null), json!(3));
    assert_eq!(one("error(\"x\") // 1", Value::Null), json!(1));
    assert_eq!(
        run(
            ".items[] | if .price > 4 then \"dear\" elif .price > 2 then \"fair\" else \"cheap\" end",
            shop()
        ),
        [json!("fair"), json!("dear"), json!("cheap"), json!("dear")]
    );
    assert_eq!(one("if . then 1 end", json!(false)), json!(false));
    assert_eq!(run(".[] | .a?", json!([1, {"a": 2}])), [json!(2)]);
    assert_eq!(run(".[]?", json!(3)), Vec::<Value>::new());
    assert_eq!(
        one("try error(\"boom\") catch .", Value::Null),
        json!("boom")
    );
    assert_eq!(
        one("[.[] | try tonumber catch \"bad\"]", json!(["1", "x"])),
        json!([1, "bad"])
    );
    assert_eq!(one("try (1 / 0) catch \"div\"", Value::Null), json!("div"));
}

#[test]
fn builtins_on_collections() {
    let doc = shop();
    assert_eq!(one("length", doc.clone()), json!(3));
    assert_eq!(one(".store | length", doc.clone()), json!(6));
    assert_eq!(one("null | length", Value::Null), json!(0));
    assert_eq!(one("-5 | length", Value::Null), json!(5));
    assert_eq!(
        one("keys", doc.clone()),
        json!(["items", "key with space", "store"])
    );
    assert_eq!(
        one("{\"b\": 1, \"a\": 2} | values", Value::Null),
        json!([2, 1])
    );
    assert_eq!(one(".items | first.name", doc.clone()), json!("apple"));
    assert_eq!(one(".items | last | .name", doc.clone()), json!("kiwi"));
    assert_eq!(
        one("first(.items[] | select(.price > 3)) | .name", doc.clone()),
        json!("pear")
    );
    assert_eq!(one("[limit(2; .items[])] | length", doc.clone()), json!(2));
    assert_eq!(
        one(".items | map(.name) | sort", doc.clone()),
        json!(["apple", "kiwi", "pear", "soap"])
    );
    assert_eq!(
        one(".items | sort_by(.price) | map(.name)", doc.clone()),
        json!(["soap", "apple", "pear", "kiwi"])
    );
    assert_eq!(
        one(".items | sort_by(-.price) | .[0].name", doc.clone()),
        json!("kiwi")
    );
    assert_eq!(
        one(
            ".items | group_by(.tags | length) | map(map(.name))",
            doc.clone()
        ),
        json!([["soap"], ["pear"], ["apple", "kiwi"]])
    );
    assert_eq!(
        one(".items | min_by(.price) | .name", doc.clone()),
        json!("soap")
    );
    assert_eq!(
        one(".items | max_by(.price) | .name", doc.clone()),
        json!("kiwi")
    );
    assert_eq!(one("[3, 1, 3, 2] | unique", Value::Null), json!([1, 2, 3]));
    assert_eq!(
        one(".items | unique_by(.tags | length) | length", doc.clone()),
        json!(3)
    );
    assert_eq!(
        one("[1, [2, [3, [4]]]] | flatten", Value::Null),
        json!([1, 2, 3, 4])
    );
    assert_eq!(
        one("[1, [2, [3]]] | flatten(1)", Value::Null),
        json!([1, 2, [3]])
    );
    assert_eq!(
        run("[3, 1, 2] | min, max", Value::Null),
        [json!(1), json!(3)]
    );
    assert_eq!(one("[] | max", Value::Null), json!(null));
    assert_eq!(one("[1, 2] | reverse", Value::Null), json!([2, 1]));
    assert_eq!(one("[range(5)]", Value::Null), json!([0, 1, 2, 3, 4]));
    assert_eq!(one("[range(2; 4)]", Value::Null), json!([2, 3]));
    assert_eq!(
        run("[true, false] | any, all", Value::Null),
        [json!(true), json!(false)]
    );
    assert_eq!(one(".items | all(.price > 1)", doc.clone()), json!(true));
    assert_eq!(
        one(".items | any(.name == \"soap\")", doc.clone()),
        json!(true)
    );
    assert_eq!(one("has(\"store\")", doc.clone()), json!(true));
    assert_eq!(one(".items | has(4)", doc.clone()), json!(false));
    assert_eq!(
        one(".items[0] | contains({tags: [\"red\"]})", doc.clone()),
        json!(true)
    );
    assert_eq!(
        one("\"foobar\" | contains(\"bar\")", Value::Null),
        json!(true)
    );
    assert_eq!(
        one("[\"a\"] | inside([\"a\", \"b\"])", Value::Null),
        json!(true)
    );
    assert_eq!(
        one("isempty(.items[] | select(.price > 100))", doc),
        json!(true)
    );
}

#[test]
fn entries_and_updates() {
    let obj = json!({"a": 1, "b": 2});
    assert_eq!(
        one("to_entries", obj.clone()),
        json!([{"key": "a", "value": 1}, {"key": "b", "value": 2}])
    );
    assert_eq!(one("to_entries | from_entries", obj.clone()), obj);
    assert_eq!(
        one(
            "[{name: \"x\", v: 1}, {k: 2, value: 3}] | from_entries",
            Value::Null
        ),
        json!({"x": 1, "2": 3})
    );
    assert_eq!(
        one("with_entries(.value += 10)", obj.clone()),
        json!({"a": 11, "b": 12})
    );
    assert_eq!(
        one("with_entries(select(.value > 1))", obj.clone()),
        json!({"b": 2})
    );
    assert_eq!(
        one("map_values(. * 2)", obj.clone()),
        json!({"a": 2, "b": 4})
    );
    assert_eq!(one("map_values(empty)", obj.clone()), json!({}));
    assert_eq!(one(".a = 5", obj.clone()), json!({"a": 5, "b": 2}));
    assert_eq!(
        one(".c.d = 1", obj.clone()),
        json!({"a": 1, "b": 2, "c": {"d": 1}})
    );
    assert_eq!(one(".a |= . + 1", obj.clone()), json!({"a": 2, "b": 2}));
    assert_eq!(one(".[] += 1", obj.clone()), json!({"a": 2, "b": 3}));
    assert_eq!(
        one(".x //= 7 | .a //= 9", obj.clone()),
        json!({"a": 1, "b": 2, "x": 7})
    );
    assert_eq!(
        one(
            ".items[] |= {name}",
            json!({"items": [{"name": "a", "p": 1}]})
        ),
        json!({"items": [{"name": "a"}]})
    );
    assert_eq!(
        one("(.[] | select(. > 1)) = 0", json!([1, 2, 3])),
        json!([1, 0, 0])
    );
    assert_eq!(one("del(.a)", obj.clone()), json!({"b": 2}));
    assert_eq!(one("del(.[0, 2])", json!([1, 2, 3, 4])), json!([2, 4]));
    assert_eq!(one("del(.[-1], .[-2])", json!([1, 2, 3, 4])), json!([1, 2]));
    assert_eq!(
        one("del(.[] | select(. % 2 == 0))", json!([1, 2, 3, 4])),
        json!([1, 3])
    );
    assert_eq!(
        one(
            "del(.items[].price)",
            json!({"items": [{"price": 1, "n": 1}]})
        ),
        json!({"items": [{"n": 1}]})
    );
    assert_eq!(
        one(
            "pick(.a, .c.d)",
            json!({"a": 1, "b": 2, "c": {"d": 3, "e": 4}})
        ),
        json!({"a": 1, "c": {"d": 3}})
    );
    assert_eq!(run("path(.a[0].b)", Value::Null), [json!(["a", 0, "b"])]);
    assert_eq!(
        run("[paths]", json!({"a": [1], "b": 2})),
        [json!([["a"], ["a", 0], ["b"]])]
    );
    assert_eq!(
        one("[paths(type == \"number\")]", json!({"a": [1], "b": 2})),
        json!([["a", 0], ["b"]])
    );
    assert_eq!(one("getpath([\"a\", 0])", json!({"a": [7]})), json!(7));
    assert_eq!(
        one("setpath([\"a\", 1]; 7)", json!({"a": [0]})),
        json!({"a": [0, 7]})
    );
    assert_eq!(
        one(
            "walk(if type == \"number\" then . + 1 else . end)",
            json!([1, {"a": 2}])
        ),
        json!([2, {"a": 3}])
    );
}

#[test]
fn strings() {
    assert_eq!(
        one("\"a,b,c\" | split(\",\")", Value::Null),
        json!(["a", "b", "c"])
    );
    assert_eq!(
        one("[\"a\", 1, null, true] | join(\"-\")", Value::Null),
        json!("a-1--true")
    );
    assert_eq!(
        run("\"Hello\" | ascii_downcase, ascii_upcase", Value::Null),
        [json!("hello"), json!("HELLO")]
    );
    assert_eq!(one("\"  x \" | trim", Value::Null), json!("x"));
    assert_eq!(
        one("\"file.txt\" | rtrimstr(\".txt\")", Value::Null),
        json!("file")
    );
    assert_eq!(
        one("\"file.txt\" | startswith(\"fi\")", Value::Null),
        json!(true)
    );
    assert_eq!(
        one("\"abc\" | test(\"B\"; \"i\")", Value::Null),
        json!(true)
    );
    assert_eq!(
        one("\"a1b22\" | gsub(\"[0-9]+\"; \"#\")", Value::Null),
        json!("a#b#")
    );
    assert_eq!(
        one(
            "\"2024-05-01\" | sub(\"(\\\\d+)-(\\\\d+)-(\\\\d+)\"; \"$3/$2/$1\")",
            Value::Null
        ),
        json!("01/05/2024")
    );
    assert_eq!(one("\"42\" | tonumber", Value::Null), json!(42));
    assert_eq!(
        one("[1, \"a\"] | tostring", Value::Null),
        json!("[1,\"a\"]")
    );
    assert_eq!(
        one("\"{\\\"a\\\":1}\" | fromjson | .a", Value::Null),
        json!(1)
    );
    assert_eq!(one("{a: 1} | tojson", Value::Null), json!("{\"a\":1}"));
    assert_eq!(
        run("\"héllo\" | length, utf8bytelength", Value::Null),
        [json!(5), json!(6)]
    );
    assert_eq!(run(".[] | strings", json!([1, "a", null])), [json!("a")]);
    assert_eq!(
        one("[.. | numbers]", json!({"a": [1, {"b": 2}], "c": "x"})),
        json!([1, 2])
    );
    assert_eq!(
        one("[.[] | type]", json!([null, true, 1, "s", [], {}])),
        json!(["null", "boolean", "number", "string", "array", "object"])
    );
}

#[test]
fn recursion() {
    let tree = json!({"name": "root", "children": [{"name": "a", "children": []}, {"name": "b"}]});
    assert_eq!(
        one("[.. | .name? // empty]", tree.clone()),
        json!(["root", "a", "b"])
    );
    assert_eq!(
        one("[recurse(.children[]?) | .name]", tree.clone()),
        json!(["root", "a", "b"])
    );
    assert_eq!(one("[..] | length", json!([[1], 2])), json!(4));
}

#[test]
fn parse_errors_name_the_column() {
    assert_eq!(
        error(".items[] | select(.price > 3", shop()),
        "expected `)` or `;` to close the arguments of `select`, found the end of the filter at column 29\n  .items[] | select(.price > 3\n                              ^"
    );
    assert!(error(".a | | .b", Value::Null).starts_with("unexpected `|` at column 6"));
    assert!(
        error("lenght", Value::Null)
            .starts_with("unknown function `lenght` at column 1 — did you mean `length`?")
    );
    assert!(
        error("map", Value::Null)
            .starts_with("`map` takes 1 argument, got 0 at column 1 — usage: map(f)")
    );
    assert!(error("length(1)", Value::Null).starts_with("`length` takes no arguments, got 1"));
    assert!(
        error(".foo-bar", Value::Null).contains("a key with `-` must be quoted: `.[\"foo-bar\"]`")
    );
    assert!(error(".a < .b < .c", Value::Null).starts_with("comparisons do not chain at column 9"));
    assert!(
        error("reduce .[] as $x (0; . + $x)", Value::Null)
            .starts_with("variables (`$name`, `as $name`) are not supported at column 15")
    );
    assert!(
        error("def f: 1; f", Value::Null)
            .starts_with("`def` is not supported in this filter language at column 1")
    );
    assert!(error("{(.a)}", Value::Null).contains("`:` and a value for the computed key"));
    assert!(
        error("if . then 1", Value::Null)
            .contains("`elif`, `else` or `end` to close the `if` at column 1")
    );
    assert_eq!(
        error("", Value::Null),
        "the filter is empty — use `.` for the whole document"
    );
    assert!(error("[1, 2", Value::Null).contains("to close the `[` at column 1"));
    assert!(error("{", Value::Null).starts_with("expected an object key: a name, a string or `(filter)`, found the end of the filter at column 2"));
    assert!(error("{a: 1, 2: 3}", Value::Null).starts_with("unexpected a number at column 8"));
    assert!(error(".a ]", Value::Null).starts_with("unexpected `]` at column 4"));
}

#[test]
fn runtime_errors_name_the_column() {
    assert_eq!(
        error(".items[] | .price.amount", shop()),
        "cannot index number (3) with \"amount\" at column 18 — `.key?` skips values that are not objects\n  .items[] | .price.amount\n                   ^^^^^^^"
    );
    assert!(
        error(".store[]", shop())
            .starts_with("cannot iterate over string (\"corner\") at column 7")
    );
    assert!(
        error(".items.name", shop())
            .starts_with("cannot index an array with the key \"name\" at column 7")
    );
    assert!(
        error(".store + 1", shop())
            .starts_with("cannot add string (\"corner\") and number (1) at column 8")
    );
    assert!(error("error(\"custom\")", Value::Null).starts_with("custom at column 1"));
    assert!(error("{a: 1} | error", Value::Null).starts_with("error({\"a\":1})"));
    assert!(
        error(
            ".items | sort_by(.x) | .[0] | keys | .[0] | ascii_downcase | tonumber",
            shop()
        )
        .contains("tonumber")
    );
    assert!(error("del(length)", json!([1])).starts_with("`length` is not a path at column 5"));
    assert!(error("1 as $x", Value::Null).starts_with("variables"));
}

#[test]
fn limits_stop_runaway_filters() {
    let blowup = format!("[range(100)] {}", "| [.[], .[]]".repeat(30));
    assert!(error(&blowup, Value::Null).starts_with("the filter needs too much work"));
    let infinite = "[recurse(. + 1)]";
    assert!(error(infinite, json!(0)).starts_with("the filter needs too much work"));
    assert!(
        error("try [recurse(. + 1)] catch 1", json!(0))
            .starts_with("the filter needs too much work")
    );
    let nested = format!("{}1{}", "[".repeat(70), "]".repeat(70));
    assert!(error(&nested, Value::Null).starts_with("the filter nests more than 64 levels deep"));
    let deep_value = format!(". {}", "| [.]".repeat(300));
    assert!(
        error(&deep_value, Value::Null)
            .starts_with("the filter builds a value nested more than 256 levels deep")
    );
    assert!(error("range(1e9)", Value::Null).contains("more than"));
    assert_eq!(one("[range(1e300; 1e300 + 10)]", Value::Null), json!([]));
    let doubling = format!("\"x\" {}", "| . + .".repeat(40));
    assert!(error(&doubling, Value::Null).starts_with("the filter needs too much work"));
    let explode = "[range(100000)] | map(\"a\") | join(\"\") | gsub(\"\"; \"".to_string()
        + &"x".repeat(200)
        + "\")";
    assert!(
        error(&explode, Value::Null)
            .starts_with("gsub would make a string longer than 16777216 bytes")
    );
    let long_path = format!("{} = 1", ".a".repeat(300));
    assert!(
        error(&long_path, Value::Null).starts_with("cannot set a path more than 256 levels deep")
    );
}

#[test]
fn deepest_allowed_filter_runs() {
    let nested = format!("{}1{}", "[".repeat(62), "]".repeat(62));
    let value = one(&nested, Value::Null);
    assert_eq!(super::value::depth(&value, 1000), 62);
    let parens = format!("{}.a{}", "(".repeat(62), ")".repeat(62));
    assert_eq!(one(&parens, json!({"a": 1})), json!(1));
    let calls = format!("{}.{}", "map(".repeat(62), ")".repeat(62));
    assert_eq!(one(&calls, json!([])), json!([]));
    let long = format!(".{}", " | .".repeat(2000));
    assert_eq!(one(&long, json!(5)), json!(5));
}

/// The worst nesting the parser allows, for each construct that recurses
/// while parsing or running: it must fit a test thread's 2 MiB stack even
/// unoptimised (a release build needs under a tenth of that).
#[test]
fn deepest_nesting_of_every_kind_runs() {
    let n = super::parser::MAX_DEPTH - 1;
    let mut nested_obj = json!(1);
    let mut nested_arr = json!([]);
    for _ in 0..n {
        nested_obj = json!({"a": nested_obj});
        nested_arr = json!([nested_arr]);
    }
    let cases = [
        (format!("{}1{}", "[".repeat(n), "]".repeat(n)), json!(null)),
        (
            format!("{}.a{}", "(".repeat(n), ")".repeat(n)),
            json!({"a": 1}),
        ),
        (
            format!("{}.{}", "map(".repeat(n), ")".repeat(n)),
            nested_arr.clone(),
        ),
        (
            format!("if . then 1 {} else 2 end", "elif . then 1 ".repeat(n - 2)),
            json!(false),
        ),
        (format!("{}1", "-".repeat(n)), json!(null)),
        (
            format!("{}1{}", "{a: ".repeat(n), "}".repeat(n)),
            json!(null),
        ),
        (
            format!(".{}\"a\"{}", "[.".repeat(n - 2), "]".repeat(n - 2)),
            json!({"a": "a"}),
        ),
        (
            format!("{}.{}", "try (".repeat(n / 2), ")".repeat(n / 2)),
            json!(null),
        ),
        (
            format!(
                "del({}.a{})",
                ".a | (".repeat(n / 2 - 1),
                ")".repeat(n / 2 - 1)
            ),
            nested_obj.clone(),
        ),
        (
            format!("[paths({}.{})]", "select(".repeat(n - 2), ")".repeat(n - 2)),
            nested_obj.clone(),
        ),
        (
            format!("{}.{}", "select(".repeat(n), ")".repeat(n)),
            nested_obj.clone(),
        ),
        (
            format!("{}0{}", "(.a |= ".repeat(n / 2), ")".repeat(n / 2)),
            nested_obj.clone(),
        ),
        (
            format!("{}.{}", "[.[] | ".repeat(n / 2), "]".repeat(n / 2)),
            nested_arr.clone(),
        ),
        ("walk(.) | [paths] | length".to_string(), nested_obj.clone()),
    ];
    for (filter, document) in cases {
        if let Err(e) = super::run(&filter, &document) {
            panic!("{filter}: {e}");
        }
    }
}

/// Random token soup must give outputs or errors, never a panic.
#[test]
fn random_filters_never_panic() {
    const PIECES: &[&str] = &[
        ".",
        "..",
        ".a",
        ".[",
        "]",
        "[",
        "(",
        ")",
        "{",
        "}",
        "|",
        ",",
        ":",
        ";",
        "?",
        "//",
        "=",
        "|=",
        "+=",
        "==",
        "<",
        "+",
        "-",
        "*",
        "/",
        "%",
        "1",
        "-1",
        "0.5",
        "\"s\"",
        "\"",
        "null",
        "true",
        "and",
        "or",
        "not",
        "if",
        "then",
        "elif",
        "else",
        "end",
        "try",
        "catch",
        "map(",
        "select(",
        "del(",
        "path(",
        "paths",
        "keys",
        "length",
        "add",
        "sort_by(",
        "range(",
        "limit(",
        "to_entries",
        "from_entries",
        "with_entries(",
        "walk(",
        "getpath(",
        "setpath(",
        "test(",
        "gsub(",
        "split(",
        "join(",
        "tostring",
        "tonumber",
        "first",
        "last",
        "[]",
        " ",
    ];
    let document = json!({"a": [1, "x", null, {"a": 2}], "b": {"c": true}});
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..4000 {
        let mut filter = String::new();
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        for _ in 0..(state % 12 + 1) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            filter.push_str(PIECES[(state % PIECES.len() as u64) as usize]);
        }
        let _ = super::run(&filter, &document);
    }
}
