//! The static carveout pool: page-granular protected allocations in one
//! physical range reserved at boot (as the kernel's static protected pool).
//!
//! The carveout stays protected by the firewall for its whole life; a pool
//! only hands out ranges of it. The pages themselves belong to one
//! [`CarveoutSpace`] per carveout, which every pool over that carveout
//! shares: a new generation of a heap (a rebind while old buffers drain)
//! allocates only around the ranges older generations still hold, so no
//! two live buffers ever share memory. The secure world addresses a buffer
//! by physical address (`base + offset`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use teeheap_platform::{Len, PhysRange};

use crate::error::{Result, einval, enomem};
use crate::mm::{PageAllocator, PageStats};
use crate::pool::{PoolAlloc, PoolStats, ProtMemPool, ProtMemRef};
use crate::scatterlist::SgTable;

/// The pages of one static carveout, shared by every [`CarveoutPool`] over
/// it (one per generation of the heap bound to it).
///
/// # Invariants
/// A page is handed out to at most one allocation at a time, whichever pool
/// asked; it lives as long as the last pool over it.
#[derive(Debug)]
pub struct CarveoutSpace {
    name: String,
    pages: PageAllocator,
}

impl CarveoutSpace {
    /// The pages of `range`, named `name` in reports.
    ///
    /// # Errors
    /// `EINVAL` if `range` is not page aligned (start and size).
    pub fn new(name: impl Into<String>, range: PhysRange) -> Result<Arc<CarveoutSpace>> {
        if !range.is_page_aligned() {
            return Err(einval("protected carveout must be page aligned"));
        }
        Ok(Arc::new(CarveoutSpace { name: name.into(), pages: PageAllocator::new(range) }))
    }

    /// The carveout.
    pub fn range(&self) -> PhysRange {
        self.pages.range()
    }

    /// The name in reports.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Usage over every pool of the carveout.
    pub fn stats(&self) -> PageStats {
        self.pages.stats()
    }
}

/// A static carveout pool: one generation's view of a [`CarveoutSpace`].
/// See the module documentation.
#[derive(Debug)]
pub struct CarveoutPool {
    space: Arc<CarveoutSpace>,
    used: AtomicU64,
    destroyed: bool,
}

impl CarveoutPool {
    /// A pool over `range` with a space of its own, named `name` in reports.
    ///
    /// # Errors
    /// `EINVAL` if `range` is not page aligned (start and size).
    pub fn new(name: impl Into<String>, range: PhysRange) -> Result<CarveoutPool> {
        Ok(CarveoutPool::over(CarveoutSpace::new(name, range)?))
    }

    /// A pool allocating from `space`, shared with other pools over it.
    pub fn over(space: Arc<CarveoutSpace>) -> CarveoutPool {
        CarveoutPool { space, used: AtomicU64::new(0), destroyed: false }
    }

    /// The carveout.
    pub fn range(&self) -> PhysRange {
        self.space.range()
    }

    /// The space it allocates from.
    pub fn space(&self) -> &Arc<CarveoutSpace> {
        &self.space
    }
}

impl ProtMemPool for CarveoutPool {
    fn alloc(&self, size: Len) -> Result<PoolAlloc> {
        let r = self.space.pages.alloc(size).ok_or(enomem("protected carveout exhausted"))?;
        let offset = r.start().checked_offset_from(self.range().start()).expect("allocated inside the carveout");
        self.used.fetch_add(r.len(), Ordering::Relaxed);
        Ok(PoolAlloc { sg: SgTable::new(vec![r]), offset, tag: 0 })
    }

    fn free(&self, alloc: &PoolAlloc) {
        for r in alloc.sg.ranges() {
            match self.space.pages.free(*r) {
                Ok(()) => {
                    self.used.fetch_sub(r.len(), Ordering::Relaxed);
                }
                Err(e) => {
                    // A bug in the caller: every allocation is freed once by
                    // its buffer's release. Report loudly, keep the pool
                    // consistent.
                    tracing::error!(range = %r, error = %e, pool = %self.space.name, "carveout free of an unallocated range");
                    debug_assert!(false, "carveout free of an unallocated range {r}: {e}");
                }
            }
        }
    }

    fn update_shm(&self, alloc: &PoolAlloc) -> Result<ProtMemRef> {
        let start = self.range().start().checked_add(alloc.offset).ok_or(einval("offset outside the carveout"))?;
        Ok(ProtMemRef::Phys(start))
    }

    /// Nothing to scrub or unprotect: the carveout stays protected, and
    /// other generations may hold ranges of it.
    fn destroy(&mut self) {
        debug_assert!(!self.destroyed, "pool destroyed twice");
        debug_assert_eq!(self.used.load(Ordering::Relaxed), 0, "pool destroyed with live allocations");
        self.destroyed = true;
        tracing::debug!(pool = %self.space.name, "carveout pool destroyed");
    }

    fn stats(&self) -> PoolStats {
        let s = self.space.stats();
        PoolStats {
            kind: "static",
            source: format!("carveout {} {}", self.space.name, self.range()),
            capacity: s.capacity,
            used: self.used.load(Ordering::Relaxed),
            largest_free: s.largest_free,
            free: s.capacity.saturating_sub(s.used),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Errno;
    use teeheap_platform::{PAGE_SIZE, PhysAddr};

    #[test]
    fn alloc_free_and_addresses() {
        let base = PhysAddr(0x1_6000_0000);
        let pool = CarveoutPool::new("sv", PhysRange::new(base, 8 * PAGE_SIZE).unwrap()).unwrap();
        let a = pool.alloc(Len::from_pages(3).unwrap()).unwrap();
        let b = pool.alloc(Len::from_pages(5).unwrap()).unwrap();
        assert_eq!(pool.update_shm(&b).unwrap(), ProtMemRef::Phys(PhysAddr(0x1_6000_3000)));
        assert_eq!(pool.alloc(Len::from_pages(1).unwrap()).unwrap_err().errno(), Errno::ENOMEM);
        pool.free(&a);
        pool.free(&b);
        assert_eq!(pool.stats().used, 0);
        assert_eq!(pool.stats().largest_free, 8 * PAGE_SIZE);
    }

    #[test]
    fn unaligned_carveout_is_einval() {
        for (start, len) in [(0x1000_0001, PAGE_SIZE), (0x1000_0000, PAGE_SIZE + 1)] {
            let r = PhysRange::new(PhysAddr(start), len).unwrap();
            assert_eq!(CarveoutPool::new("x", r).unwrap_err().errno(), Errno::EINVAL);
        }
    }

    #[test]
    fn pools_over_one_space_never_overlap() {
        let space = CarveoutSpace::new("sv", PhysRange::new(PhysAddr(0x1_6000_0000), 8 * PAGE_SIZE).unwrap()).unwrap();
        let mut old = CarveoutPool::over(Arc::clone(&space));
        let held = old.alloc(Len::from_pages(4).unwrap()).unwrap();
        let new = CarveoutPool::over(Arc::clone(&space));
        let a = new.alloc(Len::from_pages(3).unwrap()).unwrap();
        assert!(!a.sg.ranges()[0].overlaps(&held.sg.ranges()[0]), "a new pool allocates around the old one's range");
        assert_eq!(new.alloc(Len::from_pages(2).unwrap()).unwrap_err().errno(), Errno::ENOMEM);
        assert_eq!((old.stats().used, new.stats().used), (4 * PAGE_SIZE, 3 * PAGE_SIZE));
        assert_eq!(new.stats().largest_free, PAGE_SIZE);
        old.free(&held);
        old.destroy();
        drop(old);
        let b = new.alloc(Len::from_pages(4).unwrap()).unwrap();
        assert_eq!(b.sg.ranges()[0].start(), PhysAddr(0x1_6000_0000), "the old pool's range is free once released");
        new.free(&a);
        new.free(&b);
        assert_eq!(space.stats().used, 0);
    }
}
