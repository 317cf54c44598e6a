//! What a run reports as it goes ([`AgentEvent`]) and why it ended
//! ([`AgentStop`]), and the channel events travel on. Shared by the agent
//! loop and speculation, so neither depends on the other for them.

use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use super::types::StopReason;
use toolhost_runtime::Outcome;

/// Something that happened during a run, in the order it happened.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AgentEvent {
    /// A model request is about to be sent.
    TurnStarted {
        /// The turn, from 1.
        turn: usize,
    },
    /// A piece of the model's text.
    Text {
        /// The turn.
        turn: usize,
        /// The text.
        text: String,
    },
    /// A tool call started (or was answered by a speculative call). A call
    /// refused before it runs (budget spent, arguments not JSON, cut off)
    /// has no `ToolStarted`, only its [`AgentEvent::ToolFinished`].
    ToolStarted {
        /// The turn.
        turn: usize,
        /// The model's id for the call.
        call_id: String,
        /// The tool.
        tool: String,
        /// The arguments as the model wrote them.
        arguments: String,
        /// True when a speculative call that was already running answers it.
        speculative: bool,
    },
    /// A tool reported progress.
    ToolProgress {
        /// The turn.
        turn: usize,
        /// The model's id for the call.
        call_id: String,
        /// Units done.
        done: u64,
        /// Units in all, if known.
        total: Option<u64>,
        /// What is going on.
        message: Option<String>,
    },
    /// A tool call ended, or was refused without running.
    ToolFinished {
        /// The turn.
        turn: usize,
        /// The model's id for the call.
        call_id: String,
        /// The tool.
        tool: String,
        /// How it ended.
        #[serde(flatten)]
        outcome: Outcome,
        /// Milliseconds from the call's start (the speculative start, if any).
        elapsed_ms: f64,
    },
    /// The model's reply is complete.
    MessageEnd {
        /// The turn.
        turn: usize,
        /// Why the model stopped.
        stop: StopReason,
        /// Tool calls in the reply.
        calls: usize,
        /// The reply is cut off: the stream ended without its terminator or
        /// inside a line (`stop` is `truncated`), or the token limit cut a
        /// tool call off (`stop` is `max_tokens`).
        truncated: bool,
    },
    /// A predicted call of a pure tool started speculatively.
    Speculated {
        /// The turn.
        turn: usize,
        /// The tool.
        tool: String,
        /// The predicted arguments.
        arguments: Value,
    },
    /// A predicted call was not run: the tool is not provably pure.
    SpeculationRefused {
        /// The turn.
        turn: usize,
        /// The tool.
        tool: String,
    },
    /// Every result of the turn is in.
    TurnEnded {
        /// The turn.
        turn: usize,
        /// Milliseconds from the request to the last result.
        elapsed_ms: f64,
    },
    /// The run is over.
    Finished {
        /// The model's last text.
        answer: String,
        /// Why the run ended.
        stop: AgentStop,
    },
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AgentStop {
    /// The model replied without tool calls.
    Answered,
    /// The turn budget ran out while the model still called tools.
    MaxTurns,
    /// The tool-call budget ran out.
    MaxToolCalls,
    /// The run's deadline passed.
    Deadline,
    /// The model's last reply was cut off (see
    /// [`AgentEvent::MessageEnd`]`::truncated`) and held no call to go on with.
    Truncated,
}

/// Where events go; clones share the channel.
#[derive(Debug, Clone, Default)]
pub(crate) struct Events(pub(crate) Option<mpsc::UnboundedSender<AgentEvent>>);

impl Events {
    pub(crate) fn emit(&self, event: AgentEvent) {
        if let Some(sender) = &self.0 {
            let _ = sender.send(event);
        }
    }
}
