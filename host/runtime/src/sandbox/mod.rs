//! One call, one sandbox: a fresh [`Store`] and instance per call, with a
//! memory cap, fuel, a deadline and only the capabilities the policy grants.
//!
//! [`wasi_ctx`] is the one place a policy becomes a WASI context. Its secure
//! defaults: no preopened directories, no environment, no arguments, no
//! sockets and no name lookups, stdin empty, stdout dropped as it is written
//! and stderr captured (capped, for a panic's message) rather than inherited,
//! and a wall clock frozen at the Unix epoch unless the policy grants the
//! real one.

mod addr;
mod baseline;
mod capture;
mod dynamic;
mod grants;
mod hold;
mod host;
mod http;
mod limiter;
mod net;
mod redact;
mod refusals;
mod stack;

use std::future::poll_fn;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi::{FsPerms, HostWallClock, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

pub use self::baseline::Baseline;
pub(crate) use self::capture::Capture;
pub(crate) use self::dynamic::{Exports, Pre, invoke};
pub(crate) use self::grants::Grants;
pub(crate) use self::hold::hold;
pub use self::host::GuestEvent;
pub(crate) use self::host::GuestSink;
use self::limiter::Limiter;
use crate::Engine;
use crate::bindings::{Tool, ToolPre, ToolSpec};
use crate::lift;
use crate::outcome::{Outcome, ToolErrorKind};
use crate::policy::Limits;
use crate::turns::Place;

/// How much of a guest's stderr is kept per call: the first half and the
/// last.
const CAPTURE_BYTES: usize = 16 << 10;

/// Everything a store holds for one call.
pub(crate) struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: Limiter,
    pub(crate) scope: host::Scope,
    http: WasiHttpCtx,
    outbound: http::Outbound,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

/// The one function that turns a policy's grants into a WASI context.
/// Outbound HTTP is decided per request by [`http::Outbound`], built from
/// the same grants in [`new_store`].
///
/// Stdout is the builder's own sink: writes succeed and nothing is kept,
/// since nothing reads it (a tool answers through its output, and logs
/// through the host's `log`).
///
/// Fails only if a granted directory can no longer be opened.
fn wasi_ctx(grants: &Grants, stderr: &Capture) -> Result<WasiCtx, String> {
    let mut builder = WasiCtx::builder();
    builder
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }));
    if !grants.wall_clock {
        builder.wall_clock(FrozenClock);
    }
    for (name, value) in &grants.env {
        builder.env(name, value);
    }
    for (guest, host) in &grants.dirs {
        // cap-std underneath: `..`, absolute paths and symlinks that lead
        // outside the directory are refused by the host, whatever the guest does.
        builder
            .preopened_dir(host, guest, FsPerms::ReadOnly)
            .map_err(|e| {
                format!(
                    "the granted directory {guest} ({}) could not be opened: {e:#}",
                    host.display()
                )
            })?;
    }
    Ok(builder.build())
}

/// A wall clock that always reads 1970-01-01T00:00:00Z.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

/// Why the host stopped a guest: raised from the epoch callback or the timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum Interrupt {
    #[error("deadline passed")]
    Deadline,
    #[error("cancelled")]
    Cancelled,
}

/// The linker every tool is instantiated with: all of WASI Preview 2 and
/// `wasi:http` (inert unless granted) plus the `toolhost:tool/host` interface.
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<State>> {
    let mut linker = Linker::new(engine.wasmtime());
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    Tool::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
    Ok(linker)
}

/// What one run of a guest produced, besides its outcome.
#[derive(Debug)]
pub(crate) struct Run<T> {
    pub(crate) result: Result<T, Outcome>,
    pub(crate) fuel_used: Option<u64>,
    pub(crate) memory_peak: Option<u64>,
}

impl<T> Run<T> {
    fn not_run(outcome: Outcome) -> Self {
        Self {
            result: Err(outcome),
            fuel_used: None,
            memory_peak: None,
        }
    }
}

/// Identifies a call in logs and events.
#[derive(Clone)]
pub(crate) struct CallInfo {
    pub(crate) call_id: Arc<str>,
    pub(crate) tool: Arc<str>,
    pub(crate) cancel: Option<CancellationToken>,
    pub(crate) events: Option<Arc<dyn GuestSink>>,
    /// Where the call's security events go, if anywhere.
    pub(crate) audit: Option<Arc<crate::audit::CallAudit>>,
}

/// Fuel between the points where wasmtime records what a guest burned: about
/// a millisecond of a tight loop on the development machine.
const FUEL_SLICE: u64 = 2_000_000;

/// A fresh store for one call, with limits set and the deadline armed, and
/// its place in the engine's line of computing guests.
fn new_store(
    engine: &Engine,
    grants: &Grants,
    limits: &Limits,
    call: CallInfo,
    deadline: Instant,
) -> Result<(Store<State>, Capture, Arc<Place>), Outcome> {
    let stderr = Capture::new(CAPTURE_BYTES);
    let wasi = wasi_ctx(grants, &stderr).map_err(|message| Outcome::Trap {
        message: format!("the sandbox could not be set up: {message}"),
    })?;
    if let Some(audit) = &call.audit {
        for (guest, host) in &grants.dirs {
            audit.record(
                crate::AuditEvent::new("capability")
                    .with("capability", "directory")
                    .with("target", guest.as_str())
                    .with("host_path", host.display().to_string())
                    .with("allowed", true),
            );
        }
    }
    let state = State {
        wasi,
        table: ResourceTable::new(),
        limiter: Limiter::new(usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX)),
        outbound: http::Outbound::new(grants.http.clone(), limits.http, &call),
        http: WasiHttpCtx::new(),
        scope: host::Scope::new(call),
    };
    let mut store = Store::new(engine.wasmtime(), state);
    store.limiter(|state| &mut state.limiter);
    // What the guest may pass to the host in one piece; `describe` and plain
    // exports set their own.
    store.set_hostcall_fuel(lift::invoke_budget(limits));
    if engine.config().fuel {
        // A store with fuel counting on starts empty; this cannot fail then.
        let _ = store.set_fuel(limits.fuel);
        // Fuel is handed to the guest a slice at a time. wasmtime writes the
        // fuel a guest burned back to the store only when it calls, returns
        // or runs out of a slice, not when an epoch deadline stops it: without
        // slices, a guest stopped mid-loop would be charged only what it used
        // before the loop, and its tenant's fuel quota would never see it.
        let _ = store.fuel_async_yield_interval(Some(FUEL_SLICE));
    }
    store.set_epoch_deadline(1);
    let place = engine.turns().seat(deadline);
    let turns = place.clone();
    store.epoch_deadline_callback(move |store| {
        if store
            .data()
            .scope
            .call
            .cancel
            .as_ref()
            .is_some_and(CancellationToken::is_cancelled)
        {
            return Err(Interrupt::Cancelled.into());
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Interrupt::Deadline.into());
        }
        if turns.goes_on(now) {
            return Ok(UpdateDeadline::Continue(1));
        }
        // Other tasks run first; with more computing guests than workers,
        // this one waits its turn out of the run queue (see `turns`).
        Ok(UpdateDeadline::YieldCustom(1, Box::pin(turns.next_turn())))
    });
    Ok((store, stderr, place))
}

/// Runs `describe` in a fresh instance under `limits`. What it returns is
/// refused while it is read if it takes more than `budget` bytes
/// (`output-too-large`): strings count their length, each spec its host size.
pub(crate) async fn describe(
    engine: &Engine,
    pre: &ToolPre<State>,
    grants: &Grants,
    limits: &Limits,
    call: CallInfo,
    budget: usize,
) -> Run<Vec<ToolSpec>> {
    let deadline = Instant::now() + limits.timeout;
    let cancel = call.cancel.clone();
    let (mut store, stderr, place) = match new_store(engine, grants, limits, call, deadline) {
        Ok(made) => made,
        Err(outcome) => return Run::not_run(outcome),
    };
    store.set_hostcall_fuel(budget.max(lift::FLOOR));
    let result = {
        let work = pin!(async {
            let tool = pre.instantiate_async(&mut store).await?;
            tool.call_describe(&mut store).await
        });
        guard(engine, work, deadline, cancel.as_ref(), &place).await
    };
    finish(store, result.map(Ok), &stderr, limits)
}

/// Runs `invoke(name, input)` in a fresh instance under `limits`.
/// ([`invoke`] dispatches here for `toolhost:tool` components.)
async fn invoke_tool(
    engine: &Engine,
    pre: &ToolPre<State>,
    grants: &Grants,
    limits: &Limits,
    call: CallInfo,
    name: &str,
    input: &str,
) -> Run<String> {
    let deadline = Instant::now() + limits.timeout;
    let cancel = call.cancel.clone();
    let (mut store, stderr, place) = match new_store(engine, grants, limits, call, deadline) {
        Ok(made) => made,
        Err(outcome) => return Run::not_run(outcome),
    };
    let result = {
        let work = pin!(async {
            // Boxed: instantiating's future is over a kilobyte and is over
            // before the guest runs. Inline, it kept its room in the call's
            // future for as long as the guest ran or waited.
            let tool = Box::pin(pre.instantiate_async(&mut store)).await?;
            tool.call_invoke(&mut store, name, input).await
        });
        guard(engine, work, deadline, cancel.as_ref(), &place).await
    };
    let cap = usize::try_from(limits.max_output_bytes).unwrap_or(usize::MAX);
    let result = result.map(|returned| match returned {
        Ok(text) if text.len() > cap => Err(Outcome::OutputTooLarge {
            message: format!(
                "the output is {} bytes, over the limit of {cap} bytes",
                text.len()
            ),
        }),
        Ok(text) => Ok(text),
        Err(error) => Err(tool_error(error, cap)),
    });
    finish(store, result, &stderr, limits)
}

/// Races the guest against its deadline and its cancellation. The epoch
/// callback stops guests that compute; this stops guests blocked in a host
/// call (a sleep, say), whose future is dropped and so torn down.
///
/// Most calls finish on their first poll, so the timer and the cancellation
/// future are only set up for a call that has to wait.
///
/// Every poll checks the clock before the guest: a guest woken past its
/// deadline while it waited for a turn (see `turns`) ends at once,
/// without being resumed, even before the runtime's timer has fired. A
/// guest left pending outside its turn gives its turn to the next computing
/// guest. The guest is polled with its place's waker, so the place can
/// tell a yield (the guest woke itself) from a block in a host call.
///
/// `work` is pinned by the caller: moved in and pinned here, the guest's
/// future (over a kilobyte) took its room twice in every call's future.
async fn guard<T>(
    engine: &Engine,
    mut work: Pin<&mut impl Future<Output = wasmtime::Result<T>>>,
    deadline: Instant,
    cancel: Option<&CancellationToken>,
    place: &Arc<Place>,
) -> wasmtime::Result<T> {
    let waker = place.waker();
    let mut step = poll_fn(|cx| {
        // The epoch ticks while the guest may compute: while it is polled.
        let _busy = engine.busy();
        place.resumed(cx.waker());
        let polled = work.as_mut().poll(&mut Context::from_waker(&waker));
        if polled.is_pending() {
            place.suspended();
        }
        polled
    });
    let queued = place.enter();
    if queued.is_some() {
        // In line: the ticker sweeps it, whoever holds the turns.
        drop(engine.busy());
    } else {
        let first = poll_fn(|cx| Poll::Ready(Pin::new(&mut step).poll(cx))).await;
        if let Poll::Ready(result) = first {
            return result;
        }
    }
    let cancelled = async {
        match cancel {
            Some(cancel) => cancel.cancelled().await,
            None => std::future::pending().await,
        }
    };
    let passed = poll_fn(|_| {
        if Instant::now() >= deadline {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    });
    let run = async {
        if let Some(turn) = queued {
            turn.await;
        }
        step.await
    };
    tokio::select! {
        biased;
        () = cancelled => Err(Interrupt::Cancelled.into()),
        () = passed => Err(Interrupt::Deadline.into()),
        () = tokio::time::sleep_until(deadline.into()) => Err(Interrupt::Deadline.into()),
        result = run => result,
    }
}

/// A tool error as an outcome, its text cut to `cap` bytes (the output cap).
fn tool_error(error: crate::bindings::ToolError, cap: usize) -> Outcome {
    use crate::bindings::ToolError as E;
    let (error, message) = match error {
        E::InvalidInput(m) => (ToolErrorKind::InvalidInput, m),
        E::Failed(m) => (ToolErrorKind::Failed, m),
        E::Retryable(m) => (ToolErrorKind::Retryable, m),
        E::Denied(m) => (ToolErrorKind::Denied, m),
    };
    Outcome::ToolError {
        error,
        message: lift::cap_text(message, cap),
    }
}

/// Reads what the store knows (fuel, memory, stderr) and settles the outcome.
fn finish<T>(
    store: Store<State>,
    result: wasmtime::Result<Result<T, Outcome>>,
    stderr: &Capture,
    limits: &Limits,
) -> Run<T> {
    let fuel_used = store
        .get_fuel()
        .ok()
        .map(|left| limits.fuel.saturating_sub(left));
    let limiter = &store.data().limiter;
    let memory_peak = Some(limiter.peak as u64);
    let result = match result {
        // A guest that was told it is cancelled and returned early gave a
        // reaction to the cancellation, not an answer.
        Ok(_) if store.data().scope.told_cancelled => Err(Outcome::Cancelled {
            message: "the call was cancelled; the tool saw it and stopped early".into(),
        }),
        Ok(result) => result,
        Err(error) if lift::is_over_budget(&error) => Err(lift::over_budget(store.hostcall_fuel())),
        Err(error) => Err(classify(&error, limiter.refused, stderr, limits)),
    };
    Run {
        result,
        fuel_used,
        memory_peak,
    }
}

fn classify(
    error: &wasmtime::Error,
    memory_refused: bool,
    stderr: &Capture,
    limits: &Limits,
) -> Outcome {
    if let Some(interrupt) = error.downcast_ref::<Interrupt>() {
        return match interrupt {
            Interrupt::Deadline => Outcome::Timeout {
                message: format!(
                    "deadline of {} ms passed; the call was stopped",
                    limits.timeout.as_millis()
                ),
            },
            Interrupt::Cancelled => Outcome::Cancelled {
                message: "the call was cancelled and stopped".into(),
            },
        };
    }
    if memory_refused {
        return Outcome::MemoryLimit {
            message: format!(
                "the tool tried to grow its memory past the cap of {} MiB and was stopped",
                limits.memory_bytes >> 20
            ),
        };
    }
    let guest_said = panic_message(stderr);
    let message = match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => {
            return Outcome::OutOfFuel {
                message: format!(
                    "the tool used its whole fuel budget of {} and was stopped",
                    limits.fuel
                ),
            };
        }
        Some(Trap::StackOverflow) => {
            "stack overflow: the tool ran out of call stack (recursion too deep?)".to_string()
        }
        Some(Trap::MemoryOutOfBounds) if stack::is_shadow_stack_overflow(error) => {
            "stack overflow: the tool's stack in linear memory ran below address 0 \
             (recursion too deep?)"
                .to_string()
        }
        Some(Trap::UnreachableCodeReached) => match guest_said {
            Some(panic) => format!("the tool panicked: {panic}"),
            None => "the tool trapped: wasm `unreachable` executed".to_string(),
        },
        Some(trap) => format!("the tool trapped: {trap}"),
        None => format!("the tool failed to run: {error:#}"),
    };
    Outcome::Trap { message }
}

/// The panic line a Rust guest writes to stderr before it aborts, if any:
/// the last one, since a guest may have logged the words before.
fn panic_message(stderr: &Capture) -> Option<String> {
    let (text, _) = stderr.text();
    let start = text.rfind("panicked at ")?;
    let panic: String = text[start..]
        .lines()
        .take_while(|line| !line.starts_with("note:"))
        .collect::<Vec<_>>()
        .join(" ");
    Some(panic.chars().take(1000).collect())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::thread;

    use super::*;

    /// Runs `guard` over `work` on a runtime of its own thread: a flag set
    /// once it returned, and the thread.
    fn run(
        engine: &Engine,
        work: impl Future<Output = wasmtime::Result<()>> + Send + 'static,
        cancel: CancellationToken,
    ) -> (Arc<AtomicBool>, thread::JoinHandle<wasmtime::Result<()>>) {
        let (engine, done) = (engine.clone(), Arc::new(AtomicBool::new(false)));
        let finished = done.clone();
        let handle = thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(60);
            let place = engine.turns().seat(deadline);
            let result =
                runtime.block_on(guard(&engine, pin!(work), deadline, Some(&cancel), &place));
            finished.store(true, Ordering::SeqCst);
            result
        });
        (done, handle)
    }

    #[test]
    fn a_guest_blocked_in_a_host_call_lets_the_epoch_rest() {
        let engine = Engine::small();
        let cancel = CancellationToken::new();
        let (done, handle) = run(
            &engine,
            async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(())
            },
            cancel.clone(),
        );
        // The ticker may run a few ticks after the first poll; then it stops
        // while the guest waits.
        engine.settle();
        assert!(!done.load(Ordering::SeqCst), "the call is still in flight");
        cancel.cancel();
        assert!(handle.join().unwrap().is_err(), "stopped as cancelled");
    }

    #[test]
    fn a_guest_computing_in_its_poll_keeps_the_epoch_ticking() {
        let engine = Engine::small();
        let ticks = engine.clone();
        // Computes without ever returning pending: only ticks made while it
        // is polled end it.
        let work = async move {
            let start = ticks.ticks();
            let give_up = Instant::now() + Duration::from_secs(10);
            while ticks.ticks() < start + 3 {
                if Instant::now() > give_up {
                    return Err(wasmtime::format_err!("no tick while computing"));
                }
                std::hint::spin_loop();
            }
            Ok(())
        };
        let (_, handle) = run(&engine, work, CancellationToken::new());
        handle.join().unwrap().unwrap();
    }
}
