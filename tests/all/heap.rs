//! A global allocator that counts the heap bytes each thread holds, so a
//! test on a current-thread runtime can read what the executor keeps
//! while calls wait, unmoved by the tests running beside it on other
//! threads. Bytes freed on another thread than the one that took them
//! count there; the tests that read it run everything on one thread.

// An allocator is unsafe to implement; this one only passes calls on.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, counting.
#[derive(Debug)]
pub struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// One more allocation on this thread (a `realloc` that moves counts too).
fn counted() {
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

fn add(bytes: isize) {
    // `try_with`: a thread being torn down frees without counting.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + bytes;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call goes to `System` unchanged; the count is a side effect.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            add(layout.size() as isize);
            counted();
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if !pointer.is_null() {
            add(layout.size() as isize);
            counted();
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        add(-(layout.size() as isize));
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(pointer, layout) }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if !moved.is_null() {
            add(new_size as isize - layout.size() as isize);
            if moved != pointer {
                counted();
            }
        }
        moved
    }
}

/// Heap bytes this thread has taken and not freed since it started.
pub fn live_here() -> isize {
    LIVE.with(Cell::get)
}

/// The most [`live_here`] has been since the last call of this, less what
/// it was then: this thread's heap high-water mark over a stretch of work.
pub fn peak_since_last() -> isize {
    let live = live_here();
    PEAK.with(|peak| peak.replace(live)) - live
}

/// Allocations this thread has made since it started (each `alloc`, and
/// each `realloc` that moved the block).
pub fn allocations_here() -> u64 {
    ALLOCATIONS.with(Cell::get)
}
