//! The catalog in the shapes models and MCP clients expect.

use serde_json::{Map, Value, json};

use crate::ToolInfo;

/// A tool list format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// toolhost's own shape: everything [`ToolInfo`] holds.
    Json,
    /// OpenAI Chat Completions `tools` entries (`type: function`).
    OpenAi,
    /// Anthropic Messages `tools` entries.
    Anthropic,
    /// MCP `tools/list` entries, with annotations from the behaviour flags.
    Mcp,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "json" => Ok(Self::Json),
            "openai" => Ok(Self::OpenAi),
            "anthropic" => Ok(Self::Anthropic),
            "mcp" => Ok(Self::Mcp),
            other => Err(format!(
                "unknown format `{other}`; use json, openai, anthropic or mcp"
            )),
        }
    }
}

/// One tool in `format`.
pub fn tool(info: &ToolInfo, format: Format) -> Value {
    match format {
        Format::Json => serde_json::to_value(info).unwrap_or(Value::Null),
        Format::OpenAi => json!({
            "type": "function",
            "function": {
                "name": info.name,
                "description": info.description,
                "parameters": model_schema(&info.input_schema),
            }
        }),
        Format::Anthropic => json!({
            "name": info.name,
            "description": info.description,
            "input_schema": model_schema(&info.input_schema),
        }),
        Format::Mcp => mcp(info),
    }
}

/// The one MCP rendering of a tool (`tools/list` and `?format=mcp` alike):
/// annotations from the behaviour flags (a read-only tool is never
/// destructive; a tool granted the network is open-world, see
/// [`Behavior`](crate::Behavior)), the input schema as an object, and the
/// output schema only when it describes an object, as MCP requires (the
/// output still travels as text otherwise).
fn mcp(info: &ToolInfo) -> Value {
    let behavior = info.behavior;
    let object = |schema: &Value| Value::Object(schema.as_object().cloned().unwrap_or_default());
    let mut tool = json!({
        "name": info.name,
        "description": info.description,
        "inputSchema": object(&info.input_schema),
        "annotations": {
            "readOnlyHint": behavior.read_only,
            "destructiveHint": behavior.destructive && !behavior.read_only,
            "idempotentHint": behavior.idempotent,
            "openWorldHint": behavior.open_world,
        }
    });
    if let Some(output) = info
        .output_schema
        .as_ref()
        .filter(|schema| schema.get("type").and_then(Value::as_str) == Some("object"))
    {
        tool["outputSchema"] = object(output);
    }
    tool
}

/// Every tool in `format`, as a JSON array.
pub fn tools<'a>(infos: impl IntoIterator<Item = &'a ToolInfo>, format: Format) -> Value {
    Value::Array(infos.into_iter().map(|info| tool(info, format)).collect())
}

/// The input schema without the keys providers reject or ignore (`$schema`,
/// the root `title`).
pub fn model_schema(schema: &Value) -> Value {
    let Some(object) = schema.as_object() else {
        return schema.clone();
    };
    let trimmed: Map<String, Value> = object
        .iter()
        .filter(|(key, _)| !matches!(key.as_str(), "$schema" | "title"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Value::Object(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Behavior;

    fn info() -> ToolInfo {
        ToolInfo {
            name: "text__slugify".into(),
            component: "text".into(),
            tool: "slugify".into(),
            description: "Make a slug.".into(),
            input_schema: json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "Slugify", "type": "object"}),
            output_schema: Some(json!({"type": "object"})),
            behavior: Behavior {
                read_only: true,
                idempotent: true,
                ..Behavior::default()
            },
        }
    }

    #[test]
    fn openai_and_anthropic_shapes() {
        let openai = tool(&info(), Format::OpenAi);
        assert_eq!(openai["type"], "function");
        assert_eq!(openai["function"]["name"], "text__slugify");
        assert_eq!(openai["function"]["parameters"], json!({"type": "object"}));
        let anthropic = tool(&info(), Format::Anthropic);
        assert_eq!(anthropic["input_schema"], json!({"type": "object"}));
    }

    #[test]
    fn mcp_has_annotations_and_output_schema() {
        let mcp = tool(&info(), Format::Mcp);
        assert_eq!(mcp["annotations"]["readOnlyHint"], true);
        assert_eq!(mcp["annotations"]["destructiveHint"], false);
        assert_eq!(mcp["outputSchema"], json!({"type": "object"}));
    }

    fn with(behavior: Behavior, output_schema: Option<Value>) -> ToolInfo {
        ToolInfo {
            input_schema: json!({"type": "object", "properties": {"text": {"type": "string"}}}),
            output_schema,
            behavior,
            ..info()
        }
    }

    #[test]
    fn mcp_annotations_follow_the_flags() {
        let pure = Behavior {
            read_only: true,
            idempotent: true,
            destructive: true,
            ..Behavior::default()
        };
        let value = tool(&with(pure, Some(json!({"type": "object"}))), Format::Mcp);
        assert_eq!(value["name"], "text__slugify");
        assert_eq!(value["inputSchema"]["properties"]["text"]["type"], "string");
        assert_eq!(value["outputSchema"], json!({"type": "object"}));
        let hints = &value["annotations"];
        assert_eq!(hints["readOnlyHint"], true);
        assert_eq!(hints["idempotentHint"], true);
        assert_eq!(
            hints["destructiveHint"], false,
            "read-only destroys nothing"
        );
        assert_eq!(hints["openWorldHint"], false);

        let writer = Behavior {
            destructive: true,
            open_world: true,
            ..Behavior::default()
        };
        let value = tool(&with(writer, None), Format::Mcp);
        assert_eq!(value["annotations"]["destructiveHint"], true);
        assert_eq!(value["annotations"]["openWorldHint"], true);
        assert!(value.get("outputSchema").is_none());
    }

    #[test]
    fn a_non_object_output_schema_is_left_out_of_mcp() {
        let value = tool(
            &with(Behavior::default(), Some(json!({"type": "number"}))),
            Format::Mcp,
        );
        assert!(value.get("outputSchema").is_none());
    }

    #[test]
    fn fuzz_mcp_tools_advertise_object_schemas_and_consistent_hints() {
        use proptest::prelude::*;
        use toolhost_fuzz::{check, json};
        let output = prop::option::of(prop_oneof![
            json(3),
            json(2).prop_map(|value| {
                let mut map = value.as_object().cloned().unwrap_or_default();
                map.insert("type".into(), json!("object"));
                Value::Object(map)
            }),
        ]);
        check(
            "mcp tools",
            512,
            ("\\PC{1,12}", json(3), output, any::<[bool; 4]>()),
            |(name, input, output, flags)| {
                let info = ToolInfo {
                    name,
                    input_schema: input,
                    output_schema: output,
                    behavior: Behavior {
                        read_only: flags[0],
                        idempotent: flags[1],
                        open_world: flags[2],
                        destructive: flags[3],
                    },
                    ..info()
                };
                let value = tool(&info, Format::Mcp);
                prop_assert_eq!(&value["name"], &json!(info.name));
                prop_assert!(value["inputSchema"].is_object());
                let object_output = info
                    .output_schema
                    .as_ref()
                    .is_some_and(|s| s["type"] == "object");
                prop_assert_eq!(value.get("outputSchema").is_some(), object_output);
                let hints = &value["annotations"];
                prop_assert_eq!(&hints["readOnlyHint"], &json!(flags[0]));
                prop_assert_eq!(&hints["destructiveHint"], &json!(flags[3] && !flags[0]));
                prop_assert_eq!(&hints["openWorldHint"], &json!(flags[2]));
                Ok(())
            },
        );
    }

    #[test]
    fn formats_parse() {
        assert_eq!("openai".parse::<Format>(), Ok(Format::OpenAi));
        assert!("yaml".parse::<Format>().is_err());
    }
}
