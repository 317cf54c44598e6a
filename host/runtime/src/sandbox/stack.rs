//! Telling a stack overflow from other traps.
//!
//! wasm's own call stack running out is [`Trap::StackOverflow`]. But a Rust
//! (or C) guest keeps every local whose address is taken on a *shadow stack*
//! in its linear memory: `__stack_pointer` starts at 1 MiB and grows down
//! towards address 0 (`wasm-ld --stack-first`, the Rust default). Deep
//! recursion with such frames drives the pointer below 0, where 32-bit
//! arithmetic wraps it to the top of the address space, and the next store
//! (pointer plus a small static offset, so often just past 4 GiB) faults
//! there: wasmtime reports [`Trap::MemoryOutOfBounds`], with the fault's wasm
//! address as error context when a guard page caught it. Measured with the
//! `deep-stack` test guest: `memory fault at wasm address 0x100000000 in
//! linear memory of size 0x110000`.
//!
//! So a fault within [`WRAP_WINDOW`] of 4 GiB, in a memory much smaller than
//! that, is read as a shadow stack overflow: only a pointer a little below 0
//! lands there. When wasmtime gives no address (explicitly bounds-checked
//! memories), the trap stays an out-of-bounds access.

use wasmtime::Trap;

/// A fault this close to 4 GiB (either side) counts as a pointer that
/// wrapped below 0: far more than one frame, or one static offset, of any
/// sane guest.
const WRAP_WINDOW: u64 = 64 << 20;

const FOUR_GIB: u64 = 1 << 32;

/// What wasmtime's (private) fault context says, e.g.
/// `memory fault at wasm address 0xfffffff0 in linear memory of size 0x110000`.
const FAULT_PREFIX: &str = "memory fault at wasm address 0x";

/// True when `error` is an out-of-bounds trap caused by a shadow stack that
/// ran below address 0 (see the module doc).
pub(crate) fn is_shadow_stack_overflow(error: &wasmtime::Error) -> bool {
    if error.downcast_ref::<Trap>() != Some(&Trap::MemoryOutOfBounds) {
        return false;
    }
    error
        .chain()
        .filter_map(|cause| fault(&cause.to_string()))
        .any(|(address, size)| wrapped_below_zero(address, size))
}

/// The wasm address and memory size of a fault context message.
fn fault(message: &str) -> Option<(u64, u64)> {
    let rest = message.strip_prefix(FAULT_PREFIX)?;
    let (address, rest) = rest.split_once(' ')?;
    let size = rest.strip_prefix("in linear memory of size 0x")?;
    let size = size.split_whitespace().next()?;
    Some((
        u64::from_str_radix(address, 16).ok()?,
        u64::from_str_radix(size, 16).ok()?,
    ))
}

fn wrapped_below_zero(address: u64, memory_size: u64) -> bool {
    address.abs_diff(FOUR_GIB) <= WRAP_WINDOW && memory_size < FOUR_GIB - WRAP_WINDOW
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_just_below_four_gib_is_a_wrapped_stack_pointer() {
        let message = "memory fault at wasm address 0xffffff80 in linear memory of size 0x110000";
        assert_eq!(fault(message), Some((0xffff_ff80, 0x11_0000)));
        assert!(wrapped_below_zero(0xffff_ff80, 0x11_0000));
        // What the deep-stack guest gives: the wrapped pointer plus an offset.
        assert!(wrapped_below_zero(FOUR_GIB, 0x11_0000));
        assert!(wrapped_below_zero(FOUR_GIB + 0x100, 0x11_0000));
    }

    #[test]
    fn other_faults_are_not() {
        // Just past the end of memory, and far beyond it.
        assert!(!wrapped_below_zero(0x11_0000, 0x11_0000));
        assert!(!wrapped_below_zero(0x8000_0000, 0x11_0000));
        // Far past 4 GiB: a large offset, not a wrapped pointer.
        assert!(!wrapped_below_zero(FOUR_GIB + 2 * WRAP_WINDOW, 0x11_0000));
        assert_eq!(fault("out of bounds memory access"), None);
    }

    #[test]
    fn a_plain_out_of_bounds_trap_is_not_a_stack_overflow() {
        let error = wasmtime::Error::from(Trap::MemoryOutOfBounds);
        assert!(!is_shadow_stack_overflow(&error));
        let error = wasmtime::Error::from(Trap::StackOverflow)
            .context("memory fault at wasm address 0xfffffff0 in linear memory of size 0x10000");
        assert!(!is_shadow_stack_overflow(&error));
    }

    #[test]
    fn an_out_of_bounds_trap_at_a_wrapped_address_is_a_stack_overflow() {
        let error = wasmtime::Error::from(Trap::MemoryOutOfBounds)
            .context("memory fault at wasm address 0xfffffff0 in linear memory of size 0x10000");
        assert!(is_shadow_stack_overflow(&error));
    }
}
