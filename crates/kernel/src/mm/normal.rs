//! Normal memory: the platform's DRAM outside every carveout, handed out
//! as zeroed page runs. The one normal-memory page allocator of the model:
//! the `system` heap, TEE shared memory, dynamic protected pools (the
//! chunks they lend) and the backend take pages here and give them back
//! with [`NormalMemory::free_pages`]; nothing else owns normal memory.

use std::sync::Arc;

use teeheap_platform::{Len, Master, PhysRange, Platform};

use super::{PageAllocator, PageStats};

/// The normal-memory page allocator. See the module documentation.
#[derive(Debug)]
pub struct NormalMemory {
    platform: Arc<Platform>,
    pages: Vec<PageAllocator>,
}

impl NormalMemory {
    /// The normal memory of `platform`, all free.
    pub fn new(platform: Arc<Platform>) -> NormalMemory {
        let pages = platform.normal_memory().into_iter().map(PageAllocator::new).collect();
        NormalMemory { platform, pages }
    }

    /// Allocates `len` zeroed bytes, contiguous; `None` if no hole fits.
    pub fn alloc_pages(&self, len: Len) -> Option<PhysRange> {
        let r = self.pages.iter().find_map(|p| p.alloc(len))?;
        self.zero(r);
        Some(r)
    }

    /// Like [`Self::alloc_pages`], but the range starts at a physical
    /// address that is a multiple of `align` (a power-of-two number of
    /// pages); `None` if `align` is not one or no hole can hold such a run.
    /// Only normal-memory ranges whose own start is so aligned are used (on
    /// the platforms modelled, the DRAM base and carveout ends are).
    pub fn alloc_pages_aligned(&self, len: Len, align: Len) -> Option<PhysRange> {
        if !align.pages().is_power_of_two() {
            return None;
        }
        // `PageAllocator` aligns from the start of its range, which is the
        // physical alignment only where that start is itself aligned.
        let r = self
            .pages
            .iter()
            .filter(|p| p.range().start().raw() % align.bytes() == 0)
            .find_map(|p| p.alloc_aligned(len, align))?;
        self.zero(r);
        Some(r)
    }

    /// Returns pages from [`Self::alloc_pages`] or [`Self::alloc_pages_aligned`].
    pub fn free_pages(&self, r: PhysRange) {
        let owner = self.pages.iter().find(|p| p.range().contains_range(&r));
        if let Err(e) = owner.map(|p| p.free(r)).unwrap_or(Ok(())) {
            tracing::error!(range = %r, error = %e, "normal memory: free of an unallocated range");
            debug_assert!(false, "normal memory: free of an unallocated range {r}");
        }
    }

    /// Bytes free now.
    pub fn free_bytes(&self) -> u64 {
        self.pages.iter().map(|p| p.stats()).map(|s| s.capacity - s.used).sum()
    }

    /// Bytes allocated now, by every user.
    pub fn pages_used(&self) -> u64 {
        self.pages.iter().map(|p| p.stats().used).sum()
    }

    /// The largest run [`Self::alloc_pages_aligned`] with `align` could
    /// hand out now, bytes.
    pub fn largest_aligned_free(&self, align: Len) -> u64 {
        let a = align.bytes();
        self.pages
            .iter()
            .filter(|p| p.range().start().raw() % a == 0)
            .flat_map(|p| p.free_ranges())
            .map(|r| {
                let start = r.start().raw().div_ceil(a).saturating_mul(a);
                r.end().raw().saturating_sub(start)
            })
            .max()
            .unwrap_or(0)
    }

    /// The ranges of normal memory, by address.
    pub fn ranges(&self) -> impl Iterator<Item = PhysRange> + '_ {
        self.pages.iter().map(PageAllocator::range)
    }

    /// Usage over every range: capacities, use and holes summed, the
    /// largest free run of any.
    pub fn stats(&self) -> PageStats {
        self.pages.iter().map(PageAllocator::stats).fold(PageStats::default(), |a, s| PageStats {
            capacity: a.capacity + s.capacity,
            used: a.used + s.used,
            largest_free: a.largest_free.max(s.largest_free),
            holes: a.holes + s.holes,
        })
    }

    fn zero(&self, r: PhysRange) {
        // Fresh pages never show a previous owner's data.
        self.platform.fill(Master::NsCpu, r, 0).expect("normal memory is open to the kernel");
    }
}
