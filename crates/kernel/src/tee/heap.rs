//! The TEE protected DMA heaps (`protected,secure-video`, ...): one per use
//! case, bound by a backend to a protected-memory pool.
//!
//! Ownership follows the upstream rules with `Arc`s in place of krefs, via
//! [`crate::lifecycle`]: the backend's registration is a [`Binding`] (pool +
//! TEE device) held as a generation of the use case; every buffer holds the
//! generation it came from. When the backend goes, the registration is
//! revoked (new allocations fail with `EINVAL`, as in Linux) and the
//! binding — with its pool — is torn down after its last buffer, which
//! destroys the pool exactly once. Registering the use case again while it
//! is bound is `EBUSY`; while an old generation drains it is `EBUSY` under
//! the upstream policy and a fresh generation under teeheap's (see
//! docs/lifecycle.md). The heap node itself is removed only through the
//! dma-heap registry (which upstream cannot do).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use teeheap_platform::{Len, UseCase};

use crate::dma_buf::{DmaBuf, DmaBufList, DmaBufOps, SgTable};
use crate::dma_heap::{DmaHeapOps, Draining, HeapInfo, HeapName, HeapState, Presence};
use crate::error::{Errno, Error, Result, einval};
use crate::lifecycle::{AllocError, BindError, GenStatus, Generation, Lifecycle, RebindPolicy, Teardown};
use crate::pool::{PoolAlloc, ProtMemPool, ProtMemRef};
use crate::tee::TeeDevice;

/// The exporter name of protected buffers.
pub const TEE_HEAP_EXPORTER: &str = "tee_heap";

/// A backend's registration of one use case: the pool and the device that
/// owns it. Dropped after the registration was revoked and the last buffer
/// released; dropping destroys the pool.
pub struct Binding {
    pool: Box<dyn ProtMemPool>,
    teedev: Arc<TeeDevice>,
}

impl std::fmt::Debug for Binding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Binding").field("teedev", &self.teedev.name()).finish_non_exhaustive()
    }
}

impl Binding {
    /// The TEE device that registered it.
    pub fn teedev(&self) -> &Arc<TeeDevice> {
        &self.teedev
    }

    /// The pool.
    pub fn pool(&self) -> &dyn ProtMemPool {
        self.pool.as_ref()
    }
}

impl Teardown for Binding {
    fn teardown(&mut self) {
        tracing::info!(dev = self.teedev.name(), "protected pool destroyed after its last buffer");
        self.pool.destroy();
    }
}

/// A TEE protected heap. See the module documentation.
pub struct TeeDmaHeap {
    use_case: UseCase,
    lifecycle: Lifecycle<Binding>,
    used: AtomicU64,
    peak: AtomicU64,
    buffers: AtomicU64,
    list: Arc<DmaBufList>,
}

impl std::fmt::Debug for TeeDmaHeap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TeeDmaHeap").field("use_case", &self.use_case).finish_non_exhaustive()
    }
}

impl TeeDmaHeap {
    /// An unbound heap for `use_case` listing its buffers in `list`, with
    /// the given rebind policy.
    pub fn new(use_case: UseCase, list: Arc<DmaBufList>, policy: RebindPolicy) -> Arc<TeeDmaHeap> {
        Arc::new(TeeDmaHeap {
            use_case,
            lifecycle: Lifecycle::new(policy),
            used: AtomicU64::new(0),
            peak: AtomicU64::new(0),
            buffers: AtomicU64::new(0),
            list,
        })
    }

    /// The use case.
    pub fn use_case(&self) -> UseCase {
        self.use_case
    }

    /// Binds the heap to `pool` on behalf of `teedev`; returns the
    /// generation number.
    ///
    /// # Errors
    /// `EBUSY` while bound, or (upstream policy) while an old generation
    /// still has buffers; `pool` is dropped unused then.
    pub fn bind(&self, teedev: &Arc<TeeDevice>, pool: Box<dyn ProtMemPool>) -> Result<u64> {
        let generation = self
            .lifecycle
            .bind(Binding { pool, teedev: Arc::clone(teedev) })
            .map_err(|BindError::Busy| Error::new(Errno::EBUSY, "use case still held by a registration"))?;
        tracing::info!(use_case = %self.use_case, dev = teedev.name(), generation, "protected heap bound");
        Ok(generation)
    }

    /// Unbinds the heap if `teedev` bound it: new allocations fail from now
    /// on; live buffers keep the pool until they are released.
    pub fn unbind(&self, teedev: &Arc<TeeDevice>) {
        if let Some(generation) = self.lifecycle.unbind_if(|b| Arc::ptr_eq(&b.teedev, teedev)) {
            tracing::info!(use_case = %self.use_case, generation, "protected heap unbound; buffers drain");
        }
    }

    /// Whether a backend is bound.
    pub fn is_bound(&self) -> bool {
        self.lifecycle.is_bound()
    }

    /// Whether an unbound generation still has live buffers.
    pub fn is_draining(&self) -> bool {
        self.lifecycle.generations().iter().any(|(_, g)| !g.bound)
    }

    /// The live generations: the bound one and those draining.
    pub fn generations(&self) -> Vec<(u64, GenStatus)> {
        self.lifecycle.generations()
    }
}

/// One allocation from a binding's pool, owned: dropping it returns its
/// pages to the pool, then releases its share of the generation (which may
/// tear the binding down) and of the heap's usage counters.
struct HeapAlloc {
    pages: PoolAlloc,
    generation: Arc<Generation<Binding>>,
    heap: Arc<TeeDmaHeap>,
}

impl Drop for HeapAlloc {
    fn drop(&mut self) {
        let bytes = self.pages.sg.len();
        self.generation.get().pool.free(&self.pages);
        self.generation.buffer_released(bytes);
        self.heap.used.fetch_sub(bytes, Ordering::Relaxed);
        self.heap.buffers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A protected buffer: its pool allocation and the binding it came from.
/// The allocation goes back to its pool when the buffer is dropped, right
/// after the dma-buf's release.
pub struct ProtectedBuffer {
    alloc: HeapAlloc,
}

impl ProtectedBuffer {
    /// The binding (pool and TEE device) the buffer came from.
    pub fn binding(&self) -> &Binding {
        self.alloc.generation.get()
    }

    /// The generation of the heap's registration the buffer belongs to.
    pub fn generation(&self) -> u64 {
        self.alloc.generation.id()
    }

    /// The use case of its heap.
    pub fn use_case(&self) -> UseCase {
        self.alloc.heap.use_case
    }

    /// How the secure world addresses the buffer (the pool's `update_shm`).
    ///
    /// # Errors
    /// What the pool returns.
    pub fn protmem_ref(&self) -> Result<ProtMemRef> {
        self.binding().pool.update_shm(&self.alloc.pages)
    }
}

impl DmaBufOps for ProtectedBuffer {
    fn exporter(&self) -> &'static str {
        TEE_HEAP_EXPORTER
    }

    fn sg_table(&self) -> &SgTable {
        &self.alloc.pages.sg
    }

    fn is_protected(&self) -> bool {
        true
    }

    fn heap(&self) -> Option<&'static str> {
        Some(self.alloc.heap.use_case.heap_name())
    }

    /// Nothing to do here: the dma-buf drops its exporter right after, and
    /// [`HeapAlloc`]'s drop frees the pages.
    fn release(&mut self) {}

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// The dma-heap face of a TEE heap.
#[derive(Debug)]
pub struct TeeHeapOps(pub Arc<TeeDmaHeap>);

impl DmaHeapOps for TeeHeapOps {
    fn allocate(&self, len: Len, _fd_flags: u32, _heap_flags: u64) -> Result<Arc<DmaBuf>> {
        let heap = &self.0;
        let (generation, alloc) = heap.lifecycle.alloc(len.bytes(), |b| b.pool.alloc(len)).map_err(|e| match e {
            AllocError::Unbound => einval("no TEE backend bound to this heap"),
            AllocError::Pool(e) => e,
        })?;
        let used = heap.used.fetch_add(len.bytes(), Ordering::Relaxed) + len.bytes();
        heap.peak.fetch_max(used, Ordering::Relaxed);
        heap.buffers.fetch_add(1, Ordering::Relaxed);
        let ops = ProtectedBuffer { alloc: HeapAlloc { pages: alloc, generation, heap: Arc::clone(heap) } };
        Ok(DmaBuf::export(len, Box::new(ops), Some(&heap.list)))
    }

    fn info(&self, name: &HeapName) -> HeapInfo {
        let heap = &self.0;
        let pool = heap.lifecycle.with_current(|g| (g.id(), g.get().pool.stats()));
        let draining: Vec<Draining> = heap
            .generations()
            .into_iter()
            .filter(|(_, g)| !g.bound)
            .map(|(generation, g)| Draining { generation, buffers: g.buffers })
            .collect();
        let presence = if pool.is_some() { Presence::Ready } else { Presence::Unbound };
        let state = HeapState { presence, draining };
        HeapInfo {
            protected: true,
            state,
            pool: pool.as_ref().map_or_else(|| "-".to_owned(), |(_, p)| format!("{} {}", p.kind, p.source)),
            capacity: pool.as_ref().map_or(0, |(_, p)| p.capacity),
            used: heap.used.load(Ordering::Relaxed),
            buffers: heap.buffers.load(Ordering::Relaxed),
            peak: heap.peak.load(Ordering::Relaxed),
            largest_free: pool.as_ref().map_or(0, |(_, p)| p.largest_free),
            free: pool.as_ref().map_or(0, |(_, p)| p.free),
            ..HeapInfo::empty(name.clone())
        }
    }
}
