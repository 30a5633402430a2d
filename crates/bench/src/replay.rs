//! One interface over the carveout allocator and its peers, and the replay
//! of a [`Trace`] through it.
//!
//! Fragmentation is computed the same way for every allocator, from the
//! runs the replay holds (not from each allocator's own, sometimes rounded,
//! report): the free space is the complement of the live runs.

use std::ops::Range;

use teeheap_kernel::pool::range_alloc::{PageRun, RangeAllocator};

use crate::bitmap::BitmapFirstFit;
use crate::trace::{Op, Trace};

/// A page-run allocator under test. `alloc` returns a handle for `free`
/// and the first page of the run.
pub trait PageAllocator {
    /// What `free` needs back.
    type Handle: Copy;

    /// Name in reports.
    const NAME: &'static str;

    /// A fresh allocator over `[0, pages)`, all free.
    fn with_pages(pages: u64) -> Self;

    /// Allocates `pages` contiguous pages: the handle and the first page.
    fn alloc(&mut self, pages: u64) -> Option<(Self::Handle, u64)>;

    /// Frees an allocation.
    fn free(&mut self, handle: Self::Handle);
}

/// teeheap's carveout allocator (best fit: size classes, and bitsets of hole ends by address).
impl PageAllocator for RangeAllocator {
    type Handle = PageRun;
    const NAME: &'static str = "teeheap range_alloc";

    fn with_pages(pages: u64) -> Self {
        RangeAllocator::new(pages)
    }

    fn alloc(&mut self, pages: u64) -> Option<(PageRun, u64)> {
        RangeAllocator::alloc(self, pages).map(|r| (r, r.start))
    }

    fn free(&mut self, handle: PageRun) {
        RangeAllocator::free(self, handle).expect("replay frees live runs only");
    }
}

/// The `offset-allocator` crate (TLSF-like, 256 size classes, O(1)).
pub struct OffsetAlloc(offset_allocator::Allocator<u32>);

impl PageAllocator for OffsetAlloc {
    type Handle = offset_allocator::Allocation<u32>;
    const NAME: &'static str = "offset-allocator";

    fn with_pages(pages: u64) -> Self {
        let size = u32::try_from(pages).expect("offset-allocator manages at most 2^32 units");
        // One node per live allocation or hole; the traces stay far below.
        OffsetAlloc(offset_allocator::Allocator::with_max_allocs(size, 256 * 1024))
    }

    fn alloc(&mut self, pages: u64) -> Option<(Self::Handle, u64)> {
        let a = self.0.allocate(u32::try_from(pages).ok()?)?;
        Some((a, u64::from(a.offset)))
    }

    fn free(&mut self, handle: Self::Handle) {
        self.0.free(handle);
    }
}

/// The `range-alloc` crate (best fit over a sorted `Vec` of free ranges).
pub struct RangeAllocCrate(range_alloc::RangeAllocator<u64>);

impl PageAllocator for RangeAllocCrate {
    type Handle = (u64, u64);
    const NAME: &'static str = "range-alloc";

    fn with_pages(pages: u64) -> Self {
        RangeAllocCrate(range_alloc::RangeAllocator::new(0..pages))
    }

    fn alloc(&mut self, pages: u64) -> Option<((u64, u64), u64)> {
        let r: Range<u64> = self.0.allocate_range(pages).ok()?;
        Some(((r.start, r.end), r.start))
    }

    fn free(&mut self, (start, end): (u64, u64)) {
        self.0.free_range(start..end);
    }
}

/// The genalloc-style bitmap first fit of [`crate::bitmap`].
impl PageAllocator for BitmapFirstFit {
    type Handle = (u64, u64);
    const NAME: &'static str = "genalloc bitmap first-fit";

    fn with_pages(pages: u64) -> Self {
        BitmapFirstFit::new(pages)
    }

    fn alloc(&mut self, pages: u64) -> Option<((u64, u64), u64)> {
        BitmapFirstFit::alloc(self, pages).map(|s| ((s, pages), s))
    }

    fn free(&mut self, (start, pages): (u64, u64)) {
        BitmapFirstFit::free(self, start, pages);
    }
}

/// Fragmentation snapshots per replay.
pub const SNAPSHOTS: usize = 20;

/// What a replay observed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReplayStats {
    /// Allocations attempted.
    pub allocs: u64,
    /// Allocations that failed (their frees are skipped).
    pub failed: u64,
    /// Largest free run / total free pages during the churn (1.0 = one
    /// hole, no fragmentation), averaged over the snapshots.
    pub largest_over_free: f64,
    /// Free holes, averaged over the same snapshots.
    pub holes: f64,
}

/// Reusable replay state: the live handles by trace id.
pub struct Replayer<A: PageAllocator> {
    alloc: A,
    live: Vec<Option<(A::Handle, u64, u64)>>,
}

impl<A: PageAllocator> Replayer<A> {
    /// A fresh allocator sized for `trace`.
    #[must_use]
    pub fn new(trace: &Trace) -> Self {
        Self { alloc: A::with_pages(trace.capacity), live: vec![None; trace.ids] }
    }

    /// Replays the whole trace (churn and teardown): the allocator is empty
    /// again afterwards, ready for the next round. Returns the number of
    /// failed allocations. This is the timed loop.
    pub fn run(&mut self, trace: &Trace) -> u64 {
        let mut failed = 0;
        for op in &trace.ops {
            failed += u64::from(!self.step(*op));
        }
        failed
    }

    /// Replays the trace and measures fragmentation: the mean over
    /// [`SNAPSHOTS`] points spread evenly over the second half of the churn,
    /// the last one where the churn ends.
    pub fn run_with_stats(&mut self, trace: &Trace) -> ReplayStats {
        let mut stats = ReplayStats::default();
        let half = trace.churn_end / 2;
        let every = (trace.churn_end - half).div_ceil(SNAPSHOTS).max(1);
        let (mut ratio_sum, mut holes_sum, mut n) = (0.0, 0, 0);
        for (i, op) in trace.ops.iter().enumerate() {
            if let Op::Alloc { .. } = op {
                stats.allocs += 1;
            }
            stats.failed += u64::from(!self.step(*op));
            let at = i + 1;
            if at > half && at <= trace.churn_end && (trace.churn_end - at) % every == 0 {
                let (r, h) = self.fragmentation(trace.capacity);
                ratio_sum += r;
                holes_sum += h;
                n += 1;
            }
        }
        if n > 0 {
            stats.largest_over_free = ratio_sum / f64::from(n);
            stats.holes = holes_sum as f64 / f64::from(n);
        }
        stats
    }

    /// One operation; `false` if it was an allocation that failed.
    #[inline]
    fn step(&mut self, op: Op) -> bool {
        match op {
            Op::Alloc { id, pages } => match self.alloc.alloc(pages) {
                Some((h, start)) => {
                    self.live[id as usize] = Some((h, start, pages));
                    true
                }
                None => false,
            },
            Op::Free { id } => {
                if let Some((h, _, _)) = self.live[id as usize].take() {
                    self.alloc.free(h);
                }
                true
            }
        }
    }

    /// (largest free run / total free, number of holes) from the live runs.
    fn fragmentation(&self, capacity: u64) -> (f64, usize) {
        let mut runs: Vec<(u64, u64)> = self.live.iter().flatten().map(|&(_, s, l)| (s, l)).collect();
        runs.sort_unstable();
        let (mut cursor, mut total, mut largest, mut holes) = (0, 0, 0, 0);
        for (s, l) in runs.into_iter().chain([(capacity, 0)]) {
            if s > cursor {
                total += s - cursor;
                largest = largest.max(s - cursor);
                holes += 1;
            }
            cursor = cursor.max(s + l);
        }
        let ratio = if total == 0 { 1.0 } else { largest as f64 / total as f64 };
        (ratio, holes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace;

    fn all_agree_on(trace: &Trace) {
        let ours = Replayer::<RangeAllocator>::new(trace).run_with_stats(trace);
        let peers = [
            Replayer::<OffsetAlloc>::new(trace).run_with_stats(trace),
            Replayer::<RangeAllocCrate>::new(trace).run_with_stats(trace),
            Replayer::<BitmapFirstFit>::new(trace).run_with_stats(trace),
        ];
        for p in peers {
            assert_eq!(p.allocs, ours.allocs);
            assert!((0.0..=1.0).contains(&p.largest_over_free));
        }
    }

    #[test]
    fn replays_return_allocators_to_empty() {
        let t = trace::random_sizes("r", 1 << 14, 0.9, 256, 2_000, 1);
        let mut r = Replayer::<RangeAllocator>::new(&t);
        let first = r.run(&t);
        assert_eq!(r.run(&t), first, "a replay is repeatable");
        assert_eq!(r.alloc.free_pages(), t.capacity);
        assert!(r.live.iter().all(Option::is_none));
        let mut b = Replayer::<BitmapFirstFit>::new(&t);
        b.run(&t);
        assert_eq!(b.alloc.free_pages(), t.capacity);
        all_agree_on(&t);
    }

    #[test]
    fn exact_hole_reuse_separates_best_fit_from_size_classes() {
        let t = trace::hole_reuse(40, 3);
        let ours = Replayer::<RangeAllocator>::new(&t).run_with_stats(&t);
        assert_eq!(ours.failed, 0, "best fit reuses an exact hole");
        let classes = Replayer::<OffsetAlloc>::new(&t).run_with_stats(&t);
        assert!(classes.failed > 0, "a 3038-page hole is filed under a smaller class");
    }

    #[test]
    fn fragmentation_of_known_layout() {
        let t = Trace {
            name: "t",
            capacity: 10,
            ops: vec![
                Op::Alloc { id: 0, pages: 2 },
                Op::Alloc { id: 1, pages: 3 },
                Op::Alloc { id: 2, pages: 1 },
                Op::Free { id: 1 },
            ],
            ids: 3,
            churn_end: 4,
        };
        let mut r = Replayer::<RangeAllocator>::new(&t);
        let s = r.run_with_stats(&t);
        assert_eq!((s.failed, s.allocs), (0, 3));
        // Holes at the end: [2, 5) and [6, 10): largest 4 of 7 free.
        let (ratio, holes) = r.fragmentation(t.capacity);
        assert_eq!(holes, 2);
        assert!((ratio - 4.0 / 7.0).abs() < 1e-9);
        // Snapshots after ops 3 and 4: one hole of 4, then 4 of 7.
        assert!((s.largest_over_free - (1.0 + 4.0 / 7.0) / 2.0).abs() < 1e-9);
    }
}
