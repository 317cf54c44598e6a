//! Components that do not implement `toolhost:tool` but export plain
//! functions: each function is a tool with a schema derived from its WIT
//! types, values round-trip through real calls, and the same limits and
//! outcomes apply.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use toolhost::{CallOptions, Catalog, LoadError, Outcome, ToolErrorKind};
use toolhost_artifacts as artifacts;

use crate::common::{block_on, call, call_with, engine, executor, load_options, ok};

fn load(dir: &Path) -> Catalog {
    let dir = dir.to_path_buf();
    block_on(async move {
        Catalog::load_dir(&engine(), &dir, &load_options())
            .await
            .expect("the folder loads")
    })
}

#[test]
fn world_level_functions_become_tools() {
    let catalog = executor().catalog().clone();
    let add = catalog
        .tool("guest_dyn_world__add")
        .expect("add is published");
    assert_eq!(add.tool, "add");
    assert_eq!(
        add.input_schema["properties"]["a"],
        json!({"type": "integer", "minimum": i32::MIN, "maximum": i32::MAX, "x-wit-type": "s32"})
    );
    assert_eq!(add.input_schema["required"], json!(["a", "b"]));
    assert_eq!(add.output_schema.as_ref().unwrap()["type"], "integer");
    // No docs were shipped with this one: the description is the signature.
    assert_eq!(add.description, "Calls `add: func(a: s32, b: s32) -> s32`.");
    let greet = catalog.tool("guest_dyn_world__greet").unwrap();
    assert_eq!(greet.input_schema["required"], json!(["name"]));

    block_on(async {
        assert_eq!(
            ok("guest_dyn_world__add", json!({"a": 2, "b": 40})).await,
            42
        );
        assert_eq!(
            ok("guest_dyn_world__add", json!({"a": i32::MAX, "b": 1})).await,
            i32::MIN
        );
        assert_eq!(
            ok("guest_dyn_world__greet", json!({"name": "Ada"})).await,
            "Hello, Ada!"
        );
        assert_eq!(
            ok("guest_dyn_world__greet", json!({"name": "Bo", "times": 2})).await,
            "Hello, Bo! Hello, Bo!"
        );
        assert_eq!(
            ok("guest_dyn_world__divide", json!({"a": 1, "b": 4})).await,
            0.25
        );
        assert_eq!(ok("guest_dyn_world__nothing", json!({})).await, Value::Null);
        // The `err` of a `result` is a tool error carrying the error value.
        let record = call("guest_dyn_world__divide", json!({"a": 1, "b": 0})).await;
        assert_eq!(
            record.outcome,
            Outcome::ToolError {
                error: ToolErrorKind::Failed,
                message: "cannot divide 1 by zero".into()
            }
        );
    });
}

#[test]
fn arguments_that_do_not_fit_the_wit_types_are_refused_with_a_path() {
    block_on(async {
        let record = call(
            "guest_dyn_world__add",
            json!({"a": 1, "b": 2_147_483_648_i64}),
        )
        .await;
        let Outcome::InvalidInput { message } = &record.outcome else {
            panic!("{}", record.outcome)
        };
        assert!(
            message.contains("`/b`") && message.contains("2147483647"),
            "{message}"
        );
        let record = call("guest_dyn_world__add", json!({"a": 1})).await;
        assert!(
            record
                .outcome
                .to_string()
                .contains("\"b\" is a required property"),
            "{}",
            record.outcome
        );
        let record = call("guest_dyn_world__greet", json!({"name": "x", "times": 300})).await;
        assert!(
            matches!(record.outcome, Outcome::InvalidInput { .. }),
            "{}",
            record.outcome
        );
        let record = call(
            "guest_dyn_types__values_echo",
            json!({"value": {"letter": "ab"}}),
        )
        .await;
        assert!(
            matches!(record.outcome, Outcome::InvalidInput { .. }),
            "{}",
            record.outcome
        );
    });
}

#[test]
fn interface_functions_are_named_and_described_by_their_embedded_wit() {
    let catalog = executor().catalog().clone();
    let names: Vec<&str> = catalog
        .tools()
        .filter(|t| t.component == "guest_dyn_iface")
        .map(|t| t.tool.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "geometry_centroid",
            "geometry_distance",
            "text_convert",
            "text_count"
        ]
    );
    let distance = catalog.tool("guest_dyn_iface__geometry_distance").unwrap();
    assert!(
        distance
            .description
            .starts_with("The straight-line distance between two points."),
        "{}",
        distance.description
    );
    let point = &distance.input_schema["properties"]["a"];
    assert_eq!(point["description"], "A point in the plane.");
    assert_eq!(point["properties"]["y"]["description"], "The distance up.");
    let convert = catalog.tool("guest_dyn_iface__text_convert").unwrap();
    let style = &convert.input_schema["properties"]["style"];
    assert_eq!(style["enum"], json!(["upper", "lower", "title"]));
    assert!(
        style["description"]
            .as_str()
            .unwrap()
            .contains("`title`: Each Word Capitalised.")
    );

    block_on(async {
        let d = ok(
            "guest_dyn_iface__geometry_distance",
            json!({"a": {"x": 0, "y": 0}, "b": {"x": 3, "y": 4}}),
        )
        .await;
        assert_eq!(d, 5.0);
        let c = ok(
            "guest_dyn_iface__geometry_centroid",
            json!({"points": [{"x": 0, "y": 0}, {"x": 2, "y": 4}]}),
        )
        .await;
        assert_eq!(c, json!({"x": 1.0, "y": 2.0}));
        assert_eq!(
            ok("guest_dyn_iface__geometry_centroid", json!({"points": []})).await,
            Value::Null
        );
        assert_eq!(
            ok(
                "guest_dyn_iface__text_convert",
                json!({"text": "hello wORLD", "style": "title"})
            )
            .await,
            "Hello World"
        );
        assert_eq!(
            ok("guest_dyn_iface__text_count", json!({"text": "två ord"})).await,
            json!([2, 7])
        );
        let record = call(
            "guest_dyn_iface__text_convert",
            json!({"text": "x", "style": "shout"}),
        )
        .await;
        assert!(
            matches!(record.outcome, Outcome::InvalidInput { .. }),
            "{}",
            record.outcome
        );
    });
}

fn everything() -> Value {
    json!({
        "yes": true,
        "tiny": -128, "byte": 255, "short": -32768, "ushort": 65535,
        "int": -2_147_483_648_i64, "uint": 4_294_967_295_u64,
        "long": i64::MIN, "ulong": u64::MAX,
        "single": 1.5, "double": -0.1,
        "letter": "ß", "text": "tab\there \u{1F600}",
        "bytes": [0, 1, 255],
        "maybe": null,
        "maybe-maybe": {"some": null},
        "outcome": {"err": "nope"},
        "pair": [7, "seven"],
        "shape": {"rect": [2.0, 3.5]},
        "color": "blue",
        "permissions": ["read", "exec"],
        "nested": [[1, -2], [], [3]],
    })
}

#[test]
fn every_wit_type_round_trips_through_a_real_call() {
    block_on(async {
        let value = everything();
        let out = ok("guest_dyn_types__values_echo", json!({"value": value})).await;
        assert_eq!(out, value);

        let mut other = everything();
        other["maybe"] = json!("here");
        other["maybe-maybe"] = json!({"some": 9});
        other["outcome"] = json!({"ok": 3});
        other["shape"] = json!("empty");
        other["single"] = json!("NaN");
        other["double"] = json!("-Infinity");
        other["permissions"] = json!([]);
        assert_eq!(
            ok("guest_dyn_types__values_echo", json!({"value": other})).await,
            other
        );
        let mut none = everything();
        none["maybe-maybe"] = Value::Null;
        none["shape"] = json!({"circle": 1.0});
        assert_eq!(
            ok("guest_dyn_types__values_echo", json!({"value": none})).await,
            none
        );

        let area = ok(
            "guest_dyn_types__values_area",
            json!({"shape": {"rect": [2, 3]}}),
        )
        .await;
        assert_eq!(area, 6.0);
        let record = call("guest_dyn_types__values_area", json!({"shape": "empty"})).await;
        assert!(
            record
                .outcome
                .to_string()
                .contains("an empty shape has no area"),
            "{}",
            record.outcome
        );
        let missing = ok(
            "guest_dyn_types__values_missing",
            json!({"granted": ["write"]}),
        )
        .await;
        assert_eq!(missing, json!(["read", "exec"]));
    });
}

#[test]
fn the_schema_of_every_type_is_exact() {
    let catalog = executor().catalog().clone();
    let echo = catalog.tool("guest_dyn_types__values_echo").unwrap();
    let fields = &echo.input_schema["properties"]["value"]["properties"];
    assert_eq!(fields["yes"]["description"], "A yes or no.");
    assert_eq!(fields["ulong"]["maximum"], u64::MAX);
    assert_eq!(fields["letter"]["maxLength"], 1);
    assert_eq!(fields["pair"]["prefixItems"][1]["type"], "string");
    assert_eq!(fields["shape"]["oneOf"][2]["const"], "empty");
    assert_eq!(fields["shape"]["description"], "A shape to draw.");
    assert_eq!(
        fields["permissions"]["items"]["enum"],
        json!(["read", "write", "exec"])
    );
    assert_eq!(
        fields["outcome"]["oneOf"][0]["properties"]["ok"]["x-wit-type"],
        "u32"
    );
    assert_eq!(fields["maybe"]["anyOf"][0]["type"], "null");
    assert_eq!(
        echo.output_schema.as_ref().unwrap()["x-wit-type"]
            .as_str()
            .unwrap()
            .split(' ')
            .next(),
        Some("record")
    );
}

#[test]
fn the_same_limits_and_outcomes_apply() {
    block_on(async {
        let record = call_with(
            "guest_dyn_types__harm_spin",
            json!({}),
            CallOptions::default()
                .timeout(std::time::Duration::from_millis(100))
                .fuel(u64::MAX / 2),
        )
        .await;
        assert!(
            matches!(record.outcome, Outcome::Timeout { .. }),
            "{}",
            record.outcome
        );
        let record = call("guest_dyn_types__harm_spin", json!({})).await;
        assert!(
            matches!(
                record.outcome,
                Outcome::OutOfFuel { .. } | Outcome::Timeout { .. }
            ),
            "{}",
            record.outcome
        );
        let record = call_with(
            "guest_dyn_types__harm_grow",
            json!({"mb": 64}),
            CallOptions::default().memory_mb(16),
        )
        .await;
        assert!(
            matches!(record.outcome, Outcome::MemoryLimit { .. }),
            "{}",
            record.outcome
        );
        assert_eq!(
            ok("guest_dyn_types__harm_grow", json!({"mb": 2})).await,
            2 * 256 * 4096
        );
        let record = call("guest_dyn_types__harm_crash", json!({"message": "boom"})).await;
        let Outcome::Trap { message } = &record.outcome else {
            panic!("{}", record.outcome)
        };
        assert!(message.contains("boom"), "{message}");
        crate::common::host_still_serves().await;
    });
}

#[test]
fn resources_are_refused_at_load_naming_the_function() {
    let catalog = executor().catalog().clone();
    assert!(catalog.tools().all(|t| t.component != "guest_dyn_resource"));
    let refusal = catalog
        .failures()
        .iter()
        .find(|f| f.path().to_string_lossy().contains("guest_dyn_resource"))
        .expect("the resource component is refused");
    assert!(matches!(refusal, LoadError::Exports { .. }), "{refusal}");
    let text = refusal.to_string();
    assert!(
        text.contains("[constructor]counter") && text.contains("a resource"),
        "{text}"
    );
    assert!(text.contains("[method]counter.bump"), "{text}");
}

#[test]
fn docs_can_come_from_a_wit_file_beside_the_component() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(artifacts::DYN_WORLD, dir.path().join("calc2.wasm")).unwrap();
    let wit = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tools/test-guests/dyn-world/wit/world.wit");
    std::fs::copy(wit, dir.path().join("calc2.wit")).unwrap();
    let catalog = load(dir.path());
    assert!(catalog.failures().is_empty(), "{:?}", catalog.failures());
    let add = catalog.tool("calc2__add").unwrap();
    assert!(
        add.description
            .starts_with("Add two integers, wrapping on overflow."),
        "{}",
        add.description
    );

    // A WIT file that does not parse refuses the component, naming the file.
    std::fs::write(dir.path().join("calc2.wit"), "package broken").unwrap();
    let catalog = load(dir.path());
    let text = catalog.failures()[0].to_string();
    assert!(text.contains("calc2.wit"), "{text}");
}
