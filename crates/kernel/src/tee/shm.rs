//! TEE shared memory (`tee_shm`): memory a client shares with trusted
//! applications, named by an id unique on its TEE device.
//!
//! A [`Shm`] lives in an `Arc` held by its fd (and, during a call, by the
//! parameters that reference it). Its id is freed and its memory released
//! when the last reference goes. Three kinds exist, as in Linux:
//! pages allocated by the kernel (`SHM_ALLOC`, mmap-able), a client's own
//! memory (`SHM_REGISTER`) and a protected dma-buf (`SHM_REGISTER_FD`, which
//! keeps the dma-buf alive while registered).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use teeheap_sync::Recover;

use teeheap_platform::{Len, Master, PhysRange, Platform};
use zeroize::Zeroizing;

use crate::dma_buf::DmaBuf;
use crate::error::{Errno, Error, Result, efault, einval};
use crate::file::{Backing, Charge, CpuPages, FileKind, FileOps};
use crate::mm::NormalMemory;
use crate::pool::ProtMemRef;
use crate::tee::heap::ProtectedBuffer;
use crate::uaccess::{UserMemory, UserPtr};

/// The kernel's own shm flags (`TEE_SHM_*` of `include/linux/tee_core.h`,
/// not the UAPI's `TEE_IOCTL_SHM_*`): Linux copies them out as they are in
/// `SHM_REGISTER` and `SHM_REGISTER_FD` (not in `SHM_ALLOC`), so programs
/// see these values.
pub mod flags {
    /// Registered with the secure world (dynamic shared memory).
    pub const TEE_SHM_DYNAMIC: u32 = 1 << 0;
    /// Memory mapped in user space (a client's own memory).
    pub const TEE_SHM_USER_MAPPED: u32 = 1 << 1;
    /// Allocated from the device's pool.
    pub const TEE_SHM_POOL: u32 = 1 << 2;
    /// Private to the driver.
    pub const TEE_SHM_PRIV: u32 = 1 << 3;
    /// A registered dma-buf (6.18's `tee_shm_register_fd`).
    pub const TEE_SHM_DMA_BUF: u32 = 1 << 4;
}

use flags::{TEE_SHM_DMA_BUF, TEE_SHM_DYNAMIC, TEE_SHM_POOL, TEE_SHM_USER_MAPPED};

/// Identifies a context (an open of a TEE device) for ownership checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContextId(pub u64);

/// The ids of a device's shared-memory objects (`teedev->idr`): the lowest
/// free id from 1 up.
#[derive(Debug, Default)]
pub struct ShmIds {
    ids: Mutex<BTreeMap<i32, Weak<Shm>>>,
}

impl ShmIds {
    fn insert(self: &Arc<Self>, make: impl FnOnce(i32) -> Shm) -> Result<Arc<Shm>> {
        let mut ids = self.ids.lock().recover();
        let id = (1..=i32::MAX)
            .zip(ids.keys().copied().chain(std::iter::once(i32::MAX)))
            .find(|(want, have)| want != have)
            .map(|(want, _)| want)
            .ok_or(Error::new(Errno::ENOSPC, "no free shm id"))?;
        let shm = Arc::new(make(id));
        ids.insert(id, Arc::downgrade(&shm));
        Ok(shm)
    }

    /// The live shm `id` if it belongs to context `ctx`.
    ///
    /// # Errors
    /// `EINVAL` if there is no such shm or another context owns it.
    pub fn get(&self, ctx: ContextId, id: i64) -> Result<Arc<Shm>> {
        let id = i32::try_from(id).map_err(|_| einval("no such shm"))?;
        let ids = self.ids.lock().recover();
        ids.get(&id).and_then(Weak::upgrade).filter(|s| s.ctx == ctx).ok_or(einval("no such shm in this context"))
    }

    /// Number of live shm objects.
    pub fn len(&self) -> usize {
        self.ids.lock().recover().len()
    }

    /// Whether none is alive.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where a shared-memory object's bytes are.
#[derive(Debug)]
pub enum ShmBacking {
    /// Normal pages allocated by the kernel (`SHM_ALLOC`).
    Pages {
        /// The pages.
        range: PhysRange,
        /// Where they go back.
        heap: Arc<NormalMemory>,
    },
    /// The client's memory at `addr` (`SHM_REGISTER`). The secure world sees
    /// it through normal pages that mirror it during each call (copied in
    /// before, out after) — what the TA observes is the same as with pinned
    /// pages, since it only runs during calls.
    User {
        /// The client's address.
        addr: UserPtr,
        /// The mirror pages.
        mirror: PhysRange,
        /// Where they go back.
        heap: Arc<NormalMemory>,
    },
    /// A protected dma-buf (`SHM_REGISTER_FD`); holds it alive.
    DmaBuf {
        /// The buffer.
        buf: Arc<DmaBuf>,
        /// How the secure world addresses it.
        protmem: ProtMemRef,
    },
}

/// A shared-memory object. See the module documentation.
#[derive(Debug)]
pub struct Shm {
    id: i32,
    ctx: ContextId,
    size: u64,
    flags: u32,
    backing: ShmBacking,
    ids: Weak<ShmIds>,
}

impl Shm {
    /// `SHM_ALLOC`: `size` bytes of zeroed normal memory, rounded up to
    /// whole pages; the rounded size is the shm's size (as OP-TEE's pool
    /// reports it).
    ///
    /// # Errors
    /// `ENOMEM` for size 0 (Linux has no check: OP-TEE's pool asks
    /// `alloc_pages_exact` for no pages, which fails) or a size that does
    /// not round up to whole pages, and when normal memory is exhausted.
    pub fn alloc(ids: &Arc<ShmIds>, ctx: ContextId, size: u64, heap: &Arc<NormalMemory>) -> Result<Arc<Shm>> {
        let len = Len::page_align(size).ok_or(Error::new(Errno::ENOMEM, "no pages for this shm size"))?;
        let range = heap.alloc_pages(len).ok_or(Error::new(Errno::ENOMEM, "no memory for shm"))?;
        let backing = ShmBacking::Pages { range, heap: Arc::clone(heap) };
        let size = len.bytes();
        ids.insert(|id| Shm { id, ctx, size, flags: TEE_SHM_DYNAMIC | TEE_SHM_POOL, backing, ids: Arc::downgrade(ids) })
            .inspect_err(|_| heap.free_pages(range))
    }

    /// `SHM_REGISTER`: the client's `length` bytes at `addr`.
    ///
    /// Checked in `tee_shm_register_user_buf`'s order, before anything is
    /// sized from `length`: the range must lie in user space (`access_ok`),
    /// span at least one page and at most [`MAX_REGISTER_PAGES`] (the page
    /// array Linux allocates for it must fit one `kcalloc`), and every byte
    /// must be there (pinning). The client's bytes are only ever copied in
    /// bounded chunks; the mirror pages are untouched (sparse) until a call
    /// copies a window into them.
    ///
    /// # Errors
    /// `EFAULT` if the range leaves user space or its start is not mapped;
    /// `ENOMEM` for length 0 (no pages), more than [`MAX_REGISTER_PAGES`],
    /// a range mapped only in part, or no memory for the mirror.
    pub fn register_user(
        ids: &Arc<ShmIds>,
        ctx: ContextId,
        addr: UserPtr,
        length: u64,
        mem: &dyn UserMemory,
        heap: &Arc<NormalMemory>,
    ) -> Result<Arc<Shm>> {
        match addr.0.checked_add(length) {
            Some(end) if end <= USER_ADDR_LIMIT => {}
            _ => return Err(efault("registered range leaves user space")),
        }
        let pages = pages_spanned(addr.0, length);
        if pages == 0 {
            return Err(Error::new(Errno::ENOMEM, "no pages to register"));
        }
        if pages > MAX_REGISTER_PAGES {
            return Err(Error::new(Errno::ENOMEM, "too many pages for one registration"));
        }
        // Pinning the pages: every byte must be there. As pin_user_pages:
        // nothing pinned is EFAULT, only a part pinned is ENOMEM.
        probe_user(mem, addr, length)?;
        // Pinned for writing: a read-only mapping cannot be registered.
        mem.check_writable(addr, length)?;
        let len = Len::page_align(length).ok_or(Error::new(Errno::ENOMEM, "no pages to register"))?;
        let mirror = heap.alloc_pages(len).ok_or(Error::new(Errno::ENOMEM, "no memory for shm"))?;
        let backing = ShmBacking::User { addr, mirror, heap: Arc::clone(heap) };
        let flags = TEE_SHM_USER_MAPPED | TEE_SHM_DYNAMIC;
        ids.insert(|id| Shm { id, ctx, size: length, flags, backing, ids: Arc::downgrade(ids) })
            .inspect_err(|_| heap.free_pages(mirror))
    }

    /// `SHM_REGISTER_FD`: a protected dma-buf exported by a TEE heap bound
    /// to `dev`.
    ///
    /// # Errors
    /// `EINVAL` if the buffer does not come from a TEE protected heap bound
    /// by this device.
    pub fn register_dma_buf(
        ids: &Arc<ShmIds>,
        ctx: ContextId,
        buf: Arc<DmaBuf>,
        dev: &Arc<crate::tee::TeeDevice>,
    ) -> Result<Arc<Shm>> {
        let pb = buf.ops().as_any().downcast_ref::<ProtectedBuffer>().ok_or(einval("not a TEE protected buffer"))?;
        if !Arc::ptr_eq(pb.binding().teedev(), dev) {
            return Err(einval("protected buffer of another TEE device"));
        }
        let protmem = pb.protmem_ref()?;
        let size = buf.size().bytes();
        let backing = ShmBacking::DmaBuf { buf: Arc::clone(&buf), protmem };
        let shm = ids.insert(|id| Shm { id, ctx, size, flags: TEE_SHM_DMA_BUF, backing, ids: Arc::downgrade(ids) })?;
        // Counted once the shm exists: its drop uncounts it.
        buf.tee_registered();
        Ok(shm)
    }

    /// Its id.
    pub fn id(&self) -> i32 {
        self.id
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Its flags ([`flags`]), as `SHM_REGISTER` and `SHM_REGISTER_FD`
    /// report them.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// The owning context.
    pub fn context(&self) -> ContextId {
        self.ctx
    }

    /// Where its bytes are.
    pub fn backing(&self) -> &ShmBacking {
        &self.backing
    }

    /// Whether the normal-world CPU may map it (only kernel-allocated pages;
    /// `mmap` of a registered or dma-buf shm fails with `EINVAL`).
    pub fn mappable_range(&self) -> Result<PhysRange> {
        match &self.backing {
            ShmBacking::Pages { range, .. } => Ok(*range),
            _ => Err(einval("this shm cannot be mapped")),
        }
    }

    /// For a registered client range: copies `[offset, offset + len)` from
    /// the client into the mirror before a call, in bounded chunks.
    ///
    /// # Errors
    /// `EFAULT` if the client memory is gone.
    pub fn sync_in(&self, platform: &Platform, mem: &dyn UserMemory, offset: u64, len: u64) -> Result<()> {
        let ShmBacking::User { addr, mirror, .. } = &self.backing else { return Ok(()) };
        let Some(r) = mirror.subrange(offset, len) else { return Ok(()) };
        let from = addr.checked_add(offset).ok_or(efault("overflow"))?;
        // The client's bytes pass through: wiped when dropped.
        let mut chunk = Zeroizing::new(vec![0u8; chunk_len(len)]);
        for (done, n) in chunks(len) {
            let bytes = &mut chunk[..n];
            mem.read(from.checked_add(done).ok_or(efault("overflow"))?, bytes)?;
            platform
                .write(Master::NsCpu, r.start().checked_add(done).ok_or(efault("overflow"))?, bytes)
                .map_err(|_| efault("mirror not writable"))?;
        }
        Ok(())
    }

    /// For a registered client range: copies `[offset, offset + len)` back
    /// to the client after a call, in bounded chunks.
    ///
    /// # Errors
    /// `EFAULT` if the client memory is gone.
    pub fn sync_out(&self, platform: &Platform, mem: &dyn UserMemory, offset: u64, len: u64) -> Result<()> {
        let ShmBacking::User { addr, mirror, .. } = &self.backing else { return Ok(()) };
        let Some(r) = mirror.subrange(offset, len) else { return Ok(()) };
        let to = addr.checked_add(offset).ok_or(efault("overflow"))?;
        // What a TA wrote for the client passes through: wiped when dropped.
        let mut chunk = Zeroizing::new(vec![0u8; chunk_len(len)]);
        for (done, n) in chunks(len) {
            let bytes = &mut chunk[..n];
            platform
                .read(Master::NsCpu, r.start().checked_add(done).ok_or(efault("overflow"))?, bytes)
                .map_err(|_| efault("mirror not readable"))?;
            mem.write(to.checked_add(done).ok_or(efault("overflow"))?, bytes)?;
        }
        Ok(())
    }
}

/// The most pages one `SHM_REGISTER` may span: Linux allocates an array of
/// page pointers for them with one `kcalloc`, which fails (`ENOMEM`) past
/// `KMALLOC_MAX_SIZE` (4 MiB with 4 KiB pages: 512 Ki pointers, 2 GiB).
pub const MAX_REGISTER_PAGES: u64 = (4 << 20) / 8;

/// One past the highest user address (`TASK_SIZE_MAX`); `access_ok` fails a
/// range ending beyond it.
#[cfg(target_arch = "x86_64")]
const USER_ADDR_LIMIT: u64 = 0x7fff_ffff_f000;
#[cfg(not(target_arch = "x86_64"))]
const USER_ADDR_LIMIT: u64 = 1 << 48;

/// The most client bytes copied at once.
const CHUNK: u64 = 64 << 10;

/// Pages touched by `[addr, addr + length)` (0 for length 0).
fn pages_spanned(addr: u64, length: u64) -> u64 {
    if length == 0 {
        return 0;
    }
    let page = teeheap_platform::PAGE_SIZE;
    let first = addr / page;
    let last = (addr + (length - 1)) / page;
    last - first + 1
}

fn chunk_len(len: u64) -> usize {
    len.min(CHUNK) as usize
}

/// `(offset, size)` of each chunk of `len` bytes.
fn chunks(len: u64) -> impl Iterator<Item = (u64, usize)> {
    (0..len.div_ceil(CHUNK)).map(move |i| {
        let done = i * CHUNK;
        (done, (len - done).min(CHUNK) as usize)
    })
}

/// Whether every byte of `[addr, addr + length)` is mapped, read in bounded
/// chunks (the caller bounded `length`): `EFAULT` if the first byte is not,
/// `ENOMEM` if only a part is (as a partial pin).
fn probe_user(mem: &dyn UserMemory, addr: UserPtr, length: u64) -> Result<()> {
    let mut chunk = Zeroizing::new(vec![0u8; chunk_len(length)]);
    for (done, n) in chunks(length) {
        let at = addr.checked_add(done).ok_or(efault("overflow"))?;
        if mem.read(at, &mut chunk[..n]).is_err() {
            return Err(match mem.read(addr, &mut [0u8]) {
                Ok(()) => Error::new(Errno::ENOMEM, "only part of the range could be pinned"),
                Err(_) => efault("registered range not mapped"),
            });
        }
    }
    Ok(())
}

/// A shared-memory fd: no ioctls; a shared mmap of kernel-allocated pages
/// only (`EINVAL` for registered memory); no llseek.
impl FileOps for Shm {
    fn kind(&self) -> FileKind {
        FileKind::TEE_SHM
    }

    fn mmap(&self) -> Result<()> {
        self.mappable_range().map(drop)
    }

    /// TAs write SHM_ALLOC pages during invokes, mapped or not: `eager`.
    fn backing(&self) -> Backing {
        let size = Len::page_align(self.size).map_or(4096, |l| l.bytes());
        let cpu = self.mappable_range().ok().map(|r| CpuPages { ranges: vec![r], eager: true });
        Backing::Pages { name: "tee_shm", size, cpu }
    }

    /// A registered dma-buf is charged to whoever holds its shm fd.
    fn charge(&self) -> Option<Charge> {
        match &self.backing {
            ShmBacking::DmaBuf { buf, .. } => Some(Charge::of(buf)),
            _ => None,
        }
    }
}

impl Drop for Shm {
    fn drop(&mut self) {
        if let Some(ids) = self.ids.upgrade() {
            ids.ids.lock().recover().remove(&self.id);
        }
        match &self.backing {
            ShmBacking::Pages { range, heap } => heap.free_pages(*range),
            ShmBacking::User { mirror, heap, .. } => heap.free_pages(*mirror),
            ShmBacking::DmaBuf { buf, .. } => buf.tee_unregistered(),
        }
    }
}
