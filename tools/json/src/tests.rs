//! The three tools as the host calls them: JSON in, JSON or an error out.

use serde_json::{Value, json};
use toolhost_sdk::ToolError;

use super::tools;

fn call(tool: &str, input: Value) -> Result<Value, ToolError> {
    let tools = tools();
    let tool = tools.iter().find(|t| t.name() == tool).unwrap();
    let out = tool.call_json(&input.to_string())?;
    Ok(serde_json::from_str(&out).unwrap())
}

fn invalid(tool: &str, input: Value) -> String {
    match call(tool, input) {
        Err(ToolError::InvalidInput(message)) => message,
        other => panic!("expected invalid input, got {other:?}"),
    }
}

fn doc() -> Value {
    json!({"items": [{"name": "apple", "price": 3}, {"name": "pear", "price": 5}], "n": null})
}

#[test]
fn query_one_pointer() {
    let out = call(
        "query",
        json!({"document": doc(), "pointer": "/items/0/name"}),
    )
    .unwrap();
    assert_eq!(out, json!({"value": "apple"}));
    let out = call("query", json!({"document": doc(), "pointer": "/n"})).unwrap();
    assert_eq!(out, json!({"value": null}));
    let out = call("query", json!({"document": doc(), "pointer": ""})).unwrap();
    assert_eq!(out, json!({"value": doc()}));
}

#[test]
fn query_several_pointers() {
    let input = json!({"document": doc(), "pointers": ["/items/1/price", "/items/0"]});
    let out = call("query", input).unwrap();
    assert_eq!(out, json!({"values": [5, {"name": "apple", "price": 3}]}));
    let input = json!({"document": doc(), "pointers": ["/items/0", "/items/2"]});
    assert_eq!(
        invalid("query", input),
        "pointers[1]: pointer `/items/2`: `/items` is an array of 2 elements; index 2 is out of range (valid: 0 to 1)"
    );
}

#[test]
fn query_input_mistakes() {
    assert!(invalid("query", json!({"document": doc()})).starts_with("give `pointer`"));
    let both = json!({"document": doc(), "pointer": "", "pointers": []});
    assert!(invalid("query", both).contains("not both"));
    assert!(invalid("query", json!({"pointer": "/a"})).contains("document"));
    let missing = json!({"document": doc(), "pointer": "/items/0/colour"});
    assert_eq!(
        invalid("query", missing),
        "pointer `/items/0/colour`: `/items/0` has no key `colour` (keys: \"name\", \"price\")"
    );
}

#[test]
fn filter_the_documented_example() {
    let input = json!({"document": doc(), "filter": ".items[] | select(.price > 3) | .name"});
    assert_eq!(call("filter", input).unwrap(), json!({"results": ["pear"]}));
    let input = json!({"document": doc(), "filter": ".items[] | select(.price > 30)"});
    assert_eq!(call("filter", input).unwrap(), json!({"results": []}));
    let input = json!({"document": [1, 2], "filter": ".[]"});
    assert_eq!(call("filter", input).unwrap(), json!({"results": [1, 2]}));
}

#[test]
fn filter_errors_are_invalid_input_with_columns() {
    let input = json!({"document": doc(), "filter": ".items[] | .name | ascii_upcase | lenght"});
    assert!(
        invalid("filter", input)
            .starts_with("unknown function `lenght` at column 35 — did you mean `length`?")
    );
    let input = json!({"document": doc(), "filter": ".items | .name"});
    assert!(
        invalid("filter", input)
            .starts_with("cannot index an array with the key \"name\" at column 10")
    );
    let long = ".".repeat(10_001);
    assert!(
        invalid("filter", json!({"document": 1, "filter": long})).contains("the limit is 10000")
    );
}

#[test]
fn a_document_given_as_json_text_gets_a_note() {
    let input = json!({"document": "{\"a\": [1]}", "filter": ".a[0]"});
    let message = invalid("filter", input);
    assert!(message.starts_with("cannot index string"), "{message}");
    assert!(
        message.contains("note: `document` is a string holding JSON text"),
        "{message}"
    );
    let input = json!({"document": "{\"a\": [1]}", "filter": "fromjson | .a[0]"});
    assert_eq!(call("filter", input).unwrap(), json!({"results": [1]}));
    let input = json!({"document": "[1]", "pointer": "/0"});
    assert!(invalid("query", input).contains("note: `document` is a string holding JSON text"));
    let input = json!({"document": "plain", "pointer": "/0"});
    assert!(!invalid("query", input).contains("note"));
}

#[test]
fn format_pretty_and_minify() {
    let text = "{\"b\": [1, 2.50], \"a\": {\"x\": \"é\"}}";
    let out = call("format", json!({"text": text})).unwrap();
    assert_eq!(
        out,
        json!({"text": "{\n  \"b\": [\n    1,\n    2.50\n  ],\n  \"a\": {\n    \"x\": \"é\"\n  }\n}"})
    );
    let out = call(
        "format",
        json!({"text": text, "style": "minify", "sort_keys": true}),
    )
    .unwrap();
    assert_eq!(out, json!({"text": "{\"a\":{\"x\":\"é\"},\"b\":[1,2.50]}"}));
    let out = call("format", json!({"text": "[1,[]]", "indent": 4})).unwrap();
    assert_eq!(out, json!({"text": "[\n    1,\n    []\n]"}));
}

#[test]
fn format_errors_give_line_and_column() {
    let message = invalid(
        "format",
        json!({"text": "{\n  \"a\": 1,\n  \"b\": [1, 2,]\n}"}),
    );
    assert_eq!(
        message,
        "trailing comma before `]`: JSON does not allow one (found `]` at line 3, column 14)\n    \"b\": [1, 2,]\n               ^"
    );
    assert!(
        invalid("format", json!({"text": "[]", "indent": 17})).contains("indent must be 0 to 16")
    );
    assert!(invalid("format", json!({"text": "[]", "style": "compact"})).contains("style"));
    let big = " ".repeat(4 * 1024 * 1024 + 1);
    assert!(invalid("format", json!({"text": big})).contains("the limit is 4194304"));
}

#[test]
fn tools_are_pure_with_schemas() {
    let tools = tools();
    let names: Vec<&str> = tools.iter().map(|t| t.name()).collect();
    assert_eq!(names, ["query", "filter", "format"]);
    for tool in &tools {
        let schema: Value = serde_json::from_str(&tool.input_schema()).unwrap();
        assert_eq!(schema["type"], "object", "{}", tool.name());
        let properties = schema["properties"].as_object().unwrap();
        for (name, property) in properties {
            assert!(
                property.get("description").is_some(),
                "{}.{name} has no description",
                tool.name()
            );
        }
    }
}
