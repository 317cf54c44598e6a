#[cfg(target_arch = "wasm32")]
use crate::bindings::toolhost::tool::host;

/// How much a log line matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Details for a developer.
    Debug,
    /// Normal progress.
    Info,
    /// Something looks wrong but the call goes on.
    Warn,
    /// Something failed.
    Error,
}

/// What a tool may ask of the host during a call: logging, progress and
/// whether the call was cancelled.
///
/// Outside a WebAssembly host (in a tool's native unit tests) logging and
/// progress do nothing and [`Ctx::cancelled`] is always false.
#[derive(Debug, Default)]
pub struct Ctx {
    _private: (),
}

impl Ctx {
    /// A context for calling a tool function directly, as unit tests do.
    pub fn new() -> Self {
        Self::default()
    }

    /// Write a line to the host's log.
    pub fn log(&self, level: Level, message: &str) {
        #[cfg(target_arch = "wasm32")]
        host::log(level.into(), message);
        #[cfg(not(target_arch = "wasm32"))]
        let _ = (level, message);
    }

    /// Log at [`Level::Debug`].
    pub fn debug(&self, message: &str) {
        self.log(Level::Debug, message);
    }

    /// Log at [`Level::Info`].
    pub fn info(&self, message: &str) {
        self.log(Level::Info, message);
    }

    /// Log at [`Level::Warn`].
    pub fn warn(&self, message: &str) {
        self.log(Level::Warn, message);
    }

    /// Report that `done` of `total` units are finished.
    pub fn progress(&self, done: u64, total: Option<u64>, message: Option<&str>) {
        #[cfg(target_arch = "wasm32")]
        host::progress(done, total, message);
        #[cfg(not(target_arch = "wasm32"))]
        let _ = (done, total, message);
    }

    /// True once the host has cancelled this call; return early when it is.
    pub fn cancelled(&self) -> bool {
        #[cfg(target_arch = "wasm32")]
        return host::cancelled();
        #[cfg(not(target_arch = "wasm32"))]
        false
    }
}

#[cfg(target_arch = "wasm32")]
impl From<Level> for host::Level {
    fn from(level: Level) -> Self {
        match level {
            Level::Trace => Self::Trace,
            Level::Debug => Self::Debug,
            Level::Info => Self::Info,
            Level::Warn => Self::Warn,
            Level::Error => Self::Error,
        }
    }
}
