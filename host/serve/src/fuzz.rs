//! Property-based fuzzing of what `serve` reads from outside: its
//! configuration file and the tool-call bodies of `POST /v1/tool-calls` in
//! both dialects. Run with `cargo test --lib fuzz`.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::config::{ServeConfig, hash_key, parse_hash};
use super::dialect::{self, Dialect, Requested};
use toolhost_fuzz::{check, json};
use toolhost_runtime::tenancy::ToolFilter;

/// Tool names and patterns, ASCII or not.
fn tool_word() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_]{0,8}\\*?",
        "\\PC{0,4}\\*?",
        "\\*",
        "[é日ü本a*]{0,4}",
        any::<String>()
    ]
}

fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        (0_u64..100).prop_map(|n| n.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        "\\PC{0,10}".prop_map(|s| format!("{s:?}")),
        "[0-9]{1,4}/(s|min|h|x)".prop_map(|s| format!("{s:?}")),
        prop::collection::vec(tool_word(), 0..4).prop_map(|v| format!("{v:?}")),
        "[a-z]{1,6}".prop_map(|k| format!("[{:?}]", hash_key(&k))),
        Just("[\"blake3:00\"]".to_string()),
    ]
}

const KEYS: &[&str] = &[
    "name",
    "keys",
    "tools",
    "rate",
    "burst",
    "concurrency",
    "fuel_per_minute",
    "reach_outside",
    "timeout_ms",
    "fuel",
    "memory_mb",
    "max_output_kb",
    "admin_keys",
    "max_body_kb",
    "memory_budget_mb",
    "surprise",
];

/// Configuration-shaped TOML: top-level keys, tenants and their limits.
fn config_text() -> impl Strategy<Value = String> {
    let line = (
        prop::option::weighted(
            0.3,
            prop::sample::select(&["[[tenant]]", "[tenant.limits]", "[x]"][..]),
        ),
        prop::sample::select(KEYS),
        toml_value(),
    )
        .prop_map(|(section, key, value)| match section {
            Some(section) => format!("{section}\n{key} = {value}\n"),
            None => format!("{key} = {value}\n"),
        });
    prop::collection::vec(line, 0..14).prop_map(|lines| lines.concat())
}

/// One tenant that is valid except, perhaps, its tool patterns and limits.
fn tenant_text() -> impl Strategy<Value = (Vec<String>, Option<u64>, String)> {
    (
        prop::collection::vec(tool_word(), 0..5),
        prop::option::of(1_u64..=i64::MAX as u64),
    )
        .prop_map(|(tools, kb)| {
            let mut text = format!(
                "[[tenant]]\nname = \"t\"\nkeys = [{:?}]\ntools = {}\n",
                hash_key("k"),
                toml::Value::Array(tools.iter().cloned().map(toml::Value::String).collect())
            );
            if let Some(kb) = kb {
                text.push_str(&format!("[tenant.limits]\nmax_output_kb = {kb}\n"));
            }
            (tools, kb, text)
        })
}

#[test]
fn fuzz_serve_config_loads_or_is_refused_with_a_reason() {
    check("serve config", 512, config_text(), |text| {
        let Ok(config) = toml::from_str::<ServeConfig>(&text) else {
            return Ok(());
        };
        match config.tenants() {
            Ok(tenants) => {
                prop_assert_eq!(tenants.len(), config.tenants.len());
                for (tenant, keys) in &tenants {
                    prop_assert!(!tenant.name.is_empty() && !keys.is_empty());
                }
            }
            Err(message) => prop_assert!(!message.is_empty()),
        }
        Ok(())
    });
}

#[test]
fn fuzz_serve_tool_patterns_of_any_text_load_or_are_refused_and_match_as_written() {
    check(
        "serve tool patterns",
        512,
        tenant_text(),
        |(tools, kb, text)| {
            let config: ServeConfig =
                toml::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let valid = tools
                .iter()
                .all(|t| !t.is_empty() && !t.strip_suffix('*').unwrap_or(t).contains('*'));
            match config.tenants() {
                Err(message) => {
                    prop_assert!(!valid, "refused: {}", message);
                    prop_assert!(message.contains("`tools`"), "{}", message);
                }
                Ok(tenants) => {
                    prop_assert!(valid);
                    let tenant = &tenants[0].0;
                    for tool in &tools {
                        match tool.strip_suffix('*') {
                            Some(prefix) => {
                                prop_assert!(tenant.tools.allows(prefix));
                                let longer = format!("{prefix}é_x");
                                prop_assert!(tenant.tools.allows(&longer));
                            }
                            None => prop_assert!(tenant.tools.allows(tool)),
                        }
                    }
                    // The output ceiling is the KiB written, never wrapped to less.
                    if let Some(kb) = kb {
                        prop_assert_eq!(
                            tenant.ceiling.max_output_bytes,
                            Some(kb.saturating_mul(1024))
                        );
                    }
                }
            }
            Ok(())
        },
    );
}

#[test]
fn fuzz_tool_filters_allow_only_what_they_name() {
    check(
        "tool filter",
        1024,
        (prop::collection::vec("[a-c]{0,3}\\*?", 0..4), "[a-c]{0,4}"),
        |(patterns, name)| {
            let expected = patterns.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => *p == name,
            });
            let text = format!(
                "[[tenant]]\nname = \"t\"\nkeys = [{:?}]\ntools = {:?}\n",
                hash_key("k"),
                patterns
            );
            let config: ServeConfig =
                toml::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let filter: ToolFilter = match config.tenants() {
                Ok(tenants) => tenants[0].0.tools.clone(),
                Err(message) => {
                    prop_assert!(patterns.iter().any(String::is_empty), "{}", message);
                    return Ok(());
                }
            };
            prop_assert_eq!(filter.allows(&name), expected);
            prop_assert!(ToolFilter::all().allows(&name));
            Ok(())
        },
    );
}

#[test]
fn fuzz_key_hashes_parse_only_as_written() {
    check(
        "key hashes",
        1024,
        (any::<String>(), "blake3:[0-9a-fA-F]{0,70}"),
        |(key, text)| {
            let hash = parse_hash(&hash_key(&key)).map_err(TestCaseError::fail)?;
            prop_assert_eq!(hash, *blake3::hash(key.as_bytes()).as_bytes());
            prop_assert!(parse_hash(&key).is_err() || key.starts_with("blake3:"));
            let hex = &text["blake3:".len()..];
            prop_assert_eq!(parse_hash(&text).is_ok(), hex.len() == 64);
            Ok(())
        },
    );
}

/// One call as the caller wrote it.
fn call() -> impl Strategy<Value = (String, String, Value)> {
    (
        prop_oneof!["[a-z_0-9]{1,12}", "\\PC{1,8}"],
        prop_oneof!["[a-z_]{1,12}", "\\PC{0,8}"],
        prop_oneof![
            json(3),
            prop::collection::btree_map("[a-z]{1,6}", json(2), 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect()))
        ],
    )
}

/// A body holding `calls` in `dialect`, in one of the accepted layouts,
/// with Anthropic text blocks mixed in.
fn body(dialect: Dialect, layout: u8, calls: &[(String, String, Value)]) -> Value {
    let items: Vec<Value> = match dialect {
        Dialect::OpenAi => calls
            .iter()
            .map(|(id, name, arguments)| {
                json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments.to_string()}})
            })
            .collect(),
        Dialect::Anthropic => calls
            .iter()
            .flat_map(|(id, name, input)| {
                [
                    json!({"type": "text", "text": format!("calling {name}")}),
                    json!({"type": "tool_use", "id": id, "name": name, "input": input}),
                ]
            })
            .collect(),
    };
    match (layout % 3, dialect) {
        (0, _) => Value::Array(items),
        (1, Dialect::OpenAi) => json!({"role": "assistant", "content": null, "tool_calls": items}),
        (_, Dialect::OpenAi) => json!({"tool_calls": items}),
        (_, Dialect::Anthropic) => json!({"role": "assistant", "content": items}),
    }
}

#[test]
fn fuzz_tool_call_bodies_round_trip_in_both_dialects() {
    let dialect = prop_oneof![Just(Dialect::OpenAi), Just(Dialect::Anthropic)];
    check(
        "dialect round trip",
        512,
        (dialect, any::<u8>(), prop::collection::vec(call(), 1..5)),
        |(dialect, layout, calls)| {
            let body = body(dialect, layout, &calls);
            // Through text, as a request body arrives.
            let body: Value = serde_json::from_str(&body.to_string())
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let (parsed_dialect, parsed) = dialect::parse(&body).map_err(TestCaseError::fail)?;
            prop_assert_eq!(parsed_dialect, dialect);
            let expected: Vec<Requested> = calls
                .iter()
                .map(|(id, name, arguments)| Requested {
                    id: id.clone(),
                    name: name.clone(),
                    arguments: arguments.to_string(),
                })
                .collect();
            prop_assert_eq!(parsed, expected);
            Ok(())
        },
    );
}

#[test]
fn fuzz_any_json_body_gives_calls_or_a_reason() {
    let items = prop::collection::vec(
        prop_oneof![
            json(3),
            (call(), any::<bool>()).prop_map(|(c, anthropic)| {
                let dialect = if anthropic {
                    Dialect::Anthropic
                } else {
                    Dialect::OpenAi
                };
                body(dialect, 0, &[c])[0].clone()
            }),
        ],
        0..4,
    );
    let bodies = prop_oneof![
        json(4),
        items.clone().prop_map(Value::Array),
        items.prop_map(|items| json!({"tool_calls": items})),
    ];
    check("dialect bodies", 1024, bodies, |body| {
        match dialect::parse(&body) {
            Ok((_, calls)) => {
                prop_assert!(!calls.is_empty());
                prop_assert!(calls.iter().all(|c| !c.id.is_empty()));
            }
            Err(message) => prop_assert!(!message.is_empty()),
        }
        Ok(())
    });
}
