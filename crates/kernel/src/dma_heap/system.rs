//! The `system` heap: normal, page-backed memory that the CPU may map, as on
//! every Linux system. Pipelines use it for their ordinary buffers.
//!
//! Pages come from the model's normal-memory allocator
//! ([`crate::mm::NormalMemory`], DRAM outside every carveout), zeroed, and
//! go back when the buffer's last reference is released. The heap is one
//! user of normal memory among others (TEE shared memory, dynamic pools).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use teeheap_platform::{Len, PhysRange, Platform};

use crate::dma_buf::{DmaBuf, DmaBufList, DmaBufOps, SgTable};
use crate::dma_heap::{DmaHeapOps, HeapInfo, HeapName, HeapState};
use crate::error::{Result, enomem};
use crate::mm::NormalMemory;

/// The name the system heap is registered under.
pub const SYSTEM_HEAP_NAME: &str = "system";

#[derive(Debug)]
struct Shared {
    normal: Arc<NormalMemory>,
    used: AtomicU64,
    peak: AtomicU64,
    buffers: AtomicU64,
}

/// The system heap. See the module documentation.
#[derive(Debug)]
pub struct SystemHeap {
    shared: Arc<Shared>,
    list: Arc<DmaBufList>,
}

impl SystemHeap {
    /// A system heap over `normal` memory, listing its buffers in `list`.
    pub fn over(normal: Arc<NormalMemory>, list: Arc<DmaBufList>) -> SystemHeap {
        SystemHeap {
            shared: Arc::new(Shared {
                normal,
                used: AtomicU64::new(0),
                peak: AtomicU64::new(0),
                buffers: AtomicU64::new(0),
            }),
            list,
        }
    }

    /// A system heap over a normal-memory allocator of its own for
    /// `platform` (tests; the kernel shares one, [`Self::over`]).
    pub fn new(platform: Arc<Platform>, list: Arc<DmaBufList>) -> SystemHeap {
        SystemHeap::over(Arc::new(NormalMemory::new(platform)), list)
    }

    /// The normal memory it allocates from.
    pub fn normal_memory(&self) -> &Arc<NormalMemory> {
        &self.shared.normal
    }
}

struct SystemBuffer {
    sg: SgTable,
    heap: Arc<Shared>,
}

impl DmaBufOps for SystemBuffer {
    fn exporter(&self) -> &'static str {
        "system"
    }

    fn sg_table(&self) -> &SgTable {
        &self.sg
    }

    fn is_protected(&self) -> bool {
        false
    }

    fn heap(&self) -> Option<&'static str> {
        Some(SYSTEM_HEAP_NAME)
    }

    fn mmap(&self) -> Result<()> {
        Ok(())
    }

    fn release(&mut self) {
        let bytes = self.sg.len();
        for r in self.sg.ranges() {
            self.heap.normal.free_pages(*r);
        }
        self.heap.used.fetch_sub(bytes, Ordering::Relaxed);
        self.heap.buffers.fetch_sub(1, Ordering::Relaxed);
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl DmaHeapOps for SystemHeap {
    fn allocate(&self, len: Len, _fd_flags: u32, _heap_flags: u64) -> Result<Arc<DmaBuf>> {
        let r = self.shared.normal.alloc_pages(len).ok_or(enomem("normal memory exhausted"))?;
        let used = self.shared.used.fetch_add(len.bytes(), Ordering::Relaxed) + len.bytes();
        self.shared.peak.fetch_max(used, Ordering::Relaxed);
        self.shared.buffers.fetch_add(1, Ordering::Relaxed);
        let ops = SystemBuffer { sg: SgTable::new(vec![r]), heap: Arc::clone(&self.shared) };
        Ok(DmaBuf::export(len, Box::new(ops), Some(&self.list)))
    }

    fn info(&self, name: &HeapName) -> HeapInfo {
        let normal = &self.shared.normal;
        let stats = normal.stats();
        let (capacity, pages_used) = (stats.capacity, stats.used);
        let used = self.shared.used.load(Ordering::Relaxed);
        let ranges: Vec<String> = normal.ranges().map(|r: PhysRange| r.to_string()).collect();
        // Pages taken by others than this heap's buffers: lent to the
        // secure world by a dynamic protected pool.
        let lent = pages_used.saturating_sub(used);
        let pool = match lent {
            0 => format!("normal memory {}", ranges.join(" ")),
            n => format!(
                "normal memory {} ({} lent to the secure world)",
                ranges.join(" "),
                teeheap_platform::ByteSize(n)
            ),
        };
        HeapInfo {
            protected: false,
            state: HeapState::default(),
            pool,
            capacity,
            free: capacity - pages_used,
            used,
            buffers: self.shared.buffers.load(Ordering::Relaxed),
            peak: self.shared.peak.load(Ordering::Relaxed),
            largest_free: stats.largest_free,
            ..HeapInfo::empty(name.clone())
        }
    }
}
