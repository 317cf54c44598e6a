use serde_json::{Value, json};

use super::*;

/// `levels` of `anyOf` whose two branches both refer to the next level:
/// a few hundred bytes per level, 2^levels checks per value.
pub(in crate::catalog) fn bomb(levels: usize) -> Value {
    let mut defs = Map::new();
    for level in 0..levels {
        let next = format!("#/$defs/l{}", level + 1);
        defs.insert(
            format!("l{level}"),
            json!({"anyOf": [{"$ref": next}, {"$ref": next, "minLength": 1}]}),
        );
    }
    defs.insert(format!("l{levels}"), json!({"type": "integer"}));
    json!({
        "type": "object",
        "properties": {"x": {"$ref": "#/$defs/l0"}},
        "$defs": defs,
    })
}

fn refused(schema: Value) -> SchemaError {
    CheckedSchema::from_value(&schema).expect_err("refused")
}

#[test]
fn the_ref_any_of_bomb_is_refused() {
    assert_eq!(refused(bomb(22)), SchemaError::TooMuchWork);
    assert_eq!(refused(bomb(40)), SchemaError::TooMuchWork);
    // A few levels are fine: sharing is not wrong in itself.
    let cost = measure(&bomb(4)).unwrap();
    assert!(cost.work < 100, "{cost:?}");
}

#[test]
fn recursion_that_multiplies_at_each_level_is_refused() {
    let schema = json!({
        "type": "object",
        "properties": {"x": {"$ref": "#/$defs/node"}},
        "$defs": {"node": {"type": "array", "items": {"anyOf": [
            {"$ref": "#/$defs/node"},
            {"$ref": "#/$defs/node", "maxItems": 3},
        ]}}},
    });
    assert_eq!(refused(schema), SchemaError::TooMuchWork);
}

#[test]
fn schemars_style_schemas_load() {
    // A recursive tree, optional fields, enums, shared definitions.
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Input",
        "type": "object",
        "properties": {
            "tree": {"$ref": "#/$defs/Node"},
            "mode": {"anyOf": [{"$ref": "#/$defs/Mode"}, {"type": "null"}]},
            "tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]+$"}},
        },
        "required": ["tree"],
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
                    "mode": {"oneOf": [{"$ref": "#/$defs/Mode"}, {"type": "null"}]},
                },
                "required": ["name"],
            },
            "Mode": {"type": "string", "enum": ["a", "b", "c"]},
        },
    });
    let checked = CheckedSchema::from_value(&schema).unwrap();
    assert!(checked.validator.is_valid(&json!({
        "tree": {"name": "root", "children": [{"name": "leaf", "mode": "a"}]},
        "tags": ["x"],
    })));
    assert!(
        !checked
            .validator
            .is_valid(&json!({"tree": {"children": []}}))
    );
    assert!(checked.work_per_byte() < 200, "{checked:?}");
}

#[test]
fn wide_objects_cost_one_property_per_value() {
    let mut defs = Map::new();
    for level in 0..6 {
        let next = json!({"$ref": format!("#/$defs/l{}", level + 1)});
        let properties: Map<String, Value> =
            (0..20).map(|i| (format!("f{i}"), next.clone())).collect();
        defs.insert(
            format!("l{level}"),
            json!({"type": "object", "properties": properties}),
        );
    }
    defs.insert("l6".into(), json!({"type": "integer"}));
    let schema =
        json!({"type": "object", "properties": {"x": {"$ref": "#/$defs/l0"}}, "$defs": defs});
    // 20^6 paths in all, but one value meets one property per level.
    let cost = measure(&schema).unwrap();
    assert!(cost.work < 200, "{cost:?}");
}

#[test]
fn references_that_loop_in_place_are_refused() {
    let looped = json!({"type": "object", "anyOf": [{"$ref": "#"}]});
    assert!(matches!(refused(looped), SchemaError::Cycle { .. }));
    let pair = json!({"type": "object", "$defs": {
        "a": {"$ref": "#/$defs/b"}, "b": {"allOf": [{"$ref": "#/$defs/a"}]},
    }, "properties": {"x": {"$ref": "#/$defs/a"}}});
    assert!(matches!(refused(pair), SchemaError::Cycle { .. }));
}

#[test]
fn only_local_static_references_are_followed() {
    let cases = [
        json!({"type": "object", "properties": {"x": {"$ref": "https://example.com/s.json"}}}),
        json!({"type": "object", "properties": {"x": {"$ref": "#/$defs/missing"}}}),
        json!({"type": "object", "properties": {"x": {"$dynamicRef": "#meta"}}}),
        json!({"type": "object", "properties": {"x": {"$id": "inner", "type": "string"}}}),
    ];
    for schema in cases {
        let error = refused(schema.clone());
        assert!(
            matches!(error, SchemaError::Reference { .. }),
            "{schema}: {error}"
        );
    }
    // Anchors and escaped pointers resolve.
    let schema = json!({"type": "object", "properties": {
        "a": {"$ref": "#name"}, "b": {"$ref": "#/$defs/a~1b%20c"},
    }, "$defs": {"n": {"$anchor": "name", "type": "string"}, "a/b c": {"type": "integer"}}});
    let checked = CheckedSchema::from_value(&schema).unwrap();
    assert!(checked.validator.is_valid(&json!({"a": "x", "b": 1})));
    assert!(!checked.validator.is_valid(&json!({"a": 1})));
}

/// References read as the validator reads them, draft by draft. Each of
/// these loops back to the root in place under its draft (the validator
/// would recurse until the stack overflowed and the host aborted), while an
/// anchor the draft does not honour made the loop look like a harmless
/// jump to `c`.
#[test]
fn anchors_are_read_as_the_schema_s_draft_reads_them() {
    let loops = [
        json!({"$schema": "http://json-schema.org/draft-07/schema#", "$id": "#x",
               "type": "object", "definitions": {"c": {"$anchor": "x"}},
               "anyOf": [{"$ref": "#x"}]}),
        json!({"$schema": "http://json-schema.org/draft-06/schema#", "$id": "#x",
               "type": "object", "anyOf": [{"$ref": "#x"}]}),
        json!({"$schema": "http://json-schema.org/draft-04/schema#", "id": "#x",
               "type": "object", "definitions": {"c": {"$anchor": "x"}},
               "anyOf": [{"$ref": "#x"}]}),
        json!({"$schema": "http://json-schema.org/draft-04/schema#", "type": "object",
               "definitions": {"c": {"id": "#x", "anyOf": [{"$ref": "#x"}]}},
               "anyOf": [{"$ref": "#/definitions/c"}]}),
    ];
    for schema in loops {
        assert!(
            matches!(
                refused(schema.clone()),
                SchemaError::Reference { .. } | SchemaError::Cycle { .. }
            ),
            "{schema}"
        );
    }
    // `$anchor` is no anchor before draft 2019-09: a reference to it points
    // at nothing there, and at its schema since.
    let anchored = |draft: &str| {
        json!({"$schema": draft, "type": "object",
               "$defs": {"c": {"$anchor": "x", "type": "string"}},
               "properties": {"a": {"$ref": "#x"}}})
    };
    assert!(matches!(
        refused(anchored("http://json-schema.org/draft-07/schema#")),
        SchemaError::Reference { .. }
    ));
    CheckedSchema::from_value(&anchored("https://json-schema.org/draft/2020-12/schema")).unwrap();
    // A root identity without a fragment (or with an empty one) is fine.
    for id in [
        "http://example.com/tool.json",
        "http://example.com/tool.json#",
    ] {
        let schema = json!({"$schema": "http://json-schema.org/draft-07/schema#", "$id": id,
                            "type": "object", "properties": {"a": {"type": "string"}}});
        CheckedSchema::from_value(&schema).unwrap();
    }
}

#[test]
fn size_and_nesting_are_capped() {
    let long = format!(
        r#"{{"type":"object","description":"{}"}}"#,
        "x".repeat(MAX_SCHEMA_BYTES)
    );
    assert!(matches!(
        CheckedSchema::parse(&long),
        Err(SchemaError::TooLarge { .. })
    ));
    let mut deep = json!({"type": "string"});
    for _ in 0..=MAX_NESTING {
        deep = json!({"not": deep});
    }
    assert!(matches!(refused(deep), SchemaError::TooDeep { .. }));
}

#[test]
fn patterns_use_the_linear_engine() {
    // Look-around needs backtracking: refused at load, not run with a budget.
    let schema = json!({"type": "object", "properties": {"s": {"type": "string", "pattern": "^(?=(a+)+b)"}}});
    let error = refused(schema);
    assert!(matches!(error, SchemaError::Invalid(_)), "{error}");
    // The classic catastrophic pattern is plain regex, matched in linear time.
    let schema =
        json!({"type": "object", "properties": {"s": {"type": "string", "pattern": "^(a+)+$"}}});
    let checked = CheckedSchema::from_value(&schema).unwrap();
    let hostile = format!("{}!", "a".repeat(100_000));
    assert!(!checked.validator.is_valid(&json!({"s": hostile})));
}

#[test]
fn refusals_name_the_limit() {
    let text = SchemaError::TooMuchWork.to_string();
    assert!(text.contains(&MAX_WORK_PER_VALUE.to_string()), "{text}");
    let text = SchemaError::TooLarge { bytes: 1 << 20 }.to_string();
    assert!(text.contains(&MAX_SCHEMA_BYTES.to_string()), "{text}");
}

/// `levels` of `allOf` each referring to the next: two schemas per level.
fn chain(levels: usize) -> Value {
    let mut defs = Map::new();
    for level in 0..levels {
        let next = format!("#/$defs/l{}", level + 1);
        defs.insert(format!("l{level}"), json!({"allOf": [{"$ref": next}]}));
    }
    defs.insert(format!("l{levels}"), json!({"type": "string"}));
    json!({"type": "object", "properties": {"x": {"$ref": "#/$defs/l0"}}, "$defs": defs})
}

#[test]
fn the_deepest_accepted_schemas_fit_a_small_thread_stack() {
    let deepest = (1..MAX_FRAMES as usize)
        .rev()
        .find(|&levels| measure(&chain(levels)).is_ok())
        .unwrap();
    assert!(matches!(
        refused(chain(deepest + 1)),
        SchemaError::TooManyFrames { .. }
    ));
    let recursive = json!({"type": "object", "properties": {"x": {"$ref": "#/$defs/node"}},
        "$defs": {"node": {"type": "array", "items": {"allOf": [{"$ref": "#/$defs/node"}]}}}});
    let mut nested = json!("leaf");
    for _ in 0..127 {
        nested = json!([nested]);
    }
    let cases = [
        (chain(deepest), json!({"x": 1})),
        (recursive, json!({"x": nested})),
    ];
    // 2 MiB: the stack of tokio's worker and blocking threads.
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            for (schema, input) in cases {
                let checked = CheckedSchema::from_value(&schema).unwrap();
                assert!(!checked.validator.is_valid(&input));
                assert!(checked.validator.iter_errors(&input).count() > 0);
            }
        })
        .unwrap()
        .join()
        .unwrap();
}

/// The process's peak resident memory in KiB, after resetting it when `reset`.
fn peak_rss_kib(reset: bool) -> Option<u64> {
    if reset {
        std::fs::write("/proc/self/clear_refs", "5").ok()?;
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Long keys on a deep path, then thousands of schemas at its end: a JSON
/// pointer per schema would be ~125 KB each, gigabytes in all.
fn long_path_schema() -> Value {
    let mut leaves = Map::new();
    let mut n = 0;
    while leaves.len() * 10 < 120_000 {
        leaves.insert(format!("{n}"), json!({}));
        n += 1;
    }
    let mut schema = json!({ "properties": leaves });
    let key = "k".repeat(2_000);
    for _ in 0..60 {
        schema = json!({ "properties": { key.clone(): schema } });
    }
    schema
}

#[test]
fn measuring_memory_follows_the_schema_size_not_its_paths() {
    let schema = long_path_schema();
    let text = schema.to_string();
    assert!(text.len() <= MAX_SCHEMA_BYTES, "{}", text.len());
    let Some(before) = peak_rss_kib(true) else {
        eprintln!("no /proc/self/clear_refs here; memory not checked");
        return;
    };
    measure(&schema).unwrap();
    let after = peak_rss_kib(false).unwrap();
    // The schema is 250 KB; measuring it may take a few times that, not gigabytes.
    assert!(
        after.saturating_sub(before) < 256 << 10,
        "measuring a {} byte schema raised the peak RSS by {} MiB",
        text.len(),
        after.saturating_sub(before) >> 10
    );
}
