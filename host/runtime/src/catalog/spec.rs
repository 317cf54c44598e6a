//! Checking what a component's `describe()` returned, and the public view of
//! a tool.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use super::schema::CheckedSchema;
use crate::bindings::{self, ToolSpec};

/// What the host may assume about a tool (the WIT `behavior` flags).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Behavior {
    /// Changes nothing outside its call.
    pub read_only: bool,
    /// Repeating a call has the same effect as making it once.
    pub idempotent: bool,
    /// Talks to the world outside the host: declared by the tool, and set by
    /// the catalog for every tool whose policy grants network access.
    pub open_world: bool,
    /// May destroy or overwrite something.
    pub destructive: bool,
}

impl From<bindings::Behavior> for Behavior {
    fn from(flags: bindings::Behavior) -> Self {
        Self {
            read_only: flags.contains(bindings::Behavior::READ_ONLY),
            idempotent: flags.contains(bindings::Behavior::IDEMPOTENT),
            open_world: flags.contains(bindings::Behavior::OPEN_WORLD),
            destructive: flags.contains(bindings::Behavior::DESTRUCTIVE),
        }
    }
}

/// A loaded tool as the outside world sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ToolInfo {
    /// The public name, safe for every provider and MCP: the tool's own name
    /// when its component publishes one tool of the component's name, else
    /// `component__tool`.
    pub name: String,
    /// The component (file stem) it comes from.
    pub component: String,
    /// The name the component itself uses.
    pub tool: String,
    /// What the tool does.
    pub description: String,
    /// JSON Schema of the input (an object schema).
    pub input_schema: Value,
    /// JSON Schema of the output, if the tool declares one.
    pub output_schema: Option<Value>,
    /// What the host may assume about it.
    pub behavior: Behavior,
}

/// The separator of namespaced names; every provider accepts it.
pub const NAMESPACE_SEPARATOR: &str = "__";
const MAX_NAME: usize = 64;

/// True for 1 to 64 of `A-Z a-z 0-9 _ -`: what OpenAI, Anthropic and MCP all accept.
pub fn is_valid_name(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// True for a usable component name (a tool file's stem): a valid name
/// with no [`NAMESPACE_SEPARATOR`] in it and no `_` at its end. Its tools'
/// public names are `COMPONENT__TOOL`, and a tenant's grant `text__*`
/// means the tools of `text`; a component `text__x` or `text_` would
/// otherwise publish names that grant matches.
pub fn is_valid_component_name(name: &str) -> bool {
    is_valid_name(name) && !name.contains(NAMESPACE_SEPARATOR) && !name.ends_with('_')
}

/// The most tools one component may publish through `describe()`.
pub(crate) const MAX_TOOLS: usize = 1000;
/// The most text one tool spec may hold (name, description and schemas).
pub(crate) const MAX_SPEC_BYTES: usize = 256 << 10;
/// The most text all of a component's tool specs may hold together.
pub(crate) const MAX_DESCRIBE_BYTES: usize = 4 << 20;

/// What `describe()` may pass to the host, counted as wasmtime counts while
/// it copies (each spec its host size, each string its length): the text cap
/// plus the tool cap's worth of specs. Past it the result is refused before
/// it is copied; within it [`check_size`] names the cap that was passed.
pub(crate) fn describe_budget() -> usize {
    MAX_DESCRIBE_BYTES + MAX_TOOLS * size_of::<ToolSpec>()
}

/// The message for a `describe()` refused while it was read.
pub(crate) fn over_budget() -> String {
    format!(
        "returned more than the host reads from one component ({MAX_TOOLS} tools, \
         {} KiB of names, descriptions and schemas in all); it was refused before \
         being copied: publish fewer tools or shorter descriptions and schemas",
        MAX_DESCRIBE_BYTES >> 10
    )
}

/// The text of one spec, in bytes.
fn spec_bytes(spec: &ToolSpec) -> usize {
    spec.name.len()
        + spec.description.len()
        + spec.input_schema.len()
        + spec.output_schema.as_ref().map_or(0, String::len)
}

/// Checks what `describe()` returned against the caps on tools per
/// component, text per spec and text in all, naming each cap passed.
pub(crate) fn check_size(specs: &[ToolSpec]) -> Result<(), String> {
    let mut problems = Vec::new();
    if specs.len() > MAX_TOOLS {
        problems.push(format!(
            "returned {} tools, over the cap of {MAX_TOOLS} per component",
            specs.len()
        ));
    }
    let mut total = 0;
    let mut over = 0;
    for spec in specs {
        let bytes = spec_bytes(spec);
        total += bytes;
        if bytes > MAX_SPEC_BYTES {
            over += 1;
            if over <= 3 {
                problems.push(format!(
                    "tool {:?} is {bytes} bytes of name, description and schemas, over the cap of {} KiB per tool",
                    spec.name.chars().take(64).collect::<String>(),
                    MAX_SPEC_BYTES >> 10
                ));
            }
        }
    }
    if over > 3 {
        problems.push(format!("{} more tools are over the cap per tool", over - 3));
    }
    if total > MAX_DESCRIBE_BYTES {
        problems.push(format!(
            "returned {total} bytes of names, descriptions and schemas, over the cap of {} KiB per component",
            MAX_DESCRIBE_BYTES >> 10
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// A spec that passed every check, with its schemas compiled.
pub(crate) struct CheckedSpec {
    pub(crate) info: ToolInfo,
    pub(crate) input: Arc<CheckedSchema>,
    pub(crate) output: Option<Arc<CheckedSchema>>,
}

/// The specs of a component that passed, and the tools refused on their own
/// (a bad schema refuses its tool; the component's other tools still load).
pub(crate) struct Checked {
    pub(crate) specs: Vec<CheckedSpec>,
    /// `(tool, why)` for each tool refused.
    pub(crate) refused: Vec<(String, String)>,
}

/// Checks every spec of a component and names the public tools. All problems
/// are collected, so a tool author sees them at once. Bad names refuse the
/// component; a bad schema refuses only its tool, unless no tool is left.
pub(crate) fn check(component: &str, specs: Vec<ToolSpec>) -> Result<Checked, String> {
    let mut problems = Vec::new();
    if specs.is_empty() {
        problems.push("describe() returned no tools".to_string());
    }
    let single = specs.len() == 1 && specs[0].name == component;
    let mut seen = BTreeSet::new();
    let mut checked = Vec::new();
    let mut refused = Vec::new();
    for spec in specs {
        if !is_valid_name(&spec.name) {
            problems.push(format!(
                "tool name {:?} is not 1-64 of A-Z a-z 0-9 _ -",
                spec.name
            ));
            continue;
        }
        if !seen.insert(spec.name.clone()) {
            problems.push(format!("tool name `{}` appears twice", spec.name));
            continue;
        }
        let name = if single {
            spec.name.clone()
        } else {
            format!("{component}{NAMESPACE_SEPARATOR}{}", spec.name)
        };
        if name.len() > MAX_NAME {
            problems.push(format!("the public name `{name}` is longer than {MAX_NAME} characters; shorten the file or tool name"));
            continue;
        }
        match schemas(&spec) {
            Ok(((input_schema, input), output)) => {
                let (output_schema, output) = output.unzip();
                checked.push(CheckedSpec {
                    info: ToolInfo {
                        name,
                        component: component.to_string(),
                        tool: spec.name,
                        description: spec.description,
                        input_schema,
                        output_schema,
                        behavior: spec.behavior.into(),
                    },
                    input: Arc::new(input),
                    output: output.map(Arc::new),
                });
            }
            Err(problem) => refused.push((spec.name, problem)),
        }
    }
    if problems.is_empty() && !checked.is_empty() {
        return Ok(Checked {
            specs: checked,
            refused,
        });
    }
    problems.extend(
        refused
            .into_iter()
            .map(|(tool, problem)| format!("tool `{tool}`: {problem}")),
    );
    Err(problems.join("; "))
}

type Schema = (Value, CheckedSchema);

/// A spec's input and output schemas, parsed, measured and compiled.
fn schemas(spec: &ToolSpec) -> Result<(Schema, Option<Schema>), String> {
    let input =
        CheckedSchema::parse(&spec.input_schema).map_err(|e| format!("input schema {e}"))?;
    if input.0.get("type").and_then(Value::as_str) != Some("object") {
        return Err("input schema must have \"type\": \"object\"".into());
    }
    let output = spec
        .output_schema
        .as_deref()
        .map(CheckedSchema::parse)
        .transpose()
        .map_err(|e| format!("output schema {e}"))?;
    Ok((input, output))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, schema: &str) -> ToolSpec {
        ToolSpec {
            name: name.into(),
            description: "d".into(),
            input_schema: schema.into(),
            output_schema: None,
            behavior: bindings::Behavior::READ_ONLY,
        }
    }

    const OBJECT: &str = r#"{"type":"object","properties":{"a":{"type":"integer"}}}"#;

    #[test]
    fn names() {
        assert!(is_valid_name("text__slugify"));
        assert!(is_valid_name("a-b_9"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("bad name!"));
        assert!(!is_valid_name("dots.are.out"));
        assert!(!is_valid_name(&"x".repeat(65)));
        assert!(is_valid_component_name("guest_trivial"));
        assert!(is_valid_component_name("py-units"));
        for stolen in ["text__evil", "text_", "a__", "__a"] {
            assert!(
                is_valid_name(stolen) && !is_valid_component_name(stolen),
                "{stolen}"
            );
        }
    }

    #[test]
    fn a_lone_tool_named_like_its_component_keeps_its_name() {
        let checked = check("calc", vec![spec("calc", OBJECT)]).unwrap().specs;
        assert_eq!(checked[0].info.name, "calc");
        assert!(checked[0].info.behavior.read_only);
    }

    #[test]
    fn other_tools_are_namespaced() {
        let checked = check("text", vec![spec("slugify", OBJECT), spec("case", OBJECT)])
            .unwrap()
            .specs;
        let names: Vec<_> = checked.iter().map(|c| c.info.name.as_str()).collect();
        assert_eq!(names, ["text__slugify", "text__case"]);
        let checked = check("calc", vec![spec("eval", OBJECT)]).unwrap().specs;
        assert_eq!(checked[0].info.name, "calc__eval");
    }

    #[test]
    fn every_problem_is_reported() {
        let err = check(
            "bad",
            vec![
                spec("bad name!", OBJECT),
                spec("x", OBJECT),
                spec("x", OBJECT),
                spec("y", "{not json"),
                spec("z", r#"{"type":"string"}"#),
            ],
        )
        .err()
        .unwrap();
        assert!(err.contains("bad name!"), "{err}");
        assert!(err.contains("`x` appears twice"), "{err}");
        assert!(err.contains("`y`: input schema is not JSON"), "{err}");
        assert!(err.contains("`z`: input schema must have"), "{err}");
        assert!(check("empty", vec![]).is_err());
    }

    #[test]
    fn the_size_caps_are_each_named() {
        assert!(check_size(&[spec("a", OBJECT)]).is_ok());
        let many: Vec<_> = (0..=MAX_TOOLS)
            .map(|i| spec(&format!("t{i}"), OBJECT))
            .collect();
        let err = check_size(&many).unwrap_err();
        assert!(err.contains("1001 tools, over the cap of 1000"), "{err}");
        let mut big = spec("big", OBJECT);
        big.description = "d".repeat(MAX_SPEC_BYTES);
        let err = check_size(&[big.clone()]).unwrap_err();
        assert!(err.contains("\"big\" is"), "{err}");
        assert!(err.contains("cap of 256 KiB per tool"), "{err}");
        big.description = "d".repeat(MAX_SPEC_BYTES / 2);
        let err = check_size(&vec![big; 40]).unwrap_err();
        assert!(err.contains("cap of 4096 KiB per component"), "{err}");
        assert!(!err.contains("per tool"), "{err}");
    }

    #[test]
    fn an_invalid_schema_is_refused() {
        let err = check(
            "s",
            vec![spec(
                "s",
                r#"{"type":"object","properties":{"a":{"type":12}}}"#,
            )],
        )
        .err()
        .unwrap();
        assert!(err.contains("not a valid JSON Schema"), "{err}");
    }

    #[test]
    fn a_bad_schema_refuses_its_tool_and_the_others_load() {
        let looped = r##"{"type":"object","anyOf":[{"$ref":"#"}]}"##;
        let checked = check("c", vec![spec("good", OBJECT), spec("bad", looped)]).unwrap();
        let names: Vec<_> = checked.specs.iter().map(|c| c.info.name.as_str()).collect();
        assert_eq!(names, ["c__good"]);
        assert_eq!(checked.refused.len(), 1);
        assert_eq!(checked.refused[0].0, "bad");
        assert!(
            checked.refused[0].1.contains("loops back"),
            "{:?}",
            checked.refused
        );
    }
}
