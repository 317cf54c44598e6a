//! A memory bomb: takes 1 MiB at a time, touching every page, until the
//! memory cap refuses a grow (the guest then aborts). Many of them at once
//! test that admission keeps the sum of their caps within the host's budget.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolhost_sdk::{Ctx, Tool, ToolError};

const MIB: usize = 1 << 20;

/// No arguments.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Fill {}

/// Never returned: the cap stops the guest first.
#[derive(Serialize, JsonSchema)]
struct Filled {
    /// MiB held.
    held_mb: usize,
}

fn fill(_: &Ctx, _: Fill) -> Result<Filled, ToolError> {
    let mut held: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = vec![0u8; MIB];
        for byte in chunk.iter_mut().step_by(4096) {
            *byte = std::hint::black_box(1);
        }
        held.push(chunk);
    }
}

fn tools() -> Vec<Tool> {
    vec![Tool::new(
        "fill",
        "Allocate and touch memory 1 MiB at a time until the cap stops it.",
        fill,
    )]
}

toolhost_sdk::export!(tools);
