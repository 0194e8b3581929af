//! A counting global allocator for tests that bound memory: per thread, the
//! bytes currently allocated, their peak, and the number of allocations.
//! Include it with `#[path = "common/counting_alloc.rs"] mod counting_alloc;`
//! in a test binary (it installs itself as that binary's global allocator)
//! and run the measured work on a current-thread runtime, so that
//! everything it allocates is counted on the test's thread.

#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
    static CALLS: Cell<u64> = const { Cell::new(0) };
}

fn record(delta: isize) {
    let _ = CALLS.try_with(|calls| calls.set(calls.get() + 1));
    // `try_with`: allocations during thread teardown are simply not counted.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees hold; the bookkeeping touches only
// const-initialised thread-locals without destructors, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size() as isize);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        record_free(layout.size());
        System.dealloc(ptr, layout);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size as isize - layout.size() as isize);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Frees are not calls the tests bound (every allocation is freed once).
fn record_free(size: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get() - size as isize));
}

/// How many allocations and reallocations this thread has made so far.
pub fn calls() -> u64 {
    CALLS.with(Cell::get)
}

/// The bytes currently allocated by this thread (net of what it freed).
pub fn live() -> isize {
    LIVE.with(Cell::get)
}

/// Runs `work` on a fresh current-thread runtime and returns its output and
/// the peak number of bytes it had allocated on top of what was live when it
/// started.
pub fn peak_during<F: Future>(work: impl FnOnce() -> F) -> (F::Output, usize) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let base = live();
    PEAK.with(|peak| peak.set(base));
    let out = rt.block_on(work());
    let peak = PEAK.with(Cell::get) - base;
    (out, peak.max(0) as usize)
}
