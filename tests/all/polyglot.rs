//! The tools written in Python (`tools/py-units`) and JavaScript
//! (`tools/js-markdown`), called through the executor with real inputs.
//! Their components are 10-20 MB, so they get their own catalog, loaded once.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use serde_json::{Value, json};
use toolhost::{CallOptions, CallRecord, Catalog, Executor, Outcome, ToolErrorKind};
use toolhost_artifacts as artifacts;

use crate::common::{block_on, engine, load_options};

fn executor() -> Arc<Executor> {
    static EXECUTOR: OnceLock<Arc<Executor>> = OnceLock::new();
    EXECUTOR
        .get_or_init(|| {
            let paths = vec![
                PathBuf::from(artifacts::UNITS),
                PathBuf::from(artifacts::MARKDOWN),
            ];
            let catalog = block_on(async move {
                Catalog::load_files(&engine(), &paths, &load_options(), &|_| {})
                    .await
                    .expect("load")
            });
            assert!(catalog.failures().is_empty(), "{:?}", catalog.failures());
            Arc::new(Executor::new(Arc::new(catalog)))
        })
        .clone()
}

fn call(tool: &str, input: Value) -> CallRecord {
    let executor = executor();
    let tool = tool.to_string();
    block_on(async move {
        executor
            .call_value(&tool, &input, CallOptions::default())
            .await
    })
}

fn ok(tool: &str, input: Value) -> Value {
    let record = call(tool, input);
    match record.outcome.output() {
        Some(output) => output.clone(),
        None => panic!("{tool} failed: {}", record.outcome),
    }
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64()
        .is_some_and(|a| (a - b).abs() <= 1e-9 * b.abs().max(1.0))
}

#[test]
fn both_languages_publish_their_tools_with_schemas() {
    let catalog = executor().catalog();
    let names: Vec<&str> = catalog.tools().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "markdown__links",
            "markdown__outline",
            "markdown__stats",
            "markdown__to_text",
            "units__convert",
            "units__stats"
        ]
    );
    let convert = catalog.tool("units__convert").unwrap();
    assert_eq!(
        convert.input_schema["required"],
        json!(["value", "from", "to"])
    );
    assert!(convert.behavior.read_only && convert.behavior.idempotent);
    assert!(
        catalog
            .tool("markdown__to_text")
            .unwrap()
            .output_schema
            .is_some()
    );
}

#[test]
fn python_converts_units_with_dimensions() {
    let out = ok(
        "units__convert",
        json!({"value": 100, "from": "km/h", "to": "mph"}),
    );
    assert!(close(&out["value"], 62.137_119_223_733_4), "{out}");
    assert_eq!(out["dimension"], "m*s^-1");
    let out = ok(
        "units__convert",
        json!({"value": 212, "from": "degF", "to": "degC"}),
    );
    assert!(close(&out["value"], 100.0), "{out}");
    let out = ok(
        "units__convert",
        json!({"value": 1, "from": "GiB", "to": "MB"}),
    );
    assert!(close(&out["value"], 1_073.741_824), "{out}");
    let out = ok(
        "units__convert",
        json!({"value": 9.81, "from": "kg*m/s^2", "to": "N"}),
    );
    assert!(close(&out["value"], 9.81), "{out}");

    let record = call(
        "units__convert",
        json!({"value": 1, "from": "m", "to": "s"}),
    );
    match &record.outcome {
        Outcome::ToolError { error, message } => {
            assert_eq!(*error, ToolErrorKind::InvalidInput);
            assert!(message.contains("does not convert"), "{message}");
        }
        other => panic!("expected a tool error, got {other}"),
    }
    let record = call(
        "units__convert",
        json!({"value": -500, "from": "degC", "to": "K"}),
    );
    assert!(
        record.outcome.to_string().contains("below absolute zero"),
        "{}",
        record.outcome
    );
    // The schema is checked before any Python runs.
    let record = call(
        "units__convert",
        json!({"value": "ten", "from": "m", "to": "ft"}),
    );
    assert!(
        matches!(record.outcome, Outcome::InvalidInput { .. }),
        "{}",
        record.outcome
    );
}

#[test]
fn python_computes_statistics_and_a_line() {
    let out = ok(
        "units__stats",
        json!({"data": [1, 2, 2, 3, 4], "y": [2, 4, 4, 6, 8], "quantiles": [0.9]}),
    );
    assert_eq!(out["count"], 5);
    assert!(close(&out["mean"], 2.4));
    assert!(close(&out["median"], 2.0));
    assert_eq!(out["modes"], json!([2.0]));
    assert!(close(&out["stdev_sample"], 1.140_175_425_099_138));
    assert!(close(&out["quantiles"]["0.9"], 3.6));
    assert!(close(&out["regression"]["slope"], 2.0));
    assert!(close(&out["regression"]["r"], 1.0));
    let record = call("units__stats", json!({"data": [1, 1], "y": [1, 2]}));
    assert!(
        record.outcome.to_string().contains("slope is undefined"),
        "{}",
        record.outcome
    );
}

const DOC: &str = "# Guide\n\nRead the [docs](https://example.org/docs) *first*.\n\n## Install\n\n- run `make`\n- done\n\n## Install\n";

#[test]
fn javascript_turns_markdown_into_text_outlines_and_links() {
    let out = ok("markdown__to_text", json!({"markdown": DOC}));
    assert_eq!(
        out["text"],
        "Guide\n\nRead the docs first.\n\nInstall\n\n- run make\n- done\n\nInstall"
    );
    let out = ok(
        "markdown__to_text",
        json!({"markdown": DOC, "show_urls": true}),
    );
    assert!(
        out["text"]
            .as_str()
            .unwrap()
            .contains("docs (https://example.org/docs)")
    );

    let out = ok("markdown__outline", json!({"markdown": DOC}));
    let anchors: Vec<&str> = out["headings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["anchor"].as_str().unwrap())
        .collect();
    assert_eq!(anchors, ["guide", "install", "install-1"]);
    assert_eq!(out["headings"][1]["line"], 5);

    let out = ok("markdown__links", json!({"markdown": DOC}));
    assert_eq!(out["links"][0]["url"], "https://example.org/docs");
    assert_eq!(out["links"][0]["line"], 3);

    let out = ok("markdown__stats", json!({"markdown": DOC}));
    assert_eq!(out["words"], 10);

    let record = call(
        "markdown__outline",
        json!({"markdown": DOC, "max_level": 9}),
    );
    assert!(
        matches!(record.outcome, Outcome::InvalidInput { .. }),
        "{}",
        record.outcome
    );
}

#[test]
fn the_same_limits_hold_for_python_and_javascript() {
    let executor = executor();
    let big = "word ".repeat(20_000);
    let record = block_on(async move {
        executor
            .call_value(
                "markdown__stats",
                &json!({"markdown": big}),
                CallOptions::default().fuel(10_000),
            )
            .await
    });
    assert!(
        matches!(record.outcome, Outcome::OutOfFuel { .. }),
        "{}",
        record.outcome
    );
    let executor = crate::polyglot::executor();
    let record = block_on(async move {
        executor
            .call_value(
                "units__stats",
                &json!({"data": [1, 2, 3]}),
                CallOptions::default().memory_mb(1),
            )
            .await
    });
    // The Python interpreter's heap alone is over 1 MiB.
    assert!(
        matches!(
            record.outcome,
            Outcome::MemoryLimit { .. } | Outcome::Trap { .. }
        ),
        "{}",
        record.outcome
    );
}

/// Runs `program args` in `tools/DIR` and fails with its output if it fails.
fn native_tests(dir: &str, program: &str, args: &[&str]) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tools")
        .join(dir);
    crate::common::run_in(&dir, program, args, &[]);
}

#[test]
fn the_python_tool_logic_passes_its_own_tests_natively() {
    native_tests("py-units", "python3", &["-m", "unittest", "--quiet"]);
}

#[test]
fn the_javascript_tool_logic_passes_its_own_tests_natively() {
    native_tests("js-markdown", "node", &["--test"]);
}
