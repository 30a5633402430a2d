//! Physical addresses and ranges of the emulated platform.
//!
//! Addresses are newtypes with explicit, checked arithmetic (no `+`/`-`), so
//! every place that could overflow says what it does about it.

use std::fmt;

use serde::Serialize;

/// Size of a page of physical memory, in bytes. Every protected range and
/// every heap allocation is a whole number of pages.
pub const PAGE_SIZE: u64 = 4096;

/// An address in the platform's physical address space.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct PhysAddr(pub u64);

impl PhysAddr {
    /// The raw address value.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// `self + offset`, or `None` on overflow.
    pub const fn checked_add(self, offset: u64) -> Option<PhysAddr> {
        match self.0.checked_add(offset) {
            Some(a) => Some(PhysAddr(a)),
            None => None,
        }
    }

    /// The distance from `base` to `self`, or `None` if `self < base`.
    pub const fn checked_offset_from(self, base: PhysAddr) -> Option<u64> {
        self.0.checked_sub(base.0)
    }

    /// Whether the address is a multiple of [`PAGE_SIZE`].
    pub const fn is_page_aligned(self) -> bool {
        self.0 % PAGE_SIZE == 0
    }
}

impl fmt::Display for PhysAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#011x}", self.0)
    }
}

/// A non-empty half-open physical range `[start, start + len)` that does not
/// wrap around the address space.
///
/// # Invariants
/// `len > 0` and `start + len` does not overflow `u64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PhysRange {
    start: PhysAddr,
    len: u64,
}

impl PhysRange {
    /// The range `[start, start + len)`, or `None` if it is empty or wraps.
    pub const fn new(start: PhysAddr, len: u64) -> Option<PhysRange> {
        if len == 0 || start.0.checked_add(len).is_none() {
            return None;
        }
        Some(PhysRange { start, len })
    }

    /// First address of the range.
    pub const fn start(&self) -> PhysAddr {
        self.start
    }

    /// Length in bytes (never 0).
    pub const fn len(&self) -> u64 {
        self.len
    }

    /// Always `false`: ranges are never empty. Present for API symmetry.
    pub const fn is_empty(&self) -> bool {
        false
    }

    /// One past the last address of the range.
    pub const fn end(&self) -> PhysAddr {
        // Cannot overflow: checked in `new`.
        PhysAddr(self.start.0 + self.len)
    }

    /// Whether `addr` lies inside the range.
    pub const fn contains(&self, addr: PhysAddr) -> bool {
        addr.0 >= self.start.0 && addr.0 < self.end().0
    }

    /// Whether `other` lies entirely inside `self`.
    pub const fn contains_range(&self, other: &PhysRange) -> bool {
        other.start.0 >= self.start.0 && other.end().0 <= self.end().0
    }

    /// Whether the two ranges share at least one byte.
    pub const fn overlaps(&self, other: &PhysRange) -> bool {
        self.start.0 < other.end().0 && other.start.0 < self.end().0
    }

    /// The sub-range `[start + offset, start + offset + len)`, or `None` if
    /// it is empty or leaves `self`.
    pub const fn subrange(&self, offset: u64, len: u64) -> Option<PhysRange> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len && len > 0 => Some(PhysRange { start: PhysAddr(self.start.0 + offset), len }),
            _ => None,
        }
    }

    /// Whether start and length are both multiples of [`PAGE_SIZE`].
    pub const fn is_page_aligned(&self) -> bool {
        self.start.is_page_aligned() && self.len % PAGE_SIZE == 0
    }
}

impl fmt::Display for PhysRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}..{})", self.start, self.end())
    }
}

/// A non-zero, page-aligned length in bytes: the size of every heap
/// allocation and protected range. Built once where a client's length
/// becomes a value; inner layers take it as is.
///
/// # Invariants
/// `0 < bytes` and `bytes % PAGE_SIZE == 0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Len(u64);

impl Len {
    /// `bytes` rounded up to whole pages, as the kernel's `PAGE_ALIGN`;
    /// `None` if that is 0 (also when rounding overflows, as it wraps to 0
    /// in the kernel).
    pub const fn page_align(bytes: u64) -> Option<Len> {
        match page_align_up(bytes) {
            Some(0) | None => None,
            Some(b) => Some(Len(b)),
        }
    }

    /// `pages` whole pages, or `None` if 0 or overflowing.
    pub const fn from_pages(pages: u64) -> Option<Len> {
        match pages.checked_mul(PAGE_SIZE) {
            Some(0) | None => None,
            Some(b) => Some(Len(b)),
        }
    }

    /// The length in bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// The length in pages.
    pub const fn pages(self) -> u64 {
        self.0 / PAGE_SIZE
    }
}

impl fmt::Display for Len {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// Rounds `len` up to a whole number of pages, or `None` on overflow.
pub const fn page_align_up(len: u64) -> Option<u64> {
    match len.checked_add(PAGE_SIZE - 1) {
        Some(v) => Some(v & !(PAGE_SIZE - 1)),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_range(start: u64, len: u64, expected: Option<(u64, u64)>) {
        let r = PhysRange::new(PhysAddr(start), len);
        assert_eq!(r.map(|r| (r.start().raw(), r.end().raw())), expected);
    }

    #[test]
    fn range_construction() {
        check_range(0x1000, 0x1000, Some((0x1000, 0x2000)));
        check_range(0x1000, 0, None);
        check_range(u64::MAX, 1, None);
        check_range(u64::MAX - 1, 1, Some((u64::MAX - 1, u64::MAX)));
    }

    #[test]
    fn overlap_and_containment() {
        let a = PhysRange::new(PhysAddr(0x1000), 0x2000).unwrap();
        let b = PhysRange::new(PhysAddr(0x2fff), 1).unwrap();
        let c = PhysRange::new(PhysAddr(0x3000), 1).unwrap();
        assert!(a.overlaps(&b) && a.contains_range(&b));
        assert!(!a.overlaps(&c) && !a.contains(c.start()));
        assert_eq!(a.subrange(0x1000, 0x1000).unwrap().start(), PhysAddr(0x2000));
        assert!(a.subrange(0x1000, 0x1001).is_none());
        assert!(a.subrange(u64::MAX, 2).is_none());
        assert!(a.subrange(0, 0).is_none());
    }

    #[test]
    fn page_rounding() {
        assert_eq!(page_align_up(0), Some(0));
        assert_eq!(page_align_up(1), Some(PAGE_SIZE));
        assert_eq!(page_align_up(PAGE_SIZE), Some(PAGE_SIZE));
        assert_eq!(page_align_up(u64::MAX), None);
        assert_eq!(PhysAddr(5).checked_add(u64::MAX), None);
        assert_eq!(PhysAddr(5).checked_offset_from(PhysAddr(6)), None);
        assert_eq!(Len::page_align(1).map(Len::bytes), Some(PAGE_SIZE));
        assert_eq!(Len::page_align(0), None);
        assert_eq!(Len::page_align(u64::MAX), None);
        assert_eq!(Len::from_pages(3).map(Len::pages), Some(3));
        assert_eq!(Len::from_pages(u64::MAX), None);
    }
}
