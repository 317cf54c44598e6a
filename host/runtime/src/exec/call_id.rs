//! Call ids: unique within the process, and telling nothing of how many
//! calls other callers made (a counter would tell one tenant the others'
//! volume from the gap between its own ids).

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};

use super::striped::{STRIPES, Striped};

/// Hands out call ids: a secret permutation of a counter.
#[derive(Debug)]
pub(crate) struct CallIds {
    /// The counter, striped so that threads do not take turns on one
    /// cache line: stripe `i` counts `i`, `i + STRIPES`, `i + 2 * STRIPES`...
    next: Striped<AtomicU64>,
    /// Seeded by the operating system: the permutation's key.
    key: RandomState,
}

impl CallIds {
    pub(crate) fn new() -> Self {
        Self {
            next: Striped::new(|stripe| AtomicU64::new(stripe as u64)),
            key: RandomState::new(),
        }
    }

    /// The next id, 16 hex digits.
    pub(crate) fn next(&self) -> String {
        let n = self
            .next
            .here()
            .fetch_add(STRIPES as u64, Ordering::Relaxed);
        let id = self.permute(n);
        // By hand, into one allocation: `format!` costs several times more
        // on every call.
        let mut text = String::with_capacity(16);
        for digit in (0..16).rev() {
            text.push(char::from(
                b"0123456789abcdef"[(id >> (digit * 4)) as usize & 15],
            ));
        }
        text
    }

    /// A four-round Feistel network over the counter's halves, with keyed
    /// SipHash as the round function: a bijection (so ids never repeat),
    /// and without the key no id says what the counter was.
    fn permute(&self, n: u64) -> u64 {
        let (mut left, mut right) = ((n >> 32) as u32, n as u32);
        for round in 0u8..4 {
            let mixed = self.key.hash_one((round, right)) as u32;
            (left, right) = (right, left ^ mixed);
        }
        (u64::from(left) << 32) | u64::from(right)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn ids_are_unique_and_not_a_count() {
        let ids = CallIds::new();
        let values: Vec<u64> = (0..100_000).map(|n| ids.permute(n)).collect();
        let distinct: HashSet<u64> = values.iter().copied().collect();
        assert_eq!(distinct.len(), values.len());
        // Consecutive calls are not neighbours: the gaps vary wildly.
        let small_gaps = values
            .windows(2)
            .filter(|w| w[0].abs_diff(w[1]) < 1 << 32)
            .count();
        assert!(small_gaps < 100, "{small_gaps} of 100,000 gaps are small");
        // An id is the permuted count in hex; this thread counts from its
        // stripe, a stripe's worth at a time.
        let first = ids.next();
        let stripe = (0..STRIPES as u64)
            .find(|&n| first == format!("{:016x}", ids.permute(n)))
            .expect("the first id of a stripe is its permuted index");
        let next = stripe + STRIPES as u64;
        assert_eq!(ids.next(), format!("{:016x}", ids.permute(next)));
        // Another process (another key) numbers its calls differently.
        assert_ne!(CallIds::new().permute(0), ids.permute(0));
    }

    #[test]
    fn threads_never_get_the_same_id() {
        let ids = CallIds::new();
        let all: Vec<String> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..3 * STRIPES)
                .map(|_| scope.spawn(|| (0..2_000).map(|_| ids.next()).collect::<Vec<_>>()))
                .collect();
            threads
                .into_iter()
                .flat_map(|thread| thread.join().unwrap_or_default())
                .collect()
        });
        assert_eq!(all.len(), 3 * STRIPES * 2_000);
        let distinct: HashSet<&String> = all.iter().collect();
        assert_eq!(distinct.len(), all.len());
        assert!(all.iter().all(|id| id.len() == 16));
    }
}
