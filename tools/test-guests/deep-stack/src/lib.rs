//! `deep-stack`: recursion without bound whose frames live in linear memory.
//!
//! A Rust guest keeps locals whose address is taken on a *shadow stack* in its
//! linear memory (below its data, growing down from 1 MiB), not on wasm's own
//! call stack. Recursing with such frames exhausts the shadow stack long before
//! wasm's call stack: the stack pointer runs below address 0, wraps around to
//! the top of the 32-bit address space, and the next store faults there. The
//! host must still call that a stack overflow.
//!
//! | tool      | input | the host should                                   |
//! |-----------|-------|---------------------------------------------------|
//! | `shadow`  | `{}`  | report a trap that names a stack overflow         |

use std::hint::black_box;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolhost_sdk::{Ctx, Tool, ToolError};

/// A tool that takes no arguments.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NoInput {}

/// Never produced: the recursion does not end.
#[derive(Serialize, JsonSchema)]
struct Never {
    /// The sum the recursion would return.
    sum: u64,
}

fn shadow(_: &Ctx, _: NoInput) -> Result<Never, ToolError> {
    Ok(Never {
        sum: descend(black_box(u64::MAX)),
    })
}

/// Each level keeps a buffer in linear memory and hands its address to
/// `black_box`, so the buffer cannot move into wasm locals.
#[inline(never)]
fn descend(depth: u64) -> u64 {
    let mut frame = [depth; 32];
    black_box(&mut frame);
    if black_box(depth) == 0 {
        return frame[0];
    }
    let below = descend(depth - 1);
    black_box(below).wrapping_add(frame[31])
}

fn tools() -> Vec<Tool> {
    vec![Tool::new(
        "shadow",
        "Recurse without bound, each level holding a buffer on the shadow stack.",
        shadow,
    )]
}

toolhost_sdk::export!(tools);
