//! A set of integers in `[0, n)` as a 64-ary hierarchy of bitmaps: insert,
//! remove and the next/previous member are `O(log64 n)` word operations.
//!
//! Level 0 holds one bit per integer; a bit of level `l + 1` is set exactly
//! when word of level `l` with that index is non-zero, up to a top level of
//! one word. A set of up to `64 * DENSE_WORDS` values keeps every level in a
//! plain vector; a larger one keeps only the non-zero words of every level in
//! hash maps, so its memory (and its checks) follow the members, not `n`.

use std::collections::HashMap;

/// Leaf words of the largest set kept in vectors (512 KiB, `2^22` values).
const DENSE_WORDS: u64 = 1 << 16;

/// The words of one level; absent words are zero.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Level {
    Dense(Vec<u64>),
    /// Non-zero words only (a zero word is removed), so equal sets are equal.
    Sparse(HashMap<u64, u64>),
}

impl Level {
    fn new(words: u64, dense: bool) -> Self {
        if dense {
            // `words <= DENSE_WORDS`, so it fits `usize`.
            Level::Dense(vec![0; words as usize])
        } else {
            Level::Sparse(HashMap::new())
        }
    }

    #[inline]
    fn get(&self, w: u64) -> u64 {
        match self {
            Level::Dense(v) => usize::try_from(w).ok().and_then(|w| v.get(w)).copied().unwrap_or(0),
            Level::Sparse(m) => m.get(&w).copied().unwrap_or(0),
        }
    }

    /// Sets word `w` (inside the level) to `value`.
    #[inline]
    fn set(&mut self, w: u64, value: u64) {
        match self {
            // Callers pass members `< n`, so `w` is inside the level.
            Level::Dense(v) => v[w as usize] = value,
            Level::Sparse(m) => {
                if value == 0 {
                    m.remove(&w);
                } else {
                    m.insert(w, value);
                }
            }
        }
    }
}

/// A set of integers in `[0, n)`.
///
/// # Invariants
///
/// - `levels[0]` has one bit per value in `[0, n)`, and no bit at or past `n`.
/// - For `l > 0`, bit `i` of `levels[l]` is set exactly when word `i` of
///   `levels[l - 1]` is non-zero.
/// - The last level has one word (no level at all when `n == 0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BitSet {
    /// Values in the set must be below this.
    n: u64,
    levels: Vec<Level>,
}

impl BitSet {
    /// An empty set over `[0, n)`.
    pub(super) fn new(n: u64) -> Self {
        let mut levels = Vec::new();
        let dense = n.div_ceil(64) <= DENSE_WORDS;
        let mut bits = n;
        while bits > 0 {
            let words = bits.div_ceil(64);
            levels.push(Level::new(words, dense));
            if words == 1 {
                break;
            }
            bits = words;
        }
        Self { n, levels }
    }

    /// Whether `x` is in the set.
    #[inline]
    pub(super) fn contains(&self, x: u64) -> bool {
        self.levels.first().is_some_and(|l| l.get(x / 64) >> (x % 64) & 1 == 1)
    }

    /// Adds `x < n`. Adding a member again changes nothing.
    #[inline]
    pub(super) fn insert(&mut self, x: u64) {
        debug_assert!(x < self.n, "{x} out of range {}", self.n);
        let mut x = x;
        for level in &mut self.levels {
            let w = x / 64;
            let old = level.get(w);
            level.set(w, old | 1 << (x % 64));
            if old != 0 {
                break;
            }
            x = w;
        }
    }

    /// Removes `x`. Removing a non-member changes nothing.
    #[inline]
    pub(super) fn remove(&mut self, x: u64) {
        let mut x = x;
        for level in &mut self.levels {
            let w = x / 64;
            let old = level.get(w);
            let new = old & !(1 << (x % 64));
            if new == old {
                break;
            }
            level.set(w, new);
            if new != 0 {
                break;
            }
            x = w;
        }
    }

    /// The smallest member `>= x`, if any.
    #[inline]
    pub(super) fn next(&self, x: u64) -> Option<u64> {
        let mut pos = x;
        for (l, level) in self.levels.iter().enumerate() {
            let w = pos / 64;
            let bits = level.get(w) & (u64::MAX << (pos % 64));
            if bits != 0 {
                return Some(self.descend_first(l, w * 64 + u64::from(bits.trailing_zeros())));
            }
            // Nothing more in this word: look from the next word on, one
            // level up. `w < 2^58`, so `w + 1` does not overflow.
            pos = w + 1;
        }
        None
    }

    /// The largest member `<= x`, if any.
    #[inline]
    pub(super) fn prev(&self, x: u64) -> Option<u64> {
        // Words past the range are absent at every level: start inside it.
        let mut pos = x.min(self.n.checked_sub(1)?);
        for (l, level) in self.levels.iter().enumerate() {
            let w = pos / 64;
            let bits = level.get(w) & (u64::MAX >> (63 - pos % 64));
            if bits != 0 {
                return Some(self.descend_last(l, w * 64 + 63 - u64::from(bits.leading_zeros())));
            }
            pos = w.checked_sub(1)?;
        }
        None
    }

    /// The members in increasing order.
    pub(super) fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        let mut from = Some(0);
        std::iter::from_fn(move || {
            let x = self.next(from?)?;
            from = x.checked_add(1);
            Some(x)
        })
    }

    /// From set bit `bit` of level `l` (a non-zero word of level `l - 1`),
    /// down to the lowest member under it.
    #[inline]
    fn descend_first(&self, l: usize, bit: u64) -> u64 {
        let mut x = bit;
        for level in self.levels[..l].iter().rev() {
            x = x * 64 + u64::from(level.get(x).trailing_zeros());
        }
        x
    }

    /// From set bit `bit` of level `l`, down to the highest member under it.
    #[inline]
    fn descend_last(&self, l: usize, bit: u64) -> u64 {
        let mut x = bit;
        for level in self.levels[..l].iter().rev() {
            x = x * 64 + 63 - u64::from(level.get(x).leading_zeros());
        }
        x
    }

    /// Checks the invariants. `O(n / 64)` for dense levels; for tests.
    pub(super) fn check(&self) -> Result<(), String> {
        let Some(top) = self.levels.last() else {
            return if self.n == 0 { Ok(()) } else { Err("no levels".into()) };
        };
        if !matches!(top, Level::Dense(v) if v.len() == 1)
            && !matches!(top, Level::Sparse(m) if m.keys().all(|&w| w == 0))
        {
            return Err("top level is not one word".into());
        }
        // No member at or past `n`: nothing in the leaf words past the one
        // holding `n - 1`, nor in that word past `n - 1`.
        let last_word = (self.n - 1) / 64;
        let past = match &self.levels[0] {
            Level::Dense(v) => v.len() as u64 > last_word + 1,
            Level::Sparse(m) => m.keys().any(|&w| w > last_word),
        };
        let spare = u64::MAX.checked_shl(((self.n - 1) % 64 + 1) as u32).unwrap_or(0);
        if past || self.levels[0].get(last_word) & spare != 0 {
            return Err(format!("a member at or past {}", self.n));
        }
        for l in 1..self.levels.len() {
            let (lower, upper) = (&self.levels[l - 1], &self.levels[l]);
            let words: Vec<u64> = match lower {
                Level::Dense(v) => (0..v.len() as u64).filter(|&w| v[w as usize] != 0).collect(),
                Level::Sparse(m) => {
                    if m.values().any(|&v| v == 0) {
                        return Err(format!("zero word kept at level {}", l - 1));
                    }
                    m.keys().copied().collect()
                }
            };
            for &w in &words {
                if upper.get(w / 64) >> (w % 64) & 1 == 0 {
                    return Err(format!("level {l} misses word {w} of level {}", l - 1));
                }
            }
            let set: u64 = match upper {
                Level::Dense(v) => v.iter().map(|w| u64::from(w.count_ones())).sum(),
                Level::Sparse(m) => m.values().map(|w| u64::from(w.count_ones())).sum(),
            };
            if set != words.len() as u64 {
                return Err(format!("level {l} has {set} bits for {} non-zero words", words.len()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Applies `ops` (`true` = insert) to a set over `[0, n)` and to a
    /// `BTreeSet`, comparing every query at the given probes.
    fn check_against_model(n: u64, ops: &[(bool, u64)], probes: &[u64]) {
        let mut set = BitSet::new(n);
        let mut model = BTreeSet::new();
        for &(add, x) in ops {
            if add {
                set.insert(x);
                model.insert(x);
            } else {
                set.remove(x);
                model.remove(&x);
            }
            set.check().unwrap();
            for &p in probes {
                assert_eq!(set.contains(p), model.contains(&p), "contains({p}) in {n}");
                assert_eq!(set.next(p), model.range(p..).next().copied(), "next({p}) in {n}");
                assert_eq!(set.prev(p), model.range(..=p).next_back().copied(), "prev({p}) in {n}");
            }
            assert!(set.iter().eq(model.iter().copied()), "members in {n}");
        }
    }

    #[test]
    fn levels_by_size() {
        // (n, levels, dense at the bottom)
        for (n, levels, dense) in [
            (0, 0, true),
            (1, 1, true),
            (64, 1, true),
            (65, 2, true),
            (4096, 2, true),
            (4097, 3, true),
            (1 << 18, 3, true),
            (1 << 22, 4, true),
            ((1 << 22) + 1, 4, false),
            (u64::MAX, 11, false),
        ] {
            let set = BitSet::new(n);
            assert_eq!(set.levels.len(), levels, "levels for {n}");
            assert_eq!(set.levels.first().is_none_or(|l| matches!(l, Level::Dense(_))), dense, "{n}");
            set.check().unwrap();
            assert_eq!(set.next(0), None);
            assert_eq!(set.prev(u64::MAX), None);
        }
    }

    #[test]
    fn table_against_model() {
        let small: &[(bool, u64)] = &[(true, 5), (true, 0), (true, 63), (false, 5), (true, 5), (false, 0), (false, 63)];
        check_against_model(64, small, &[0, 1, 5, 6, 62, 63, u64::MAX]);
        // Across words and levels: 4097 values need three levels.
        let wide: &[(bool, u64)] = &[
            (true, 4096),
            (true, 64),
            (true, 4095),
            (true, 0),
            (false, 64),
            (false, 4095),
            (true, 2000),
            (false, 0),
            (false, 4096),
            (false, 2000),
        ];
        check_against_model(4097, wide, &[0, 1, 63, 64, 65, 1999, 2000, 2001, 4095, 4096, 5000]);
    }

    #[test]
    fn sparse_levels_near_u64_max() {
        let top = u64::MAX - 1;
        let ops: &[(bool, u64)] = &[
            (true, top),
            (true, 0),
            (true, 1 << 40),
            (true, (1 << 40) + 1),
            (false, 0),
            (false, top),
            (true, 1 << 63),
            (false, 1 << 40),
            (false, (1 << 40) + 1),
            (false, 1 << 63),
        ];
        check_against_model(u64::MAX, ops, &[0, 1, 1 << 40, (1 << 40) + 2, 1 << 62, 1 << 63, top, u64::MAX]);
        // Removing everything leaves no words behind.
        let mut set = BitSet::new(u64::MAX);
        set.insert(12345);
        set.remove(12345);
        assert_eq!(set, BitSet::new(u64::MAX));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn random_against_model(
            n in proptest::prop_oneof![1..300u64, 4000..300_000u64],
            ops in proptest::collection::vec((proptest::bool::weighted(0.6), proptest::num::u64::ANY), 0..100),
            probes in proptest::collection::vec(proptest::num::u64::ANY, 0..10),
        ) {
            let ops: Vec<(bool, u64)> = ops.into_iter().map(|(add, x)| (add, x % n)).collect();
            let probes: Vec<u64> = probes.into_iter().map(|p| p % n).chain([0, n - 1, n]).collect();
            check_against_model(n, &ops, &probes);
        }
    }

    #[test]
    fn check_catches_corruption() {
        let mut ok = BitSet::new(5000);
        ok.insert(70);
        ok.insert(4000);
        let corrupt: [fn(&mut BitSet); 3] = [
            // A leaf bit without its upper bit.
            |s| s.levels[0].set(3, 1),
            // An upper bit without a leaf word.
            |s| {
                let w = s.levels[1].get(0);
                s.levels[1].set(0, w | 1 << 9);
            },
            // A member past `n`.
            |s| {
                let w = s.levels[0].get(5000 / 64);
                s.levels[0].set(5000 / 64, w | 1 << 63);
            },
        ];
        for (i, f) in corrupt.iter().enumerate() {
            let mut s = ok.clone();
            f(&mut s);
            assert!(s.check().is_err(), "corruption {i} not caught");
        }
    }
}
