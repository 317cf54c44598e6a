use std::fmt;

use crate::bindings::toolhost::tool::types::ToolError as WitToolError;

/// An expected failure of a tool, returned to the host as a value.
///
/// The message goes back to the model, so write it for a reader who must
/// decide what to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ToolError {
    /// The input was wrong; the model should fix its arguments.
    InvalidInput(String),
    /// The tool ran and failed.
    Failed(String),
    /// A transient failure; the host may retry.
    Retryable(String),
    /// A capability was refused by the tool's policy.
    Denied(String),
}

impl ToolError {
    /// The input was wrong.
    pub fn invalid_input(message: impl fmt::Display) -> Self {
        Self::InvalidInput(message.to_string())
    }

    /// The tool ran and failed.
    pub fn failed(message: impl fmt::Display) -> Self {
        Self::Failed(message.to_string())
    }

    /// A transient failure worth retrying.
    pub fn retryable(message: impl fmt::Display) -> Self {
        Self::Retryable(message.to_string())
    }

    /// A capability was refused.
    pub fn denied(message: impl fmt::Display) -> Self {
        Self::Denied(message.to_string())
    }

    /// The message, whatever the kind.
    pub fn message(&self) -> &str {
        match self {
            Self::InvalidInput(m) | Self::Failed(m) | Self::Retryable(m) | Self::Denied(m) => m,
        }
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Self::InvalidInput(_) => "invalid input",
            Self::Failed(_) => "failed",
            Self::Retryable(_) => "retryable",
            Self::Denied(_) => "denied",
        };
        write!(f, "{kind}: {}", self.message())
    }
}

impl std::error::Error for ToolError {}

impl From<ToolError> for WitToolError {
    fn from(error: ToolError) -> Self {
        match error {
            ToolError::InvalidInput(m) => Self::InvalidInput(m),
            ToolError::Failed(m) => Self::Failed(m),
            ToolError::Retryable(m) => Self::Retryable(m),
            ToolError::Denied(m) => Self::Denied(m),
        }
    }
}
