//! A counting global allocator: measures the heap bytes a data structure
//! really holds, instead of estimating them from `size_of`.
//!
//! Install it in a bench binary with `#[global_allocator]`; it forwards to
//! [`System`] and keeps process-wide counters of live bytes and blocks.
//! While [`record_sizes`] is on it also keeps a histogram of the requested
//! block sizes, to tell which objects dominate.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};

/// The allocator. See the module documentation.
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingAlloc;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
static LIVE_BLOCKS: AtomicIsize = AtomicIsize::new(0);
static RECORD: AtomicBool = AtomicBool::new(false);
/// Requested sizes seen while recording: `(size, count)`, open addressed.
static SIZES: [(AtomicUsize, AtomicUsize); 64] = [const { (AtomicUsize::new(0), AtomicUsize::new(0)) }; 64];

fn count(bytes: isize, blocks: isize) {
    LIVE_BYTES.fetch_add(bytes, Ordering::Relaxed);
    LIVE_BLOCKS.fetch_add(blocks, Ordering::Relaxed);
}

fn note(size: usize) {
    if !RECORD.load(Ordering::Relaxed) {
        return;
    }
    for i in 0..SIZES.len() {
        let slot = &SIZES[(size + i) % SIZES.len()];
        match slot.0.compare_exchange(0, size, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => {}
            Err(s) if s == size => {}
            Err(_) => continue,
        }
        slot.1.fetch_add(1, Ordering::Relaxed);
        return;
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees hold; the counters only observe.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as isize, 1);
            note(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as isize, 1);
            note(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with
        // `layout`, as the caller guarantees.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize), -1);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as in `dealloc`, and the caller upholds `realloc`'s contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize, 0);
            note(new_size);
        }
        p
    }
}

/// Heap bytes requested and not yet freed, process-wide (0 if the
/// allocator is not installed).
#[must_use]
pub fn live_bytes() -> isize {
    LIVE_BYTES.load(Ordering::Relaxed)
}

/// Heap blocks allocated and not yet freed.
#[must_use]
pub fn live_blocks() -> isize {
    LIVE_BLOCKS.load(Ordering::Relaxed)
}

/// Starts or stops recording requested sizes; starting clears the record.
pub fn record_sizes(on: bool) {
    if on {
        for (s, c) in &SIZES {
            s.store(0, Ordering::Relaxed);
            c.store(0, Ordering::Relaxed);
        }
    }
    RECORD.store(on, Ordering::Relaxed);
}

/// The recorded `(size, count)` pairs, by size (up to 64 distinct sizes).
#[must_use]
pub fn recorded_sizes() -> Vec<(usize, usize)> {
    let mut v: Vec<(usize, usize)> = SIZES
        .iter()
        .map(|(s, c)| (s.load(Ordering::Relaxed), c.load(Ordering::Relaxed)))
        .filter(|&(s, c)| s != 0 && c != 0)
        .collect();
    v.sort_unstable();
    v
}
