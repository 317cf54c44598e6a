//! A small server-sent events parser: bytes in, `(event, data)` pairs out.
//!
//! Chunks may split anywhere, even inside a UTF-8 character; lines end in
//! `\n` or `\r\n`; `:` lines are comments; several `data:` lines join with
//! `\n`; a blank line ends an event. Bytes after the last `\n` when the
//! stream ends are a half-written line: dropped unread, as the WHATWG rules
//! say, and reported, so the caller can call the stream truncated.

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` field, if there was one.
    pub(crate) event: Option<String>,
    /// The `data:` lines, joined with `\n`.
    pub(crate) data: String,
}

/// Largest line, and largest event (its data lines together), kept; a
/// longer one is a broken or hostile server.
pub(crate) const MAX_LINE: usize = 16 << 20;

/// Incremental parser state.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    line: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
}

/// How the bytes of a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// On a line end.
    Whole,
    /// Inside a line, which was dropped.
    HalfLine,
}

/// The server sent a line, or an event, longer than [`MAX_LINE`].
#[derive(Debug)]
pub(crate) struct LineTooLong;

impl SseParser {
    /// Feeds `bytes`, appending every event they complete to `out`.
    pub(crate) fn feed(
        &mut self,
        bytes: &[u8],
        out: &mut Vec<SseEvent>,
    ) -> Result<(), LineTooLong> {
        for &byte in bytes {
            if byte == b'\n' {
                let mut line = std::mem::take(&mut self.line);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.line_done(&line, out)?;
            } else {
                if self.line.len() >= MAX_LINE {
                    return Err(LineTooLong);
                }
                self.line.push(byte);
            }
        }
        Ok(())
    }

    /// The stream ended. An event whose lines all ended but which lost its
    /// blank line still counts; a half-written last line is dropped unread
    /// (even when it would parse), and then so is the event it belonged to.
    /// Returns [`Ending::Whole`] when the stream ended on a line end.
    pub(crate) fn finish(&mut self, out: &mut Vec<SseEvent>) -> Ending {
        if self.line.is_empty() {
            self.dispatch(out);
            Ending::Whole
        } else {
            self.line.clear();
            self.event = None;
            self.data = None;
            Ending::HalfLine
        }
    }

    fn line_done(&mut self, line: &[u8], out: &mut Vec<SseEvent>) -> Result<(), LineTooLong> {
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (&*line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => match &mut self.data {
                Some(data) if data.len() + 1 + value.len() > MAX_LINE => return Err(LineTooLong),
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = self.event.take();
        if let Some(data) = self.data.take() {
            out.push(SseEvent { event, data });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_pieces(text: &str, piece: usize) -> Vec<SseEvent> {
        let mut parser = SseParser::default();
        let mut out = Vec::new();
        for chunk in text.as_bytes().chunks(piece) {
            parser.feed(chunk, &mut out).unwrap();
        }
        parser.finish(&mut out);
        out
    }

    #[test]
    fn events_survive_any_split() {
        let text = "event: message_start\r\ndata: {\"a\":\"é\"}\r\n\r\n: keep-alive\n\ndata: one\ndata: two\n\ndata: [DONE]\n\n";
        let whole = parse_in_pieces(text, text.len());
        assert_eq!(
            whole,
            [
                SseEvent {
                    event: Some("message_start".into()),
                    data: "{\"a\":\"é\"}".into()
                },
                SseEvent {
                    event: None,
                    data: "one\ntwo".into()
                },
                SseEvent {
                    event: None,
                    data: "[DONE]".into()
                },
            ]
        );
        for piece in 1..8 {
            assert_eq!(parse_in_pieces(text, piece), whole, "pieces of {piece}");
        }
    }

    #[test]
    fn a_last_event_without_a_blank_line_counts_only_when_its_lines_ended() {
        let events = parse_in_pieces("data:x\n\ndata:y\n", 3);
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].data, "y");
        // A half-written last line is dropped, even when it is valid JSON,
        // and its event with it; the caller learns of it.
        for (text, kept) in [
            ("data:x\n\ndata:y", 1),
            ("data:x\n\nevent: e\ndata: {\"type\":\"message_stop\"}", 1),
            ("data:x\n\ndata: [DONE]\r", 1),
            ("data: é", 0),
        ] {
            for piece in 1..5 {
                let mut parser = SseParser::default();
                let mut out = Vec::new();
                for chunk in text.as_bytes().chunks(piece) {
                    parser.feed(chunk, &mut out).unwrap();
                }
                assert_eq!(parser.finish(&mut out), Ending::HalfLine, "{text:?}");
                assert_eq!(out.len(), kept, "{text:?} in pieces of {piece}");
            }
        }
    }

    #[test]
    fn an_event_of_endless_short_data_lines_is_refused_not_kept() {
        // Each line is short, but an event that never ends would grow without end.
        let line = format!("data: {}\n", "x".repeat(1 << 20));
        let mut parser = SseParser::default();
        let mut out = Vec::new();
        let refused =
            (0..(MAX_LINE >> 20) + 2).any(|_| parser.feed(line.as_bytes(), &mut out).is_err());
        assert!(refused, "an event of more than {MAX_LINE} bytes was kept");
        assert!(out.is_empty());
    }

    #[test]
    fn an_event_line_alone_yields_nothing() {
        assert!(parse_in_pieces("event: ping\n\n", 4).is_empty());
    }
}
