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

fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// `text` as one line that cannot pass for anything else: control
/// characters (newlines, carriage returns, terminal escapes) and Unicode
/// line and paragraph separators are written as escapes, so a guest's log
/// line can neither start a forged host log entry nor drive a terminal.
fn one_line(text: &str) -> String {
    let mut line = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => line.push_str("\\\\"),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => {
                line.extend(c.escape_default());
            }
            c => line.push(c),
        }
    }
    line
}

impl Host for State {
    fn log(&mut self, level: Level, message: String) {
        let scope = &mut self.scope;
        if scope.logs_left == 0 {
            scope.logs_dropped += 1;
            return;
        }
        scope.logs_left -= 1;
        let message = cut(one_line(&message), MAX_LOG_LINE);
        let (tool, call_id) = (&*scope.call.tool, &scope.call.call_id);
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
            message: message.map(|m| cut(one_line(&m), MAX_LOG_LINE)),
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
    use super::{cut, one_line};

    #[test]
    fn a_log_line_stays_one_line() {
        let forged = "ok\n2026-01-01T00:00:00Z  WARN toolhost: admin\r\u{1b}[2K\u{2028}é \\n";
        let line = one_line(forged);
        assert!(!line.chars().any(|c| c.is_control()), "{line}");
        assert_eq!(
            line,
            "ok\\n2026-01-01T00:00:00Z  WARN toolhost: admin\\r\\u{1b}[2K\\u{2028}é \\\\n"
        );
    }

    #[test]
    fn cut_respects_char_boundaries() {
        assert_eq!(cut("héllo".into(), 2), "h…");
        assert_eq!(cut("short".into(), 10), "short");
    }
}
