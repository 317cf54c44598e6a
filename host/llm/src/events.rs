//! What a run reports as it goes ([`AgentEvent`]) and why it ended
//! ([`AgentStop`]), and the channel events travel on ([`event_channel`]).
//! Shared by the agent loop and speculation, so neither depends on the
//! other for them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde_json::Value;
use toolhost_runtime::unread::{self, UnreadReceiver, UnreadSender};

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

/// A run's events on their way to a reader that may fall behind.
///
/// Made with [`event_channel`]: the [`EventSender`] goes to
/// [`Agent::run`](crate::Agent::run), the [`EventReceiver`] to whoever
/// reads. Every event is kept in order until it is read, except two kinds
/// that a guest or a model can make without limit, which are kept as the
/// latest state instead of as a backlog:
///
/// - a call's [`AgentEvent::ToolProgress`] waiting unread is replaced by
///   the call's next report (a guest may report every 10 ms for as long
///   as its call runs);
/// - an unread [`AgentEvent::Text`] is extended by the turn's next piece
///   of text, when nothing came between them (a model may stream its reply
///   a byte at a time).
///
/// So what a reader that stops reading makes the host hold is bounded by
/// the run's own budgets (turns, tool calls, the model's reply), not by how
/// long its calls report. A reader that keeps up sees every event as it was
/// sent.
pub fn event_channel() -> (EventSender, EventReceiver) {
    let (sender, receiver) = unread::channel();
    (
        EventSender {
            sender,
            keys: Arc::default(),
        },
        EventReceiver { receiver },
    )
}

/// The sending half of [`event_channel`]; clones send to the same reader.
#[derive(Debug, Clone)]
pub struct EventSender {
    sender: UnreadSender<AgentEvent>,
    /// The last key given to a call's progress reports.
    keys: Arc<AtomicU64>,
}

impl EventSender {
    /// Sends `event`. Never waits: see [`event_channel`] for what is kept.
    pub fn send(&self, event: AgentEvent) {
        self.sender
            .send_or_merge(event, |unread, event| match (unread, event) {
                (
                    AgentEvent::Text { turn, text },
                    AgentEvent::Text {
                        turn: next_turn,
                        text: next,
                    },
                ) if *turn == next_turn => {
                    text.push_str(&next);
                    None
                }
                (_, event) => Some(event),
            });
    }

    /// A key of its own for one call's progress reports.
    pub(crate) fn progress_key(&self) -> u64 {
        self.keys.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Sends a progress report of the call `key` names: in place of the
    /// call's last one if that is still unread.
    pub(crate) fn progress(&self, key: u64, event: AgentEvent) {
        self.sender.send_latest(key, event);
    }
}

/// The reading half of [`event_channel`].
#[derive(Debug)]
pub struct EventReceiver {
    receiver: UnreadReceiver<AgentEvent>,
}

impl EventReceiver {
    /// The next event, in the order they were sent; `None` once every
    /// sender is gone and every event has been read.
    pub async fn recv(&mut self) -> Option<AgentEvent> {
        self.receiver.recv().await
    }

    /// Events waiting to be read.
    pub fn len(&self) -> usize {
        self.receiver.len()
    }

    /// True when no event waits to be read.
    pub fn is_empty(&self) -> bool {
        self.receiver.is_empty()
    }
}

/// Where a run's events go, if anywhere; clones share the channel.
#[derive(Debug, Clone, Default)]
pub(crate) struct Events(pub(crate) Option<EventSender>);

impl Events {
    pub(crate) fn emit(&self, event: AgentEvent) {
        if let Some(sender) = &self.0 {
            sender.send(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(turn: usize, text: &str) -> AgentEvent {
        AgentEvent::Text {
            turn,
            text: text.into(),
        }
    }

    fn progress(done: u64) -> AgentEvent {
        AgentEvent::ToolProgress {
            turn: 1,
            call_id: "c".into(),
            done,
            total: None,
            message: None,
        }
    }

    fn texts(events: &[AgentEvent]) -> Vec<String> {
        events
            .iter()
            .map(|event| match event {
                AgentEvent::Text { turn, text } => format!("{turn}:{text}"),
                AgentEvent::ToolProgress { done, .. } => format!("p{done}"),
                AgentEvent::TurnStarted { turn } => format!("t{turn}"),
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    async fn read_all(mut receiver: EventReceiver) -> Vec<AgentEvent> {
        let mut events = Vec::new();
        while let Some(event) = receiver.recv().await {
            events.push(event);
        }
        events
    }

    /// A model that streams its reply a byte at a time to a reader that
    /// is not reading leaves one text per run of pieces, not one per byte.
    #[tokio::test]
    async fn unread_text_of_a_turn_is_joined_until_something_comes_between() {
        let (sender, receiver) = event_channel();
        for piece in ["a", "b", "c"] {
            sender.send(text(1, piece));
        }
        sender.send(AgentEvent::TurnStarted { turn: 2 });
        sender.send(text(2, "d"));
        sender.send(text(2, "e"));
        sender.send(text(3, "f"));
        assert_eq!(receiver.len(), 4);
        drop(sender);
        assert_eq!(
            texts(&read_all(receiver).await),
            ["1:abc", "t2", "2:de", "3:f"]
        );
    }

    #[tokio::test]
    async fn unread_progress_is_replaced_in_place_by_the_call_s_newest() {
        let (sender, mut receiver) = event_channel();
        let (call, other) = (sender.progress_key(), sender.progress_key());
        sender.progress(call, progress(1));
        sender.send(text(1, "x"));
        sender.progress(call, progress(2));
        sender.progress(other, progress(10));
        sender.progress(call, progress(3));
        assert_eq!(texts(&[receiver.recv().await.unwrap()]), ["p3"]);
        // Read: the call's next report is a new event, after what waits.
        sender.progress(call, progress(4));
        sender.progress(call, progress(5));
        drop(sender);
        assert_eq!(texts(&read_all(receiver).await), ["1:x", "p10", "p5"]);
    }

    /// A reader that keeps up is sent every event as it was sent.
    #[tokio::test]
    async fn a_reader_that_keeps_up_gets_every_event() {
        let (sender, mut receiver) = event_channel();
        let key = sender.progress_key();
        let (read, mut was_read) = tokio::sync::mpsc::channel(1);
        let sending = tokio::spawn(async move {
            for done in 1..=100 {
                sender.progress(key, progress(done));
                sender.send(text(1, "y"));
                was_read.recv().await;
            }
        });
        let mut seen = Vec::new();
        while let Some(event) = receiver.recv().await {
            seen.push(event);
            if receiver.is_empty() {
                let _ = read.send(()).await;
            }
        }
        sending.await.unwrap();
        let expected: Vec<String> = (1..=100)
            .flat_map(|n| [format!("p{n}"), "1:y".into()])
            .collect();
        assert_eq!(texts(&seen), expected);
    }
}
