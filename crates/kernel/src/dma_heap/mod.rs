//! The dma-heap core: named allocation endpoints under `/dev/dma_heap`.
//!
//! The registry holds every heap by its unique [`HeapName`]; a heap lives as
//! long as the registry or any open node refers to it. `DMA_HEAP_IOCTL_ALLOC`
//! is handled here exactly as the kernel does it: dispatch on the command
//! number only, the caller's struct size honoured in both directions, the
//! same validation order and errno.

pub mod system;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use teeheap_sync::Recover;

use serde::Serialize;
use teeheap_platform::Len;
use teeheap_platform::fault::{Fault, Faults, Point};
use teeheap_uapi::dma_heap::{
    DMA_HEAP_IOCTL_ALLOC, DMA_HEAP_VALID_FD_FLAGS, DMA_HEAP_VALID_HEAP_FLAGS, DmaHeapAllocationData,
};
use teeheap_uapi::ioc;
use zerocopy::{FromBytes, IntoBytes};

use crate::dma_buf::DmaBuf;
use crate::error::{Errno, Error, Result, efault, einval};
use crate::file::{File, FileKind, FileOps, Files};
use crate::lifecycle::Revocable;
use crate::uaccess::{UserMemory, UserPtr};

/// The kernel's limit on the number of heaps (minor numbers).
pub const MAX_HEAPS: usize = 128;

/// A heap's name: non-empty, and usable as a file name under
/// `/dev/dma_heap` (no `/`, no NUL, not `.` or `..`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct HeapName(String);

impl HeapName {
    /// Validates `name`.
    ///
    /// # Errors
    /// `EINVAL` for an empty name, `.`/`..`, or one with `/` or NUL.
    pub fn new(name: &str) -> Result<HeapName> {
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) || name.len() > 255 {
            return Err(einval("bad heap name"));
        }
        Ok(HeapName(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HeapName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a heap can allocate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Presence {
    /// Registered and able to allocate (a protected heap: bound to a pool).
    #[default]
    Ready,
    /// A protected heap no backend is bound to.
    Unbound,
    /// Taken out of the registry (`heap rm`).
    Removed,
}

/// An old generation of a protected heap whose buffers are still alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Draining {
    /// The generation.
    pub generation: u64,
    /// Its live buffers.
    pub buffers: u64,
}

/// A heap's state. Shown (and serialised) as `ready`, `unbound`,
/// `removed`, with `; draining generation N with M buffers, ...` while old
/// generations drain (`draining ...` alone when unbound).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeapState {
    /// Whether it can allocate.
    pub presence: Presence,
    /// Generations still draining, oldest first.
    pub draining: Vec<Draining>,
}

impl fmt::Display for HeapState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let head = match (self.presence, self.draining.is_empty()) {
            (Presence::Ready, true) => return f.write_str("ready"),
            (Presence::Unbound, true) => return f.write_str("unbound"),
            (Presence::Removed, true) => return f.write_str("removed"),
            (Presence::Ready, false) => "ready; draining ",
            (Presence::Unbound, false) => "draining ",
            (Presence::Removed, false) => "removed; draining ",
        };
        f.write_str(head)?;
        for (i, d) in self.draining.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            let s = if d.buffers == 1 { "" } else { "s" };
            write!(f, "{sep}generation {} with {} buffer{s}", d.generation, d.buffers)?;
        }
        Ok(())
    }
}

/// Compares with the shown form (`"ready; draining generation 1 with 1 buffer"`).
impl PartialEq<&str> for HeapState {
    fn eq(&self, other: &&str) -> bool {
        self.to_string().as_str() == *other
    }
}

impl Serialize for HeapState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What `teeheap ls` shows of a heap.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HeapInfo {
    /// The heap's name.
    pub name: HeapName,
    /// Whether its memory is protected.
    pub protected: bool,
    /// Its state.
    pub state: HeapState,
    /// Where its memory comes from.
    pub pool: String,
    /// Bytes it can hold.
    pub capacity: u64,
    /// Bytes in live buffers.
    pub used: u64,
    /// Live buffers.
    pub buffers: u64,
    /// The most bytes ever in live buffers at once.
    pub peak: u64,
    /// The largest single allocation that would succeed now, bytes (a
    /// dynamic pool's growth included).
    pub largest_free: u64,
    /// Bytes allocations could still take in total now: for the system
    /// heap, normal memory neither in its buffers nor lent to the secure
    /// world; for a dynamic pool, its free space plus what it may still
    /// borrow.
    pub free: u64,
    /// Successful allocations since boot (filled in by the core).
    pub allocations: u64,
    /// Failed allocations since boot by errno name (filled in by the core).
    pub failures: BTreeMap<&'static str, u64>,
}

impl HeapInfo {
    /// A heap with nothing in it, for heap implementations to fill in.
    pub fn empty(name: HeapName) -> HeapInfo {
        HeapInfo {
            name,
            protected: false,
            state: HeapState::default(),
            pool: "-".into(),
            capacity: 0,
            used: 0,
            buffers: 0,
            peak: 0,
            largest_free: 0,
            free: 0,
            allocations: 0,
            failures: BTreeMap::new(),
        }
    }
}

/// What a heap does (the kernel's `dma_heap_ops`).
pub trait DmaHeapOps: Send + Sync + std::fmt::Debug + 'static {
    /// Allocates a buffer of `len` bytes. The core has already validated
    /// the flags and rounded the length.
    ///
    /// # Errors
    /// `ENOMEM` when out of memory, `EINVAL` when the heap cannot allocate
    /// at all (e.g. no backend bound), others heap-specific.
    fn allocate(&self, len: Len, fd_flags: u32, heap_flags: u64) -> Result<Arc<DmaBuf>>;

    /// Usage and state for reports; `name` is filled in by the core.
    fn info(&self, name: &HeapName) -> HeapInfo;
}

/// A registered heap. Open fds of its node hold it; once the heap is
/// removed from the registry its ops are revoked and those fds get
/// `ENODEV`.
pub struct DmaHeap {
    name: HeapName,
    ops: Revocable<dyn DmaHeapOps>,
    counters: Arc<AllocCounters>,
    faults: Arc<Faults>,
}

/// Allocation outcomes of a heap, kept across removal and re-adding.
#[derive(Debug, Default)]
pub struct AllocCounters {
    allocations: std::sync::atomic::AtomicU64,
    failures: std::sync::Mutex<BTreeMap<&'static str, u64>>,
}

impl AllocCounters {
    fn record<T>(&self, r: &Result<T>) {
        match r {
            Ok(_) => {
                self.allocations.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Err(e) => *self.failures.lock().recover().entry(e.errno().name()).or_default() += 1,
        }
    }

    pub(crate) fn fill(&self, info: &mut HeapInfo) {
        info.allocations = self.allocations.load(std::sync::atomic::Ordering::Relaxed);
        info.failures = self.failures.lock().recover().clone();
    }
}

impl fmt::Debug for DmaHeap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DmaHeap").field("name", &self.name).finish_non_exhaustive()
    }
}

impl DmaHeap {
    /// Its name.
    pub fn name(&self) -> &HeapName {
        &self.name
    }

    /// Usage and state (`removed` once taken out of the registry).
    pub fn info(&self) -> HeapInfo {
        let mut info = match self.ops.try_access() {
            Some(ops) => ops.info(&self.name),
            None => HeapInfo {
                state: HeapState { presence: Presence::Removed, draining: Vec::new() },
                ..HeapInfo::empty(self.name.clone())
            },
        };
        self.counters.fill(&mut info);
        info
    }

    /// Allocates a buffer as `dma_heap_buffer_alloc` does: validates
    /// `fd_flags`, then `heap_flags`, then rounds `len` up to pages.
    ///
    /// # Errors
    /// `EINVAL` for flags outside `O_CLOEXEC|O_ACCMODE`, any heap flag, or a
    /// length that is 0 after rounding; `ENODEV` if the heap was removed;
    /// then whatever the heap returns.
    pub fn allocate(&self, len: u64, fd_flags: u32, heap_flags: u64) -> Result<Arc<DmaBuf>> {
        self.allocate_admitted(len, fd_flags, heap_flags, |_| Ok(()))
    }

    /// [`Self::allocate`], asking `admit` with the validated, page-rounded
    /// length once the heap is known to be there and before any memory is
    /// allocated. A refusal is returned as it is and is not counted as a
    /// failure of the heap.
    fn allocate_admitted(
        &self,
        len: u64,
        fd_flags: u32,
        heap_flags: u64,
        admit: impl FnOnce(Len) -> Result<()>,
    ) -> Result<Arc<DmaBuf>> {
        let checked = validate(len, fd_flags, heap_flags).and_then(|len| {
            // A fault point with no lock held: the injector may remove this
            // very heap or unbind its backend before the allocation goes on.
            let fault = self.faults.at(&Point::Alloc { heap: self.name.as_str() });
            if let Some(Fault::Delay(d)) = fault {
                std::thread::sleep(d);
            }
            // The guard makes a removal wait for allocations in flight.
            let ops = self.ops.try_access().ok_or(Error::new(Errno::ENODEV, "dma-heap removed"))?;
            if fault == Some(Fault::Fail) {
                return Err(Error::new(Errno::ENOMEM, "injected fault"));
            }
            Ok((len, ops))
        });
        let (len, ops) = match checked {
            Ok(v) => v,
            Err(e) => {
                self.counters.record::<()>(&Err(e.clone()));
                return Err(e);
            }
        };
        admit(len)?;
        let r = ops.allocate(len, fd_flags, heap_flags);
        self.counters.record(&r);
        r
    }

    /// An ioctl on an open heap node, as `dma_heap_ioctl`: the request is
    /// chosen by its number alone; `min(user size, kernel size)` bytes are
    /// copied in when both sides read, the rest zero-filled; the user size
    /// is copied out when both sides write — even when the handler failed,
    /// as the kernel does. Returns the ioctl's return value (0).
    ///
    /// # Errors
    /// `EINVAL` for an unknown request number and every ALLOC validation;
    /// `EFAULT` when the caller's struct cannot be read or written (after a
    /// successful allocation the new fd stays installed then, as in Linux).
    pub fn ioctl(&self, cmd: u32, arg: UserPtr, mem: &dyn UserMemory, files: &mut dyn Files) -> Result<i64> {
        const CMDS: [u32; 1] = [DMA_HEAP_IOCTL_ALLOC];
        let Some(&kcmd) = CMDS.get(ioc::nr(cmd) as usize) else {
            return Err(einval("unknown dma-heap ioctl number"));
        };
        let kernel_size = ioc::size(kcmd) as usize;
        let user_size = ioc::size(cmd) as usize;
        let both = |dir: u32| ioc::dir(cmd) & ioc::dir(kcmd) & dir != 0;
        let in_size = if both(ioc::IOC_WRITE) { user_size } else { 0 };
        let out_size = if both(ioc::IOC_READ) { user_size } else { 0 };
        let mut kdata = vec![0u8; in_size.max(out_size).max(kernel_size)];
        mem.read(arg, &mut kdata[..in_size]).map_err(|_| efault("cannot read the ioctl argument"))?;

        let ret = match kcmd {
            DMA_HEAP_IOCTL_ALLOC => self.ioctl_alloc(&mut kdata[..kernel_size], files),
            _ => return Err(Error::new(Errno::ENOTTY, "unhandled dma-heap ioctl")),
        };
        mem.write(arg, &kdata[..out_size]).map_err(|_| efault("cannot write the ioctl argument"))?;
        ret
    }

    fn ioctl_alloc(&self, kdata: &mut [u8], files: &mut dyn Files) -> Result<i64> {
        let data = DmaHeapAllocationData::mut_from_bytes(kdata).map_err(|_| einval("bad argument size"))?;
        if data.fd != 0 {
            return Err(einval("fd must be 0 on input"));
        }
        // Policy (limits) is asked with the values parsed here: the
        // caller's memory is not read again.
        let buf = self.allocate_admitted(data.len, data.fd_flags, data.heap_flags, |len| {
            files.admit_allocation(self.name.as_str(), len)
        })?;
        let fd = files.install(File::new(buf), data.fd_flags)?;
        data.fd = fd as u32;
        tracing::debug!(heap = %self.name, fd, len = data.len, "dma-heap alloc");
        Ok(0)
    }
}

/// `dma_heap_buffer_alloc`'s checks, in its order: `fd_flags`, then
/// `heap_flags`, then the length rounded up to pages.
fn validate(len: u64, fd_flags: u32, heap_flags: u64) -> Result<Len> {
    if fd_flags & !DMA_HEAP_VALID_FD_FLAGS != 0 {
        return Err(einval("fd_flags outside O_CLOEXEC|O_ACCMODE"));
    }
    if heap_flags & !DMA_HEAP_VALID_HEAP_FLAGS != 0 {
        return Err(einval("heap_flags must be 0"));
    }
    Len::page_align(len).ok_or(einval("length is 0 after page rounding"))
}

/// An open `/dev/dma_heap/<name>` (`dma_heap_open`: the file holds the
/// heap it was opened on). Once that heap is removed its ioctls answer
/// `ENODEV`, with no look-up by name; a heap added back under the name is
/// another heap, reached by opening the node again.
#[derive(Debug)]
pub struct HeapFile {
    heap: Arc<DmaHeap>,
}

impl HeapFile {
    /// A new open file of `heap`.
    pub fn open(heap: Arc<DmaHeap>) -> Arc<HeapFile> {
        Arc::new(HeapFile { heap })
    }

    /// The heap it was opened on.
    pub fn heap(&self) -> &Arc<DmaHeap> {
        &self.heap
    }
}

/// ALLOC is its only ioctl; it has no mmap and no llseek.
impl FileOps for HeapFile {
    fn kind(&self) -> FileKind {
        FileKind::DMA_HEAP
    }

    fn ioctl(&self, cmd: u32, arg: UserPtr, mem: &dyn UserMemory, files: &mut dyn Files) -> Result<i64> {
        self.heap.ioctl(cmd, arg, mem, files)
    }
}

/// A heap taken out of the registry: what it takes to add it back.
pub type RemovedHeap = (Arc<dyn DmaHeapOps>, Arc<AllocCounters>);

/// The heaps of a registry by name, shared with their registrations.
type HeapMap = RwLock<BTreeMap<HeapName, Arc<DmaHeap>>>;

/// The registry of heaps (the `/dev/dma_heap` directory).
#[derive(Default)]
pub struct DmaHeapRegistry {
    heaps: Arc<HeapMap>,
    faults: Arc<Faults>,
}

impl fmt::Debug for DmaHeapRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.list().iter().map(|h| h.name.clone())).finish()
    }
}

/// A registered heap node, as Rust-for-Linux's `MiscDeviceRegistration`:
/// while it lives, `/dev/dma_heap/<name>` exists; dropping it (or
/// [`Self::unregister`]) removes the node (new opens get `ENOENT`), makes
/// open fds of the heap answer `ENODEV`, and leaves live buffers to drain.
#[must_use = "dropping a heap registration removes the heap"]
pub struct HeapRegistration {
    heaps: std::sync::Weak<HeapMap>,
    heap: Arc<DmaHeap>,
}

impl fmt::Debug for HeapRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("HeapRegistration").field(&self.heap.name).finish()
    }
}

impl HeapRegistration {
    /// The registered heap.
    pub fn heap(&self) -> &Arc<DmaHeap> {
        &self.heap
    }

    /// Unregisters now, returning the heap's ops and counters so it can be
    /// registered again with [`DmaHeapRegistry::register_with_counters`].
    pub fn unregister(self) -> Option<RemovedHeap> {
        let counters = Arc::clone(&self.heap.counters);
        self.take().map(|ops| (ops, counters))
    }

    /// Removes the node if it is still this heap's, then revokes the ops.
    fn take(&self) -> Option<Arc<dyn DmaHeapOps>> {
        if let Some(heaps) = self.heaps.upgrade() {
            let mut heaps = heaps.write().recover();
            if heaps.get(&self.heap.name).is_some_and(|h| Arc::ptr_eq(h, &self.heap)) {
                heaps.remove(&self.heap.name);
            }
        }
        let ops = self.heap.ops.revoke();
        if ops.is_some() {
            tracing::info!(heap = %self.heap.name, "dma-heap removed");
        }
        ops
    }
}

impl Drop for HeapRegistration {
    fn drop(&mut self) {
        drop(self.take());
    }
}

impl DmaHeapRegistry {
    /// An empty registry whose heaps ask `faults` before each allocation.
    pub fn with_faults(faults: Arc<Faults>) -> DmaHeapRegistry {
        DmaHeapRegistry { heaps: Arc::default(), faults }
    }

    /// Registers a heap, as `dma_heap_add`; the heap stays while the
    /// returned registration lives.
    ///
    /// # Errors
    /// `EINVAL` for a bad name; `EBUSY` when [`MAX_HEAPS`] heaps exist (the
    /// kernel runs out of minors before it compares names); `EINVAL` for a
    /// name already registered.
    pub fn register(&self, name: &str, ops: Arc<dyn DmaHeapOps>) -> Result<HeapRegistration> {
        self.register_with_counters(name, ops, Arc::default())
    }

    /// [`Self::register`], continuing the allocation counters of a removed heap.
    ///
    /// # Errors
    /// As [`Self::register`].
    pub fn register_with_counters(
        &self,
        name: &str,
        ops: Arc<dyn DmaHeapOps>,
        counters: Arc<AllocCounters>,
    ) -> Result<HeapRegistration> {
        let name = HeapName::new(name)?;
        let mut heaps = self.heaps.write().recover();
        if heaps.len() >= MAX_HEAPS {
            return Err(Error::new(Errno::EBUSY, "no free dma-heap minor"));
        }
        if heaps.contains_key(&name) {
            return Err(einval("a dma-heap with this name exists"));
        }
        let faults = Arc::clone(&self.faults);
        let heap = Arc::new(DmaHeap { name: name.clone(), ops: Revocable::new(ops), counters, faults });
        heaps.insert(name, Arc::clone(&heap));
        tracing::info!(heap = %heap.name, "dma-heap added");
        Ok(HeapRegistration { heaps: Arc::downgrade(&self.heaps), heap })
    }

    /// Opens `/dev/dma_heap/<name>`.
    ///
    /// # Errors
    /// `ENOENT` if no such heap exists.
    pub fn open(&self, name: &str) -> Result<Arc<DmaHeap>> {
        let heaps = self.heaps.read().recover();
        heaps.get(name).cloned().ok_or(Error::new(Errno::ENOENT, "no such dma-heap"))
    }

    /// Every heap, by name.
    pub fn list(&self) -> Vec<Arc<DmaHeap>> {
        self.heaps.read().recover().values().cloned().collect()
    }
}

impl std::borrow::Borrow<str> for HeapName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// Builds a `DmaHeapAllocationData` as bytes (for callers and tests).
pub fn alloc_request(len: u64, fd_flags: u32) -> Vec<u8> {
    DmaHeapAllocationData { len, fd: 0, fd_flags, heap_flags: 0 }.as_bytes().to_vec()
}
