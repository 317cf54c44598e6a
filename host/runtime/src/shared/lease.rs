//! What a node holds of one pool of the store: permits taken in a batch and
//! not used yet, and (for slots) those in use.

use std::time::{Duration, Instant};

use super::Pool;

/// One pool's permits held by this node.
#[derive(Debug)]
pub(super) struct Lease {
    pub(super) pool: Pool,
    /// Held and free to use: bucket permits (rate, fuel), or spare slots.
    available: u64,
    /// Slots in use (buckets: always 0).
    used: u64,
    /// When the store last granted permits.
    taken_at: Instant,
    /// When a call last took or gave back a permit.
    touched: Instant,
    /// A bucket the store said was empty: until when (no need to ask again).
    empty_until: Option<Instant>,
}

impl Lease {
    pub(super) fn new(pool: Pool) -> Self {
        let now = Instant::now();
        Self {
            pool,
            available: 0,
            used: 0,
            taken_at: now,
            touched: now,
            empty_until: None,
        }
    }

    pub(super) fn available(&self) -> u64 {
        self.available
    }

    /// Takes `n` held permits, if there are that many.
    pub(super) fn try_take(&mut self, n: u64) -> bool {
        if self.available < n {
            return false;
        }
        self.available -= n;
        if matches!(self.pool, Pool::Slots { .. }) {
            self.used += n;
        }
        self.touched = Instant::now();
        true
    }

    /// Adds `n` permits the store granted at `now`.
    pub(super) fn add(&mut self, n: u64, now: Instant) {
        self.available = self.available.saturating_add(n);
        if n > 0 {
            self.taken_at = now;
        }
    }

    /// Bucket permits held for a whole lease are dropped from the lease
    /// (to give back): a permit is used at most one lease after the store
    /// granted it. Slots are never stale while held.
    pub(super) fn drop_stale(&mut self, now: Instant, lease: Duration) -> u64 {
        match self.pool {
            Pool::Bucket { .. } if now.saturating_duration_since(self.taken_at) >= lease => {
                std::mem::take(&mut self.available)
            }
            _ => 0,
        }
    }

    /// Permits to give back because nobody used them: stale bucket
    /// permits, or spare slots untouched for half a lease.
    pub(super) fn idle(&mut self, now: Instant, lease: Duration) -> u64 {
        match self.pool {
            Pool::Bucket { .. } => self.drop_stale(now, lease),
            Pool::Slots { .. } if now.saturating_duration_since(self.touched) >= lease / 2 => {
                std::mem::take(&mut self.available)
            }
            Pool::Slots { .. } => 0,
        }
    }

    /// A slot in use is free again (a spare, until given back).
    pub(super) fn release(&mut self, n: u64, now: Instant) {
        let n = n.min(self.used);
        self.used -= n;
        self.available += n;
        self.touched = now;
    }

    /// Spare slots beyond `keep`, taken out of the lease to give back.
    pub(super) fn surplus(&mut self, keep: u64) -> u64 {
        let surplus = self.available.saturating_sub(keep);
        self.available -= surplus;
        surplus
    }

    /// A bucket the store found empty stays empty here for `wait` (at most
    /// `lease`), so refused calls do not each ask the store again.
    pub(super) fn empty_for(&mut self, now: Instant, wait: Duration, lease: Duration) {
        if let Pool::Bucket { .. } = self.pool {
            self.empty_until = Some(now + wait.min(lease));
        }
    }

    /// How long the bucket is still known to be empty, if it is.
    pub(super) fn known_empty(&self, now: Instant) -> Option<Duration> {
        self.empty_until
            .filter(|until| now < *until)
            .map(|until| until - now)
    }

    /// Unburned fuel comes back to the lease.
    pub(super) fn refund(&mut self, n: u64) {
        self.available = self.available.saturating_add(n);
    }
}
