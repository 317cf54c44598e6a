//! A reply under assembly: its text, its tool calls as their pieces
//! arrive, and why an assembler may stop reading.
//!
//! The rule every assembler keeps: a call announced ready
//! ([`StreamEvent::CallReady`]) may start at once, so it is announced only
//! when its id, name and arguments are final, and the reply holds it
//! exactly as announced. An event that would change an announced call is a
//! [`StreamError::CallChanged`], never a silent rewrite.
//!
//! A reply is bounded as a whole, not only event by event: at most
//! [`MAX_CALLS`] calls, and at most [`MAX_REPLY`] bytes of text and
//! arguments together, counted as they arrive.

use super::completion::Completion;
use super::types::{
    AssistantMessage, ModelReply, StopReason, StreamEvent, ToolCall, excerpt, is_complete_json,
    normalize_arguments,
};

/// The most tool calls one reply may hold. Far beyond any real reply (the
/// agent's own default budget is 50 calls a run), and small enough that
/// per-call bookkeeping stays cheap.
pub(crate) const MAX_CALLS: usize = 1024;

/// The most bytes of text and arguments one reply may hold together: twice
/// the largest single event, and far beyond the output of any model's
/// token limit.
pub(crate) const MAX_REPLY: usize = 32 << 20;

/// Why an assembler stopped reading a stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StreamError {
    /// The provider reported an error in the stream, or sent an event that
    /// is not JSON.
    #[error("{0}")]
    Provider(String),
    /// An event changed a call already announced ready.
    #[error("tool call `{id}` changed after it was announced ready: {change}")]
    CallChanged {
        /// The call's id as announced.
        id: String,
        /// What the event changed.
        change: String,
    },
    /// The reply went past one of its caps ([`MAX_CALLS`], [`MAX_REPLY`]).
    #[error("the reply holds more than {0}")]
    TooLarge(String),
}

impl From<String> for StreamError {
    fn from(message: String) -> Self {
        Self::Provider(message)
    }
}

/// One tool call whose arguments are arriving in pieces.
#[derive(Debug, Clone)]
pub(crate) struct PartialCall {
    pub(crate) id: String,
    pub(crate) name: String,
    /// Changed only through [`Collected::push_arguments`] and
    /// [`Collected::set_arguments`], which keep `completion` in step and
    /// count the bytes against the reply's cap.
    arguments: String,
    /// How far `arguments` have been read for completeness.
    completion: Completion,
    /// Announced with [`StreamEvent::CallBegun`]: its id and name are final.
    pub(crate) begun: bool,
    /// Announced with [`StreamEvent::CallReady`]: nothing of it may change.
    pub(crate) ready: bool,
    /// The reply was cut off before the arguments were complete: they are
    /// kept exactly as they arrived (empty ones are not read as `{}`).
    pub(crate) cut: bool,
}

impl PartialCall {
    pub(crate) fn new(id: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            arguments: String::new(),
            completion: Completion::default(),
            begun: false,
            ready: false,
            cut: false,
        }
    }

    /// The arguments as they arrived so far.
    pub(crate) fn arguments(&self) -> &str {
        &self.arguments
    }

    /// The call as it stands, with empty arguments read as `{}` unless the
    /// call was cut off.
    pub(crate) fn call(&self) -> ToolCall {
        let arguments = if self.cut {
            self.arguments.clone()
        } else {
            normalize_arguments(self.arguments.clone())
        };
        ToolCall::new(self.id.clone(), self.name.clone(), arguments)
    }

    /// Announces the call's id and name as final, once.
    pub(crate) fn begin(&mut self, out: &mut Vec<StreamEvent>) {
        if !self.begun {
            self.begun = true;
            out.push(StreamEvent::CallBegun {
                id: self.id.clone(),
                name: self.name.clone(),
            });
        }
    }

    /// Takes `id` and `name` as the call's final ones and begins it; when it
    /// began already, they must be the ones it began with.
    fn identify(
        &mut self,
        id: &str,
        name: &str,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), StreamError> {
        if self.begun {
            if self.id != id {
                return Err(self.changed(format!("its id became `{}`", excerpt(id, 80))));
            }
            if self.name != name {
                return Err(self.changed(format!("its tool became `{}`", excerpt(name, 80))));
            }
            return Ok(());
        }
        self.id = id.to_string();
        self.name = name.to_string();
        self.begin(out);
        Ok(())
    }

    /// Appends a piece of the arguments. Once the call is announced, only
    /// whitespace may follow (and is dropped, so the call stays as announced).
    fn push_arguments(&mut self, piece: &str) -> Result<(), StreamError> {
        if self.ready {
            if piece.trim().is_empty() {
                return Ok(());
            }
            return Err(self.changed(format!(
                "its arguments went on with `{}`",
                excerpt(piece, 80)
            )));
        }
        self.arguments.push_str(piece);
        Ok(())
    }

    /// Replaces the arguments with the provider's whole copy of them. Once
    /// the call is announced, the copy must be what was announced.
    fn set_arguments(&mut self, whole: &str) -> Result<(), StreamError> {
        if self.ready {
            if normalize_arguments(whole.to_string()) != self.call().arguments {
                return Err(self.changed(format!("its arguments became `{}`", excerpt(whole, 80))));
            }
            return Ok(());
        }
        self.arguments = whole.to_string();
        self.completion = Completion::default();
        Ok(())
    }

    /// Announces the call if it is not announced yet and its arguments are
    /// complete JSON (or `force`, at the end of the stream). Asked after
    /// every piece, it reads each piece once: see [`Completion`].
    pub(crate) fn announce(&mut self, force: bool, out: &mut Vec<StreamEvent>) {
        if !self.ready && (force || self.completion.advance(&self.arguments)) {
            self.begin(out);
            self.ready = true;
            out.push(StreamEvent::CallReady(self.call()));
        }
    }

    fn changed(&self, change: String) -> StreamError {
        StreamError::CallChanged {
            id: self.id.clone(),
            change,
        }
    }
}

/// Text and calls collected over a stream, for the final reply.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    pub(crate) text: String,
    pub(crate) calls: Vec<PartialCall>,
    /// Bytes counted against [`MAX_REPLY`].
    held: usize,
}

impl Collected {
    pub(crate) fn text(
        &mut self,
        delta: &str,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), StreamError> {
        if !delta.is_empty() {
            self.hold(delta.len())?;
            self.text.push_str(delta);
            out.push(StreamEvent::Text(delta.to_string()));
        }
        Ok(())
    }

    /// Counts `bytes` an assembler keeps against the reply's cap.
    pub(crate) fn hold(&mut self, bytes: usize) -> Result<(), StreamError> {
        let held = self.held.saturating_add(bytes);
        if held > MAX_REPLY {
            return Err(StreamError::TooLarge(format!(
                "{} MiB of text and arguments",
                MAX_REPLY >> 20
            )));
        }
        self.held = held;
        Ok(())
    }

    /// Keeps a call whose id or name is not known yet, without announcing
    /// it; returns its position.
    pub(crate) fn add(&mut self, call: PartialCall) -> Result<usize, StreamError> {
        if self.calls.len() >= MAX_CALLS {
            return Err(StreamError::TooLarge(format!("{MAX_CALLS} tool calls")));
        }
        self.hold(call.id.len() + call.name.len())?;
        self.calls.push(call);
        Ok(self.calls.len() - 1)
    }

    /// Starts a call whose id and name are final; returns its position.
    pub(crate) fn begin(
        &mut self,
        call: PartialCall,
        out: &mut Vec<StreamEvent>,
    ) -> Result<usize, StreamError> {
        let position = self.add(call)?;
        self.calls[position].begin(out);
        Ok(position)
    }

    /// Takes `id` and `name` as the final ones of the call at `position` and
    /// begins it; when it began already, they must be the ones it began with.
    pub(crate) fn identify(
        &mut self,
        position: usize,
        id: &str,
        name: &str,
        out: &mut Vec<StreamEvent>,
    ) -> Result<&mut PartialCall, StreamError> {
        if !self.calls[position].begun {
            self.hold(id.len() + name.len())?;
        }
        let call = &mut self.calls[position];
        call.identify(id, name, out)?;
        Ok(call)
    }

    /// Takes `id` and `name`, where given, for the call at `position` until
    /// final ones arrive; a call already begun keeps its own.
    pub(crate) fn suppose(
        &mut self,
        position: usize,
        id: Option<&str>,
        name: Option<&str>,
    ) -> Result<(), StreamError> {
        if self.calls[position].begun {
            return Ok(());
        }
        let (id, name) = (id.unwrap_or_default(), name.unwrap_or_default());
        self.hold(id.len() + name.len())?;
        let call = &mut self.calls[position];
        if !id.is_empty() {
            call.id = id.to_string();
        }
        if !name.is_empty() {
            call.name = name.to_string();
        }
        Ok(())
    }

    /// Appends a piece of the call at `position`'s arguments (see
    /// [`PartialCall`] for what may follow an announced call).
    pub(crate) fn push_arguments(
        &mut self,
        position: usize,
        piece: &str,
    ) -> Result<&mut PartialCall, StreamError> {
        self.hold(piece.len())?;
        let call = &mut self.calls[position];
        call.push_arguments(piece)?;
        Ok(call)
    }

    /// Replaces the call at `position`'s arguments with the provider's
    /// whole copy of them; once the call is announced, the copy must be
    /// what was announced.
    pub(crate) fn set_arguments(
        &mut self,
        position: usize,
        whole: &str,
    ) -> Result<&mut PartialCall, StreamError> {
        self.hold(whole.len())?;
        let call = &mut self.calls[position];
        call.set_arguments(whole)?;
        Ok(call)
    }

    /// Announces every call not yet announced and builds the reply. In a
    /// reply cut off (truncated, or by the token limit), a call whose
    /// arguments are not complete JSON keeps them as they arrived.
    pub(crate) fn finish(
        &mut self,
        complete: bool,
        stop: Option<StopReason>,
        out: &mut Vec<StreamEvent>,
    ) -> ModelReply {
        let stop = match (complete, stop) {
            (false, _) => StopReason::Truncated,
            (true, Some(stop)) => stop,
            (true, None) if self.calls.is_empty() => StopReason::EndTurn,
            (true, None) => StopReason::ToolUse,
        };
        let cut_off = matches!(stop, StopReason::Truncated | StopReason::MaxTokens);
        for call in &mut self.calls {
            if !call.ready {
                call.cut = cut_off && !is_complete_json(&call.arguments);
            }
            call.announce(true, out);
        }
        ModelReply {
            message: AssistantMessage {
                text: std::mem::take(&mut self.text),
                calls: self.calls.iter().map(PartialCall::call).collect(),
            },
            stop,
        }
    }
}

#[cfg(test)]
mod tests;
