//! Driving tools from models: OpenAI Chat Completions, the OpenAI Responses
//! API and Anthropic Messages; streamed tool calls assembled piece by piece;
//! the agent loop that runs the calls through the [`Executor`](toolhost_runtime::Executor)
//! and hands the results back; speculation of pure tools; and a scripted
//! model server for tests and demos.
//!
//! This module never touches wasmtime: it sees tools through
//! [`ToolInfo`](toolhost_runtime::ToolInfo) and runs them through the executor.
#![deny(missing_docs)]
#![warn(unreachable_pub)]
#![warn(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod agent;
mod anthropic;
mod assembly;
mod body;
mod client;
mod completion;
mod events;
#[cfg(test)]
mod fuzz;
mod openai_chat;
mod openai_responses;
mod protocol;
mod reader;
mod scripted;
mod speculate;
mod sse;
mod types;

pub use agent::{Agent, AgentConfig, AgentError, AgentReport, Dispatch};
pub use client::{ClientConfig, LlmError, ModelClient};
pub use events::{AgentEvent, AgentStop, EventReceiver, EventSender, event_channel};
pub use scripted::{
    RecordedRequest, Script, ScriptGate, ScriptPart, ScriptedReply, ScriptedServer,
};
pub use speculate::{
    HistoryPredictor, ModelPredictor, PredictContext, PredictedCall, Predictor, SpeculationStats,
};
pub use types::{
    AssistantMessage, Message, ModelReply, Provider, StopReason, StreamEvent, ToolCall, ToolResult,
};

/// The instant `wait` from now; a wait too long to add to the clock is a
/// year.
pub(crate) fn deadline_in(wait: std::time::Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(wait)
        .unwrap_or_else(|| now + std::time::Duration::from_secs(365 * 24 * 3600))
}
