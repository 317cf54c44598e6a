//! CPU harm: an endless loop, a long but finite loop, and deep recursion.

use std::hint::black_box;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolhost_sdk::{Ctx, ToolError};

use crate::{Never, NoInput};

/// Loop forever. `black_box` keeps the optimiser from removing the loop.
pub(crate) fn spin(_: &Ctx, _: NoInput) -> Result<Never, ToolError> {
    let mut counter: u64 = 0;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

/// How much work to do.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Busy {
    /// Number of xorshift rounds to run.
    iterations: u64,
}

/// The work's result.
#[derive(Serialize, JsonSchema)]
pub(crate) struct BusyOutput {
    /// The rounds run (the input).
    iterations: u64,
    /// The xorshift64 state after the rounds; the same input always gives the same value.
    checksum: u64,
}

/// Run `iterations` rounds of xorshift64 from a fixed seed.
pub(crate) fn busy(_: &Ctx, input: Busy) -> Result<BusyOutput, ToolError> {
    Ok(BusyOutput {
        iterations: input.iterations,
        checksum: xorshift(input.iterations),
    })
}

fn xorshift(iterations: u64) -> u64 {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..iterations {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
    }
    state
}

/// How deep to go.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Recurse {
    /// Levels of recursion; a few thousand is enough to exhaust a small stack.
    depth: u64,
}

/// Reached only when the stack held.
#[derive(Serialize, JsonSchema)]
pub(crate) struct RecurseOutput {
    /// The levels recursed (the input).
    depth: u64,
    /// A value computed on the way back up (equals `depth`).
    result: u64,
}

/// Recurse `depth` levels; the work after the call prevents tail-call elimination.
pub(crate) fn recurse(_: &Ctx, input: Recurse) -> Result<RecurseOutput, ToolError> {
    Ok(RecurseOutput {
        depth: input.depth,
        result: descend(input.depth),
    })
}

#[inline(never)]
fn descend(depth: u64) -> u64 {
    if black_box(depth) == 0 {
        return 0;
    }
    let below = descend(black_box(depth - 1));
    black_box(below) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_is_deterministic_and_depends_on_iterations() {
        let a = busy(&Ctx::new(), Busy { iterations: 1000 }).unwrap();
        let b = busy(&Ctx::new(), Busy { iterations: 1000 }).unwrap();
        let c = busy(&Ctx::new(), Busy { iterations: 1001 }).unwrap();
        assert_eq!(a.checksum, b.checksum);
        assert_ne!(a.checksum, c.checksum);
    }

    #[test]
    fn busy_with_zero_iterations_returns_the_seed() {
        assert_eq!(xorshift(0), 0x9E37_79B9_7F4A_7C15);
    }

    #[test]
    fn shallow_recursion_returns_its_depth() {
        let out = recurse(&Ctx::new(), Recurse { depth: 100 }).unwrap();
        assert_eq!(out.result, 100);
    }
}
