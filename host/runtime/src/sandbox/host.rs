//! The `toolhost:tool/host` interface: logging, progress and cancellation,
//! each budgeted so that a guest flooding the host costs it little.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{CallInfo, State};
use crate::bindings::{Host, Level, TypesHost};

/// Log lines one call may write; later lines are counted and dropped.
const MAX_LOG_LINES: u32 = 1000;
/// Bytes of one log line that are kept.
const MAX_LOG_LINE: usize = 4096;
/// Progress reports closer together than this are coalesced: the newest
/// waits in one slot and goes out at the next report due, or when the call
/// ends. So a call sends at most one report per interval (plus its last),
/// however often the guest reports and whatever the report says.
const PROGRESS_EVERY: Duration = Duration::from_millis(10);

/// Something a guest reported during a call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GuestEvent {
    /// A log line.
    Log {
        /// The level the guest gave, as a lowercase word.
        level: &'static str,
        /// The line, control characters escaped (one line), cut to 4 KiB.
        message: String,
    },
    /// Progress.
    Progress {
        /// Units done.
        done: u64,
        /// Units in all, if known.
        total: Option<u64>,
        /// What is going on.
        message: Option<String>,
    },
}

/// Where a call's guest events go.
pub(crate) trait GuestSink: Send + Sync {
    /// One event from the guest; must not block.
    fn guest_event(&self, event: GuestEvent);
}

impl GuestSink for mpsc::UnboundedSender<GuestEvent> {
    fn guest_event(&self, event: GuestEvent) {
        let _ = self.send(event);
    }
}

/// Per-call state of the host interface.
pub(crate) struct Scope {
    pub(crate) call: CallInfo,
    logs_left: u32,
    logs_dropped: u64,
    last_progress: Option<Instant>,
    /// The newest report held back by [`PROGRESS_EVERY`], sent when the next
    /// one is due or when the call ends.
    held_progress: Option<GuestEvent>,
    /// The guest asked `cancelled()` and was told yes.
    pub(crate) told_cancelled: bool,
}

impl Scope {
    pub(crate) fn new(call: CallInfo) -> Self {
        Self {
            call,
            logs_left: MAX_LOG_LINES,
            logs_dropped: 0,
            last_progress: None,
            held_progress: None,
            told_cancelled: false,
        }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        // The call is over: its last report goes out before its result.
        if let (Some(event), Some(events)) = (self.held_progress.take(), &self.call.events) {
            events.guest_event(event);
        }
        if self.logs_dropped > 0 {
            tracing::warn!(tool = %self.call.tool, call_id = %self.call.call_id, dropped = self.logs_dropped, "guest log lines over budget were dropped");
        }
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Trace => "trace",
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    }
}

/// A guest's log or progress message as the host keeps it: one line (see
/// [`push_one_line`]) of at most [`MAX_LOG_LINE`] bytes, then `…` if it was
/// longer. Only what is kept is escaped: a guest may pass a message as
/// large as its host-call budget, and escapes would make it grow sixfold.
fn log_text(text: &str) -> String {
    let mut line = String::with_capacity(text.len().min(MAX_LOG_LINE) + '…'.len_utf8());
    let mut escape = String::new();
    for c in text.chars() {
        escape.clear();
        push_one_line(&mut escape, c);
        if line.len() + escape.len() > MAX_LOG_LINE {
            line.push('…');
            break;
        }
        line.push_str(&escape);
    }
    line
}

/// Appends `c` to a line, escaped if it could break the line: control
/// characters (newlines, carriage returns, terminal escapes) and Unicode
/// line and paragraph separators are written as escapes, so a guest's log
/// line can neither start a forged host log entry nor drive a terminal.
fn push_one_line(line: &mut String, c: char) {
    match c {
        '\\' => line.push_str("\\\\"),
        c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => {
            line.extend(c.escape_default());
        }
        c => line.push(c),
    }
}

impl Host for State {
    fn log(&mut self, level: Level, message: String) {
        let scope = &mut self.scope;
        if scope.logs_left == 0 {
            scope.logs_dropped += 1;
            return;
        }
        scope.logs_left -= 1;
        let message = log_text(&message);
        let (tool, call_id) = (&*scope.call.tool, &*scope.call.call_id);
        match level {
            Level::Trace => tracing::trace!(target: "toolhost::guest", tool, call_id, "{message}"),
            Level::Debug => tracing::debug!(target: "toolhost::guest", tool, call_id, "{message}"),
            Level::Info => tracing::info!(target: "toolhost::guest", tool, call_id, "{message}"),
            Level::Warn => tracing::warn!(target: "toolhost::guest", tool, call_id, "{message}"),
            Level::Error => tracing::error!(target: "toolhost::guest", tool, call_id, "{message}"),
        }
        if let Some(events) = &scope.call.events {
            events.guest_event(GuestEvent::Log {
                level: level_name(level),
                message,
            });
        }
    }

    fn progress(&mut self, done: u64, total: Option<u64>, message: Option<String>) {
        let scope = &mut self.scope;
        let Some(events) = &scope.call.events else {
            return;
        };
        let event = GuestEvent::Progress {
            done,
            total,
            message: message.map(|m| log_text(&m)),
        };
        let now = Instant::now();
        if scope
            .last_progress
            .is_some_and(|last| now - last < PROGRESS_EVERY)
        {
            scope.held_progress = Some(event);
            return;
        }
        scope.last_progress = Some(now);
        scope.held_progress = None;
        events.guest_event(event);
    }

    fn cancelled(&mut self) -> bool {
        let cancelled = self
            .scope
            .call
            .cancel
            .as_ref()
            .is_some_and(|cancel| cancel.is_cancelled());
        self.scope.told_cancelled |= cancelled;
        cancelled
    }
}

impl TypesHost for State {}

#[cfg(test)]
mod tests {
    use super::{MAX_LOG_LINE, log_text};

    #[test]
    fn a_log_line_stays_one_line() {
        let forged = "ok\n2026-01-01T00:00:00Z  WARN toolhost: admin\r\u{1b}[2K\u{2028}é \\n";
        let line = log_text(forged);
        assert!(!line.chars().any(|c| c.is_control()), "{line}");
        assert_eq!(
            line,
            "ok\\n2026-01-01T00:00:00Z  WARN toolhost: admin\\r\\u{1b}[2K\\u{2028}é \\\\n"
        );
    }

    /// A guest may pass a message as large as its host-call budget (a MiB
    /// or more): what the host keeps of it is a line's worth, in work and
    /// in memory, however many escapes the message would need.
    #[test]
    fn a_huge_log_message_keeps_a_line_s_worth() {
        for huge in ["\u{1b}".repeat(1 << 20), "a".repeat(1 << 20)] {
            let kept = log_text(&huge);
            assert!(
                kept.len() <= MAX_LOG_LINE + '…'.len_utf8(),
                "{}",
                kept.len()
            );
            assert!(kept.capacity() <= 2 * MAX_LOG_LINE, "{}", kept.capacity());
            assert!(kept.ends_with('…'));
        }
        assert_eq!(log_text("a\nb"), "a\\nb");
    }

    #[test]
    fn a_long_line_is_cut_at_a_char_boundary() {
        let kept = log_text(&"é".repeat(MAX_LOG_LINE));
        assert_eq!(kept, format!("{}…", "é".repeat(MAX_LOG_LINE / 2)));
        assert_eq!(log_text("short"), "short");
    }
}
