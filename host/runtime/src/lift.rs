//! What a guest may pass into the host in one piece, checked while it is
//! read, never after.
//!
//! wasmtime copies values out of a guest (a call's result, the arguments of
//! a host call) under a per-store byte budget, its "hostcall fuel": a string
//! is charged its length and a list element, record field or case name its
//! host size, each *before* it is copied, and aliases are charged every time
//! (a list of strings that all point at one buffer costs the budget each
//! string). wasmtime's default is 128 MiB per transfer; every store here gets
//! a budget sized by the call's own limits instead, so an over-size result is
//! refused at the boundary with nothing copied:
//!
//! - `toolhost:tool` `invoke`: the output cap ([`invoke_budget`]). An output
//!   or error text over it ends `output-too-large`; error text under it but
//!   over the output cap is cut to the cap with a marker ([`cap_text`]).
//! - plain exports: [`EXPORT_FACTOR`] times the output cap
//!   ([`export_budget`]), since a lifted value costs more than its JSON;
//!   the JSON is then written under the output cap ([`json_text`]).
//! - `describe()`: the catalog's caps on what one component may publish.
//!
//! Each budget is at least [`FLOOR`]: it also bounds every host call the
//! guest makes during the call (a WASI write, a log line), one at a time.
//!
//! Lazy lifting (`WasmStr`, `WasmList`) was weighed and not used: wasmtime
//! 48's `TypedFunc::call_async` runs the guest's post-return, which frees the
//! result, before it returns, so a `WasmStr` would be read from memory the
//! guest has already freed; and constructing one charges the same budget.

use std::io::Write;

use serde::Serialize;

use crate::outcome::Outcome;
use crate::policy::Limits;

/// The least any budget is: what one honest host call may need to pass (a
/// WASI write is at most 4 KiB; a large log line is cut by the host anyway).
pub(crate) const FLOOR: usize = 1 << 20;
/// How many bytes of lifted values a plain export may return per byte of
/// output cap: a list element costs the budget a host value (32 bytes) where
/// its JSON may take 2, so 8 lets through any result whose JSON fits the cap
/// unless it is mostly a list of small numbers.
pub(crate) const EXPORT_FACTOR: usize = 8;
/// wasmtime's own default budget; no budget here is larger.
const CEILING: usize = 128 << 20;

/// The text of wasmtime's error when a transfer passes the budget (its type
/// is private, so the text is what can be matched; a test pins it).
const EXHAUSTED: &str = "fuel allocated for hostcalls has been exhausted";

fn output_cap(limits: &Limits) -> usize {
    usize::try_from(limits.max_output_bytes).unwrap_or(usize::MAX)
}

/// The budget of a `toolhost:tool` call: the output cap, at least [`FLOOR`].
pub(crate) fn invoke_budget(limits: &Limits) -> usize {
    output_cap(limits).clamp(FLOOR, CEILING)
}

/// The budget of a plain-export call: [`EXPORT_FACTOR`] times the output cap.
pub(crate) fn export_budget(limits: &Limits) -> usize {
    output_cap(limits)
        .saturating_mul(EXPORT_FACTOR)
        .clamp(FLOOR, CEILING)
}

/// True when `error` is wasmtime refusing a transfer over the store's budget.
pub(crate) fn is_over_budget(error: &wasmtime::Error) -> bool {
    error.chain().any(|e| e.to_string().contains(EXHAUSTED))
}

/// The outcome of a transfer refused at the boundary.
pub(crate) fn over_budget(budget: usize) -> Outcome {
    Outcome::OutputTooLarge {
        message: format!(
            "the tool passed more than {budget} bytes to the host at once (its result, \
             its error text or one host call); the host refused it before copying it"
        ),
    }
}

/// What a JSON value takes on the host per value (a `serde_json::Value`),
/// and per object member besides (its key's `String` and its map entry).
const VALUE_BYTES: usize = 32;
const MEMBER_BYTES: usize = 96;

/// About how many bytes of host memory the JSON text `json` takes once
/// parsed into a `serde_json::Value`: every value in it counted as a
/// `Value`, every object member as a key and a map entry too, and the text's
/// own bytes for what strings hold. Found in one pass over the text, before
/// anything is parsed (text that is not JSON gets a figure too): 1 MiB of
/// `[0,0,…]` is half a million values, 16 MiB parsed.
///
/// ```
/// assert_eq!(toolhost_runtime::parsed_json_size("[0,0,0]"), 4 * 32 + 7);
/// ```
pub fn parsed_json_size(json: impl AsRef<[u8]>) -> usize {
    let json = json.as_ref();
    let (mut values, mut members) = (1usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &byte in json {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            // Each value but the first follows one of these (a comma in an
            // object counts its member twice: an upper bound).
            b',' | b'[' => values += 1,
            b':' => {
                values += 1;
                members += 1;
            }
            _ => {}
        }
    }
    values
        .saturating_mul(VALUE_BYTES)
        .saturating_add(members.saturating_mul(MEMBER_BYTES))
        .saturating_add(json.len())
}

/// The host memory `json` would take parsed and the memory a call under
/// `limits` reserves (its memory cap and the per-instance overhead), in
/// bytes, when the first is the larger.
fn outgrows(json: &str, limits: &Limits) -> Option<(u64, u64)> {
    let parsed = parsed_json_size(json) as u64;
    let room = crate::exec::cost_mb(limits.memory_bytes).saturating_mul(1 << 20);
    (parsed > room).then_some((parsed, room))
}

/// Refuses `json` (`output-too-large`) if parsing it would take more host
/// memory than the call reserved: its memory cap and the per-instance
/// overhead. The guest is gone by then; this bounds what it left behind.
pub(crate) fn check_parsed_size(json: &str, limits: &Limits) -> Result<(), Outcome> {
    use crate::exec::INSTANCE_OVERHEAD_MB;
    let Some((parsed, room)) = outgrows(json, limits) else {
        return Ok(());
    };
    Err(Outcome::OutputTooLarge {
        message: format!(
            "the output ({} bytes) would take about {} MiB of host memory parsed, over the {} \
             MiB the call may use (its memory cap and {INSTANCE_OVERHEAD_MB} MiB)",
            json.len(),
            parsed.div_ceil(1 << 20),
            room >> 20
        ),
    })
}

/// Refuses an input (`invalid-input`) that would take more host memory once
/// parsed than the call may use, before it is parsed: the caller's text is
/// bounded by the input cap, the tree it makes only by this.
pub(crate) fn check_input_size(json: &str, limits: &Limits) -> Result<(), Outcome> {
    use crate::exec::INSTANCE_OVERHEAD_MB;
    let Some((parsed, room)) = outgrows(json, limits) else {
        return Ok(());
    };
    Err(Outcome::InvalidInput {
        message: format!(
            "the input ({} bytes) would take about {} MiB of host memory once parsed, over the \
             {} MiB the call may use (its memory cap and {INSTANCE_OVERHEAD_MB} MiB); it was \
             not parsed. Send less, or raise the tool's `memory_mb`",
            json.len(),
            parsed.div_ceil(1 << 20),
            room >> 20
        ),
    })
}

/// `text` as it is, or cut at a character boundary to at most `cap` bytes
/// with a marker saying how much was cut.
pub(crate) fn cap_text(mut text: String, cap: usize) -> String {
    if text.len() <= cap {
        return text;
    }
    let total = text.len();
    let mut end = cap;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(&format!(
        " [cut: the text was {total} bytes, over the limit of {cap}]"
    ));
    text
}

/// `value` as JSON text, written under `cap` bytes: the writer stops at the
/// cap, so a result that would be larger is never written out whole.
pub(crate) fn json_text(value: &impl Serialize, cap: usize) -> Result<String, Outcome> {
    let mut out = Capped {
        bytes: Vec::new(),
        cap,
    };
    match serde_json::to_writer(&mut out, value) {
        // serde_json writes valid UTF-8.
        Ok(()) => Ok(String::from_utf8_lossy(&out.bytes).into_owned()),
        Err(_) => Err(Outcome::OutputTooLarge {
            message: format!("the output is over the limit of {cap} bytes"),
        }),
    }
}

/// A byte buffer that refuses to grow past its cap.
struct Capped {
    bytes: Vec<u8>,
    cap: usize,
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > self.cap {
            return Err(std::io::Error::other("over the output cap"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parsed_size_counts_every_value_and_member_outside_strings() {
        assert_eq!(parsed_json_size("0"), VALUE_BYTES + 1);
        assert_eq!(parsed_json_size("[0,0,0]"), 4 * VALUE_BYTES + 7);
        let object = r#"{"a":1,"b":[]}"#;
        // The root, two members (their colons and the comma), the array's
        // opening bracket: an upper bound, as an empty array holds nothing.
        assert_eq!(
            parsed_json_size(object),
            5 * VALUE_BYTES + 2 * MEMBER_BYTES + object.len()
        );
        // Commas, brackets and colons inside strings, escaped quotes too,
        // are text, not values.
        let text = r#"["a,[:\",b"]"#;
        assert_eq!(parsed_json_size(text), 2 * VALUE_BYTES + text.len());
    }

    #[test]
    fn a_parsed_size_is_at_least_what_the_parsed_values_hold() {
        // 976 KiB of `[0,0,…]`: measured, 16 MiB resident once parsed.
        let zeros = format!("[{}0]", "0,".repeat(500_000));
        let values: serde_json::Value = serde_json::from_str(&zeros).unwrap();
        let held = values.as_array().unwrap().len() * size_of::<serde_json::Value>();
        assert!(held > 15 * zeros.len(), "two bytes of text, 32 parsed");
        assert!(parsed_json_size(&zeros) >= held + zeros.len());
    }

    #[test]
    fn text_is_cut_at_a_char_boundary_with_a_marker() {
        assert_eq!(cap_text("short".into(), 10), "short");
        let cut = cap_text("ééé".into(), 3);
        assert!(cut.starts_with("é ["), "{cut}");
        assert!(cut.contains("was 6 bytes, over the limit of 3"), "{cut}");
    }

    #[test]
    fn json_is_refused_past_the_cap_and_kept_under_it() {
        let value = serde_json::json!({"a": "x".repeat(100)});
        assert!(json_text(&value, 200).is_ok());
        assert!(matches!(
            json_text(&value, 50),
            Err(Outcome::OutputTooLarge { .. })
        ));
    }

    #[test]
    fn budgets_follow_the_output_cap_within_floor_and_ceiling() {
        let mut limits = Limits {
            max_output_bytes: 1 << 10,
            ..Limits::default()
        };
        assert_eq!(invoke_budget(&limits), FLOOR);
        assert_eq!(export_budget(&limits), FLOOR);
        limits.max_output_bytes = 4 << 20;
        assert_eq!(invoke_budget(&limits), 4 << 20);
        assert_eq!(export_budget(&limits), 32 << 20);
        limits.max_output_bytes = 64 << 20;
        assert_eq!(export_budget(&limits), CEILING);
    }
}
