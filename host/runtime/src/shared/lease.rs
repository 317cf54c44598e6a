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
    /// Slots: the store may count more under this node than `used +
    /// available` (spares dropped here and not given back yet, or a take
    /// whose answer never came), until the node tells it what it holds.
    unsettled: bool,
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
            unsettled: false,
        }
    }

    /// The pool under this lease's key changed (a reload, another config).
    /// Slots in use stay counted, spares stay held; a bucket starts afresh.
    pub(super) fn requota(&mut self, pool: Pool) {
        match (self.pool, pool) {
            (Pool::Slots { .. }, Pool::Slots { .. }) => self.pool = pool,
            _ => *self = Self::new(pool),
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
                self.unsettled |= self.available > 0;
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
        self.unsettled |= surplus > 0;
        surplus
    }

    /// Slots: whether the store may count more under this node than it
    /// holds.
    pub(super) fn unsettled(&self) -> bool {
        self.unsettled
    }

    /// Slots: the store may count more under this node than it holds.
    pub(super) fn unsettle(&mut self) {
        self.unsettled = true;
    }

    /// Slots: what this node holds (in use and spare), to tell the store;
    /// settled unless the request telling it goes unanswered.
    pub(super) fn settle(&mut self) -> u64 {
        self.unsettled = false;
        self.used + self.available
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
