//! `toolhost list`.

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde_json::Value;
use toolhost::ToolInfo;
use toolhost::formats::{self, Format};

use super::ToolsArgs;

#[derive(Debug, Args)]
pub(super) struct ListArgs {
    #[command(flatten)]
    tools: ToolsArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    format: ListFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ListFormat {
    /// A table for people.
    Table,
    /// toolhost's own JSON: names, schemas, behaviour.
    Json,
    /// OpenAI `tools` entries.
    Openai,
    /// Anthropic `tools` entries.
    Anthropic,
    /// MCP `tools/list` entries.
    Mcp,
}

pub(super) async fn run(args: ListArgs) -> anyhow::Result<ExitCode> {
    let quiet = !matches!(args.format, ListFormat::Table);
    let catalog = args.tools.load(quiet).await?;
    let format = match args.format {
        ListFormat::Table => {
            print_table(catalog.tools());
            let stats = catalog.stats();
            eprintln!(
                "{} tools from {} components ({} from the compile cache, {} compiled, {} refused)",
                catalog.tools().count(),
                stats.loaded,
                stats.cache_hits,
                stats.compiled,
                stats.failed
            );
            return Ok(ExitCode::SUCCESS);
        }
        ListFormat::Json => Format::Json,
        ListFormat::Openai => Format::OpenAi,
        ListFormat::Anthropic => Format::Anthropic,
        ListFormat::Mcp => Format::Mcp,
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&formats::tools(catalog.tools(), format))?
    );
    Ok(ExitCode::SUCCESS)
}

fn print_table<'a>(tools: impl Iterator<Item = &'a ToolInfo>) {
    let tools: Vec<&ToolInfo> = tools.collect();
    let width = tools.iter().map(|t| t.name.len()).max().unwrap_or(4).max(4);
    println!("{:width$}  {:5}  DESCRIPTION / INPUT", "TOOL", "KIND");
    for tool in tools {
        let kind = match (tool.behavior.read_only, tool.behavior.idempotent) {
            (true, true) => "pure",
            (true, false) => "read",
            _ => "write",
        };
        let description = printable(tool.description.lines().next().unwrap_or_default());
        println!("{:width$}  {kind:5}  {description}", tool.name);
        println!(
            "{:width$}  {:5}  input: {}",
            "",
            "",
            printable(&summarize(&tool.input_schema))
        );
    }
}

/// `text` with every control character escaped (`\u{1b}`): a tool's
/// description and schema are its author's text, and an escape sequence in
/// them must not reach the operator's terminal as one.
fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// `name*: type, other: type` from an object schema; `*` marks required.
fn summarize(schema: &Value) -> String {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return "{}".into();
    };
    properties
        .iter()
        .map(|(name, property)| {
            let star = if required.contains(&name.as_str()) {
                "*"
            } else {
                ""
            };
            format!("{name}{star}: {}", type_of(property))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn type_of(schema: &Value) -> String {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join("|");
    }
    match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("|"),
        _ if schema.get("oneOf").is_some() || schema.get("anyOf").is_some() => {
            "one of several".into()
        }
        _ => "any".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An escape sequence that retitles the window, then one that clears
    /// the screen, as a tool's describe() may write them: shown escaped.
    #[test]
    fn control_characters_are_shown_escaped() {
        let text = "Add \u{1b}]0;owned\u{7} two\u{1b}[2J integers\r\n\u{9b}";
        let shown = printable(text);
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert_eq!(
            shown,
            "Add \\u{1b}]0;owned\\u{7} two\\u{1b}[2J integers\\u{d}\\u{a}\\u{9b}"
        );
        assert_eq!(printable("plain é text"), "plain é text");
    }
}
