//! Page-granular range allocator: hands out runs of page indices from a
//! fixed range `[0, total)`, best fit, with `O(log n)` alloc and free.
//! Small runs go at the low end of the chosen hole, large ones
//! ([`HIGH_RUN_PAGES`]) at its high end, so the two kinds stay apart.
//!
//! It backs the static carveout pool, like the kernel's genalloc-backed
//! static protected pool, but it is a pure data structure over page indices:
//! it knows nothing of physical addresses, and it keeps no per-allocation
//! metadata. The caller keeps the [`PageRun`] that [`RangeAllocator::alloc`]
//! returned and hands it back to [`RangeAllocator::free`].
//!
//! Only the free holes are stored, twice:
//!
//! - by address, as two sets of page indices: the first page of every hole
//!   and the last page of every hole, each a 64-ary hierarchy of bitmaps
//!   ([`bitset`]). A freed run's neighbours are a bit test each (a hole
//!   ends just before it, a hole starts just after it); a neighbour's other
//!   end and the overlap check (is any page of the run free?) are a
//!   next/previous-member query of a few word operations, with no nodes to
//!   allocate, split or merge.
//! - in segregated size classes, TLSF-style: lengths below [`EXACT_PAGES`]
//!   (1024) have a class each, whose holes all have that length and are
//!   kept by start alone (one `u64` each); longer lengths have 16 classes
//!   per power of two, each keeping its holes ordered by `(len, start)` (one
//!   `u128` each). A two-level bitmap of the non-empty classes finds the
//!   next candidate class in `O(1)`. The best fit is the lowest hole of the
//!   request's exact class or of the next non-empty class above, or for a
//!   ranged request the first hole of at least its size in its own class:
//!   exactly the smallest fitting hole, lowest address among equals, as
//!   with one global `(len, start)` index, but each search and update
//!   touches only the sorted `Vec` (or, past 128 holes, the B-tree) of one
//!   class.
//!
//! # Invariants
//!
//! - Every hole has `len > 0` and lies inside `[0, total)`.
//! - Holes never overlap and are never adjacent: free space is fully
//!   coalesced, so each hole is a maximal free run.
//! - The first-page and last-page sets pair up, by address, into exactly
//!   the holes held by the size classes, each in the class of its length; a
//!   class's bitmap bit is set exactly when the class is non-empty; the hole
//!   counter is their number.
//! - The free-page counter equals the sum of the hole lengths.
//!
//! [`RangeAllocator::check_invariants`] verifies all of them.

mod bitset;

use std::collections::BTreeSet;

use bitset::BitSet;

/// A run of pages `[start, start + len)` inside the managed range, in pages.
///
/// Runs returned by [`RangeAllocator`] always have `len > 0` and an end that
/// does not overflow `u64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PageRun {
    /// Index of the first page.
    pub start: u64,
    /// Number of pages.
    pub len: u64,
}

impl PageRun {
    /// One past the last page, `start + len`, or `None` on overflow.
    #[must_use]
    pub const fn checked_end(self) -> Option<u64> {
        self.start.checked_add(self.len)
    }
}

/// Why [`RangeAllocator::free`] refused a run. The allocator is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FreeError {
    /// The run reaches past the managed range (or its end overflows).
    #[error("pages {} +{} lie outside the managed range of {total} pages", run.start, run.len)]
    OutOfRange {
        /// The run passed to `free`.
        run: PageRun,
        /// Pages managed by the allocator.
        total: u64,
    },
    /// The run is empty or overlaps free space: a double free, or a run that
    /// was never allocated.
    #[error("pages {} +{} are not (all) allocated", run.start, run.len)]
    NotAllocated {
        /// The run passed to `free`.
        run: PageRun,
    },
}

/// Runs of at least this many pages (8 MiB of 4 KiB pages: a 4K video
/// frame, a large framebuffer) are placed at the high end of the hole best
/// fit chose, smaller runs at its low end.
///
/// Keeping large and small runs at opposite ends of the holes they share
/// keeps small buffers from pinning the space between frames, so freed
/// frames coalesce into larger holes: in the video churn benchmark the
/// largest hole goes from 0.41 to 0.53 of the free space, with fewer
/// failed allocations (BENCHMARKS.md, section 1). The value comes from a
/// sweep over the benchmark traces (1024–3072 pages all help video churn;
/// 2048 is the one no worse than low-end placement on every trace).
pub const HIGH_RUN_PAGES: u64 = 2048;

/// Holes shorter than this many pages have a size class per length, keyed
/// by start alone; longer ones share ranged classes keyed by `(len, start)`.
pub const EXACT_PAGES: u64 = 1 << EXACT_BITS;
/// `log2(EXACT_PAGES)`.
const EXACT_BITS: u32 = 10;
/// Exact classes: class `c < EXACT` holds holes of `c` pages (0 is unused).
const EXACT: usize = 1 << EXACT_BITS;
/// Ranged size classes per power of two: `1 << SUB_BITS`.
const SUB_BITS: u32 = 4;
/// Number of size classes: exact lengths `0..EXACT`, then 16 per power of
/// two from `EXACT_PAGES` to `2^63`.
const CLASSES: usize = EXACT + ((64 - EXACT_BITS as usize) << SUB_BITS);
/// 64-bit words of the class bitmap.
const WORDS: usize = CLASSES.div_ceil(64);
/// Bits of the summary word.
type Summary = u32;
const _: () = assert!(WORDS <= Summary::BITS as usize);

/// The size class of a hole of `len` pages. Non-decreasing in `len`, so
/// every hole of a higher class is longer than every hole of a lower one.
#[inline]
const fn class_of(len: u64) -> usize {
    if len < EXACT_PAGES {
        return len as usize;
    }
    // `len >= EXACT_PAGES`, so `bit >= EXACT_BITS > SUB_BITS`.
    let bit = 63 - len.leading_zeros();
    let sub = (len >> (bit - SUB_BITS)) as usize & ((1 << SUB_BITS) - 1);
    EXACT + (((bit - EXACT_BITS) as usize) << SUB_BITS) + sub
}

/// A class holding at most this many holes keeps them in a sorted `Vec`;
/// one more turns it into a B-tree.
const SMALL_MAX: usize = 128;
/// A B-tree class shrinking below this many holes turns back into a `Vec`
/// (hysteresis, so a class at the boundary does not flip on every update).
const SMALL_MIN: usize = 64;

/// The holes of one size class in best-fit order, as keys `K`: a sorted
/// `Vec` while small (the common case: a binary search and a short move of
/// at most [`SMALL_MAX`] entries, no node allocations), a B-tree when many
/// holes share a class, so that updates stay `O(log k)` for `k` holes in
/// the class.
///
/// An exact class (one length) keys its holes by start (`u64`); a ranged
/// class by `(len, start)` as one `u128` ([`key`]).
///
/// The `Vec` is sorted in *descending* order, so that the best fit (the
/// smallest key) is the last entry: taking it is a pop.
#[derive(Debug, Clone)]
enum Class<K> {
    Small(Vec<K>),
    Large(BTreeSet<K>),
}

/// A hole `(len, start)` as one integer with the same order, so that the
/// searches compare one value (branch-free) instead of a pair.
#[inline]
const fn key((len, start): (u64, u64)) -> u128 {
    (len as u128) << 64 | start as u128
}

/// The hole of a [`key`].
#[inline]
const fn unkey(k: u128) -> (u64, u64) {
    ((k >> 64) as u64, k as u64)
}

impl<K> Default for Class<K> {
    fn default() -> Self {
        Class::Small(Vec::new())
    }
}

impl<K: Ord + Copy> Class<K> {
    fn len(&self) -> usize {
        match self {
            Class::Small(v) => v.len(),
            Class::Large(s) => s.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where `k` is, or would go, in a descending `Vec`.
    #[inline]
    fn search(v: &[K], k: K) -> Result<usize, usize> {
        v.binary_search_by(|h| k.cmp(h))
    }

    /// Adds `k`; `false` if it was already there.
    #[inline]
    fn insert(&mut self, k: K) -> bool {
        match self {
            Class::Small(v) => {
                let Err(i) = Self::search(v, k) else { return false };
                if i == v.len() {
                    v.push(k);
                } else {
                    v.insert(i, k);
                }
                if v.len() > SMALL_MAX {
                    *self = Class::Large(v.drain(..).collect());
                }
                true
            }
            Class::Large(s) => s.insert(k),
        }
    }

    /// Removes `k`; `false` if it was not there.
    #[inline]
    fn remove(&mut self, k: K) -> bool {
        match self {
            Class::Small(v) => {
                let Ok(i) = Self::search(v, k) else { return false };
                if i + 1 == v.len() {
                    v.pop();
                } else {
                    v.remove(i);
                }
                true
            }
            Class::Large(s) => {
                let found = s.remove(&k);
                self.shrink();
                found
            }
        }
    }

    /// A B-tree class below [`SMALL_MIN`] holes turns back into a `Vec`.
    fn shrink(&mut self) {
        if let Class::Large(s) = self
            && s.len() < SMALL_MIN
        {
            // Descending.
            *self = Class::Small(s.iter().rev().copied().collect());
        }
    }

    /// Removes and returns the smallest key.
    #[inline]
    fn pop_first(&mut self) -> Option<K> {
        match self {
            Class::Small(v) => v.pop(),
            Class::Large(s) => {
                let k = s.pop_first();
                self.shrink();
                k
            }
        }
    }

    /// Removes and returns the first key at or after `from`.
    #[inline]
    fn take_first_from(&mut self, from: K) -> Option<K> {
        match self {
            Class::Small(v) => {
                // Entries `..i` are at or after `from`; the last of them is
                // the first in order.
                let i = v.partition_point(|&h| h >= from).checked_sub(1)?;
                Some(if i + 1 == v.len() { v.pop()? } else { v.remove(i) })
            }
            Class::Large(s) => {
                let k = *s.range(from..).next()?;
                s.remove(&k);
                self.shrink();
                Some(k)
            }
        }
    }

    /// The keys at or after `from`, in order.
    fn iter_from(&self, from: K) -> impl Iterator<Item = K> + '_ {
        let (small, large) = match self {
            Class::Small(v) => (Some(v[..v.partition_point(|&h| h >= from)].iter().rev()), None),
            Class::Large(s) => (None, Some(s.range(from..))),
        };
        small.into_iter().flatten().chain(large.into_iter().flatten()).copied()
    }

    /// The last (largest) key.
    fn last(&self) -> Option<K> {
        match self {
            Class::Small(v) => v.first().copied(),
            Class::Large(s) => s.last().copied(),
        }
    }

    fn contains(&self, k: K) -> bool {
        match self {
            Class::Small(v) => Self::search(v, k).is_ok(),
            Class::Large(s) => s.contains(&k),
        }
    }
}

/// Best-fit allocator of page runs over `[0, total)`.
///
/// Alloc, free and [`largest_free`](Self::largest_free) are `O(log h)` for
/// `h` holes (and `O(log k)` in the size index, for the `k` holes of one
/// size class); memory is `O(h)`, independent of the number of live runs.
///
/// Two allocators are equal when they manage the same range with the same
/// holes.
///
/// # Examples
///
/// ```
/// use teeheap_kernel::pool::range_alloc::{FreeError, PageRun, RangeAllocator};
///
/// let mut ra = RangeAllocator::new(16);
/// let a = ra.alloc(4).unwrap();
/// assert_eq!(a, PageRun { start: 0, len: 4 });
/// let b = ra.alloc_aligned(4, 8).unwrap();
/// assert_eq!(b.start, 8);
/// assert_eq!(ra.used_pages(), 8);
///
/// ra.free(a).unwrap();
/// assert_eq!(ra.free(a), Err(FreeError::NotAllocated { run: a }));
/// ra.free(b).unwrap();
/// assert_eq!(ra.hole_count(), 1);
/// assert_eq!(ra.largest_free(), 16);
/// ```
#[derive(Debug, Clone)]
pub struct RangeAllocator {
    /// Pages managed, `[0, total)`.
    total: u64,
    /// Sum of hole lengths.
    free: u64,
    /// Number of holes.
    holes: usize,
    /// The first page of every hole.
    starts: BitSet,
    /// The last page of every hole (`start + len - 1`).
    lasts: BitSet,
    /// Exact classes (`c < EXACT`): the starts of the holes of `c` pages.
    /// One per class up to that of `total` pages.
    exact: Vec<Class<u64>>,
    /// Ranged classes (`EXACT + i` at `ranged[i]`): the holes as [`key`]s.
    /// One per class up to that of `total` pages.
    ranged: Vec<Class<u128>>,
    /// Bit `c` set when class `c` is non-empty.
    words: [u64; WORDS],
    /// Bit `w` set when `words[w]` is non-zero.
    summary: Summary,
}

impl PartialEq for RangeAllocator {
    fn eq(&self, other: &Self) -> bool {
        // A class may be a `Vec` or a B-tree, depending on history: compare
        // the contents.
        fn same<K: Ord + Copy>(a: &[Class<K>], b: &[Class<K>], from: K) -> bool {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.iter_from(from).eq(y.iter_from(from)))
        }
        self.total == other.total
            && self.free == other.free
            && self.holes == other.holes
            && self.starts == other.starts
            && self.lasts == other.lasts
            && self.words == other.words
            && self.summary == other.summary
            && same(&self.exact, &other.exact, 0)
            && same(&self.ranged, &other.ranged, 0)
    }
}

impl Eq for RangeAllocator {}

impl RangeAllocator {
    /// An allocator managing pages `[0, pages)`, all free. `pages` may be 0.
    #[must_use]
    pub fn new(pages: u64) -> Self {
        let mut ra = Self {
            total: pages,
            free: 0,
            holes: 0,
            starts: BitSet::new(pages),
            lasts: BitSet::new(pages),
            // Every hole fits in `[0, pages)`: no class above `pages`'s.
            exact: (0..=class_of(pages).min(EXACT - 1)).map(|_| Class::default()).collect(),
            ranged: (EXACT..=class_of(pages)).map(|_| Class::default()).collect(),
            words: [0; WORDS],
            summary: 0,
        };
        if pages > 0 {
            ra.starts.insert(0);
            ra.lasts.insert(pages - 1);
            ra.class_insert(pages, 0);
            ra.holes = 1;
            ra.free = pages;
        }
        ra
    }

    /// Allocates `pages` pages from the smallest hole that fits; among holes
    /// of that size, the one with the lowest address. The run starts at the
    /// hole's start, or ends at the hole's end if it has at least
    /// [`HIGH_RUN_PAGES`] pages.
    ///
    /// Returns `None` if `pages == 0` or no hole is large enough. `O(log h)`.
    #[inline]
    pub fn alloc(&mut self, pages: u64) -> Option<PageRun> {
        if pages == 0 {
            return None;
        }
        let c = class_of(pages);
        let mut class = self.next_class(c)?;
        let (len, start) = if class < EXACT {
            // Every hole of an exact class at or above `pages`'s fits: take
            // the lowest.
            let k = &mut self.exact[class];
            let start = k.pop_first()?;
            if k.is_empty() {
                self.clear_bit(class);
            }
            (class as u64, start)
        } else {
            // A ranged request's own class may hold holes shorter than
            // `pages`; every hole of a higher class fits: take its best.
            let from = if class == c { key((pages, 0)) } else { 0 };
            let k = match self.ranged[class - EXACT].take_first_from(from) {
                Some(k) => k,
                None => {
                    class = self.next_class(c + 1)?;
                    self.ranged[class - EXACT].pop_first()?
                }
            };
            if self.ranged[class - EXACT].is_empty() {
                self.clear_bit(class);
            }
            unkey(k)
        };
        let at = if pages >= HIGH_RUN_PAGES { start + len - pages } else { start };
        Some(self.carve_taken(start, len, at, pages))
    }

    /// Allocates `pages` pages starting at a multiple of `align` pages, from
    /// the smallest hole that can hold such a run (lowest address among
    /// holes of that size), at the lowest aligned start inside that hole
    /// (the highest one for runs of at least [`HIGH_RUN_PAGES`] pages).
    ///
    /// Returns `None` if `pages == 0`, `align` is not a power of two, or no
    /// hole can hold an aligned run. `O(k log h)`, where `k` is the number of
    /// holes of `pages..pages + align - 1` pages (any larger hole always fits).
    pub fn alloc_aligned(&mut self, pages: u64, align: u64) -> Option<PageRun> {
        if pages == 0 || !align.is_power_of_two() {
            return None;
        }
        let mask = align - 1;
        let high = pages >= HIGH_RUN_PAGES;
        let fit = |(len, start): (u64, u64)| {
            // Holes never overflow, so `start + len` is exact.
            let end = start + len;
            let at = start.checked_add(mask)? & !mask;
            if at.checked_add(pages).is_none_or(|e| e > end) {
                return None;
            }
            // The highest aligned start is at or after `at`, so it fits too.
            Some((len, start, if high { (end - pages) & !mask } else { at }))
        };
        let first = class_of(pages);
        let mut class = self.next_class(first)?;
        let (len, start, at) = loop {
            let found = if class < EXACT {
                self.exact[class].iter_from(0).find_map(|start| fit((class as u64, start)))
            } else {
                let from = if class == first { key((pages, 0)) } else { 0 };
                self.ranged[class - EXACT].iter_from(from).find_map(|k| fit(unkey(k)))
            };
            if let Some(f) = found {
                break f;
            }
            class = self.next_class(class + 1)?;
        };
        self.class_remove(len, start);
        Some(self.carve_taken(start, len, at, pages))
    }

    /// Returns `run` to the free space, coalescing it with the holes on
    /// either side. `O(log h)`.
    ///
    /// Without per-allocation metadata the allocator checks only that every
    /// page of `run` is in range and allocated: freeing part of an allocated
    /// run, or two adjacent runs at once, is accepted and leaves consistent
    /// state.
    ///
    /// # Errors
    ///
    /// Nothing is changed on error.
    /// - [`FreeError::OutOfRange`] if `run` reaches past the managed range or
    ///   its end overflows.
    /// - [`FreeError::NotAllocated`] if `run` is empty or any of its pages is
    ///   free (double free, or a run that was never allocated).
    #[inline]
    pub fn free(&mut self, run: PageRun) -> Result<(), FreeError> {
        let total = self.total;
        let end = run.checked_end().filter(|&end| end <= total).ok_or(FreeError::OutOfRange { run, total })?;
        if run.len == 0 {
            return Err(FreeError::NotAllocated { run });
        }
        let (s, e) = (run.start, end);
        // Any free page in the run? Either a hole starts inside it, or the
        // first hole to end at or after `s` started before `s` (it holds
        // page `s`): no hole starts between `s` and its last page.
        let first_start = self.starts.next(s);
        if first_start.is_some_and(|r| r < e) {
            return Err(FreeError::NotAllocated { run });
        }
        // A hole ending at `s - 1` is the left neighbour. No other hole can
        // then hold page `s` (it would hold `s - 1` too), so the run is all
        // allocated; without one, the first last page at or after `s` must
        // belong to the first hole starting at or after `s`, if any.
        let left_last = s > 0 && self.lasts.contains(s - 1);
        let mut first_last = None;
        if !left_last {
            first_last = self.lasts.next(s);
            if first_last.is_some_and(|q| first_start.is_none_or(|r| q < r)) {
                return Err(FreeError::NotAllocated { run });
            }
        }
        let left = if left_last { self.starts.prev(s - 1) } else { None };
        // A hole starting at `e` is the right neighbour; its last page is the
        // first last page at or after `e`.
        let right =
            if first_start == Some(e) { first_last.or_else(|| self.lasts.next(e)).map(|q| q + 1) } else { None };
        match (left, right) {
            (None, None) => {
                self.starts.insert(s);
                self.lasts.insert(e - 1);
                self.holes += 1;
                self.class_insert(run.len, s);
            }
            (Some(ls), None) => {
                self.lasts.replace(s - 1, e - 1);
                self.class_remove(s - ls, ls);
                self.class_insert(e - ls, ls);
            }
            (None, Some(re)) => {
                self.starts.replace(e, s);
                self.class_remove(re - e, e);
                self.class_insert(re - s, s);
            }
            (Some(ls), Some(re)) => {
                self.lasts.remove(s - 1);
                self.starts.remove(e);
                self.holes -= 1;
                self.class_remove(s - ls, ls);
                self.class_remove(re - e, e);
                self.class_insert(re - ls, ls);
            }
        }
        self.free += run.len;
        Ok(())
    }

    /// Pages managed, free or not.
    #[must_use]
    pub fn total_pages(&self) -> u64 {
        self.total
    }

    /// Pages in holes.
    #[must_use]
    pub fn free_pages(&self) -> u64 {
        self.free
    }

    /// Pages handed out and not yet freed.
    #[must_use]
    pub fn used_pages(&self) -> u64 {
        self.total - self.free
    }

    /// Pages in the largest hole, 0 if none. `O(log h)`.
    #[must_use]
    pub fn largest_free(&self) -> u64 {
        if self.summary == 0 {
            return 0;
        }
        let w = (Summary::BITS - 1 - self.summary.leading_zeros()) as usize;
        let class = w * 64 + 63 - self.words[w].leading_zeros() as usize;
        if class < EXACT { class as u64 } else { self.ranged[class - EXACT].last().map_or(0, |k| unkey(k).0) }
    }

    /// The holes, by address. Each is a maximal free run.
    pub fn free_runs(&self) -> impl Iterator<Item = PageRun> + '_ {
        // Holes never overlap: each start's last page is the next one.
        self.starts.iter().zip(self.lasts.iter()).map(|(start, last)| PageRun { start, len: last + 1 - start })
    }

    /// Number of holes.
    #[must_use]
    pub fn hole_count(&self) -> usize {
        self.holes
    }

    /// Checks every invariant in the module doc. `O(h log h)`; for tests.
    ///
    /// # Errors
    ///
    /// A description of the first broken invariant.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.starts.check().map_err(|e| format!("first pages: {e}"))?;
        self.lasts.check().map_err(|e| format!("last pages: {e}"))?;
        let classed: usize =
            self.exact.iter().map(Class::len).sum::<usize>() + self.ranged.iter().map(Class::len).sum::<usize>();
        let (firsts, lasts) = (self.starts.iter().count(), self.lasts.iter().count());
        if firsts != self.holes || lasts != self.holes || classed != self.holes {
            return Err(format!(
                "{} holes counted, {firsts} first pages, {lasts} last pages, {classed} by size",
                self.holes
            ));
        }
        for c in 0..CLASSES {
            let non_empty = self.class_len(c) > 0;
            if non_empty != (self.words[c / 64] >> (c % 64) & 1 == 1) {
                return Err(format!("bitmap bit of class {c} is wrong (class non-empty: {non_empty})"));
            }
        }
        for (w, &word) in self.words.iter().enumerate() {
            if (word != 0) != (self.summary >> w & 1 == 1) {
                return Err(format!("summary bit of bitmap word {w} is wrong"));
            }
        }
        if self.summary >> WORDS != 0 {
            return Err("summary bits past the bitmap".to_string());
        }
        let mut sum: u64 = 0;
        let mut prev_end: Option<u64> = None;
        for (start, last) in self.starts.iter().zip(self.lasts.iter()) {
            let end = last.checked_add(1).ok_or("a last page at u64::MAX")?;
            let len = end
                .checked_sub(start)
                .filter(|&l| l > 0)
                .ok_or_else(|| format!("hole {start}..{end} ends before it starts"))?;
            if end > self.total {
                return Err(format!("hole {start} +{len} past total {}", self.total));
            }
            if prev_end.is_some_and(|p| p >= start) {
                return Err(format!("hole {start} +{len} overlaps or touches the previous one"));
            }
            if !self.class_contains(len, start) {
                return Err(format!("hole {start} +{len} missing from its size class"));
            }
            sum += len;
            prev_end = Some(end);
        }
        if sum != self.free {
            return Err(format!("holes hold {sum} pages but free counter is {}", self.free));
        }
        Ok(())
    }

    /// Takes `[at, at + pages)` out of hole `[start, start + len)`, already
    /// taken out of its size class, keeping what is left on either side as
    /// holes.
    #[inline]
    fn carve_taken(&mut self, start: u64, len: u64, at: u64, pages: u64) -> PageRun {
        let end = start + len;
        let run_end = at + pages;
        debug_assert!(start <= at && run_end <= end);
        // A right remainder keeps the hole's last page, a left one its
        // first page.
        match (at > start, run_end < end) {
            (false, false) => {
                self.starts.remove(start);
                self.lasts.remove(end - 1);
                self.holes -= 1;
            }
            (false, true) => {
                self.starts.replace(start, run_end);
                self.class_insert(end - run_end, run_end);
            }
            (true, false) => {
                self.lasts.replace(end - 1, at - 1);
                self.class_insert(at - start, start);
            }
            (true, true) => {
                self.starts.insert(run_end);
                self.lasts.insert(at - 1);
                self.holes += 1;
                self.class_insert(end - run_end, run_end);
                self.class_insert(at - start, start);
            }
        }
        self.free -= pages;
        PageRun { start: at, len: pages }
    }

    /// The first non-empty class at or above `class`, if any.
    #[inline]
    fn next_class(&self, class: usize) -> Option<usize> {
        let w = class / 64;
        if w >= WORDS {
            return None;
        }
        let here = self.words[w] & (u64::MAX << (class % 64));
        if here != 0 {
            return Some(w * 64 + here.trailing_zeros() as usize);
        }
        let above = self.summary & (Summary::MAX << w << 1);
        if above == 0 {
            return None;
        }
        let w = above.trailing_zeros() as usize;
        Some(w * 64 + self.words[w].trailing_zeros() as usize)
    }

    /// Files hole `(len, start)` in its size class.
    #[inline]
    fn class_insert(&mut self, len: u64, start: u64) {
        let c = class_of(len);
        let fresh =
            if c < EXACT { self.exact[c].insert(start) } else { self.ranged[c - EXACT].insert(key((len, start))) };
        debug_assert!(fresh, "hole {start} +{len} filed twice");
        self.words[c / 64] |= 1 << (c % 64);
        self.summary |= 1 << (c / 64);
    }

    /// Takes hole `(len, start)` out of its size class.
    #[inline]
    fn class_remove(&mut self, len: u64, start: u64) {
        let c = class_of(len);
        let (found, empty) = if c < EXACT {
            let k = &mut self.exact[c];
            (k.remove(start), k.is_empty())
        } else {
            let k = &mut self.ranged[c - EXACT];
            (k.remove(key((len, start))), k.is_empty())
        };
        debug_assert!(found, "hole {start} +{len} not filed");
        if empty {
            self.clear_bit(c);
        }
    }

    /// Holes in class `c` (0 past the table).
    fn class_len(&self, c: usize) -> usize {
        if c < EXACT { self.exact.get(c) } else { None }
            .map(Class::len)
            .or_else(|| c.checked_sub(EXACT).and_then(|i| self.ranged.get(i)).map(Class::len))
            .unwrap_or(0)
    }

    /// Whether hole `(len, start)` is filed in its class.
    fn class_contains(&self, len: u64, start: u64) -> bool {
        let c = class_of(len);
        if c < EXACT {
            self.exact.get(c).is_some_and(|k| k.contains(start))
        } else {
            self.ranged.get(c - EXACT).is_some_and(|k| k.contains(key((len, start))))
        }
    }

    /// Marks class `c` empty in the bitmap.
    #[inline]
    fn clear_bit(&mut self, c: usize) {
        let w = c / 64;
        self.words[w] &= !(1 << (c % 64));
        if self.words[w] == 0 {
            self.summary &= !(1 << w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(start: u64, len: u64) -> PageRun {
        PageRun { start, len }
    }

    fn holes(ra: &RangeAllocator) -> Vec<(u64, u64)> {
        ra.free_runs().map(|r| (r.start, r.len)).collect()
    }

    /// An allocator over `total` pages whose holes are exactly `free`
    /// (non-adjacent, by address).
    fn with_holes(total: u64, free: &[(u64, u64)]) -> RangeAllocator {
        let mut ra = RangeAllocator::new(total);
        if total > 0 {
            assert_eq!(ra.alloc(total), Some(run(0, total)));
        }
        for &(s, l) in free {
            ra.free(run(s, l)).unwrap();
        }
        assert_eq!(holes(&ra), free);
        ra.check_invariants().unwrap();
        ra
    }

    /// Frees `r` in a clone of `ra`, expects `err`, and that nothing changed.
    fn check_free_err(ra: &RangeAllocator, r: PageRun, err: FreeError) {
        let mut after = ra.clone();
        assert_eq!(after.free(r), Err(err), "free({r:?})");
        assert_eq!(&after, ra, "state changed by rejected free({r:?})");
    }

    #[test]
    fn new_and_empty_range() {
        for total in [0, 1, 7, u64::MAX] {
            let ra = RangeAllocator::new(total);
            ra.check_invariants().unwrap();
            assert_eq!(ra.total_pages(), total);
            assert_eq!(ra.free_pages(), total);
            assert_eq!(ra.used_pages(), 0);
            assert_eq!(ra.largest_free(), total);
            assert_eq!(ra.hole_count(), usize::from(total > 0));
        }
        let mut ra = RangeAllocator::new(0);
        assert_eq!(ra.alloc(1), None);
        assert_eq!(ra.alloc_aligned(1, 1), None);
        assert_eq!(holes(&ra), []);
    }

    #[test]
    fn zero_size_alloc_is_none() {
        let mut ra = RangeAllocator::new(8);
        let before = ra.clone();
        assert_eq!(ra.alloc(0), None);
        assert_eq!(ra.alloc_aligned(0, 1), None);
        assert_eq!(ra.alloc_aligned(0, 4), None);
        assert_eq!(ra, before);
    }

    #[test]
    fn exact_fit() {
        let mut ra = RangeAllocator::new(8);
        assert_eq!(ra.alloc(8), Some(run(0, 8)));
        assert_eq!(holes(&ra), []);
        assert_eq!(ra.alloc(1), None);
        assert_eq!(ra.largest_free(), 0);

        // An exact-size hole is preferred over a larger one at a lower address.
        let mut ra = with_holes(32, &[(0, 8), (10, 3)]);
        assert_eq!(ra.alloc(3), Some(run(10, 3)));
        assert_eq!(holes(&ra), [(0, 8)]);
    }

    #[test]
    fn best_fit_table() {
        // Holes: 4 @0, 2 @10, 8 @20, 2 @30, 3 @40, 5 @50.
        let free = [(0, 4), (10, 2), (20, 8), (30, 2), (40, 3), (50, 5)];
        // (request, expected start)
        let cases: &[(u64, Option<u64>)] = &[
            (1, Some(10)), // smallest holes are 2 @10 and 2 @30: lowest wins
            (2, Some(10)),
            (3, Some(40)),
            (4, Some(0)),
            (5, Some(50)),
            (6, Some(20)),
            (8, Some(20)),
            (9, None),
        ];
        for &(req, want) in cases {
            let mut ra = with_holes(64, &free);
            let before = ra.clone();
            let got = ra.alloc(req);
            assert_eq!(got.map(|r| r.start), want, "alloc({req})");
            ra.check_invariants().unwrap();
            match got {
                Some(r) => {
                    assert_eq!(r.len, req);
                    assert_eq!(ra.used_pages(), before.used_pages() + req);
                }
                None => assert_eq!(ra, before),
            }
        }
    }

    #[test]
    fn split_leaves_remainder_and_largest_tracks() {
        let mut ra = with_holes(64, &[(0, 4), (20, 8)]);
        assert_eq!(ra.largest_free(), 8);
        assert_eq!(ra.alloc(5), Some(run(20, 5)));
        assert_eq!(holes(&ra), [(0, 4), (25, 3)]);
        assert_eq!(ra.largest_free(), 4);
        assert_eq!(ra.alloc(4), Some(run(0, 4)));
        assert_eq!(ra.largest_free(), 3);
    }

    #[test]
    fn alignment_table() {
        let free = [(1, 3), (5, 11), (33, 31)];
        // (pages, align, expected start, holes after)
        #[allow(clippy::type_complexity)]
        let cases: &[(u64, u64, Option<u64>, &[(u64, u64)])] = &[
            (2, 2, Some(2), &[(1, 1), (5, 11), (33, 31)]),
            (3, 1, Some(1), &[(5, 11), (33, 31)]),
            (3, 4, Some(8), &[(1, 3), (5, 3), (11, 5), (33, 31)]),
            (8, 8, Some(8), &[(1, 3), (5, 3), (33, 31)]),
            (4, 16, Some(48), &[(1, 3), (5, 11), (33, 15), (52, 12)]),
            (8, 16, Some(48), &[(1, 3), (5, 11), (33, 15), (56, 8)]),
            (16, 32, None, &free),
            (1, 64, None, &free),
            (2, 3, None, &free), // not a power of two
            (2, 0, None, &free),
        ];
        for &(pages, align, want, after) in cases {
            let mut ra = with_holes(64, &free);
            let got = ra.alloc_aligned(pages, align);
            assert_eq!(got.map(|r| r.start), want, "alloc_aligned({pages}, {align})");
            if let Some(r) = got {
                assert_eq!(r.len, pages);
                assert_eq!(r.start % align, 0);
            }
            assert_eq!(holes(&ra), after, "alloc_aligned({pages}, {align})");
            ra.check_invariants().unwrap();
        }
    }

    #[test]
    fn aligned_near_u64_max_does_not_overflow() {
        let top = 1u64 << 63;
        let mut ra = RangeAllocator::new(u64::MAX);
        assert_eq!(ra.alloc(1), Some(run(0, 1)));
        assert_eq!(ra.alloc_aligned(1, top), Some(run(top, 1)));
        assert_eq!(ra.alloc_aligned(top, top), None);
        ra.check_invariants().unwrap();

        let mut ra = RangeAllocator::new(u64::MAX);
        assert_eq!(ra.alloc(u64::MAX), Some(run(0, u64::MAX)));
        ra.free(run(u64::MAX - 1, 1)).unwrap();
        // Rounding the last hole's start up to `top` would overflow.
        assert_eq!(ra.alloc_aligned(1, top), None);
        assert_eq!(ra.alloc(1), Some(run(u64::MAX - 1, 1)));
        ra.free(run(0, u64::MAX)).unwrap();
        assert_eq!(holes(&ra), [(0, u64::MAX)]);
    }

    #[test]
    fn large_runs_go_to_the_high_end() {
        const H: u64 = HIGH_RUN_PAGES;
        // Holes: H + 10 @0, 3H @(H + 20).
        let free = [(0, H + 10), (H + 20, 3 * H)];
        // (pages, align, expected start)
        let cases: &[(u64, u64, Option<u64>)] = &[
            (H - 1, 1, Some(0)),  // small: low end of the best fit
            (H, 1, Some(10)),     // large: high end of the same hole
            (H + 10, 1, Some(0)), // exact fit
            (H + 11, 1, Some(4 * H + 20 - (H + 11))),
            (H, 8, Some(8)),     // highest aligned start
            (H + 4, 8, Some(0)), // the only aligned start in the best fit
            (2 * H, 1024, Some(2 * H)),
            (3 * H, 1, Some(H + 20)),
            (3 * H + 1, 1, None),
        ];
        for &(pages, align, want) in cases {
            let mut ra = with_holes(4 * H + 20, &free);
            let got = ra.alloc_aligned(pages, align);
            assert_eq!(got.map(|r| r.start), want, "alloc_aligned({pages}, {align})");
            if align == 1 {
                let mut plain = with_holes(4 * H + 20, &free);
                assert_eq!(plain.alloc(pages), got, "alloc({pages})");
            }
            if let Some(r) = got {
                assert_eq!((r.len, r.start % align), (pages, 0));
            }
            ra.check_invariants().unwrap();
        }
    }

    #[test]
    fn coalesce_table() {
        // Three runs a=0+4, b=4+4, c=8+4 over 12 pages; free them in every
        // order and check the holes after each step.
        let [a, b, c] = [run(0, 4), run(4, 4), run(8, 4)];
        #[allow(clippy::type_complexity)]
        let cases: &[(&str, [PageRun; 3], [&[(u64, u64)]; 3])] = &[
            ("a b c: right then right", [a, b, c], [&[(0, 4)], &[(0, 8)], &[(0, 12)]]),
            ("b a c: left", [b, a, c], [&[(4, 4)], &[(0, 8)], &[(0, 12)]]),
            ("c b a: left then left", [c, b, a], [&[(8, 4)], &[(4, 8)], &[(0, 12)]]),
            ("a c b: both", [a, c, b], [&[(0, 4)], &[(0, 4), (8, 4)], &[(0, 12)]]),
            ("b c a: right", [b, c, a], [&[(4, 4)], &[(4, 8)], &[(0, 12)]]),
            ("c a b: both", [c, a, b], [&[(8, 4)], &[(0, 4), (8, 4)], &[(0, 12)]]),
        ];
        for (name, order, steps) in cases {
            let mut ra = RangeAllocator::new(12);
            assert_eq!([ra.alloc(4), ra.alloc(4), ra.alloc(4)], [Some(a), Some(b), Some(c)]);
            for (r, want) in order.iter().zip(steps) {
                ra.free(*r).unwrap();
                assert_eq!(holes(&ra), *want, "{name}: after free({r:?})");
                ra.check_invariants().unwrap();
            }
            assert_eq!(ra.used_pages(), 0);
        }
    }

    #[test]
    fn double_free_rejected_state_unchanged() {
        let mut ra = RangeAllocator::new(16);
        let a = ra.alloc(4).unwrap();
        let b = ra.alloc(4).unwrap();
        ra.free(a).unwrap();
        check_free_err(&ra, a, FreeError::NotAllocated { run: a });
        // Overlapping a hole at either end or in the middle.
        for r in [run(3, 2), run(2, 8), run(7, 2), run(8, 1), run(8, 8), run(0, 16)] {
            check_free_err(&ra, r, FreeError::NotAllocated { run: r });
        }
        // An empty run was never allocated.
        check_free_err(&ra, run(4, 0), FreeError::NotAllocated { run: run(4, 0) });
        ra.free(b).unwrap();
        check_free_err(&ra, b, FreeError::NotAllocated { run: b });
        assert_eq!(holes(&ra), [(0, 16)]);
    }

    #[test]
    fn free_out_of_range() {
        let mut ra = RangeAllocator::new(16);
        ra.alloc(16).unwrap();
        for r in [run(16, 1), run(15, 2), run(100, 4), run(1, u64::MAX), run(u64::MAX, 1)] {
            check_free_err(&ra, r, FreeError::OutOfRange { run: r, total: 16 });
        }
        let empty = RangeAllocator::new(0);
        check_free_err(&empty, run(0, 1), FreeError::OutOfRange { run: run(0, 1), total: 0 });
    }

    #[test]
    fn partial_and_merged_frees_are_accepted() {
        // No metadata: any fully allocated, in-range run may be freed.
        let mut ra = RangeAllocator::new(16);
        let a = ra.alloc(8).unwrap();
        let b = ra.alloc(8).unwrap();
        ra.free(run(2, 2)).unwrap();
        assert_eq!(holes(&ra), [(2, 2)]);
        ra.free(run(4, 8)).unwrap(); // tail of a and head of b together
        assert_eq!(holes(&ra), [(2, 10)]);
        ra.free(run(0, 2)).unwrap();
        ra.free(run(12, 4)).unwrap();
        assert_eq!(holes(&ra), [(0, 16)]);
        check_free_err(&ra, a, FreeError::NotAllocated { run: a });
        check_free_err(&ra, b, FreeError::NotAllocated { run: b });
    }

    #[test]
    fn full_then_empty() {
        let mut ra = RangeAllocator::new(100);
        let runs: Vec<PageRun> = (0..100).map(|_| ra.alloc(1).unwrap()).collect();
        assert_eq!(runs, (0..100).map(|i| run(i, 1)).collect::<Vec<_>>());
        assert_eq!(ra.alloc(1), None);
        assert_eq!(ra.alloc_aligned(1, 1), None);
        assert_eq!((ra.used_pages(), ra.free_pages(), ra.largest_free()), (100, 0, 0));
        assert_eq!(ra.hole_count(), 0);
        // Evens first: 50 separate holes; then odds join them all up.
        for r in runs.iter().step_by(2) {
            ra.free(*r).unwrap();
        }
        assert_eq!(ra.hole_count(), 50);
        assert_eq!(ra.largest_free(), 1);
        for r in runs.iter().skip(1).step_by(2) {
            ra.free(*r).unwrap();
            ra.check_invariants().unwrap();
        }
        assert_eq!(holes(&ra), [(0, 100)]);
        assert_eq!((ra.used_pages(), ra.free_pages(), ra.largest_free()), (0, 100, 100));
    }

    #[test]
    fn crowded_class_turns_into_a_tree_and_back() {
        // 150 one-page holes (and 150 of two pages) share a class each: far
        // more than a sorted `Vec` class holds.
        const N: u64 = SMALL_MAX as u64 + 22;
        let free: Vec<(u64, u64)> = (0..N).map(|i| (i * 6, 1)).chain((0..N).map(|i| (i * 6 + 3, 2))).collect();
        let mut sorted = free.clone();
        sorted.sort_unstable();
        let mut ra = with_holes(6 * N, &sorted);
        assert!(matches!(ra.exact[1], Class::Large(_)) && matches!(ra.exact[2], Class::Large(_)));
        let before = ra.clone();
        // Best fit, lowest address first, from the crowded classes.
        for i in 0..N {
            assert_eq!(ra.alloc(1), Some(run(i * 6, 1)));
            ra.check_invariants().unwrap();
        }
        assert!(matches!(ra.exact[1], Class::Small(_)));
        // Every two-page hole starts at an odd page: none holds an aligned run.
        let full = ra.clone();
        assert_eq!(ra.alloc_aligned(2, 2), None);
        assert_eq!(ra, full);
        assert_eq!(ra.alloc(2), Some(run(3, 2)));
        assert_eq!(ra.largest_free(), 2);
        ra.free(run(3, 2)).unwrap();
        for i in (0..N).rev() {
            ra.free(run(i * 6, 1)).unwrap();
            ra.check_invariants().unwrap();
        }
        // Same holes, reached through different class representations.
        assert_eq!(ra, before);
    }

    #[test]
    fn crowded_ranged_class_turns_into_a_tree_and_back() {
        // 150 holes of `L` pages and 150 of `M` pages crowd two ranged
        // classes: far more than a sorted `Vec` class holds.
        const N: u64 = SMALL_MAX as u64 + 22;
        const L: u64 = EXACT_PAGES;
        const M: u64 = EXACT_PAGES + EXACT_PAGES / 16;
        const STRIDE: u64 = L + M + 4;
        let c = class_of(L) - EXACT;
        assert_eq!(class_of(M) - EXACT, c + 1);
        let free: Vec<(u64, u64)> = (0..N).flat_map(|i| [(i * STRIDE, L), (i * STRIDE + L + 1, M)]).collect();
        let mut ra = with_holes(N * STRIDE, &free);
        assert!(matches!(ra.ranged[c], Class::Large(_)) && matches!(ra.ranged[c + 1], Class::Large(_)));
        let before = ra.clone();
        // Best fit, lowest address first, from the crowded class.
        for i in 0..N {
            assert_eq!(ra.alloc(L), Some(run(i * STRIDE, L)));
        }
        ra.check_invariants().unwrap();
        assert!(matches!(ra.ranged[c], Class::Small(_)));
        // Every `M`-page hole starts at an odd page: none holds an aligned
        // run of its size.
        let full = ra.clone();
        assert_eq!(ra.alloc_aligned(M, 2), None);
        assert_eq!(ra, full);
        assert_eq!(ra.alloc(M), Some(run(L + 1, M)));
        assert_eq!(ra.largest_free(), M);
        ra.free(run(L + 1, M)).unwrap();
        for i in (0..N).rev() {
            ra.free(run(i * STRIDE, L)).unwrap();
        }
        ra.check_invariants().unwrap();
        // Same holes, reached through different class representations.
        assert_eq!(ra, before);
    }

    #[test]
    fn check_invariants_catches_corruption() {
        let ok = with_holes(16, &[(0, 2), (8, 2)]);
        let corrupt: [fn(&mut RangeAllocator); 11] = [
            |ra| ra.free += 1,
            |ra| ra.total = 9,
            |ra| {
                ra.exact[2].remove(8);
            },
            |ra| {
                // Adjacent to the hole at 0.
                ra.starts.insert(2);
                ra.lasts.insert(2);
                ra.holes += 1;
                ra.class_insert(1, 2);
                ra.free += 1;
            },
            |ra| {
                // An empty hole: its last page before its first.
                ra.starts.insert(4);
                ra.lasts.insert(3);
                ra.holes += 1;
                ra.class_insert(0, 4);
            },
            // A size-class entry with no hole behind it.
            |ra| ra.class_insert(2, 11),
            // A hole filed in the wrong class.
            |ra| {
                ra.class_remove(2, 8);
                ra.exact[3].insert(8);
                ra.words[0] |= 1 << 3;
            },
            // Bitmap out of step with the classes.
            |ra| ra.words[0] |= 1 << 7,
            |ra| ra.summary |= 1 << 3,
            // A first page with no last page, and the hole counter off.
            |ra| {
                ra.starts.insert(12);
            },
            |ra| ra.holes += 1,
        ];
        for (i, f) in corrupt.iter().enumerate() {
            let mut ra = ok.clone();
            f(&mut ra);
            assert!(ra.check_invariants().is_err(), "corruption {i} not caught");
        }
    }
}
