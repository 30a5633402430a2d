//! Protected-memory pools: what a TEE backend binds a protected heap to.
//!
//! The [`ProtMemPool`] trait has the four operations of the kernel's
//! `tee_protmem_pool_ops`. A pool lives as long as the heap registration and
//! every buffer allocated from it (they share an `Arc` of it); when the last
//! one goes, `destroy` runs once and the pool is dropped.

pub mod carveout;
pub mod dynamic;
/// The range allocator lives in [`crate::mm`]; the old path stays.
pub use crate::mm::range_alloc;

use serde::Serialize;
use teeheap_platform::{Len, PhysAddr, PhysRange};

use crate::error::Result;
use crate::scatterlist::SgTable;

/// One allocation from a pool: its pages and where it sits in the pool.
/// Handed back to [`ProtMemPool::free`] exactly once (it is not `Clone`);
/// a TEE heap's buffer owns it and frees it when dropped.
#[derive(Debug, PartialEq, Eq)]
pub struct PoolAlloc {
    /// The pages.
    pub sg: SgTable,
    /// Offset of the allocation inside the pool's memory (inside its chunk
    /// for a dynamic pool).
    pub offset: u64,
    /// Pool-private tag (a dynamic pool records the chunk here).
    pub tag: u64,
}

/// How the secure world addresses a protected buffer registered as TEE
/// shared memory (what `update_shm` fills in).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ProtMemRef {
    /// By physical address (static carveout: base + offset).
    Phys(PhysAddr),
    /// By the cookie of the lent object it lies in, plus its offset there.
    Lent {
        /// Cookie of the lent chunk.
        cookie: u64,
        /// Offset inside the chunk.
        offset: u64,
    },
}

/// A pool's usage, for `teeheap ls` and statistics.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PoolStats {
    /// Pool kind (`static`, `dynamic`).
    pub kind: &'static str,
    /// Where its memory comes from (for humans).
    pub source: String,
    /// Bytes it can hand out now (for a dynamic pool: its cap).
    pub capacity: u64,
    /// Bytes allocated.
    pub used: u64,
    /// The largest single allocation that would succeed now, bytes (for
    /// a dynamic pool, growth by a new lent region included).
    pub largest_free: u64,
    /// Bytes allocations could still take in total now (for a dynamic
    /// pool: free space in its lent regions plus what it may still borrow
    /// from free normal memory under its cap).
    pub free: u64,
}

/// The first two ranges of `ranges` that share memory, with their keys, or
/// `None` if they are pairwise disjoint (empty ranges share nothing).
///
/// ```
/// use teeheap_kernel::pool::first_overlap;
/// use teeheap_platform::{PhysAddr, PhysRange};
///
/// let r = |start, len| PhysRange::new(PhysAddr(start), len).unwrap();
/// assert_eq!(first_overlap([(1, r(0x1000, 0x1000)), (2, r(0x2000, 0x1000))]), None);
/// assert_eq!(first_overlap([(1, r(0x1000, 0x2000)), (2, r(0x2000, 0x1000))]), Some((1, 2)));
/// ```
pub fn first_overlap<K: Copy>(ranges: impl IntoIterator<Item = (K, PhysRange)>) -> Option<(K, K)> {
    let mut sorted: Vec<(K, PhysRange)> = ranges.into_iter().filter(|(_, r)| !r.is_empty()).collect();
    sorted.sort_by_key(|(_, r)| r.start());
    // Sorted by start, disjoint ranges each end before the next begins; the
    // first pair that does not is an overlap.
    sorted.windows(2).find(|w| w[1].1.start() < w[0].1.end()).map(|w| (w[0].0, w[1].0))
}

/// The operations of a protected-memory pool (`tee_protmem_pool_ops`).
pub trait ProtMemPool: Send + Sync + 'static {
    /// Allocates `size` bytes of protected memory.
    ///
    /// # Errors
    /// `ENOMEM` when the pool cannot satisfy it.
    fn alloc(&self, size: Len) -> Result<PoolAlloc>;

    /// Frees an allocation from [`Self::alloc`]; called once per
    /// allocation, by its owner's drop.
    fn free(&self, alloc: &PoolAlloc);

    /// How the secure world addresses `alloc` when it is registered as TEE
    /// shared memory.
    ///
    /// # Errors
    /// Pool-specific; `EINVAL` if it cannot be expressed.
    fn update_shm(&self, alloc: &PoolAlloc) -> Result<ProtMemRef>;

    /// Tears the pool down; called once, after its last buffer was freed.
    fn destroy(&mut self);

    /// Current usage.
    fn stats(&self) -> PoolStats;
}
