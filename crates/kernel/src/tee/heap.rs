//! The TEE protected DMA heaps (`protected,secure-video`, ...): one per use
//! case, bound by a backend to a protected-memory pool.
//!
//! Ownership follows the upstream rules with `Arc`s in place of krefs:
//! the backend's registration is a [`Binding`] (pool + TEE device) held in
//! a [`Revocable`]; every buffer holds an `Arc` of the binding it came from.
//! When the backend goes, the registration is revoked (new allocations fail
//! with `EINVAL`) and the binding — with its pool — is dropped after its
//! last buffer, which destroys the pool exactly once. Registering the use
//! case again while an old binding is still held is `EBUSY`. The heap node
//! itself is never removed (upstream has no `dma_heap_rm`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use teeheap_platform::{Len, UseCase};

use crate::dma_buf::{DmaBuf, DmaBufList, DmaBufOps, SgTable};
use crate::dma_heap::{DmaHeapOps, HeapInfo, HeapName};
use crate::error::{Errno, Error, Result, einval};
use crate::pool::{PoolAlloc, ProtMemPool, ProtMemRef};
use crate::revocable::Revocable;
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

impl Drop for Binding {
    fn drop(&mut self) {
        tracing::info!(dev = self.teedev.name(), "protected pool destroyed after its last buffer");
        self.pool.destroy();
    }
}

/// A TEE protected heap. See the module documentation.
#[derive(Debug)]
pub struct TeeDmaHeap {
    use_case: UseCase,
    registration: Revocable<Binding>,
    /// The latest binding, as long as anything holds it.
    latest: Mutex<Weak<Binding>>,
    used: AtomicU64,
    buffers: AtomicU64,
    list: Arc<DmaBufList>,
}

impl TeeDmaHeap {
    /// An unbound heap for `use_case` listing its buffers in `list`.
    pub fn new(use_case: UseCase, list: Arc<DmaBufList>) -> Arc<TeeDmaHeap> {
        Arc::new(TeeDmaHeap {
            use_case,
            registration: Revocable::default(),
            latest: Mutex::new(Weak::new()),
            used: AtomicU64::new(0),
            buffers: AtomicU64::new(0),
            list,
        })
    }

    /// The use case.
    pub fn use_case(&self) -> UseCase {
        self.use_case
    }

    /// Binds the heap to `pool` on behalf of `teedev`.
    ///
    /// # Errors
    /// `EBUSY` while a previous binding is still held (bound, or draining
    /// buffers); `pool` is dropped unused then.
    pub fn bind(&self, teedev: &Arc<TeeDevice>, pool: Box<dyn ProtMemPool>) -> Result<()> {
        let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        if latest.upgrade().is_some() {
            return Err(Error::new(Errno::EBUSY, "use case still held by a previous registration"));
        }
        let binding = Arc::new(Binding { pool, teedev: Arc::clone(teedev) });
        *latest = Arc::downgrade(&binding);
        self.registration.install_with(binding, |_| Ok::<(), Error>(()))?;
        tracing::info!(use_case = %self.use_case, dev = teedev.name(), "protected heap bound");
        Ok(())
    }

    /// Unbinds the heap if `teedev` bound it: new allocations fail from now
    /// on; live buffers keep the pool until they are released.
    pub fn unbind(&self, teedev: &Arc<TeeDevice>) {
        let _latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        let owned = self.registration.try_access().is_some_and(|b| Arc::ptr_eq(&b.teedev, teedev));
        if owned {
            drop(self.registration.revoke());
            tracing::info!(use_case = %self.use_case, "protected heap shutting down");
        }
    }

    /// Whether a backend is bound.
    pub fn is_bound(&self) -> bool {
        self.registration.is_available()
    }

    /// Whether an unbound binding still has live buffers.
    pub fn is_draining(&self) -> bool {
        !self.is_bound() && self.latest.lock().unwrap_or_else(|e| e.into_inner()).strong_count() > 0
    }
}

/// A protected buffer: its pool allocation and the binding it came from.
pub struct ProtectedBuffer {
    alloc: Option<PoolAlloc>,
    binding: Arc<Binding>,
    heap: Arc<TeeDmaHeap>,
}

impl ProtectedBuffer {
    /// The binding (pool and TEE device) the buffer came from.
    pub fn binding(&self) -> &Arc<Binding> {
        &self.binding
    }

    /// The use case of its heap.
    pub fn use_case(&self) -> UseCase {
        self.heap.use_case
    }

    /// How the secure world addresses the buffer (the pool's `update_shm`).
    ///
    /// # Errors
    /// What the pool returns.
    pub fn protmem_ref(&self) -> Result<ProtMemRef> {
        let alloc = self.alloc.as_ref().ok_or(einval("buffer already released"))?;
        self.binding.pool.update_shm(alloc)
    }
}

impl DmaBufOps for ProtectedBuffer {
    fn exporter(&self) -> &'static str {
        TEE_HEAP_EXPORTER
    }

    fn sg_table(&self) -> &SgTable {
        static EMPTY: SgTable = SgTable::empty();
        self.alloc.as_ref().map_or(&EMPTY, |a| &a.sg)
    }

    fn is_protected(&self) -> bool {
        true
    }

    fn release(&mut self) {
        if let Some(alloc) = self.alloc.take() {
            let bytes = alloc.sg.len();
            self.binding.pool.free(alloc);
            self.heap.used.fetch_sub(bytes, Ordering::Relaxed);
            self.heap.buffers.fetch_sub(1, Ordering::Relaxed);
        }
    }

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
        let (alloc, binding) = {
            let Some(binding) = heap.registration.try_access() else {
                return Err(einval("no TEE backend bound to this heap"));
            };
            (binding.pool.alloc(len)?, Arc::clone(&binding))
        };
        heap.used.fetch_add(len.bytes(), Ordering::Relaxed);
        heap.buffers.fetch_add(1, Ordering::Relaxed);
        let ops = ProtectedBuffer { alloc: Some(alloc), binding, heap: Arc::clone(heap) };
        Ok(DmaBuf::export(len, Box::new(ops), Some(&heap.list)))
    }

    fn info(&self, name: &HeapName) -> HeapInfo {
        let heap = &self.0;
        let pool = heap.registration.try_access().map(|b| b.pool.stats());
        let state = match (&pool, heap.is_draining()) {
            (Some(_), _) => "ready".to_owned(),
            (None, true) => "shutting down (buffers draining)".to_owned(),
            (None, false) => "unbound".to_owned(),
        };
        HeapInfo {
            name: name.clone(),
            protected: true,
            state,
            pool: pool.as_ref().map_or_else(|| "-".to_owned(), |p| format!("{} {}", p.kind, p.source)),
            capacity: pool.as_ref().map_or(0, |p| p.capacity),
            used: heap.used.load(Ordering::Relaxed),
            buffers: heap.buffers.load(Ordering::Relaxed),
        }
    }
}
