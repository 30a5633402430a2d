//! A set of integers in `[0, n)` as a 64-ary hierarchy of bitmaps: insert,
//! remove and the next/previous member are `O(log64 n)` word operations.
//!
//! Level 0 holds one bit per integer; a bit of level `l + 1` is set exactly
//! when word of level `l` with that index is non-zero, up to a top level of
//! one word. A set of up to `64 * DENSE_WORDS` values keeps every level in a
//! plain vector; a larger one keeps only the non-zero words of every level in
//! hash maps, so its memory (and its checks) follow the members, not `n`.
//! The choice is made once per set, so each operation's loop over the levels
//! is compiled for one kind of level.

use std::collections::HashMap;

/// Leaf words of the largest set kept in vectors (512 KiB, `2^22` values).
const DENSE_WORDS: u64 = 1 << 16;

/// The words of one level; absent words are zero.
pub(super) trait Words: Clone {
    /// A level of `words` zero words.
    fn zeroed(words: u64) -> Self;
    /// Word `w`, 0 if absent (also past the level's end).
    fn word(&self, w: u64) -> u64;
    /// Sets word `w` (inside the level) to `value`.
    fn set_word(&mut self, w: u64, value: u64);
    /// The non-zero words, as `(index, word)`; for checks.
    fn non_zero(&self) -> Vec<(u64, u64)>;
    /// Words stored, zero or not; for checks.
    fn stored(&self) -> u64;
}

impl Words for Vec<u64> {
    fn zeroed(words: u64) -> Self {
        // `words <= DENSE_WORDS`, so it fits `usize`.
        vec![0; words as usize]
    }

    #[inline]
    fn word(&self, w: u64) -> u64 {
        usize::try_from(w).ok().and_then(|w| self.get(w)).copied().unwrap_or(0)
    }

    #[inline]
    fn set_word(&mut self, w: u64, value: u64) {
        // Callers pass members `< n`, so `w` is inside the level.
        self[w as usize] = value;
    }

    fn non_zero(&self) -> Vec<(u64, u64)> {
        self.iter().enumerate().filter(|&(_, &v)| v != 0).map(|(w, &v)| (w as u64, v)).collect()
    }

    fn stored(&self) -> u64 {
        self.len() as u64
    }
}

/// Non-zero words only (a zero word is removed), so equal sets are equal.
impl Words for HashMap<u64, u64> {
    fn zeroed(_: u64) -> Self {
        HashMap::new()
    }

    #[inline]
    fn word(&self, w: u64) -> u64 {
        self.get(&w).copied().unwrap_or(0)
    }

    #[inline]
    fn set_word(&mut self, w: u64, value: u64) {
        if value == 0 {
            self.remove(&w);
        } else {
            self.insert(w, value);
        }
    }

    fn non_zero(&self) -> Vec<(u64, u64)> {
        let mut v: Vec<(u64, u64)> = self.iter().map(|(&w, &v)| (w, v)).collect();
        v.sort_unstable();
        v
    }

    fn stored(&self) -> u64 {
        self.len() as u64
    }
}

/// The levels of one set, all of one kind of [`Words`].
///
/// # Invariants
///
/// - `levels[0]` has one bit per value in `[0, n)`, and no bit at or past `n`.
/// - For `l > 0`, bit `i` of `levels[l]` is set exactly when word `i` of
///   `levels[l - 1]` is non-zero.
/// - The last level has one word (no level at all when `n == 0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Tree<W> {
    /// Values in the set must be below this.
    n: u64,
    levels: Vec<W>,
}

impl<W: Words> Tree<W> {
    fn new(n: u64) -> Self {
        let mut levels = Vec::new();
        let mut bits = n;
        while bits > 0 {
            let words = bits.div_ceil(64);
            levels.push(W::zeroed(words));
            if words == 1 {
                break;
            }
            bits = words;
        }
        Self { n, levels }
    }

    #[inline]
    fn contains(&self, x: u64) -> bool {
        self.levels.first().is_some_and(|l| l.word(x / 64) >> (x % 64) & 1 == 1)
    }

    #[inline]
    fn insert(&mut self, x: u64) {
        debug_assert!(x < self.n, "{x} out of range {}", self.n);
        let mut x = x;
        for level in &mut self.levels {
            let w = x / 64;
            let old = level.word(w);
            level.set_word(w, old | 1 << (x % 64));
            if old != 0 {
                break;
            }
            x = w;
        }
    }

    #[inline]
    fn remove(&mut self, x: u64) {
        let mut x = x;
        for level in &mut self.levels {
            let w = x / 64;
            let old = level.word(w);
            let new = old & !(1 << (x % 64));
            if new == old {
                break;
            }
            level.set_word(w, new);
            if new != 0 {
                break;
            }
            x = w;
        }
    }

    /// Moves member `old` to `new`: when both share a leaf word that word
    /// stays non-zero, so one word write does it.
    #[inline]
    fn replace(&mut self, old: u64, new: u64) {
        if old / 64 == new / 64
            && let Some(leaf) = self.levels.first_mut()
        {
            let word = leaf.word(old / 64);
            if word >> (old % 64) & 1 == 1 {
                leaf.set_word(old / 64, (word & !(1 << (old % 64))) | 1 << (new % 64));
                return;
            }
        }
        self.remove(old);
        self.insert(new);
    }

    #[inline]
    fn next(&self, x: u64) -> Option<u64> {
        let mut pos = x;
        for (l, level) in self.levels.iter().enumerate() {
            let w = pos / 64;
            let bits = level.word(w) & (u64::MAX << (pos % 64));
            if bits != 0 {
                // Down to the lowest member under this bit.
                let mut x = w * 64 + u64::from(bits.trailing_zeros());
                for level in self.levels[..l].iter().rev() {
                    x = x * 64 + u64::from(level.word(x).trailing_zeros());
                }
                return Some(x);
            }
            // Nothing more in this word: look from the next word on, one
            // level up. `w < 2^58`, so `w + 1` does not overflow.
            pos = w + 1;
        }
        None
    }

    #[inline]
    fn prev(&self, x: u64) -> Option<u64> {
        // Words past the range are absent at every level: start inside it.
        let mut pos = x.min(self.n.checked_sub(1)?);
        for (l, level) in self.levels.iter().enumerate() {
            let w = pos / 64;
            let bits = level.word(w) & (u64::MAX >> (63 - pos % 64));
            if bits != 0 {
                // Down to the highest member under this bit.
                let mut x = w * 64 + 63 - u64::from(bits.leading_zeros());
                for level in self.levels[..l].iter().rev() {
                    x = x * 64 + 63 - u64::from(level.word(x).leading_zeros());
                }
                return Some(x);
            }
            pos = w.checked_sub(1)?;
        }
        None
    }

    fn check(&self) -> Result<(), String> {
        let Some(top) = self.levels.last() else {
            return if self.n == 0 { Ok(()) } else { Err("no levels".into()) };
        };
        if top.non_zero().iter().any(|&(w, _)| w != 0) || top.stored() > 1 {
            return Err("top level is not one word".into());
        }
        // No member at or past `n`: nothing in the leaf words past the one
        // holding `n - 1`, nor in that word past `n - 1`.
        let last_word = (self.n - 1) / 64;
        let leaves = self.levels[0].non_zero();
        let spare = u64::MAX.checked_shl(((self.n - 1) % 64 + 1) as u32).unwrap_or(0);
        if leaves.iter().any(|&(w, _)| w > last_word) || self.levels[0].word(last_word) & spare != 0 {
            return Err(format!("a member at or past {}", self.n));
        }
        for l in 1..self.levels.len() {
            let (lower, upper) = (self.levels[l - 1].non_zero(), &self.levels[l]);
            for &(w, _) in &lower {
                if upper.word(w / 64) >> (w % 64) & 1 == 0 {
                    return Err(format!("level {l} misses word {w} of level {}", l - 1));
                }
            }
            let set: u64 = upper.non_zero().iter().map(|&(_, v)| u64::from(v.count_ones())).sum();
            if set != lower.len() as u64 {
                return Err(format!("level {l} has {set} bits for {} non-zero words", lower.len()));
            }
        }
        Ok(())
    }
}

/// A set of integers in `[0, n)`: dense levels up to `64 * DENSE_WORDS`
/// values, sparse ones beyond.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum BitSet {
    Dense(Tree<Vec<u64>>),
    Sparse(Tree<HashMap<u64, u64>>),
}

/// Runs `$body` with `$t` bound to the set's tree, whichever kind it is.
macro_rules! on_tree {
    ($set:expr, $t:ident => $body:expr) => {
        match $set {
            BitSet::Dense($t) => $body,
            BitSet::Sparse($t) => $body,
        }
    };
}

impl BitSet {
    /// An empty set over `[0, n)`.
    pub(super) fn new(n: u64) -> Self {
        if n.div_ceil(64) <= DENSE_WORDS { BitSet::Dense(Tree::new(n)) } else { BitSet::Sparse(Tree::new(n)) }
    }

    /// Whether `x` is in the set.
    #[inline]
    pub(super) fn contains(&self, x: u64) -> bool {
        on_tree!(self, t => t.contains(x))
    }

    /// Adds `x < n`. Adding a member again changes nothing.
    #[inline]
    pub(super) fn insert(&mut self, x: u64) {
        on_tree!(self, t => t.insert(x));
    }

    /// Removes `x`. Removing a non-member changes nothing.
    #[inline]
    pub(super) fn remove(&mut self, x: u64) {
        on_tree!(self, t => t.remove(x));
    }

    /// Removes `old` and adds `new < n`, as `remove` then `insert` would,
    /// in one word write when both lie in the same 64-value word.
    #[inline]
    pub(super) fn replace(&mut self, old: u64, new: u64) {
        on_tree!(self, t => t.replace(old, new));
    }

    /// The smallest member `>= x`, if any.
    #[inline]
    pub(super) fn next(&self, x: u64) -> Option<u64> {
        on_tree!(self, t => t.next(x))
    }

    /// The largest member `<= x`, if any.
    #[inline]
    pub(super) fn prev(&self, x: u64) -> Option<u64> {
        on_tree!(self, t => t.prev(x))
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

    /// Checks the invariants. `O(n / 64)` for dense levels; for tests.
    pub(super) fn check(&self) -> Result<(), String> {
        on_tree!(self, t => t.check())
    }

    /// Number of levels (test helper).
    #[cfg(test)]
    fn level_count(&self) -> usize {
        on_tree!(self, t => t.levels.len())
    }

    /// Word `w` of level `l` (test helper).
    #[cfg(test)]
    fn word(&self, l: usize, w: u64) -> u64 {
        on_tree!(self, t => t.levels[l].word(w))
    }

    /// Overwrites word `w` of level `l`, breaking invariants (test helper).
    #[cfg(test)]
    fn set_word(&mut self, l: usize, w: u64, v: u64) {
        on_tree!(self, t => t.levels[l].set_word(w, v));
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
            // Moving a member (or a non-member) to a nearby or far value.
            for to in [x ^ 1, x ^ 63, x / 2] {
                if to < n {
                    let mut moved = set.clone();
                    moved.replace(x, to);
                    moved.check().unwrap();
                    let mut want = model.clone();
                    want.remove(&x);
                    want.insert(to);
                    assert!(moved.iter().eq(want.iter().copied()), "replace({x}, {to}) in {n}");
                }
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
            assert_eq!(set.level_count(), levels, "levels for {n}");
            assert_eq!(matches!(set, BitSet::Dense(_)), dense, "{n}");
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
            |s| s.set_word(0, 3, 1),
            // An upper bit without a leaf word.
            |s| {
                let w = s.word(1, 0);
                s.set_word(1, 0, w | 1 << 9);
            },
            // A member past `n`.
            |s| {
                let w = s.word(0, 5000 / 64);
                s.set_word(0, 5000 / 64, w | 1 << 63);
            },
        ];
        for (i, f) in corrupt.iter().enumerate() {
            let mut s = ok.clone();
            f(&mut s);
            assert!(s.check().is_err(), "corruption {i} not caught");
        }
    }
}
