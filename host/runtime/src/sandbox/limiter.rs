//! The store's resource limiter: the memory cap is the sum over every linear
//! memory of the call, not a cap per memory.
//!
//! wasmtime asks the limiter about each memory on its own (its creation, then
//! each grow), so a cap checked per memory lets a component with eight core
//! modules, each with its own memory, use eight times the cap. This one keeps
//! a running total for the store (a store holds one call's instance, so the
//! total is the call's) and refuses any growth that would take it past the
//! cap. Tables are summed the same way.

use wasmtime::ResourceLimiter;

/// Table elements one call may hold across all its tables.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// Caps linear memory per call (all memories together) and remembers
/// whether a grow was refused, so a trap that follows can be reported as
/// `memory-limit`.
pub(crate) struct Limiter {
    memory_cap: usize,
    memory_total: usize,
    table_total: usize,
    /// The largest total the memories reached.
    pub(crate) peak: usize,
    /// A growth was refused for the cap.
    pub(crate) refused: bool,
}

impl Limiter {
    /// A limiter allowing `memory_cap` bytes across all memories.
    pub(crate) fn new(memory_cap: usize) -> Self {
        Self {
            memory_cap,
            memory_total: 0,
            table_total: 0,
            peak: 0,
            refused: false,
        }
    }
}

/// The running total after one memory or table goes from `current` to
/// `desired`, if it stays within `cap`. A growth past the memory's own
/// declared maximum is refused uncounted (wasmtime would fail it anyway).
fn grow(
    total: usize,
    current: usize,
    desired: usize,
    maximum: Option<usize>,
    cap: usize,
) -> Option<usize> {
    if maximum.is_some_and(|max| desired > max) {
        return None;
    }
    let total = total
        .checked_sub(current)?
        .checked_add(desired)
        .filter(|&total| total <= cap)?;
    Some(total)
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        match grow(
            self.memory_total,
            current,
            desired,
            maximum,
            self.memory_cap,
        ) {
            Some(total) => {
                // A grow that then fails in the OS stays counted: the total
                // errs high, never low.
                self.memory_total = total;
                self.peak = self.peak.max(total);
                Ok(true)
            }
            None => {
                if maximum.is_none_or(|max| desired <= max) {
                    self.refused = true;
                }
                Ok(false)
            }
        }
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        match grow(
            self.table_total,
            current,
            desired,
            maximum,
            MAX_TABLE_ELEMENTS,
        ) {
            Some(total) => {
                self.table_total = total;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    #[test]
    fn the_cap_is_the_sum_of_all_memories() {
        let mut limiter = Limiter::new(64 * MIB);
        // Eight memories created at 1 MiB each: 8 MiB in all.
        for _ in 0..8 {
            assert!(limiter.memory_growing(0, MIB, None).unwrap());
        }
        // One grows to 40 MiB: 47 MiB in all.
        assert!(limiter.memory_growing(MIB, 40 * MIB, None).unwrap());
        assert!(!limiter.refused);
        // Another asks for 40 MiB: each alone is under the cap, together not.
        assert!(!limiter.memory_growing(MIB, 40 * MIB, None).unwrap());
        assert!(limiter.refused);
        // What is left still fits.
        assert!(limiter.memory_growing(MIB, 18 * MIB, None).unwrap());
        assert_eq!(limiter.peak, 64 * MIB);
        assert!(
            !limiter
                .memory_growing(18 * MIB, 18 * MIB + 1, None)
                .unwrap()
        );
    }

    #[test]
    fn a_grow_past_the_memorys_own_maximum_is_not_counted_as_the_cap() {
        let mut limiter = Limiter::new(64 * MIB);
        assert!(limiter.memory_growing(0, MIB, Some(2 * MIB)).unwrap());
        assert!(!limiter.memory_growing(MIB, 3 * MIB, Some(2 * MIB)).unwrap());
        assert!(!limiter.refused);
        assert!(limiter.memory_growing(MIB, 60 * MIB, None).unwrap());
    }

    #[test]
    fn tables_are_summed_too() {
        let mut limiter = Limiter::new(MIB);
        assert!(
            limiter
                .table_growing(0, MAX_TABLE_ELEMENTS / 2, None)
                .unwrap()
        );
        assert!(
            limiter
                .table_growing(0, MAX_TABLE_ELEMENTS / 2, None)
                .unwrap()
        );
        assert!(!limiter.table_growing(0, 1, None).unwrap());
    }
}
