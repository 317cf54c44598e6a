//! Turns on the CPU for guests that compute past an epoch tick.
//!
//! A guest that computes through a tick yields to the runtime so other tasks
//! run. Yielding alone puts it back in the runtime's run queue: with 100
//! looping guests on 2 workers each waits about 50 ticks for its next turn,
//! and a guest whose deadline passes in that wait is stopped only when its
//! turn comes. So the queue of computing guests is kept here instead, out of
//! the run queue: at most one computing guest per worker holds a turn; the
//! others wait parked, in order, and so does a call that starts behind them.
//! A waiting guest whose deadline passes is taken out of the line and woken
//! by the guests holding turns at their next tick (or by the epoch ticker
//! when nobody computes); it never runs again: its call ends as a timeout at
//! once. A guest that blocks in a host call gives its turn to the next one;
//! back from it, it takes a turn at its first tick if one is free and
//! nobody waits, as a new call does. A guest holding a turn that reaches a
//! tick less than half a tick after it last resumed goes on to the next
//! tick: it has hardly computed.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// The line of computing guests of one engine.
#[derive(Debug)]
pub(crate) struct Turns {
    line: Mutex<Line>,
    /// Turns at once; `None` for the current runtime's worker count.
    slots: Option<usize>,
    /// How long a guest computes in one go before a tick makes it yield.
    min_slice: Duration,
    /// What the seats' resume times count from.
    base: Instant,
}

#[derive(Debug, Default)]
struct Line {
    /// Guests holding a turn.
    running: usize,
    /// Guests waiting for one, first in front.
    waiting: VecDeque<Arc<Seat>>,
    /// Counts every time a guest holding a turn came back for the next one,
    /// or a turn was given or given up: how the ticker sees the line move.
    moves: u64,
    /// `moves` at the ticker's last sweep, and sweeps since it changed.
    swept_at: u64,
    still: u32,
}

/// Ticker sweeps with waiters and no movement before a waiter is let in
/// beyond the slots. A guest holding a turn comes back every tick unless
/// whoever awaits its call stopped polling it (without dropping it); the
/// line must not stop for that.
const STILL_SWEEPS: u32 = 3;

/// Where one guest is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum At {
    /// Neither holding nor waiting for a turn.
    Out,
    Running,
    Waiting,
    /// Its deadline passed while it waited: it is not to run again.
    Expired,
}

impl At {
    fn from_u8(n: u8) -> Self {
        match n {
            1 => At::Running,
            2 => At::Waiting,
            3 => At::Expired,
            _ => At::Out,
        }
    }
}

#[derive(Debug)]
struct Seat {
    deadline: Instant,
    /// An [`At`]; changed only under the line's lock.
    at: AtomicU8,
    /// Whom to wake when a waiting seat is given a turn or expires.
    waker: Mutex<Option<Waker>>,
    /// What the guest's future is polled with as its waker (the seat, waking
    /// through this): in the seat's allocation, so a place costs two.
    relay: Relay,
}

impl Wake for Seat {
    fn wake(self: Arc<Self>) {
        self.relay.wake();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.relay.wake();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Seat {
    /// Moves the seat to `at`; a seat that stops waiting is woken. (Only a
    /// waiting seat has a waker: [`Granted`] is polled after `Waiting` is
    /// set, and checks the seat after it stores its waker.)
    fn set(&self, at: At) {
        let was = At::from_u8(self.at.swap(at as u8, Ordering::SeqCst));
        if was == At::Waiting
            && at != At::Waiting
            && let Some(waker) = lock(&self.waker).take()
        {
            waker.wake();
        }
    }

    fn at(&self) -> At {
        At::from_u8(self.at.load(Ordering::SeqCst))
    }
}

impl Turns {
    /// A line for an engine whose epoch ticks every `tick`: a guest that
    /// reaches a tick less than half a tick after it last resumed goes on
    /// without yielding (see [`Place::slice_spent`]).
    pub(crate) fn new(tick: Duration) -> Self {
        Self {
            line: Mutex::default(),
            slots: None,
            min_slice: tick / 2,
            base: Instant::now(),
        }
    }

    /// A line with a fixed number of turns at once (tests).
    #[cfg(test)]
    fn with_slots(slots: usize) -> Self {
        Self {
            slots: Some(slots),
            ..Self::new(Duration::from_millis(1))
        }
    }

    /// `at` as nanoseconds since the line was made.
    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }

    fn slots(&self) -> usize {
        thread_local! {
            /// The workers of the runtime this thread works for (a worker
            /// thread belongs to one runtime for life).
            static WORKERS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
        }
        self.slots.unwrap_or_else(|| {
            WORKERS.with(|workers| {
                if workers.get() == 0 {
                    workers.set(
                        tokio::runtime::Handle::try_current()
                            .map_or(1, |handle| handle.metrics().num_workers())
                            .max(1),
                    );
                }
                workers.get()
            })
        })
    }

    /// A place in the line for one store whose call ends at `deadline`.
    pub(crate) fn seat(self: &Arc<Self>, deadline: Instant) -> Arc<Place> {
        Arc::new(Place {
            turns: self.clone(),
            seat: Arc::new(Seat {
                deadline,
                at: AtomicU8::new(At::Out as u8),
                waker: Mutex::new(None),
                relay: Relay::default(),
            }),
            in_turn: AtomicBool::new(false),
            // The call's guard sets it before every poll; a store run
            // without one finds its slice spent at every tick and yields.
            resumed: AtomicU64::new(0),
            blocked: AtomicBool::new(false),
        })
    }

    /// Gives the turn `line` frees to the first waiter whose deadline has
    /// not passed; the others are woken as expired.
    fn hand_over(line: &mut Line, now: Instant) {
        line.moves += 1;
        while let Some(next) = line.waiting.pop_front() {
            if next.deadline <= now {
                next.set(At::Expired);
                continue;
            }
            next.set(At::Running);
            return;
        }
        line.running = line.running.saturating_sub(1);
    }

    /// Takes every waiter whose deadline is before `now` out of the line
    /// and wakes it.
    ///
    /// Guests holding turns do this at every tick, on a worker thread, so
    /// the woken tasks join that worker's queue and end within the tick. The
    /// epoch ticker does it too, a little later, for a line nobody is
    /// computing in; its wake-ups go through the runtime's shared queue,
    /// which a busy worker takes only one task from every few polls.
    ///
    /// A line that has not moved for [`STILL_SWEEPS`] sweeps lets its first
    /// waiter in beyond the slots, so a turn whose holder is never polled
    /// again slows the line down but never stops it.
    ///
    /// True while guests still wait for a turn.
    pub(crate) fn sweep(&self, now: Instant) -> bool {
        let mut line = lock(&self.line);
        Self::expire(&mut line, now);
        if line.waiting.is_empty() || line.moves != line.swept_at {
            line.swept_at = line.moves;
            line.still = 0;
            return !line.waiting.is_empty();
        }
        line.still += 1;
        if line.still >= STILL_SWEEPS
            && let Some(next) = line.waiting.pop_front()
        {
            line.running += 1;
            line.moves += 1;
            next.set(At::Running);
        }
        !line.waiting.is_empty()
    }

    /// Wakes the waiters whose deadline passed; true if there were any.
    fn expire(line: &mut Line, now: Instant) -> bool {
        if line.waiting.is_empty() || line.waiting.iter().all(|seat| seat.deadline > now) {
            return false;
        }
        line.waiting.retain(|seat| {
            let keep = seat.deadline > now;
            if !keep {
                seat.set(At::Expired);
            }
            keep
        });
        true
    }

    /// Guests waiting for a turn.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        lock(&self.line).waiting.len()
    }
}

/// One store's place in the line. Dropping it gives up whatever it holds.
#[derive(Debug)]
pub(crate) struct Place {
    turns: Arc<Turns>,
    seat: Arc<Seat>,
    /// Set while the guest is suspended in [`Place::next_turn`], so that
    /// suspension is not taken for a host call.
    in_turn: AtomicBool,
    /// When the guest's future was last polled (see [`Turns::nanos`]).
    resumed: AtomicU64,
    /// The guest's last suspension outside a turn was a host call that
    /// blocked (it did not wake itself, as a fuel yield does), and it has
    /// not reached a tick since it came back.
    blocked: AtomicBool,
}

/// How the waker a guest's future is polled with wakes: the task that last
/// polled it, noting that it did.
///
/// The waker is the place's seat, not the place itself: a waker may hold the
/// last reference to what it wakes, and it is woken under the line's lock (a
/// turn handed over), where dropping a place would take the lock again. A
/// seat gives up nothing when it is dropped.
#[derive(Debug, Default)]
struct Relay {
    /// Set when the guest's future is woken; cleared before each poll.
    woke: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl Relay {
    fn wake(&self) {
        self.woke.store(true, Ordering::SeqCst);
        if let Some(task) = &*lock(&self.task) {
            task.wake_by_ref();
        }
    }
}

impl Place {
    /// Takes a turn before the guest first runs: at once while there is
    /// room and nobody waits (`None`), otherwise the future to await, at the
    /// back of the line. A call starting behind a line of computing guests
    /// so waits parked, not in the run queue, and runs no slice early.
    pub(crate) fn enter(self: &Arc<Self>) -> Option<impl Future<Output = ()> + Send + 'static> {
        let turns = &self.turns;
        let mut line = lock(&turns.line);
        if !line.waiting.is_empty() {
            Turns::expire(&mut line, Instant::now());
        }
        if self.seat.at() != At::Out {
            return None;
        }
        if line.running < turns.slots() && line.waiting.is_empty() {
            line.running += 1;
            line.moves += 1;
            self.seat.set(At::Running);
            return None;
        }
        self.seat.set(At::Waiting);
        line.waiting.push_back(self.seat.clone());
        Some(Granted {
            seat: self.seat.clone(),
        })
    }

    /// Lets the worker's other tasks run, and the runtime poll for I/O and
    /// timers, before a guest that computed through a tick computes again.
    ///
    /// A turn handed over is a wake-up on the worker thread, which tokio
    /// runs next, ahead of the tasks already queued, up to three times in a
    /// row, and the runtime polls its sockets only every so many tasks. So
    /// without this, guests computing in turns could run for milliseconds
    /// back to back while calls that ended waited to answer and requests
    /// waited to be read. A yield is rescheduled only after the worker has
    /// run what is queued or polled for events.
    ///
    /// A yielding guest keeps its turn: given up, it would let every new
    /// call in to compute a first slice before any line formed (measured:
    /// 100 looping guests then ended 3.5-4.5 ms past their deadline at p99,
    /// against 1.1-1.4 ms). A call given its first turn does not yield: it
    /// has not computed yet, and in a burst of new calls each would hold its
    /// turn idle until the whole queue had run.
    async fn yield_to_others() {
        tokio::task::yield_now().await;
    }

    /// What a guest computing through a tick awaits before it goes on: a
    /// yield (see [`Place::yield_to_others`]), behind the rest of the line
    /// if others wait for a turn.
    pub(crate) fn next_turn(self: &Arc<Self>) -> impl Future<Output = ()> + Send + 'static {
        let turns = &self.turns;
        let mut line = lock(&turns.line);
        let now = Instant::now();
        Turns::expire(&mut line, now);
        line.moves += 1;
        let wait = match self.seat.at() {
            At::Out if line.running < turns.slots() && line.waiting.is_empty() => {
                line.running += 1;
                self.seat.set(At::Running);
                false
            }
            At::Running if line.waiting.is_empty() => false,
            At::Running => {
                Turns::hand_over(&mut line, now);
                self.seat.set(At::Waiting);
                line.waiting.push_back(self.seat.clone());
                true
            }
            At::Out => {
                self.seat.set(At::Waiting);
                line.waiting.push_back(self.seat.clone());
                true
            }
            At::Waiting | At::Expired => true,
        };
        drop(line);
        self.in_turn.store(true, Ordering::SeqCst);
        let place = self.clone();
        async move {
            if wait {
                Granted {
                    seat: place.seat.clone(),
                }
                .await;
            }
            Self::yield_to_others().await;
            place.in_turn.store(false, Ordering::SeqCst);
        }
    }

    /// The waker to poll the guest's future with: it wakes the task that
    /// last resumed the guest (see [`Place::resumed`]) and notes that it
    /// did, so that a poll ending pending tells a guest that woke itself (a
    /// yield) from one blocked in a host call.
    pub(crate) fn waker(&self) -> Waker {
        Waker::from(self.seat.clone())
    }

    /// The guest's future is about to be polled by the task `task` wakes:
    /// whatever it computes now is a new slice.
    pub(crate) fn resumed(&self, task: &Waker) {
        let now = self.turns.nanos(Instant::now());
        self.resumed.store(now, Ordering::Relaxed);
        self.seat.relay.woke.store(false, Ordering::SeqCst);
        let mut held = lock(&self.seat.relay.task);
        if !held.as_ref().is_some_and(|held| held.will_wake(task)) {
            *held = Some(task.clone());
        }
    }

    /// Whether a guest that reached a tick at `now` has computed long
    /// enough since it last resumed to yield to others.
    ///
    /// The epoch deadline is one tick after the last, not one tick of
    /// computing: a tick lands in a slice of a few microseconds as often
    /// as in a long one. A call in a burst of new calls that yielded then
    /// went behind the whole burst in the run queue, for nothing it had
    /// done (the p99 of 1,000 calls in flight). So a slice shorter than
    /// half a tick goes on to the next tick: a guest that computes without
    /// pause still yields within one and a half ticks.
    fn slice_spent(&self, now: Instant) -> bool {
        let ran = self
            .turns
            .nanos(now)
            .saturating_sub(self.resumed.load(Ordering::Relaxed));
        ran >= u64::try_from(self.turns.min_slice.as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whether a guest that reached a tick at `now` goes on computing
    /// without [`Place::next_turn`]: only if its slice is short (see
    /// [`Place::slice_spent`]), no waiter's deadline passed (their tasks
    /// wait on this worker to end), and it holds a turn, or it is back from
    /// a host call it blocked in and takes a free turn nobody waits for.
    ///
    /// A guest back from a block reaches its first tick at once: the epoch
    /// moved on while it waited. Sent through `next_turn`, it yielded to
    /// the back of the run queue before it could finish: with 1,000 sleeps
    /// waking together, that was an extra trip through the queue and about
    /// 5 µs of CPU per call. A guest back from a yield (out of fuel for its
    /// slice) has computed, and still goes through `next_turn`: let go on
    /// without a turn, such guests crowded out the line (measured: 100
    /// looping guests ended 7 ms past their deadline at p99).
    pub(crate) fn goes_on(&self, now: Instant) -> bool {
        let back = self.blocked.swap(false, Ordering::Relaxed);
        if self.slice_spent(now) {
            return false;
        }
        let turns = &self.turns;
        let mut line = lock(&turns.line);
        if Turns::expire(&mut line, now) {
            return false;
        }
        match self.seat.at() {
            At::Running => {}
            At::Out if back && line.running < turns.slots() && line.waiting.is_empty() => {
                line.running += 1;
                self.seat.set(At::Running);
            }
            _ => return false,
        }
        // The line moves: the ticker must not take the holder for one
        // that stopped, and let a waiter in beyond the slots.
        line.moves += 1;
        true
    }

    /// The guest's future returned pending: unless it is in a turn, it
    /// frees its turn for the next guest. It blocked in a host call unless
    /// it woke itself while it was polled (a yield).
    pub(crate) fn suspended(&self) {
        if !self.in_turn.load(Ordering::SeqCst) {
            let yielded = self.seat.relay.woke.load(Ordering::SeqCst);
            self.blocked.store(!yielded, Ordering::Relaxed);
            self.leave();
        }
    }

    fn leave(&self) {
        let mut line = lock(&self.turns.line);
        match self.seat.at() {
            At::Running => {
                Turns::hand_over(&mut line, Instant::now());
                self.seat.set(At::Out);
            }
            At::Waiting => {
                line.waiting.retain(|seat| !Arc::ptr_eq(seat, &self.seat));
                self.seat.set(At::Out);
            }
            At::Out | At::Expired => {}
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.leave();
    }
}

/// Ready once the seat holds a turn; an expired seat never does (the call's
/// guard ends the call instead).
struct Granted {
    seat: Arc<Seat>,
}

impl Future for Granted {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut waker = lock(&self.seat.waker);
        if self.seat.at() == At::Running {
            return Poll::Ready(());
        }
        match &mut *waker {
            Some(old) => old.clone_from(cx.waker()),
            None => *waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    type Pending = Pin<Box<dyn Future<Output = ()> + Send>>;

    fn turn(place: &Arc<Place>) -> Pending {
        Box::pin(place.next_turn())
    }

    fn poll(turn: &mut Pending) -> Poll<()> {
        turn.as_mut().poll(&mut Context::from_waker(Waker::noop()))
    }

    /// Polls the turn of a guest that was given one: it yields once to the
    /// worker's other tasks, then it is ready.
    fn given(turn: &mut Pending) -> bool {
        poll(turn) == Poll::Pending && poll(turn) == Poll::Ready(())
    }

    fn later(ms: u64) -> Instant {
        Instant::now() + Duration::from_millis(ms)
    }

    /// A line of one slot whose turn a runner holds, with the runner's
    /// turn future (kept, never polled again).
    fn held() -> (Arc<Turns>, Arc<Place>, Pending) {
        let turns = Arc::new(Turns::with_slots(1));
        let runner = turns.seat(later(60_000));
        let running = turn(&runner);
        (turns, runner, running)
    }

    #[test]
    fn computing_guests_beyond_the_slots_wait_in_line_and_take_turns() {
        let turns = Arc::new(Turns::with_slots(1));
        let (a, b) = (turns.seat(later(60_000)), turns.seat(later(60_000)));
        let mut first = turn(&a);
        assert_eq!(a.seat.at(), At::Running, "a free slot is taken at once");
        let mut second = turn(&b);
        assert_eq!(b.seat.at(), At::Waiting, "the one slot is held");
        assert_eq!(poll(&mut second), Poll::Pending);
        assert_eq!(poll(&mut first), Poll::Pending, "a plain yield first");
        assert_eq!(poll(&mut first), Poll::Ready(()));
        // `a` computes through another tick: `b` is waiting, so `a` hands
        // the turn over and goes to the back.
        let mut third = turn(&a);
        assert_eq!(a.seat.at(), At::Waiting);
        assert!(given(&mut second));
        assert_eq!(poll(&mut third), Poll::Pending);
        assert_eq!(turns.waiting(), 1);
    }

    #[test]
    fn a_waiter_whose_deadline_passed_is_taken_out_and_never_gets_the_turn() {
        let (turns, runner, _running) = held();
        let late = turns.seat(Instant::now());
        let mut waiting = turn(&late);
        assert_eq!(poll(&mut waiting), Poll::Pending);
        turns.sweep(Instant::now());
        assert_eq!(turns.waiting(), 0, "the expired waiter left the line");
        assert_eq!(late.seat.at(), At::Expired);
        assert_eq!(
            poll(&mut waiting),
            Poll::Pending,
            "an expired guest is never resumed"
        );
        // The guest holding the turn expires waiters at its next tick, and
        // handing over skips expired waiters too.
        let other = turns.seat(later(300));
        drop(turn(&other));
        let also = turns.seat(later(60_000));
        drop(turn(&also));
        assert_eq!(turns.waiting(), 2);
        std::thread::sleep(Duration::from_millis(400));
        drop(turn(&runner));
        assert_eq!(other.seat.at(), At::Expired);
        assert_eq!(also.seat.at(), At::Running);
        assert_eq!(turns.waiting(), 1, "the runner went to the back");
    }

    #[test]
    fn a_guest_blocked_in_a_host_call_frees_its_turn() {
        let turns = Arc::new(Turns::with_slots(1));
        let (a, b) = (turns.seat(later(60_000)), turns.seat(later(60_000)));
        let mut yielding = turn(&a);
        assert_eq!(poll(&mut yielding), Poll::Pending, "a plain yield first");
        a.suspended();
        assert_eq!(a.seat.at(), At::Running, "suspended in its turn: kept");
        assert_eq!(poll(&mut yielding), Poll::Ready(()));
        a.suspended();
        assert_eq!(a.seat.at(), At::Out, "suspended in a host call: freed");
        drop(turn(&b));
        assert_eq!(b.seat.at(), At::Running, "the freed turn went to the next");
    }

    #[test]
    fn a_call_starting_behind_a_line_waits_for_its_turn_before_running() {
        let turns = Arc::new(Turns::with_slots(1));
        let runner = turns.seat(later(60_000));
        assert!(runner.enter().is_none(), "room: it runs at once");
        let starter = turns.seat(later(60_000));
        let mut entering: Pending = Box::pin(starter.enter().expect("no room: it waits"));
        assert_eq!(poll(&mut entering), Poll::Pending);
        // The runner computes through a tick and hands its turn over.
        let mut back = turn(&runner);
        assert_eq!(
            poll(&mut entering),
            Poll::Ready(()),
            "it has not computed yet: no yield"
        );
        assert_eq!(poll(&mut back), Poll::Pending);
        // Finishing gives the turn back to the runner.
        drop(entering);
        drop(starter);
        assert!(given(&mut back));
    }

    #[test]
    fn a_turn_never_given_back_does_not_stop_the_line() {
        // The runner takes the turn and yields; whoever awaits its call
        // never polls it again.
        let (turns, _stuck, _stuck_turn) = held();
        let waiter = turns.seat(later(60_000));
        let mut waiting: Pending = Box::pin(waiter.enter().expect("no room: it waits"));
        // One sweep sees the waiter join; then the line stands still.
        for _ in 0..=STILL_SWEEPS {
            assert_eq!(poll(&mut waiting), Poll::Pending);
            turns.sweep(Instant::now());
        }
        assert_eq!(
            poll(&mut waiting),
            Poll::Ready(()),
            "let in beyond the slots"
        );
        assert_eq!(turns.waiting(), 0);
    }

    #[test]
    fn dropping_a_place_leaves_the_line_and_frees_its_turn() {
        let (turns, runner, running) = held();
        let waiter = turns.seat(later(60_000));
        let waiting = turn(&waiter);
        assert_eq!(turns.waiting(), 1);
        drop(waiting);
        drop(waiter);
        assert_eq!(turns.waiting(), 0);
        drop(running);
        drop(runner);
        assert_eq!(lock(&turns.line).running, 0);
    }

    #[test]
    fn a_task_waiting_for_the_worker_runs_between_two_turns() {
        use std::sync::atomic::AtomicUsize;
        // Three guests computing in turns on one worker, and tasks spawned
        // from outside the runtime while they do (a request read, a timer
        // fired). Without a yield after each hand-over, the guests ran back
        // to back, up to four slices at a time, and the runtime looked
        // outside its own queue only every 31 rounds: over a hundred slices.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let turns = Arc::new(Turns::with_slots(1));
        let slices = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let guests: Vec<_> = (0..3)
            .map(|_| {
                let (place, slices, stop) =
                    (turns.seat(later(60_000)), slices.clone(), stop.clone());
                runtime.spawn(async move {
                    while !stop.load(Ordering::SeqCst) {
                        let start = Instant::now();
                        while start.elapsed() < Duration::from_micros(200) {}
                        slices.fetch_add(1, Ordering::SeqCst);
                        place.next_turn().await;
                    }
                })
            })
            .collect();
        while slices.load(Ordering::SeqCst) < 10 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut most = 0;
        for _ in 0..10 {
            let before = slices.load(Ordering::SeqCst);
            let counter = slices.clone();
            let ran_at = runtime
                .block_on(runtime.spawn(async move { counter.load(Ordering::SeqCst) }))
                .unwrap();
            most = most.max(ran_at - before);
        }
        stop.store(true, Ordering::SeqCst);
        for guest in guests {
            runtime.block_on(guest).unwrap();
        }
        assert!(most <= 3, "{most} slices ran before a waiting task");
    }

    /// A guest polled once that ends pending; `yields` when it wakes itself
    /// while polled, as a fuel yield does.
    fn suspend(place: &Arc<Place>, yields: bool) {
        place.resumed(Waker::noop());
        if yields {
            place.waker().wake_by_ref();
        }
        place.suspended();
        place.resumed(Waker::noop());
    }

    #[test]
    fn a_guest_back_from_a_block_takes_a_free_turn_at_its_first_tick() {
        let turns = Arc::new(Turns::with_slots(1));
        let (sleeper, other) = (turns.seat(later(60_000)), turns.seat(later(60_000)));
        suspend(&sleeper, false);
        assert_eq!(sleeper.seat.at(), At::Out);
        assert!(sleeper.goes_on(Instant::now()), "a free turn, no yield");
        assert_eq!(sleeper.seat.at(), At::Running);
        assert_eq!(lock(&turns.line).running, 1);
        // With the one turn held, the next one back goes through the line.
        suspend(&other, false);
        assert!(!other.goes_on(Instant::now()), "no free turn");
        assert_eq!(other.seat.at(), At::Out);
        drop(sleeper);
        assert!(
            !other.goes_on(Instant::now()),
            "the pass is for the first tick back only"
        );
    }

    #[test]
    fn a_guest_back_from_a_yield_goes_through_the_line() {
        let turns = Arc::new(Turns::with_slots(1));
        let looper = turns.seat(later(60_000));
        suspend(&looper, true);
        assert!(!looper.goes_on(Instant::now()), "it computed: next_turn");
        assert_eq!(looper.seat.at(), At::Out);
        assert_eq!(lock(&turns.line).running, 0);
    }

    #[test]
    fn a_place_wakes_the_task_that_last_resumed_its_guest() {
        use std::sync::atomic::AtomicUsize;
        #[derive(Default)]
        struct Count(AtomicUsize);
        impl Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let turns = Arc::new(Turns::with_slots(1));
        let place = turns.seat(later(60_000));
        let (first, second) = (Arc::new(Count::default()), Arc::new(Count::default()));
        let waker = place.waker();
        place.resumed(&Waker::from(first.clone()));
        waker.wake_by_ref();
        place.resumed(&Waker::from(second.clone()));
        waker.wake();
        assert_eq!(first.0.load(Ordering::SeqCst), 1);
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
        assert!(place.seat.relay.woke.load(Ordering::SeqCst));
        place.resumed(&Waker::from(second.clone()));
        assert!(
            !place.seat.relay.woke.load(Ordering::SeqCst),
            "cleared at each poll"
        );
    }

    #[test]
    fn a_waiter_dropped_with_only_its_waker_left_does_not_stop_the_line() {
        // The waker a waiting guest was polled with is woken under the
        // line's lock when the turn is handed over; if it held the last
        // reference to the place, dropping it there took the lock again.
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (turns, runner, _running) = held();
            let waiter = turns.seat(later(60_000));
            let waker = waiter.waker();
            let mut waiting = turn(&waiter);
            let polled = waiting.as_mut().poll(&mut Context::from_waker(&waker));
            assert_eq!(polled, Poll::Pending);
            drop((waiting, waker, waiter));
            drop(turn(&runner));
            let _ = done.send(lock(&turns.line).running);
        });
        let running = finished
            .recv_timeout(Duration::from_secs(20))
            .expect("the line deadlocked");
        assert_eq!(running, 1);
    }

    #[test]
    fn a_tick_early_in_a_held_slice_is_gone_through_and_a_late_one_is_not() {
        let (turns, runner, _running) = held();
        runner.resumed(Waker::noop());
        let early = Instant::now();
        assert!(runner.goes_on(early), "a short slice goes on");
        assert!(
            !runner.goes_on(early + turns.min_slice),
            "a slice of half a tick yields"
        );
        let outside = turns.seat(later(60_000));
        outside.resumed(Waker::noop());
        assert!(
            !outside.goes_on(Instant::now()),
            "a guest without a turn goes through the line"
        );
        assert_eq!(outside.seat.at(), At::Out);
        // A waiter whose deadline passes must end now, not a tick later.
        let late = turns.seat(Instant::now());
        let mut waiting = turn(&late);
        assert_eq!(late.seat.at(), At::Waiting);
        runner.resumed(Waker::noop());
        assert!(
            !runner.goes_on(Instant::now()),
            "an expired waiter is woken"
        );
        assert_eq!(late.seat.at(), At::Expired);
        assert_eq!(poll(&mut waiting), Poll::Pending);
    }
}
