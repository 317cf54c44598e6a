//! A pool of permits shared fairly between callers (tenant keys).
//!
//! A FIFO semaphore serves waiters in arrival order, so a caller that queues
//! a thousand calls makes every other caller wait behind all of them. Here,
//! whenever permits are free, they go to the waiting caller that holds the
//! fewest permits now (among callers that hold as many, the one served least
//! recently), and a caller's own waiters are served in order. A caller with one
//! call waiting is thus served at the next release, however many calls
//! others have queued: its wait is bounded by the calls in flight, not by
//! the queue.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

use super::keys::probe;

/// The pool. Permits are released when their [`FairPermit`] is dropped.
#[derive(Debug)]
pub(crate) struct FairPool {
    size: u64,
    state: Mutex<PoolState>,
    /// The most permits taken at once; written under the state's lock.
    peak: AtomicU64,
}

#[derive(Debug, Default)]
struct PoolState {
    free: u64,
    /// One caller's entry, kept beside the pool's counts rather than in the
    /// map: the first caller the pool meets while this is empty. With one
    /// caller (calls without a key) or one busy one, a grant and a release
    /// then touch only the lines the lock already brought, where a map
    /// entry was one more cache line taken from the core that last used
    /// the pool (on 2 threads most of a release's time went there).
    hot: Option<CallerState>,
    /// The other callers that hold permits or wait for some, and up to
    /// [`KEPT_IDLE`] (with `hot`) that did. Permits share the key.
    callers: HashMap<Arc<str>, CallerState>,
    /// Waiters queued now, across callers.
    queued: usize,
    /// Counts grants, so the caller served least recently is known.
    next_seq: u64,
}

/// Callers a pool keeps entries for while they hold nothing and wait for
/// nothing (see [`PoolState::forget`]).
const KEPT_IDLE: usize = 64;

#[derive(Debug)]
struct CallerState {
    /// The map's key, kept here so a grant finds it in the same lookup.
    key: Arc<str>,
    held: u64,
    /// When the caller was last granted permits (a `next_seq` value).
    last_grant: u64,
    /// Its waiters, in arrival order.
    queue: VecDeque<Waiter>,
}

impl CallerState {
    fn new(key: Arc<str>) -> Self {
        Self {
            key,
            held: 0,
            last_grant: 0,
            queue: VecDeque::new(),
        }
    }

    /// Holds nothing and waits for nothing: the pool forgets it.
    fn idle(&self) -> bool {
        self.held == 0 && self.queue.is_empty()
    }
}

#[derive(Debug)]
struct Waiter {
    permits: u64,
    grant: oneshot::Sender<FairPermit>,
}

/// Permits taken from a [`FairPool`]; dropping it gives them back.
#[derive(Debug)]
pub(crate) struct FairPermit {
    /// `None` once the permit was given back by hand (a grant nobody took).
    pool: Option<Arc<FairPool>>,
    caller: Arc<str>,
    permits: u64,
}

impl FairPermit {
    /// Moves up to `permits` of this permit's permits to a new holder: this
    /// permit gives back only what it keeps. Returns the pool, the caller
    /// and how many moved, for the new holder to give back.
    pub(crate) fn split_off(&mut self, permits: u64) -> Option<(Arc<FairPool>, Arc<str>, u64)> {
        let pool = self.pool.clone()?;
        let moved = permits.min(self.permits);
        self.permits -= moved;
        (moved > 0).then(|| (pool, self.caller.clone(), moved))
    }
}

impl Drop for FairPermit {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.put_back(&self.caller, self.permits);
        }
    }
}

impl PoolState {
    /// Whether `caller`'s entry is the one kept beside the counts.
    fn is_hot(&self, caller: &str) -> bool {
        self.hot.as_ref().is_some_and(|hot| *hot.key == *caller)
    }

    /// `caller`'s entry, if the pool knows it.
    fn entry(&self, caller: &str) -> Option<&CallerState> {
        if self.is_hot(caller) {
            self.hot.as_ref()
        } else {
            self.callers.get(caller)
        }
    }

    /// `caller`'s entry, if the pool knows it.
    fn entry_mut(&mut self, caller: &str) -> Option<&mut CallerState> {
        if self.is_hot(caller) {
            self.hot.as_mut()
        } else {
            self.callers.get_mut(caller)
        }
    }

    /// Callers the pool has an entry for.
    fn known(&self) -> usize {
        self.callers.len() + usize::from(self.hot.is_some())
    }

    fn give_back(&mut self, caller: &str, permits: u64) {
        self.free += permits;
        let idle = self.entry_mut(caller).is_some_and(|state| {
            state.held = state.held.saturating_sub(permits);
            state.idle()
        });
        if idle {
            self.forget(caller);
        }
    }

    /// Forgets an idle caller, unless the pool knows few callers: then its
    /// entry stays for its next call, which so finds its key in place (a
    /// caller whose calls run one at a time would otherwise make and drop
    /// an entry for each).
    fn forget(&mut self, caller: &str) {
        if self.known() <= KEPT_IDLE {
            return;
        }
        if self.is_hot(caller) {
            self.hot = None;
        } else {
            self.callers.remove(caller);
        }
    }

    /// Takes `permits` for `caller`.
    fn take(&mut self, caller: &str, permits: u64) {
        self.free -= permits;
        self.next_seq += 1;
        let seq = self.next_seq;
        self.know(caller);
        if let Some(state) = self.entry_mut(caller) {
            state.held += permits;
            state.last_grant = seq;
        }
    }

    /// The key `caller`'s entry holds, for a permit to share.
    fn key(&self, caller: &str) -> Arc<str> {
        self.entry(caller)
            .map_or_else(|| Arc::from(caller), |state| state.key.clone())
    }

    /// Makes an entry for `caller` if the pool has none.
    fn know(&mut self, caller: &str) {
        if self.entry(caller).is_some() {
            return;
        }
        let key: Arc<str> = Arc::from(caller);
        if self.hot.is_none() {
            self.hot = Some(CallerState::new(key));
        } else {
            self.callers
                .entry(key.clone())
                .or_insert_with(|| CallerState::new(key));
        }
    }

    /// Queues `waiter` behind `caller`'s other waiters.
    fn queue(&mut self, caller: &str, waiter: Waiter) {
        self.know(caller);
        let Some(state) = self.entry_mut(caller) else {
            return;
        };
        // Waiters that gave up leave their place; drop those in front.
        let mut gone = 0;
        while state.queue.front().is_some_and(|w| w.grant.is_closed()) {
            state.queue.pop_front();
            gone += 1;
        }
        state.queue.push_back(waiter);
        self.queued = self.queued + 1 - gone;
    }

    fn forget_if_idle(&mut self, caller: &str) {
        if self.entry(caller).is_some_and(CallerState::idle) {
            self.forget(caller);
        }
    }

    /// The caller to serve next: among those waiting, the one holding the
    /// fewest permits, then the one served least recently.
    fn next_caller(&self) -> Option<Arc<str>> {
        self.hot
            .iter()
            .chain(self.callers.values())
            .filter(|state| !state.queue.is_empty())
            .map(|state| (state.held, state.last_grant, &state.key))
            .min()
            .map(|(_, _, caller)| caller.clone())
    }

    fn pop(&mut self, caller: &str) -> Option<Waiter> {
        let waiter = self.entry_mut(caller)?.queue.pop_front();
        if waiter.is_some() {
            self.queued -= 1;
        }
        self.forget_if_idle(caller);
        waiter
    }
}

impl FairPool {
    /// A pool of `size` permits.
    pub(crate) fn new(size: u64) -> Arc<Self> {
        Self::with_peak(size, 0)
    }

    /// A pool of `size` permits that takes over the peak of the pool it
    /// replaces.
    pub(crate) fn with_peak(size: u64, peak: u64) -> Arc<Self> {
        Arc::new(Self {
            size,
            state: Mutex::new(PoolState {
                free: size,
                ..PoolState::default()
            }),
            peak: AtomicU64::new(peak),
        })
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The pool's size.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Permits free now.
    pub(crate) fn available(&self) -> u64 {
        self.lock().free
    }

    /// The most permits that were taken at once.
    pub(crate) fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }

    /// Waiters queued now.
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.lock().queued
    }

    /// Callers the pool has an entry for.
    #[cfg(test)]
    fn known(&self) -> usize {
        self.lock().known()
    }

    /// Takes `permits` for `caller` if they are free and nobody waits.
    #[cfg(test)]
    pub(crate) fn try_acquire(self: &Arc<Self>, caller: &str, permits: u64) -> Option<FairPermit> {
        self.try_take(caller, permits).then(|| FairPermit {
            pool: Some(self.clone()),
            caller: Arc::from(caller),
            permits,
        })
    }

    /// Takes `permits` for `caller` if they are free and nobody waits; the
    /// taker gives them back with [`FairPool::put_back`]. (A [`FairPermit`]
    /// does that by itself, but costs two shared counts per call.)
    pub(crate) fn try_take(self: &Arc<Self>, caller: &str, permits: u64) -> bool {
        let caller = probe(caller);
        let mut state = self.lock();
        if state.queued > 0 {
            // Serves whoever can be served first (and drops waiters that left).
            self.dispatch(&mut state);
        }
        if state.queued > 0 || state.free < permits {
            return false;
        }
        state.take(caller, permits);
        self.note_peak(&state);
        true
    }

    /// Gives back `permits` [`FairPool::try_take`] took for `caller`.
    pub(crate) fn put_back(self: &Arc<Self>, caller: &str, permits: u64) {
        let caller = probe(caller);
        let mut state = self.lock();
        state.give_back(caller, permits);
        if state.queued > 0 {
            self.dispatch(&mut state);
        }
    }

    /// Notes the permits out now if they are the most yet. Read first: a
    /// write on every grant would move the counter between the cores.
    fn note_peak(&self, state: &PoolState) {
        let out = self.size - state.free;
        if out > self.peak.load(Ordering::Relaxed) {
            self.peak.fetch_max(out, Ordering::Relaxed);
        }
    }

    /// Waits for `permits` for `caller`, served fairly against the other
    /// callers. Dropping the future gives up its place (and gives back
    /// permits granted to it but not yet taken). `None` only if the pool
    /// could never grant them (more than its size).
    pub(crate) async fn acquire(
        self: &Arc<Self>,
        caller: &str,
        permits: u64,
    ) -> Option<FairPermit> {
        if permits > self.size {
            return None;
        }
        let caller = probe(caller);
        let (grant, granted) = oneshot::channel();
        {
            let mut state = self.lock();
            state.queue(caller, Waiter { permits, grant });
            self.dispatch(&mut state);
        }
        granted.await.ok()
    }

    /// Takes `permits` for `caller` (they are free) and notes the peak.
    fn grant(self: &Arc<Self>, state: &mut PoolState, caller: &str, permits: u64) -> FairPermit {
        state.take(caller, permits);
        self.note_peak(state);
        let caller = state.key(caller);
        FairPermit {
            pool: Some(self.clone()),
            caller,
            permits,
        }
    }

    /// Grants free permits to waiters, fairest first, while the next one fits.
    fn dispatch(self: &Arc<Self>, state: &mut PoolState) {
        while let Some(caller) = state.next_caller() {
            let Some(first) = state.entry(&caller).and_then(|s| s.queue.front()) else {
                break;
            };
            if !first.grant.is_closed() && first.permits > state.free {
                // The fairest waiter does not fit yet: nobody jumps it.
                break;
            }
            let Some(waiter) = state.pop(&caller) else {
                break;
            };
            if waiter.grant.is_closed() {
                continue;
            }
            let permit = self.grant(state, &caller, waiter.permits);
            if let Err(mut unwanted) = waiter.grant.send(permit) {
                // It gave up just now: give the permits back here, under the lock.
                unwanted.pool = None;
                state.give_back(&caller, waiter.permits);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn until_waiting(pool: &FairPool, n: usize) {
        while pool.waiting() < n {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_quiet_caller_is_served_before_a_greedy_callers_queue() {
        let pool = FairPool::new(1);
        let held = pool.try_acquire("greedy", 1).unwrap();
        let greedy: Vec<_> = (0..3)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.acquire("greedy", 1).await.map(drop) })
            })
            .collect();
        until_waiting(&pool, 3).await;
        let quiet = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.acquire("quiet", 1).await })
        };
        until_waiting(&pool, 4).await;
        drop(held);
        let permit = quiet.await.unwrap().expect("the quiet caller is served");
        assert_eq!(pool.waiting(), 3, "the greedy calls still wait");
        drop(permit);
        for task in greedy {
            task.await.unwrap().unwrap();
        }
        assert_eq!(pool.available(), 1);
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_frees_its_place_and_its_grant() {
        let pool = FairPool::new(2);
        let held = pool.try_acquire("a", 2).unwrap();
        let gone = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.acquire("b", 1).await })
        };
        until_waiting(&pool, 1).await;
        gone.abort();
        let _ = gone.await;
        drop(held);
        assert_eq!(pool.available(), 2, "nothing is lost to a waiter that left");
        assert!(pool.acquire("c", 3).await.is_none(), "more than the pool");
        let _two = pool.acquire("c", 2).await.unwrap();
        assert!(pool.try_acquire("d", 1).is_none());
    }

    #[test]
    fn idle_callers_are_kept_only_while_few() {
        let pool = FairPool::new(1000);
        drop(pool.try_acquire("a", 1).unwrap());
        assert_eq!(
            pool.known(),
            1,
            "a caller between two calls keeps its entry"
        );
        let held: Vec<_> = (0..200)
            .map(|n| pool.try_acquire(&format!("caller {n}"), 1).unwrap())
            .collect();
        assert_eq!(pool.known(), 201);
        drop(held);
        assert_eq!(
            pool.known(),
            KEPT_IDLE,
            "idle callers beyond the few are forgotten"
        );
        assert_eq!(pool.available(), 1000);
    }

    #[test]
    fn the_first_callers_entry_is_kept_beside_the_counts_and_passes_on_when_forgotten() {
        let pool = FairPool::new(1000);
        let first = pool.try_acquire("first", 1).unwrap();
        let second = pool.try_acquire("second", 2).unwrap();
        {
            let state = pool.lock();
            assert_eq!(state.hot.as_ref().map(|s| &*s.key), Some("first"));
            assert!(!state.callers.contains_key("first"), "one entry per caller");
            assert_eq!(state.entry("first").map(|s| s.held), Some(1));
            assert_eq!(state.entry("second").map(|s| s.held), Some(2));
        }
        let others: Vec<_> = (0..100)
            .map(|n| pool.try_acquire(&format!("caller {n}"), 1).unwrap())
            .collect();
        drop(first);
        assert!(
            pool.lock().hot.is_none(),
            "an idle caller is forgotten while the pool knows many"
        );
        let third = pool.try_acquire("third", 3).unwrap();
        assert_eq!(pool.lock().hot.as_ref().map(|s| &*s.key), Some("third"));
        assert_eq!(pool.available(), 1000 - 2 - 100 - 3);
        drop((others, second, third));
        assert_eq!(pool.available(), 1000);
        assert_eq!(pool.known(), KEPT_IDLE);
    }

    #[tokio::test]
    async fn the_peak_counts_the_most_permits_out_at_once_and_outlives_its_pool() {
        let pool = FairPool::new(5);
        let a = pool.try_acquire("a", 2).unwrap();
        drop(a);
        let b = pool.try_acquire("b", 1).unwrap();
        assert_eq!(pool.peak(), 2, "a release does not lower it");
        let held = pool.try_acquire("c", 2).unwrap();
        assert_eq!(pool.peak(), 3);
        // Permits granted to a waiter count too.
        drop((b, held));
        let waiter = {
            let pool = pool.clone();
            let blocker = pool.try_acquire("d", 3).unwrap();
            let waiting = tokio::spawn({
                let pool = pool.clone();
                async move { pool.acquire("e", 4).await }
            });
            until_waiting(&pool, 1).await;
            drop(blocker);
            waiting.await.unwrap().unwrap()
        };
        assert_eq!(pool.peak(), 4);
        drop(waiter);
        assert_eq!(FairPool::with_peak(5, pool.peak()).peak(), 4);
    }
}
