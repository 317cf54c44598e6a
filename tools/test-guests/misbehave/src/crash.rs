//! Crashes: a Rust panic and a raw wasm trap.

use std::io::Write;

use schemars::JsonSchema;
use serde::Deserialize;
use toolhost_sdk::{Ctx, ToolError};

use crate::{Never, NoInput};

/// The text of the deliberate panic, for tests that look for it on stderr.
pub(crate) const PANIC_MESSAGE: &str = "misbehave: deliberate panic";

/// What to write before panicking.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Panic {
    /// Bytes of noise to write to stderr first (0 by default): a guest that
    /// logged a lot before it panicked.
    #[serde(default)]
    noise_bytes: u64,
}

/// Panic, after `noise_bytes` of stderr. On wasm32-wasip2 panics abort, so
/// the host sees a trap.
pub(crate) fn panic(_: &Ctx, input: Panic) -> Result<Never, ToolError> {
    let line = [b'n'; 79];
    let mut stderr = std::io::stderr().lock();
    let mut written = 0;
    while written < input.noise_bytes {
        let _ = stderr
            .write_all(&line)
            .and_then(|()| stderr.write_all(b"\n"));
        written += 80;
    }
    drop(stderr);
    panic!("{PANIC_MESSAGE}");
}

/// Execute `unreachable`; natively, abort the process instead.
pub(crate) fn trap(_: &Ctx, _: NoInput) -> Result<Never, ToolError> {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort();
}

/// Fail with a `retryable` error every time (each call is a fresh instance,
/// so a guest cannot count its own attempts): the host's retry rules decide.
pub(crate) fn retryable(_: &Ctx, _: NoInput) -> Result<Never, ToolError> {
    Err(ToolError::retryable(
        "misbehave: transient failure, try again",
    ))
}
