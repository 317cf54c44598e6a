//! A small server-sent events parser: bytes in, `(event, data)` pairs out.
//!
//! Chunks may split anywhere, even inside a UTF-8 character; lines end in
//! `\n` or `\r\n`; `:` lines are comments; several `data:` lines join with
//! `\n`; a blank line ends an event.

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
const MAX_LINE: usize = 16 << 20;

/// Incremental parser state.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    line: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
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

    /// The stream ended: an event not closed by a blank line still counts
    /// when its last line was complete.
    pub(crate) fn finish(&mut self, out: &mut Vec<SseEvent>) -> Result<(), LineTooLong> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, out)?;
        }
        self.dispatch(out);
        Ok(())
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
        parser.finish(&mut out).unwrap();
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
    fn a_last_event_without_a_blank_line_counts() {
        let events = parse_in_pieces("data:x\n\ndata:y", 3);
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].data, "y");
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
