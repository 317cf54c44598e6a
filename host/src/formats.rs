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
        Format::Mcp => {
            let mut tool = json!({
                "name": info.name,
                "description": info.description,
                "inputSchema": info.input_schema,
                "annotations": {
                    "readOnlyHint": info.behavior.read_only,
                    "idempotentHint": info.behavior.idempotent,
                    "openWorldHint": info.behavior.open_world,
                    "destructiveHint": info.behavior.destructive,
                }
            });
            if let Some(output) = &info.output_schema {
                tool["outputSchema"] = output.clone();
            }
            tool
        }
    }
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

    #[test]
    fn formats_parse() {
        assert_eq!("openai".parse::<Format>(), Ok(Format::OpenAi));
        assert!("yaml".parse::<Format>().is_err());
    }
}
