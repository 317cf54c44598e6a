//! Memory harm: big allocations and a big output.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolhost_sdk::{Ctx, ToolError};

use crate::{Never, to_usize};

const MIB: usize = 1 << 20;

/// Bytes between two touched bytes: small enough to touch every page.
const PAGE: usize = 4096;

/// How to allocate.
#[derive(Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Mode {
    /// One `vec!` of `mb` MiB; the guest aborts (traps) if it is refused.
    Vec,
    /// One `try_reserve` of `mb` MiB; a refusal is returned as a `failed` error.
    Try,
    /// 1 MiB chunks with `try_reserve` until one is refused or `mb` MiB are held.
    Grow,
}

/// What to allocate.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Alloc {
    /// MiB to allocate (in `grow` mode, the most to allocate).
    mb: u64,
    /// `vec`, `try` or `grow`.
    mode: Mode,
}

/// What was allocated.
#[derive(Serialize, JsonSchema)]
pub(crate) struct Allocated {
    /// The mode used.
    mode: &'static str,
    /// MiB actually allocated and touched (all freed again before returning).
    allocated_mb: u64,
    /// True if an allocation was refused (only `grow` returns with this set).
    refused: bool,
}

/// Allocate and touch memory as `input.mode` says.
pub(crate) fn alloc(_: &Ctx, input: Alloc) -> Result<Allocated, ToolError> {
    let bytes = to_usize("mb", input.mb)?.checked_mul(MIB).ok_or_else(|| {
        ToolError::invalid_input(format!(
            "mb = {} is more than this guest can address",
            input.mb
        ))
    })?;
    match input.mode {
        Mode::Vec => {
            let mut block = vec![0u8; bytes];
            touch(&mut block);
            Ok(Allocated {
                mode: "vec",
                allocated_mb: input.mb,
                refused: false,
            })
        }
        Mode::Try => {
            let mut block: Vec<u8> = Vec::new();
            block.try_reserve_exact(bytes).map_err(|e| {
                ToolError::failed(format!("allocating {} MiB was refused: {e}", input.mb))
            })?;
            block.resize(bytes, 0);
            touch(&mut block);
            Ok(Allocated {
                mode: "try",
                allocated_mb: input.mb,
                refused: false,
            })
        }
        Mode::Grow => {
            let (held, refused) = grow(input.mb);
            Ok(Allocated {
                mode: "grow",
                allocated_mb: held,
                refused,
            })
        }
    }
}

/// Hold 1 MiB chunks until `max_mb` are held or one is refused; free them all
/// (so the output can still be encoded) and say how many were held.
fn grow(max_mb: u64) -> (u64, bool) {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    let mut held: u64 = 0;
    while held < max_mb {
        if chunks.try_reserve(1).is_err() {
            return (held, true);
        }
        let mut chunk: Vec<u8> = Vec::new();
        if chunk.try_reserve_exact(MIB).is_err() {
            return (held, true);
        }
        chunk.resize(MIB, 0);
        touch(&mut chunk);
        chunks.push(chunk);
        held += 1;
    }
    (held, false)
}

/// Write one byte in every page, so the memory is really used.
fn touch(block: &mut [u8]) {
    for (i, byte) in block.iter_mut().step_by(PAGE).enumerate() {
        *byte = std::hint::black_box(i as u8 | 1);
    }
}

/// How big an output to return.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BigOutput {
    /// Length of the `data` string, in bytes.
    bytes: u64,
}

/// The big output: `{"data":"xxxx…"}`, `bytes` + 11 bytes of JSON in all.
#[derive(Serialize, JsonSchema)]
pub(crate) struct BigOutputData {
    /// `bytes` copies of `x`.
    data: String,
}

/// Return a string of `bytes` bytes.
pub(crate) fn big_output(_: &Ctx, input: BigOutput) -> Result<BigOutputData, ToolError> {
    let len = to_usize("bytes", input.bytes)?;
    Ok(BigOutputData {
        data: "x".repeat(len),
    })
}

/// Fail with a `failed` error whose message is `bytes` bytes long: the
/// host cuts it to the output cap, and keeps it like an output meanwhile.
pub(crate) fn big_error(_: &Ctx, input: BigOutput) -> Result<Never, ToolError> {
    let len = to_usize("bytes", input.bytes)?;
    Err(ToolError::failed("x".repeat(len)))
}

/// Input of `many_values`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ManyValues {
    /// How many zeros the list holds.
    count: u64,
}

/// `{"zeros":[0,0,…]}`: two bytes of output a value, each a host value once parsed.
#[derive(Serialize, JsonSchema)]
pub(crate) struct ManyValuesData {
    /// `count` zeros.
    zeros: Vec<u8>,
}

/// Return a list of `count` zeros: small as text, large once parsed.
pub(crate) fn many_values(_: &Ctx, input: ManyValues) -> Result<ManyValuesData, ToolError> {
    let len = to_usize("count", input.count)?;
    Ok(ManyValuesData {
        zeros: vec![0; len],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(input: &str) -> Result<String, ToolError> {
        crate::tools()
            .into_iter()
            .find(|t| t.name() == "alloc")
            .unwrap()
            .call_json(input)
    }

    #[test]
    fn small_allocations_succeed_in_every_mode() {
        for mode in ["vec", "try", "grow"] {
            let out = call(&format!(r#"{{"mb": 2, "mode": "{mode}"}}"#)).unwrap();
            assert_eq!(
                out,
                format!(r#"{{"mode":"{mode}","allocated_mb":2,"refused":false}}"#)
            );
        }
    }

    #[test]
    fn unknown_mode_is_invalid_input() {
        let err = call(r#"{"mb": 1, "mode": "heap"}"#).unwrap_err();
        assert!(matches!(err, ToolError::InvalidInput(_)), "{err:?}");
    }

    #[test]
    fn size_beyond_the_address_space_is_invalid_input() {
        let err = call(&format!(r#"{{"mb": {}, "mode": "try"}}"#, u64::MAX)).unwrap_err();
        assert!(matches!(err, ToolError::InvalidInput(_)), "{err:?}");
    }

    #[test]
    fn try_reports_a_refusal_as_failed() {
        // 2^63 bytes: fits a 64-bit usize, but no allocator may grant more than isize::MAX.
        let err = call(r#"{"mb": 8796093022208, "mode": "try"}"#).unwrap_err();
        assert!(
            matches!(err, ToolError::Failed(ref m) if m.contains("refused")),
            "{err:?}"
        );
    }

    #[test]
    fn big_error_has_the_asked_length() {
        let err = big_error(&Ctx::new(), BigOutput { bytes: 1000 })
            .err()
            .unwrap();
        assert!(matches!(err, ToolError::Failed(m) if m.len() == 1000));
    }

    #[test]
    fn big_output_has_the_asked_length() {
        let out = big_output(&Ctx::new(), BigOutput { bytes: 1000 }).unwrap();
        assert_eq!(out.data.len(), 1000);
        assert_eq!(serde_json::to_string(&out).unwrap().len(), 1011);
    }
}
