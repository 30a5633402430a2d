//! A genalloc-style page bitmap with first fit: the allocator behind the
//! kernel's static protected pool (`gen_pool_alloc` → `gen_pool_first_fit`
//! → `bitmap_find_next_zero_area`), rewritten over 64-bit words.
//!
//! One bit per page, set while allocated. Allocation scans from page 0 for
//! the first run of clear bits long enough; free clears the run. Like
//! genalloc it keeps no per-allocation metadata: the caller passes the size
//! back to [`BitmapFirstFit::free`].

/// First-fit allocator over a page bitmap. See the module documentation.
///
/// # Invariants
///
/// Bit `i` of `words` is set iff page `i` is allocated, for `i < total`;
/// the padding bits past `total` in the last word are always set, so scans
/// never hand them out. `free` counts the clear bits below `total`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BitmapFirstFit {
    words: Vec<u64>,
    total: u64,
    free: u64,
}

impl BitmapFirstFit {
    /// A bitmap managing pages `[0, pages)`, all free.
    #[must_use]
    pub fn new(pages: u64) -> Self {
        let n = pages.div_ceil(64) as usize;
        let mut words = vec![0u64; n];
        let tail = pages % 64;
        if tail != 0 {
            words[n - 1] = !0u64 << tail;
        }
        Self { words, total: pages, free: pages }
    }

    /// Allocates `pages` contiguous pages at the lowest address where they
    /// fit; `None` if `pages == 0` or no run of free pages is long enough.
    /// `O(total / 64)` in the worst case.
    pub fn alloc(&mut self, pages: u64) -> Option<u64> {
        if pages == 0 || pages > self.free {
            return None;
        }
        let mut from = 0;
        loop {
            let start = self.next_zero(from)?;
            let end = start.checked_add(pages).filter(|&e| e <= self.total)?;
            let busy = self.next_one(start, end);
            if busy == end {
                self.set(start, end);
                self.free -= pages;
                return Some(start);
            }
            from = busy;
        }
    }

    /// Frees `[start, start + pages)`. The caller frees exactly what it got
    /// from [`Self::alloc`]; the bitmap cannot tell (genalloc cannot either).
    ///
    /// # Panics
    ///
    /// If the run leaves the managed range or any of its pages is free.
    pub fn free(&mut self, start: u64, pages: u64) {
        let end = start.checked_add(pages).filter(|&e| e <= self.total).expect("run inside the bitmap");
        assert!(self.next_zero_below(start, end).is_none(), "double free of pages {start} +{pages}");
        self.clear(start, end);
        self.free += pages;
    }

    /// Pages managed.
    #[must_use]
    pub fn total_pages(&self) -> u64 {
        self.total
    }

    /// Free pages.
    #[must_use]
    pub fn free_pages(&self) -> u64 {
        self.free
    }

    /// The maximal free runs, by address, as `(start, len)`.
    #[must_use]
    pub fn free_runs(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut from = 0;
        while let Some(start) = self.next_zero(from) {
            let end = self.next_one(start, self.total);
            out.push((start, end - start));
            from = end;
        }
        out
    }

    /// The first clear bit at or after `from`, below `total`.
    fn next_zero(&self, from: u64) -> Option<u64> {
        self.next_zero_below(from, self.total)
    }

    /// The first clear bit in `[from, limit)`.
    fn next_zero_below(&self, from: u64, limit: u64) -> Option<u64> {
        if from >= limit {
            return None;
        }
        let mut w = (from / 64) as usize;
        // Bits below `from` in its word count as set.
        let mut word = self.words[w] | ((1u64 << (from % 64)) - 1);
        loop {
            if word != !0 {
                let bit = w as u64 * 64 + u64::from((!word).trailing_zeros());
                return (bit < limit).then_some(bit);
            }
            w += 1;
            if w as u64 * 64 >= limit {
                return None;
            }
            word = self.words[w];
        }
    }

    /// The first set bit in `[from, limit)`, or `limit` if there is none.
    fn next_one(&self, from: u64, limit: u64) -> u64 {
        if from >= limit {
            return limit;
        }
        let mut w = (from / 64) as usize;
        let mut word = self.words[w] & !((1u64 << (from % 64)) - 1);
        loop {
            if word != 0 {
                return (w as u64 * 64 + u64::from(word.trailing_zeros())).min(limit);
            }
            w += 1;
            if w as u64 * 64 >= limit {
                return limit;
            }
            word = self.words[w];
        }
    }

    /// Sets bits `[start, end)` (`bitmap_set`).
    fn set(&mut self, start: u64, end: u64) {
        self.update(start, end, |w, m| *w |= m);
    }

    /// Clears bits `[start, end)` (`bitmap_clear`).
    fn clear(&mut self, start: u64, end: u64) {
        self.update(start, end, |w, m| *w &= !m);
    }

    fn update(&mut self, start: u64, end: u64, f: impl Fn(&mut u64, u64)) {
        let mut at = start;
        while at < end {
            let w = (at / 64) as usize;
            let lo = at % 64;
            let hi = (end - w as u64 * 64).min(64);
            let mask = if hi - lo == 64 { !0 } else { ((1u64 << (hi - lo)) - 1) << lo };
            f(&mut self.words[w], mask);
            at = w as u64 * 64 + hi;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_fit_table() {
        let mut b = BitmapFirstFit::new(200);
        assert_eq!(b.alloc(0), None);
        assert_eq!(b.alloc(70), Some(0));
        assert_eq!(b.alloc(10), Some(70));
        assert_eq!(b.alloc(100), Some(80));
        assert_eq!(b.alloc(21), None);
        assert_eq!(b.alloc(20), Some(180));
        assert_eq!(b.free_pages(), 0);
        b.free(70, 10);
        b.free(0, 70);
        // First fit: the 5 pages go to the lowest hole, not the best one.
        assert_eq!(b.free_runs(), [(0, 80)]);
        assert_eq!(b.alloc(5), Some(0));
        b.free(180, 20);
        assert_eq!(b.free_runs(), [(5, 75), (180, 20)]);
        assert_eq!(b.alloc(76), None);
        assert_eq!(b.alloc(75), Some(5));
        assert_eq!(b.alloc(21), None);
        assert_eq!(b.alloc(20), Some(180));
    }

    #[test]
    fn word_boundaries_and_padding() {
        for total in [1, 63, 64, 65, 127, 128, 129] {
            let mut b = BitmapFirstFit::new(total);
            assert_eq!(b.free_runs(), [(0, total)]);
            assert_eq!(b.alloc(total + 1), None);
            assert_eq!(b.alloc(total), Some(0));
            assert_eq!(b.free_runs(), []);
            b.free(0, total);
            let singles: Vec<u64> = (0..total).map(|_| b.alloc(1).unwrap()).collect();
            assert_eq!(singles, (0..total).collect::<Vec<_>>());
            for i in (0..total).step_by(2) {
                b.free(i, 1);
            }
            assert_eq!(b.alloc(2), None, "total {total}");
            assert_eq!(b.free_pages(), total.div_ceil(2));
        }
    }

    #[test]
    #[should_panic(expected = "double free")]
    fn double_free_panics() {
        let mut b = BitmapFirstFit::new(64);
        let a = b.alloc(8).unwrap();
        b.free(a, 8);
        b.free(a, 8);
    }
}
