//! The static carveout pool: page-granular protected allocations in one
//! physical range reserved at boot (as the kernel's static protected pool).
//!
//! The carveout stays protected by the firewall for its whole life; the pool
//! only hands out ranges of it. The secure world addresses a buffer by
//! physical address (`base + offset`).

use teeheap_platform::{Len, PhysRange};

use crate::dma_buf::SgTable;
use crate::error::{Result, einval, enomem};
use crate::mm::PageAllocator;
use crate::pool::{PoolAlloc, PoolStats, ProtMemPool, ProtMemRef};

/// A static carveout pool. See the module documentation.
#[derive(Debug)]
pub struct CarveoutPool {
    name: String,
    pages: PageAllocator,
    destroyed: bool,
}

impl CarveoutPool {
    /// A pool over `range`, named `name` in reports.
    ///
    /// # Errors
    /// `EINVAL` if `range` is not page aligned (start and size).
    pub fn new(name: impl Into<String>, range: PhysRange) -> Result<CarveoutPool> {
        if !range.is_page_aligned() {
            return Err(einval("protected carveout must be page aligned"));
        }
        Ok(CarveoutPool { name: name.into(), pages: PageAllocator::new(range), destroyed: false })
    }

    /// The carveout.
    pub fn range(&self) -> PhysRange {
        self.pages.range()
    }
}

impl ProtMemPool for CarveoutPool {
    fn alloc(&self, size: Len) -> Result<PoolAlloc> {
        let r = self.pages.alloc(size).ok_or(enomem("protected carveout exhausted"))?;
        let offset = r.start().checked_offset_from(self.range().start()).expect("allocated inside the carveout");
        Ok(PoolAlloc { sg: SgTable::new(vec![r]), offset, tag: 0 })
    }

    fn free(&self, alloc: PoolAlloc) {
        for r in alloc.sg.ranges() {
            if let Err(e) = self.pages.free(*r) {
                // A bug in the caller: every allocation is freed once by its
                // buffer's release. Report loudly, keep the pool consistent.
                tracing::error!(range = %r, error = %e, pool = %self.name, "carveout free of an unallocated range");
                debug_assert!(false, "carveout free of an unallocated range {r}: {e}");
            }
        }
    }

    fn update_shm(&self, alloc: &PoolAlloc) -> Result<ProtMemRef> {
        let start = self.range().start().checked_add(alloc.offset).ok_or(einval("offset outside the carveout"))?;
        Ok(ProtMemRef::Phys(start))
    }

    fn destroy(&mut self) {
        debug_assert!(!self.destroyed, "pool destroyed twice");
        debug_assert_eq!(self.pages.stats().used, 0, "pool destroyed with live allocations");
        self.destroyed = true;
        tracing::debug!(pool = %self.name, "carveout pool destroyed");
    }

    fn stats(&self) -> PoolStats {
        let s = self.pages.stats();
        PoolStats {
            kind: "static",
            source: format!("carveout {} {}", self.name, self.range()),
            capacity: s.capacity,
            used: s.used,
            largest_free: s.largest_free,
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
        pool.free(a);
        pool.free(b);
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
}
