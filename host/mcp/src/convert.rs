//! toolhost's shapes as MCP's: a [`ToolInfo`] as a `Tool`, a [`CallRecord`]
//! as a `CallToolResult`, a guest progress event as a progress notification.

use std::sync::Arc;

use rmcp::ErrorData;
use rmcp::model::{
    CallToolResult, ContentBlock, JsonObject, ProgressNotificationParam, ProgressToken, Tool,
};

use toolhost_runtime::formats::{self, Format};
use toolhost_runtime::{CallRecord, GuestEvent, Outcome, ToolInfo};

/// `info` as an MCP tool: the runtime's one MCP rendering
/// ([`Format::Mcp`]), read as rmcp's type.
pub(super) fn tool(info: &ToolInfo) -> Tool {
    serde_json::from_value(formats::tool(info, Format::Mcp)).unwrap_or_else(|error| {
        tracing::error!(tool = %info.name, %error, "the MCP rendering of a tool did not parse");
        Tool::new(
            info.name.clone(),
            info.description.clone(),
            Arc::new(JsonObject::new()),
        )
    })
}

/// The answer to `tools/call` for a finished call: the output as structured
/// content and as JSON text, or `isError` with the outcome as JSON text (the
/// shape every face shares). Only an unknown tool is a protocol error.
pub(super) fn result(record: CallRecord) -> Result<CallToolResult, ErrorData> {
    match record.outcome {
        Outcome::Ok { output } => {
            let text = output.to_string();
            let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
            result.structured_content = Some(output);
            Ok(result)
        }
        Outcome::UnknownTool { message } => Err(ErrorData::invalid_params(message, None)),
        _ => {
            // No structured content: it would have to match the tool's output
            // schema, and a failure does not.
            let text = record.to_json().to_string();
            Ok(CallToolResult::error(vec![ContentBlock::text(text)]))
        }
    }
}

/// A guest's progress report for the client's `token`; log lines are not
/// progress (they go to tracing).
pub(super) fn progress(
    token: &ProgressToken,
    event: GuestEvent,
) -> Option<ProgressNotificationParam> {
    let GuestEvent::Progress {
        done,
        total,
        message,
    } = event
    else {
        return None;
    };
    let mut param = ProgressNotificationParam::new(token.clone(), done as f64);
    param.total = total.map(|total| total as f64);
    param.message = message;
    Some(param)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Value, json};

    use super::*;
    use toolhost_runtime::ToolErrorKind;

    fn record(outcome: Outcome) -> CallRecord {
        CallRecord::new("c1".into(), "calc".into(), outcome, Duration::ZERO)
    }

    #[test]
    fn ok_is_structured_content_and_text() {
        let result = result(record(Outcome::Ok {
            output: json!({"value": 14}),
        }))
        .unwrap();
        assert_eq!(result.structured_content, Some(json!({"value": 14})));
        assert_ne!(result.is_error, Some(true));
        let value = serde_json::to_value(&result).unwrap();
        assert_eq!(value["content"][0]["text"], r#"{"value":14}"#);
    }

    #[test]
    fn failures_are_tool_errors_and_unknown_tools_are_protocol_errors() {
        let failed = result(record(Outcome::ToolError {
            error: ToolErrorKind::Failed,
            message: "division by zero".into(),
        }))
        .unwrap();
        assert_eq!(failed.is_error, Some(true));
        assert!(failed.structured_content.is_none());
        let value = serde_json::to_value(&failed).unwrap();
        let text: Value =
            serde_json::from_str(value["content"][0]["text"].as_str().unwrap()).unwrap();
        assert_eq!(text["outcome"], "tool-error");
        assert_eq!(text["message"], "division by zero");

        let unknown = result(record(Outcome::UnknownTool {
            message: "no tool named `cacl`; did you mean `calc`?".into(),
        }))
        .unwrap_err();
        assert_eq!(unknown.code, rmcp::model::ErrorCode::INVALID_PARAMS);
        assert!(unknown.message.contains("`calc`"));
    }

    #[test]
    fn only_progress_events_become_notifications() {
        let token = ProgressToken(rmcp::model::NumberOrString::Number(7));
        let log = GuestEvent::Log {
            level: "info",
            message: "hi".into(),
        };
        assert!(progress(&token, log).is_none());
        let param = progress(
            &token,
            GuestEvent::Progress {
                done: 2,
                total: Some(4),
                message: Some("half".into()),
            },
        )
        .unwrap();
        assert_eq!((param.progress, param.total), (2.0, Some(4.0)));
        assert_eq!(param.message.as_deref(), Some("half"));
    }
}
