//! Protected-memory pools: what a TEE backend binds a protected heap to.
//!
//! The [`ProtMemPool`] trait has the four operations of the kernel's
//! `tee_protmem_pool_ops`. A pool lives as long as the heap registration and
//! every buffer allocated from it (they share an `Arc` of it); when the last
//! one goes, `destroy` runs once and the pool is dropped.

pub mod carveout;
pub mod dynamic;
pub mod range_alloc;

use serde::Serialize;
use teeheap_platform::{Len, PhysAddr};

use crate::dma_buf::SgTable;
use crate::error::Result;

/// One allocation from a pool: its pages and where it sits in the pool.
/// Handed back to [`ProtMemPool::free`] exactly once (it is not `Clone`).
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
    /// Largest contiguous free run, bytes.
    pub largest_free: u64,
}

/// The operations of a protected-memory pool (`tee_protmem_pool_ops`).
pub trait ProtMemPool: Send + Sync + 'static {
    /// Allocates `size` bytes of protected memory.
    ///
    /// # Errors
    /// `ENOMEM` when the pool cannot satisfy it.
    fn alloc(&self, size: Len) -> Result<PoolAlloc>;

    /// Frees an allocation from [`Self::alloc`].
    fn free(&self, alloc: PoolAlloc);

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
