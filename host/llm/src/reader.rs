//! One streamed reply, bytes in: the SSE parser and a protocol's assembler
//! together, and the rule every dialect shares for how a stream ends.
//!
//! - The provider's terminator ends the reply; bytes after it are not read:
//!   `data: [DONE]` for Chat Completions (or a choice's `finish_reason`
//!   followed by a clean close, as some compatible servers never send
//!   `[DONE]`), `response.completed` / `.incomplete` / `.failed` for
//!   Responses, `message_stop` for Anthropic.
//! - A stream that ends without its terminator, or inside a line, is
//!   [`StopReason::Truncated`]; the half-written line is dropped unread,
//!   even when it happens to be valid JSON.
//! - An error event in the stream is the provider's error.

use super::anthropic::AnthropicAssembler;
use super::assembly::StreamError;
use super::openai_chat::ChatAssembler;
use super::openai_responses::ResponsesAssembler;
use super::protocol::{Assembler, End};
use super::sse::{Ending, SseEvent, SseParser};
use super::types::{ModelReply, Provider, StreamEvent};

#[cfg(doc)]
use super::types::StopReason;

/// Why a stream could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReadError {
    /// A line or an event beyond the parser's cap.
    TooLong,
    /// The provider reported an error in the stream, or changed a call it
    /// had announced.
    Stream(StreamError),
}

/// Reads one streamed reply.
pub(crate) struct StreamReader {
    parser: SseParser,
    assembler: Box<dyn Assembler>,
    events: Vec<SseEvent>,
    out: Vec<StreamEvent>,
    terminated: bool,
}

impl StreamReader {
    /// A reader for `provider`'s stream.
    pub(crate) fn new(provider: Provider) -> Self {
        let assembler: Box<dyn Assembler> = match provider {
            Provider::OpenAiChat => Box::<ChatAssembler>::default(),
            Provider::OpenAiResponses => Box::<ResponsesAssembler>::default(),
            Provider::Anthropic => Box::<AnthropicAssembler>::default(),
        };
        Self {
            parser: SseParser::default(),
            assembler,
            events: Vec::new(),
            out: Vec::new(),
            terminated: false,
        }
    }

    /// Feeds the next bytes, handing what they complete to `on_event`.
    /// Returns true once the terminator has arrived: read no further.
    pub(crate) fn feed(
        &mut self,
        bytes: &[u8],
        on_event: &mut dyn FnMut(StreamEvent),
    ) -> Result<bool, ReadError> {
        if self.terminated {
            return Ok(true);
        }
        self.parser
            .feed(bytes, &mut self.events)
            .map_err(|_| ReadError::TooLong)?;
        self.take_events(on_event)?;
        Ok(self.terminated)
    }

    /// The stream is over (or the terminator arrived): the whole reply.
    pub(crate) fn finish(
        mut self,
        on_event: &mut dyn FnMut(StreamEvent),
    ) -> Result<ModelReply, ReadError> {
        let end = if self.terminated {
            End::Terminated
        } else {
            let ending = self.parser.finish(&mut self.events);
            self.take_events(on_event)?;
            match (self.terminated, ending) {
                (true, _) => End::Terminated,
                (false, Ending::Whole) => End::Closed,
                (false, Ending::HalfLine) => End::Cut,
            }
        };
        let reply = self.assembler.finish(end, &mut self.out);
        self.out.drain(..).for_each(&mut *on_event);
        Ok(reply)
    }

    fn take_events(&mut self, on_event: &mut dyn FnMut(StreamEvent)) -> Result<(), ReadError> {
        for event in std::mem::take(&mut self.events) {
            let done = self
                .assembler
                .feed(&event, &mut self.out)
                .map_err(ReadError::Stream)?;
            self.out.drain(..).for_each(&mut *on_event);
            if done {
                self.terminated = true;
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
