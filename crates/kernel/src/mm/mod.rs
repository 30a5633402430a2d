//! Memory management: physical page allocation over one range
//! ([`PageAllocator`]: the range allocator of [`range_alloc`]
//! turned into physical addresses, behind a lock), and the model's one
//! normal-memory allocator over the platform's DRAM outside the carveouts
//! ([`NormalMemory`]).
//!
//! Normal memory serves the `system` heap, TEE shared memory, dynamic pools
//! and the backend; static carveout pools run a [`PageAllocator`] over their
//! carveout. The caller keeps the [`PhysRange`] it got and hands it back;
//! no per-allocation state is kept.

mod normal;
pub mod range_alloc;

pub use normal::NormalMemory;

use std::sync::Mutex;
use teeheap_sync::Recover;

use serde::Serialize;
use teeheap_platform::{Len, PAGE_SIZE, PhysAddr, PhysRange};

use range_alloc::{FreeError, PageRun, RangeAllocator};

/// Usage of a page allocator, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PageStats {
    /// Bytes managed.
    pub capacity: u64,
    /// Bytes allocated.
    pub used: u64,
    /// The largest free contiguous run, in bytes.
    pub largest_free: u64,
    /// Number of free holes.
    pub holes: usize,
}

/// Page-granular allocator of physical memory in one range.
#[derive(Debug)]
pub struct PageAllocator {
    range: PhysRange,
    pages: Mutex<RangeAllocator>,
}

impl PageAllocator {
    /// Manages the whole pages of `range` (a partial last page is unused).
    pub fn new(range: PhysRange) -> PageAllocator {
        PageAllocator { range, pages: Mutex::new(RangeAllocator::new(range.len() / PAGE_SIZE)) }
    }

    /// The managed range.
    pub fn range(&self) -> PhysRange {
        self.range
    }

    /// Allocates `len` contiguous bytes, best fit; `None` if no hole fits.
    pub fn alloc(&self, len: Len) -> Option<PhysRange> {
        let run = self.lock().alloc(len.pages())?;
        Some(self.to_phys(run))
    }

    /// Allocates `len` bytes starting at a multiple of `align` bytes from the
    /// range's start (`align` a power-of-two number of pages).
    pub fn alloc_aligned(&self, len: Len, align: Len) -> Option<PhysRange> {
        let run = self.lock().alloc_aligned(len.pages(), align.pages())?;
        Some(self.to_phys(run))
    }

    /// Frees a range from [`Self::alloc`].
    ///
    /// # Errors
    /// [`FreeError`] if it is not allocated here; nothing changes then.
    pub fn free(&self, r: PhysRange) -> Result<(), FreeError> {
        let start = r.start().checked_offset_from(self.range.start()).unwrap_or(u64::MAX) / PAGE_SIZE;
        self.lock().free(PageRun { start, len: r.len().div_ceil(PAGE_SIZE) })
    }

    /// Current usage.
    pub fn stats(&self) -> PageStats {
        let a = self.lock();
        PageStats {
            capacity: a.total_pages() * PAGE_SIZE,
            used: a.used_pages() * PAGE_SIZE,
            largest_free: a.largest_free() * PAGE_SIZE,
            holes: a.hole_count(),
        }
    }

    /// The free holes, by address.
    pub fn free_ranges(&self) -> Vec<PhysRange> {
        self.lock().free_runs().map(|run| self.to_phys(run)).collect()
    }

    fn to_phys(&self, run: PageRun) -> PhysRange {
        // The run lies inside the managed range, so neither step overflows.
        let start = PhysAddr(self.range.start().raw() + run.start * PAGE_SIZE);
        PhysRange::new(start, run.len * PAGE_SIZE).expect("an allocated run is a valid range")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RangeAllocator> {
        self.pages.lock().recover()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn physical_addresses_and_free() {
        let a = PageAllocator::new(PhysRange::new(PhysAddr(0x4000_0000), 16 * PAGE_SIZE).unwrap());
        let r1 = a.alloc(Len::from_pages(4).unwrap()).unwrap();
        let r2 = a.alloc(Len::from_pages(2).unwrap()).unwrap();
        assert_eq!(r1.start(), PhysAddr(0x4000_0000));
        assert_eq!(r2.start(), PhysAddr(0x4000_4000));
        assert_eq!(a.stats().used, 6 * PAGE_SIZE);
        a.free(r1).unwrap();
        assert!(a.free(r1).is_err(), "double free is refused");
        assert!(a.free(PhysRange::new(PhysAddr(0x1000), PAGE_SIZE).unwrap()).is_err());
        a.free(r2).unwrap();
        assert_eq!(a.stats(), PageStats { capacity: 16 * PAGE_SIZE, used: 0, largest_free: 16 * PAGE_SIZE, holes: 1 });
        assert!(a.alloc(Len::from_pages(17).unwrap()).is_none());
        let al = a.alloc_aligned(Len::from_pages(1).unwrap(), Len::from_pages(8).unwrap()).unwrap();
        assert_eq!(al.start(), PhysAddr(0x4000_0000));
    }
}
