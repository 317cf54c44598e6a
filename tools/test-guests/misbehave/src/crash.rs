//! Crashes: a Rust panic and a raw wasm trap.

use toolhost_sdk::{Ctx, ToolError};

use crate::{Never, NoInput};

/// The text of the deliberate panic, for tests that look for it on stderr.
pub(crate) const PANIC_MESSAGE: &str = "misbehave: deliberate panic";

/// Panic. On wasm32-wasip2 panics abort, so the host sees a trap.
pub(crate) fn panic(_: &Ctx, _: NoInput) -> Result<Never, ToolError> {
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
