//! State every call writes, kept in stripes: one per thread (threads past
//! [`STRIPES`] share), each on cache lines of its own.
//!
//! A counter that every call increments moves between the cores with each
//! call when two workers run calls side by side: each increment waits for
//! the line the other core wrote last. A stripe per thread keeps each
//! worker's writes on its own line; readers add the stripes up.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Stripes per value: more than the cores most hosts give a runtime.
pub(crate) const STRIPES: usize = 8;

/// One `T` per stripe, each aligned to its own pair of cache lines (the
/// CPU's adjacent-line prefetch pairs them).
#[derive(Debug)]
pub(crate) struct Striped<T> {
    stripes: Box<[Padded<T>]>,
}

#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded<T>(T);

impl<T> Striped<T> {
    /// Stripes made by `make(index)`.
    pub(crate) fn new(make: impl Fn(usize) -> T) -> Self {
        Self {
            stripes: (0..STRIPES).map(|index| Padded(make(index))).collect(),
        }
    }

    /// This thread's stripe.
    pub(crate) fn here(&self) -> &T {
        &self.stripes[stripe()].0
    }

    /// Every stripe, for a reader to add up.
    pub(crate) fn all(&self) -> impl Iterator<Item = &T> {
        self.stripes.iter().map(|padded| &padded.0)
    }
}

impl<T: Default> Default for Striped<T> {
    fn default() -> Self {
        Self::new(|_| T::default())
    }
}

/// This thread's stripe index: threads are numbered as they first ask.
fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
    }
    STRIPE.with(|stripe| *stripe)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;

    use super::*;

    #[test]
    fn each_stripe_has_lines_of_its_own_and_the_sum_sees_every_thread() {
        let counts: Striped<AtomicU64> = Striped::default();
        let lines: Vec<usize> = counts.all().map(|c| c as *const _ as usize).collect();
        assert!(lines.windows(2).all(|w| w[1] - w[0] >= 128));
        std::thread::scope(|scope| {
            for _ in 0..12 {
                scope.spawn(|| {
                    for _ in 0..1000 {
                        counts.here().fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        let total: u64 = counts.all().map(|c| c.load(Ordering::Relaxed)).sum();
        assert_eq!(total, 12_000);
    }
}
