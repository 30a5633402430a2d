//! Property tests for the page range allocator against simple models.
//!
//! `matches_bitmap_model` replays random alloc / aligned alloc / free /
//! bad-free sequences on `[0, total)` with `total <= 4096` against a page
//! bitmap, and checks after every step that the allocator's holes are
//! exactly the bitmap's maximal free runs, that every allocation is the best
//! fit the bitmap allows (so an allocation fails only when no free run fits),
//! and that rejected frees change nothing. `huge_ranges_partition` does the
//! same near `u64::MAX` against a list of live runs, for overflow.
//!
//! CI runs a few thousand cases (a few seconds in a debug build); set
//! `RANGE_ALLOC_PROP_CASES` to run more, e.g. 100000 before changing the
//! allocator's structure.

use proptest::prelude::*;
use teeheap_kernel::pool::range_alloc::{FreeError, HIGH_RUN_PAGES, PageRun, RangeAllocator};

#[derive(Debug, Clone)]
enum Op {
    /// `alloc(pages)`.
    Alloc(u64),
    /// `alloc_aligned(pages, 1 << shift)`.
    AllocAligned(u64, u32),
    /// Free the chosen live run.
    Free(usize),
    /// Free the chosen already-freed run again (skipped if since reallocated).
    DoubleFree(usize),
    /// Free an arbitrary run (skipped if it happens to be fully allocated).
    BadFree(u64, u64),
}

/// Reference model: one flag per page, `true` when allocated.
struct Bitmap {
    used: Vec<bool>,
}

impl Bitmap {
    fn new(total: u64) -> Self {
        Self { used: vec![false; usize::try_from(total).unwrap()] }
    }

    fn total(&self) -> u64 {
        self.used.len() as u64
    }

    fn pages(&self, run: PageRun) -> &[bool] {
        &self.used[run.start as usize..(run.start + run.len) as usize]
    }

    fn set(&mut self, run: PageRun, used: bool) {
        let range = run.start as usize..(run.start + run.len) as usize;
        for page in &mut self.used[range] {
            assert_ne!(*page, used, "page flipped twice in {run:?}");
            *page = used;
        }
    }

    /// True when `run` is in range, non-empty and every page is allocated:
    /// exactly the runs `free` must accept.
    fn all_used(&self, run: PageRun) -> bool {
        run.len > 0 && run.checked_end().is_some_and(|e| e <= self.total()) && self.pages(run).iter().all(|&u| u)
    }

    fn used_count(&self) -> u64 {
        self.used.iter().filter(|&&u| u).count() as u64
    }

    /// Maximal runs of free pages, by address.
    fn free_runs(&self) -> Vec<PageRun> {
        let mut runs = Vec::new();
        let mut start = None;
        for (i, &u) in self.used.iter().chain([&true]).enumerate() {
            match (start, u) {
                (None, false) => start = Some(i as u64),
                (Some(s), true) => {
                    runs.push(PageRun { start: s, len: i as u64 - s });
                    start = None;
                }
                _ => {}
            }
        }
        runs
    }
}

/// Where `pages` pages aligned to `align` go inside `hole`, if they fit: the
/// lowest multiple of `align` from which they fit, or the highest one for a
/// run of at least [`HIGH_RUN_PAGES`] pages.
///
/// The placement inside the hole is the allocator's policy (large runs at
/// the high end keep them apart from small ones, for less fragmentation);
/// the model was "always the lowest" before that policy.
fn aligned_fit(hole: PageRun, pages: u64, align: u64) -> Option<u64> {
    let at = hole.start.checked_next_multiple_of(align)?;
    let end = at.checked_add(pages)?;
    let hole_end = hole.checked_end().unwrap();
    if end > hole_end {
        return None;
    }
    if pages < HIGH_RUN_PAGES {
        return Some(at);
    }
    // The highest aligned start, found the slow way: step down from the
    // last start that fits.
    let last = hole_end - pages;
    Some(last - last % align)
}

/// Where best fit must place `pages` pages aligned to `align`: in the
/// smallest hole that can hold them, lowest address among equal sizes.
fn best_fit(holes: &[PageRun], pages: u64, align: u64) -> Option<u64> {
    if pages == 0 {
        return None;
    }
    holes.iter().filter_map(|&h| aligned_fit(h, pages, align).map(|at| ((h.len, h.start), at))).min().map(|(_, at)| at)
}

/// Everything observable about `ra` agrees with the model's free runs.
fn check_against(ra: &RangeAllocator, total: u64, used: u64, holes: &[PageRun]) {
    ra.check_invariants().unwrap();
    assert_eq!(ra.free_runs().collect::<Vec<_>>(), holes, "holes");
    assert_eq!(ra.total_pages(), total);
    assert_eq!(ra.used_pages(), used);
    assert_eq!(ra.free_pages(), total - used);
    assert_eq!(ra.hole_count(), holes.len());
    assert_eq!(ra.largest_free(), holes.iter().map(|h| h.len).max().unwrap_or(0));
}

/// Frees `run`, which must be rejected, and checks nothing changed.
fn expect_rejected(ra: &mut RangeAllocator, run: PageRun) {
    let before = ra.clone();
    let err = ra.free(run).expect_err("free of a not fully allocated run");
    let out = run.checked_end().is_none_or(|e| e > ra.total_pages());
    let want =
        if out { FreeError::OutOfRange { run, total: ra.total_pages() } } else { FreeError::NotAllocated { run } };
    assert_eq!(err, want);
    assert_eq!(*ra, before, "rejected free({run:?}) changed state");
}

fn total_strategy() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), 1..=16u64, 1..=256u64, 1..=4096u64]
}

fn ops_strategy(total: u64, tiny_only: bool) -> impl Strategy<Value = Vec<Op>> {
    // One flat tuple per op, decoded below: much cheaper to generate in debug
    // builds than a union of per-variant strategies. `a` and `b` shrink
    // towards 0, so sizes and indices shrink towards small ones.
    let op = (0u8..12, any::<u64>(), any::<u64>()).prop_map(move |(kind, a, b)| {
        // Sizes are tiny, an eighth of the range or up to all of it, so that
        // ranges both fragment and fill up; `tiny_only` cases fragment more,
        // into many holes of equal size (best-fit ties).
        // Near [`HIGH_RUN_PAGES`] too, where placement flips ends.
        let size = |x: u64| match x % 8 {
            _ if tiny_only => 1 + (x / 8) % 4,
            0..=2 => 1 + (x / 8) % 4,
            3..=4 => 1 + (x / 8) % (total / 8 + 1),
            5 if total > HIGH_RUN_PAGES => HIGH_RUN_PAGES - 2 + (x / 8) % 5,
            _ => 1 + (x / 8) % (total + 2),
        };
        match kind {
            0..=3 => Op::Alloc(size(a)),
            4..=5 => Op::AllocAligned(size(a), (b % 8) as u32),
            6..=9 => Op::Free(a as usize),
            10 => Op::DoubleFree(a as usize),
            _ => Op::BadFree(a % (total + 3), if b % 8 == 7 { u64::MAX } else { b % (total + 3) }),
        }
    });
    prop::collection::vec(op, 0..=64)
}

fn scenario() -> impl Strategy<Value = (u64, Vec<Op>)> {
    (total_strategy(), any::<bool>()).prop_flat_map(|(total, tiny)| (Just(total), ops_strategy(total, tiny)))
}

fn run_bitmap_scenario(total: u64, ops: &[Op]) {
    let mut ra = RangeAllocator::new(total);
    let mut model = Bitmap::new(total);
    let mut live: Vec<PageRun> = Vec::new();
    let mut freed: Vec<PageRun> = Vec::new();
    // The model's maximal free runs, kept current after every step.
    let mut holes = model.free_runs();

    for op in ops {
        match *op {
            Op::Alloc(n) | Op::AllocAligned(n, _) => {
                let (got, align) = match *op {
                    Op::AllocAligned(_, s) => (ra.alloc_aligned(n, 1 << s), 1 << s),
                    _ => (ra.alloc(n), 1),
                };
                let want = best_fit(&holes, n, align);
                assert_eq!(got.map(|r| r.start), want, "{op:?} with holes {holes:?}");
                if let Some(run) = got {
                    assert_eq!(run.len, n);
                    assert_eq!(run.start % align, 0);
                    assert!(run.checked_end().unwrap() <= total);
                    assert!(model.pages(run).iter().all(|&u| !u), "overlap: {run:?}");
                    model.set(run, true);
                    live.push(run);
                }
            }
            Op::Free(i) => {
                if live.is_empty() {
                    continue;
                }
                let run = live.swap_remove(i % live.len());
                ra.free(run).unwrap();
                model.set(run, false);
                freed.push(run);
            }
            Op::DoubleFree(i) => {
                if freed.is_empty() {
                    continue;
                }
                let run = freed[i % freed.len()];
                if !model.all_used(run) {
                    expect_rejected(&mut ra, run);
                }
            }
            Op::BadFree(start, len) => {
                let run = PageRun { start, len };
                if !model.all_used(run) {
                    expect_rejected(&mut ra, run);
                }
            }
        }
        holes = model.free_runs();
        check_against(&ra, total, model.used_count(), &holes);
    }

    for run in live.drain(..) {
        ra.free(run).unwrap();
        model.set(run, false);
    }
    let whole: Vec<PageRun> = (total > 0).then_some(PageRun { start: 0, len: total }).into_iter().collect();
    assert_eq!(model.free_runs(), whole);
    check_against(&ra, total, 0, &whole);
    assert_eq!(ra.hole_count(), usize::from(total > 0));
}

/// Cases per property: `RANGE_ALLOC_PROP_CASES`, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("RANGE_ALLOC_PROP_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(3_000), ..ProptestConfig::default() })]

    #[test]
    fn matches_bitmap_model((total, ops) in scenario()) {
        run_bitmap_scenario(total, &ops);
    }
}

/// Checks that the live runs and the holes tile `[0, total)` exactly.
fn check_partition(ra: &RangeAllocator, live: &[PageRun]) {
    ra.check_invariants().unwrap();
    let mut all: Vec<(PageRun, bool)> = live.iter().map(|&r| (r, true)).collect();
    all.extend(ra.free_runs().map(|r| (r, false)));
    all.sort();
    let mut next = 0u64;
    let mut used = 0u64;
    for &(run, is_live) in &all {
        assert!(run.len > 0);
        assert_eq!(run.start, next, "gap or overlap at {run:?}");
        next = run.checked_end().expect("run end overflows");
        if is_live {
            used += run.len;
        }
    }
    assert_eq!(next, ra.total_pages(), "tiling ends early");
    assert_eq!(ra.used_pages(), used);
}

fn huge_scenario() -> impl Strategy<Value = (u64, Vec<Op>)> {
    let total = prop_oneof![Just(u64::MAX), (u64::MAX - 4096)..=u64::MAX, Just(1u64 << 40)];
    let op = (0u8..10, any::<u64>(), any::<u64>()).prop_map(|(kind, a, b)| {
        // Tiny, arbitrary or nearly `u64::MAX` pages.
        let size = match b % 3 {
            0 => 1 + a % 8,
            1 => a.max(1),
            _ => u64::MAX - a % 64,
        };
        match kind {
            0..=2 => Op::Alloc(size),
            3..=5 => Op::AllocAligned(size, (b >> 8) as u32 % 64),
            6..=8 => Op::Free(a as usize),
            _ => Op::DoubleFree(a as usize),
        }
    });
    (total, prop::collection::vec(op, 0..=48))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(1_000), ..ProptestConfig::default() })]

    #[test]
    fn huge_ranges_partition((total, ops) in huge_scenario()) {
        let mut ra = RangeAllocator::new(total);
        let mut live: Vec<PageRun> = Vec::new();
        let mut freed: Vec<PageRun> = Vec::new();
        for op in &ops {
            let holes: Vec<PageRun> = ra.free_runs().collect();
            match *op {
                Op::Alloc(n) | Op::AllocAligned(n, _) => {
                    let (got, align) = match *op {
                        Op::AllocAligned(_, s) => (ra.alloc_aligned(n, 1 << s), 1u64 << s),
                        _ => (ra.alloc(n), 1),
                    };
                    prop_assert_eq!(got.map(|r| r.start), best_fit(&holes, n, align));
                    if let Some(run) = got {
                        prop_assert_eq!(run.len, n);
                        live.push(run);
                    }
                }
                Op::Free(i) => {
                    if !live.is_empty() {
                        let run = live.swap_remove(i % live.len());
                        prop_assert_eq!(ra.free(run), Ok(()));
                        freed.push(run);
                    }
                }
                Op::DoubleFree(i) => {
                    // Any part of a freed run still free makes it invalid.
                    if !freed.is_empty() {
                        let run = freed[i % freed.len()];
                        let end = run.checked_end().unwrap();
                        let overlaps_hole = holes.iter().any(|h| {
                            h.start < end && run.start < h.checked_end().unwrap()
                        });
                        if overlaps_hole {
                            expect_rejected(&mut ra, run);
                        }
                    }
                }
                Op::BadFree(..) => unreachable!(),
            }
            check_partition(&ra, &live);
        }
        for run in live.drain(..) {
            prop_assert_eq!(ra.free(run), Ok(()));
        }
        check_partition(&ra, &[]);
        prop_assert_eq!(ra.hole_count(), 1);
    }
}
