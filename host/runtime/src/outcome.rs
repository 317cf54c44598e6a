//! The one shape every call ends in, shared by the CLI, the HTTP API, events
//! and MCP.

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

/// How one call ended. Exactly one per call; never a panic.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Outcome {
    /// The tool returned its output.
    Ok {
        /// The tool's output.
        output: Value,
    },
    /// The tool returned an expected error.
    ToolError {
        /// Which kind of error the tool reported.
        error: ToolErrorKind,
        /// The tool's message.
        message: String,
    },
    /// The input was not a JSON object matching the tool's schema; no instance was made.
    InvalidInput {
        /// What was wrong and where.
        message: String,
    },
    /// The call ran past its deadline and was stopped.
    Timeout {
        /// What happened.
        message: String,
    },
    /// The call burned its whole fuel budget and was stopped.
    OutOfFuel {
        /// What happened.
        message: String,
    },
    /// The guest tried to grow its memory past the cap.
    MemoryLimit {
        /// What happened.
        message: String,
    },
    /// The output was larger than the policy allows.
    OutputTooLarge {
        /// What happened.
        message: String,
    },
    /// The guest trapped (panic, `unreachable`, stack overflow, …) or broke the contract.
    Trap {
        /// What happened, with the guest's panic message when there was one.
        message: String,
    },
    /// The call was cancelled before it finished.
    Cancelled {
        /// What happened.
        message: String,
    },
    /// A rate limit or concurrency cap refused the call.
    RateLimited {
        /// What happened.
        message: String,
        /// How long until a permit is likely free, in milliseconds.
        retry_after_ms: u64,
    },
    /// No tool of that name is loaded.
    UnknownTool {
        /// What was asked for, and the closest names.
        message: String,
    },
    /// A plan step that did not run because a step it depends on failed.
    Skipped {
        /// Which dependency failed, and how.
        message: String,
    },
}

/// The kind a tool gave its error, as in the WIT `tool-error` variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ToolErrorKind {
    /// The model should fix its arguments.
    InvalidInput,
    /// The tool ran and failed.
    Failed,
    /// A transient failure; worth retrying.
    Retryable,
    /// A capability was refused by policy.
    Denied,
}

impl Outcome {
    /// The outcome's name as it appears in JSON: `ok`, `tool-error`, `timeout`, …
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Ok { .. } => "ok",
            Self::ToolError { .. } => "tool-error",
            Self::InvalidInput { .. } => "invalid-input",
            Self::Timeout { .. } => "timeout",
            Self::OutOfFuel { .. } => "out-of-fuel",
            Self::MemoryLimit { .. } => "memory-limit",
            Self::OutputTooLarge { .. } => "output-too-large",
            Self::Trap { .. } => "trap",
            Self::Cancelled { .. } => "cancelled",
            Self::RateLimited { .. } => "rate-limited",
            Self::UnknownTool { .. } => "unknown-tool",
            Self::Skipped { .. } => "skipped",
        }
    }

    /// What a model reads for this outcome, and whether it is an error: the
    /// output's JSON text, or `kind: message`. Every face (the agent loop,
    /// `/v1/tool-calls`) words results this one way.
    pub fn model_text(&self) -> (String, bool) {
        match self {
            Self::Ok { output } => (output.to_string(), false),
            other => (
                format!("{}: {}", other.kind(), other.message().unwrap_or_default()),
                true,
            ),
        }
    }

    /// True only for [`Outcome::Ok`].
    pub fn is_ok(&self) -> bool {
        matches!(self, Self::Ok { .. })
    }

    /// The output, if the call succeeded.
    pub fn output(&self) -> Option<&Value> {
        match self {
            Self::Ok { output } => Some(output),
            _ => None,
        }
    }

    /// The message of any outcome but `ok`.
    pub fn message(&self) -> Option<&str> {
        match self {
            Self::Ok { .. } => None,
            Self::ToolError { message, .. }
            | Self::InvalidInput { message }
            | Self::Timeout { message }
            | Self::OutOfFuel { message }
            | Self::MemoryLimit { message }
            | Self::OutputTooLarge { message }
            | Self::Trap { message }
            | Self::Cancelled { message }
            | Self::RateLimited { message, .. }
            | Self::UnknownTool { message }
            | Self::Skipped { message } => Some(message),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ok { output } => write!(f, "ok: {output}"),
            other => write!(
                f,
                "{}: {}",
                other.kind(),
                other.message().unwrap_or_default()
            ),
        }
    }
}

/// One finished call: who, what, how it ended and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CallRecord {
    /// The call's id, unique within the process.
    pub call_id: String,
    /// The public tool name.
    pub tool: String,
    /// How the call ended.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Wall time from submission to the outcome, in milliseconds.
    pub elapsed_ms: f64,
    /// Fuel the guest burned, when fuel is counted and an instance ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuel_used: Option<u64>,
    /// The largest linear memory the guest reached, in bytes, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_peak_bytes: Option<u64>,
    /// Attempts made (more than one when transient failures were retried).
    #[serde(skip_serializing_if = "is_one")]
    pub attempts: u32,
    /// True when the output came from the result cache and no guest ran.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cached: bool,
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

impl CallRecord {
    /// A record of one attempt of `tool` that ended in `outcome` after
    /// `elapsed`, with no fuel, cache hit or retry to report.
    pub fn new(call_id: String, tool: String, outcome: Outcome, elapsed: Duration) -> Self {
        Self {
            call_id,
            tool,
            outcome,
            elapsed_ms: elapsed.as_secs_f64() * 1e3,
            fuel_used: None,
            memory_peak_bytes: None,
            attempts: 1,
            cached: false,
        }
    }

    /// The record as the shared JSON shape.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_shape_is_flat_and_tagged() {
        let ok = CallRecord::new(
            "c1".into(),
            "calc".into(),
            Outcome::Ok {
                output: json!({"value": 14}),
            },
            Duration::from_micros(410),
        );
        let value = ok.to_json();
        assert_eq!(value["outcome"], "ok");
        assert_eq!(value["output"], json!({"value": 14}));
        assert_eq!(value["tool"], "calc");
        assert!(value.get("fuel_used").is_none());

        let error = Outcome::ToolError {
            error: ToolErrorKind::InvalidInput,
            message: "bad".into(),
        };
        let value = serde_json::to_value(&error).unwrap();
        assert_eq!(
            value,
            json!({"outcome": "tool-error", "error": "invalid-input", "message": "bad"})
        );
        assert_eq!(error.kind(), "tool-error");
    }

    #[test]
    fn kind_matches_the_serialised_tag() {
        let all = [
            Outcome::Ok {
                output: Value::Null,
            },
            Outcome::ToolError {
                error: ToolErrorKind::Failed,
                message: String::new(),
            },
            Outcome::InvalidInput {
                message: String::new(),
            },
            Outcome::Timeout {
                message: String::new(),
            },
            Outcome::OutOfFuel {
                message: String::new(),
            },
            Outcome::MemoryLimit {
                message: String::new(),
            },
            Outcome::OutputTooLarge {
                message: String::new(),
            },
            Outcome::Trap {
                message: String::new(),
            },
            Outcome::Cancelled {
                message: String::new(),
            },
            Outcome::RateLimited {
                message: String::new(),
                retry_after_ms: 1,
            },
            Outcome::UnknownTool {
                message: String::new(),
            },
        ];
        for outcome in all {
            assert_eq!(
                serde_json::to_value(&outcome).unwrap()["outcome"],
                outcome.kind()
            );
        }
    }
}
