//! The `system` heap: normal, page-backed memory that the CPU may map, as on
//! every Linux system. Pipelines use it for their ordinary buffers.
//!
//! Pages come from the platform's normal memory (DRAM outside every
//! carveout), are zeroed before they are handed out, and go back when the
//! buffer's last reference is released.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use teeheap_platform::{Len, Master, PhysRange, Platform};

use crate::dma_buf::{DmaBuf, DmaBufList, DmaBufOps, SgTable};
use crate::dma_heap::{DmaHeapOps, HeapInfo, HeapName, HeapState};
use crate::error::{Result, enomem};
use crate::mm::PageAllocator;

/// The name the system heap is registered under.
pub const SYSTEM_HEAP_NAME: &str = "system";

#[derive(Debug)]
struct Shared {
    platform: Arc<Platform>,
    pages: Vec<PageAllocator>,
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
    /// A system heap over the normal memory of `platform`, listing its
    /// buffers in `list`.
    pub fn new(platform: Arc<Platform>, list: Arc<DmaBufList>) -> SystemHeap {
        let pages = platform.normal_memory().into_iter().map(PageAllocator::new).collect();
        SystemHeap {
            shared: Arc::new(Shared {
                platform,
                pages,
                used: AtomicU64::new(0),
                peak: AtomicU64::new(0),
                buffers: AtomicU64::new(0),
            }),
            list,
        }
    }

    /// Normal-memory allocator shared with other users of normal memory
    /// (TEE shared memory, dynamic pools): allocates `len` zeroed bytes.
    pub fn alloc_pages(&self, len: Len) -> Option<PhysRange> {
        self.shared.alloc(len)
    }

    /// Like [`Self::alloc_pages`], but the range starts at a physical
    /// address that is a multiple of `align` (a power-of-two number of
    /// pages); `None` if `align` is not one or no hole can hold such a run.
    /// Only normal-memory ranges whose own start is so aligned are used (on
    /// the platforms modelled, the DRAM base and carveout ends are).
    pub fn alloc_pages_aligned(&self, len: Len, align: Len) -> Option<PhysRange> {
        self.shared.alloc_aligned(len, align)
    }

    /// Returns pages from [`Self::alloc_pages`] or [`Self::alloc_pages_aligned`].
    pub fn free_pages(&self, r: PhysRange) {
        self.shared.free(r);
    }

    /// Bytes of normal memory free now: not in a buffer of this heap and
    /// not taken by another user of [`Self::alloc_pages`] (such as memory
    /// lent to the secure world).
    pub fn free_bytes(&self) -> u64 {
        self.shared.pages.iter().map(|p| p.stats()).map(|s| s.capacity - s.used).sum()
    }

    /// The largest run [`Self::alloc_pages_aligned`] with `align` could
    /// hand out now, bytes.
    pub fn largest_aligned_free(&self, align: Len) -> u64 {
        let a = align.bytes();
        self.shared
            .pages
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

    /// Bytes of normal memory allocated now, by buffers of this heap and by
    /// every other user of [`Self::alloc_pages`].
    pub fn pages_used(&self) -> u64 {
        self.shared.pages.iter().map(|p| p.stats().used).sum()
    }
}

impl Shared {
    fn alloc(&self, len: Len) -> Option<PhysRange> {
        let r = self.pages.iter().find_map(|p| p.alloc(len))?;
        // Fresh pages never show a previous owner's data.
        self.platform.fill(Master::NsCpu, r, 0).expect("normal memory is open to the kernel");
        Some(r)
    }

    fn alloc_aligned(&self, len: Len, align: Len) -> Option<PhysRange> {
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
        self.platform.fill(Master::NsCpu, r, 0).expect("normal memory is open to the kernel");
        Some(r)
    }

    fn free(&self, r: PhysRange) {
        let owner = self.pages.iter().find(|p| p.range().contains_range(&r));
        if let Err(e) = owner.map(|p| p.free(r)).unwrap_or(Ok(())) {
            tracing::error!(range = %r, error = %e, "system heap: free of an unallocated range");
            debug_assert!(false, "system heap: free of an unallocated range {r}");
        }
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
            self.heap.free(*r);
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
        let r = self.shared.alloc(len).ok_or(enomem("normal memory exhausted"))?;
        let used = self.shared.used.fetch_add(len.bytes(), Ordering::Relaxed) + len.bytes();
        self.shared.peak.fetch_max(used, Ordering::Relaxed);
        self.shared.buffers.fetch_add(1, Ordering::Relaxed);
        let ops = SystemBuffer { sg: SgTable::new(vec![r]), heap: Arc::clone(&self.shared) };
        Ok(DmaBuf::export(len, Box::new(ops), Some(&self.list)))
    }

    fn info(&self, name: &HeapName) -> HeapInfo {
        let stats: Vec<_> = self.shared.pages.iter().map(|p| p.stats()).collect();
        let capacity = stats.iter().map(|s| s.capacity).sum();
        let pages_used: u64 = stats.iter().map(|s| s.used).sum();
        let used = self.shared.used.load(Ordering::Relaxed);
        let ranges: Vec<String> = self.shared.pages.iter().map(|p| p.range().to_string()).collect();
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
            largest_free: self.shared.pages.iter().map(|p| p.stats().largest_free).max().unwrap_or(0),
            ..HeapInfo::empty(name.clone())
        }
    }
}
