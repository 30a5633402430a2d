//! The dma-buf core: a buffer shared between the CPU, devices and the TEE,
//! with an exporter that owns its memory.
//!
//! A [`DmaBuf`] lives in an `Arc`: every reference the kernel counts — a
//! handle (fd), a device [`Attachment`], a CPU mapping, a TEE registration —
//! is a clone of it. When the last one goes, the exporter's `release` runs,
//! exactly once, from `Drop`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;
use teeheap_sync::Recover;

use serde::Serialize;
use teeheap_platform::{Len, Master, PhysAddr, PhysRange, Platform};
use teeheap_uapi::dma_buf::{DMA_BUF_NAME_LEN, DMA_BUF_SYNC_RW, DMA_BUF_SYNC_VALID_FLAGS_MASK};

use crate::error::{Errno, Error, Result, einval};

mod ioctl;
pub mod resv;

/// Fences live in [`crate::dma_fence`]; the old path stays.
pub use crate::dma_fence as fence;
pub use crate::dma_fence::Fence;
/// Scatter lists live in [`crate::scatterlist`].
pub use crate::scatterlist::SgTable;
use resv::Resv;
pub use resv::Usage;

/// What a dma-buf's exporter does. Mirrors the kernel's `dma_buf_ops`:
/// attach/detach, map/unmap for devices, optional CPU access, and release.
pub trait DmaBufOps: Send + Sync + 'static {
    /// The exporter's name as shown in bufinfo (e.g. `system`, `tee_heap`).
    fn exporter(&self) -> &'static str;

    /// The buffer's pages.
    fn sg_table(&self) -> &SgTable;

    /// Whether the memory is protected (no normal-world CPU access).
    fn is_protected(&self) -> bool;

    /// The heap the buffer was allocated from, if it came from a heap.
    fn heap(&self) -> Option<&'static str> {
        None
    }

    /// A device attaches. The default accepts every device.
    ///
    /// # Errors
    /// An exporter may refuse a device it cannot serve.
    fn attach(&self, _dev: Master) -> Result<()> {
        Ok(())
    }

    /// A device detaches.
    fn detach(&self, _dev: Master) {}

    /// Maps the buffer for an attached device: a copy of the scatter list.
    ///
    /// # Errors
    /// Exporter-specific.
    fn map(&self, _dev: Master) -> Result<SgTable> {
        Ok(self.sg_table().clone())
    }

    /// Undoes [`Self::map`].
    fn unmap(&self, _dev: Master, _sgt: SgTable) {}

    /// Whether the normal-world CPU may map the buffer.
    ///
    /// # Errors
    /// `EINVAL` by default: an exporter without an mmap op.
    fn mmap(&self) -> Result<()> {
        Err(einval("the exporter has no mmap"))
    }

    /// Called when the last reference is gone; frees the memory. Runs
    /// exactly once.
    fn release(&mut self);

    /// The exporter as `Any`, so an importer can recognise buffers of its
    /// own exporters (the TEE accepts only its protected heaps' buffers).
    fn as_any(&self) -> &dyn std::any::Any;
}

/// The rarely used parts of a dma-buf.
#[derive(Debug, Default)]
struct Meta {
    /// Fences of pending work (none until a device does work on it).
    resv: Resv,
    /// The bytes `DMA_BUF_SET_NAME` set (no NUL): the kernel takes bytes,
    /// not text.
    name: Option<Box<[u8]>>,
    attachments: Vec<Master>,
}

/// Identifies a dma-buf for its whole life (like its inode number).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct BufId(pub u64);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A dma-buf. See the module documentation.
pub struct DmaBuf {
    id: BufId,
    size: Len,
    ops: Box<dyn DmaBufOps>,
    /// Name and attachments: absent for most buffers, so kept out of line.
    meta: Mutex<Option<Box<Meta>>>,
    tee_registrations: std::sync::atomic::AtomicU32,
    created: Instant,
    list: Weak<DmaBufList>,
}

impl std::fmt::Debug for DmaBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DmaBuf")
            .field("id", &self.id)
            .field("size", &self.size)
            .field("exporter", &self.ops.exporter())
            .finish_non_exhaustive()
    }
}

impl DmaBuf {
    /// Exports a buffer of `size` bytes whose memory `ops` owns, and lists it
    /// in `list` (if given) until it is released.
    pub fn export(size: Len, ops: Box<dyn DmaBufOps>, list: Option<&Arc<DmaBufList>>) -> Arc<DmaBuf> {
        debug_assert_eq!(ops.sg_table().len(), size.bytes(), "sg table must cover the buffer");
        let buf = Arc::new(DmaBuf {
            id: BufId(NEXT_ID.fetch_add(1, Ordering::Relaxed)),
            size,
            ops,
            meta: Mutex::new(None),
            tee_registrations: std::sync::atomic::AtomicU32::new(0),
            created: Instant::now(),
            list: list.map(Arc::downgrade).unwrap_or_default(),
        });
        if let Some(list) = list {
            list.insert(&buf);
        }
        buf
    }

    /// Its identity.
    pub fn id(&self) -> BufId {
        self.id
    }

    /// Its size in bytes (what `lseek(fd, 0, SEEK_END)` returns).
    pub fn size(&self) -> Len {
        self.size
    }

    /// The exporter's name.
    pub fn exporter(&self) -> &'static str {
        self.ops.exporter()
    }

    /// Whether the memory is protected.
    pub fn is_protected(&self) -> bool {
        self.ops.is_protected()
    }

    /// The physical pages (for the TEE and observability; devices use
    /// [`Attachment::map`]).
    pub fn sg_table(&self) -> &SgTable {
        self.ops.sg_table()
    }

    /// The exporter, for exporters that recognise their own buffers (the TEE
    /// checks that a dma-buf comes from one of its heaps).
    pub fn ops(&self) -> &dyn DmaBufOps {
        self.ops.as_ref()
    }

    /// The name set with `DMA_BUF_SET_NAME`, if any, for display: see
    /// [`escape_name`].
    pub fn name(&self) -> Option<String> {
        self.name_bytes().map(|n| escape_name(&n))
    }

    /// The name's bytes as `DMA_BUF_SET_NAME` set them (without the NUL),
    /// what the kernel prints in fdinfo and bufinfo.
    pub fn name_bytes(&self) -> Option<Box<[u8]>> {
        self.meta.lock().recover().as_ref().and_then(|m| m.name.clone())
    }

    /// `DMA_BUF_SET_NAME`: names the buffer (shown in bufinfo). Any bytes
    /// but NUL, as the kernel's `strndup_user`; replaces the previous name.
    ///
    /// # Errors
    /// `EINVAL` if the name is [`DMA_BUF_NAME_LEN`] bytes or longer (the
    /// kernel reads at most that many including the NUL), or holds a NUL.
    pub fn set_name(&self, name: &[u8]) -> Result<()> {
        if name.len() >= DMA_BUF_NAME_LEN {
            return Err(einval("dma-buf name too long"));
        }
        if name.contains(&0) {
            return Err(einval("dma-buf name with a NUL"));
        }
        self.meta.lock().recover().get_or_insert_default().name = Some(name.into());
        Ok(())
    }

    /// `DMA_BUF_IOCTL_SYNC`: validates the flags. The kernel then calls the
    /// exporter's begin/end CPU access if it has them; none of ours needs to
    /// do anything (the model's memory is coherent), so like an exporter
    /// without those ops this succeeds — also for protected buffers, whose
    /// tee heap exporter has no CPU access ops.
    ///
    /// # Errors
    /// `EINVAL` for bits outside `DMA_BUF_SYNC_VALID_FLAGS_MASK` or when
    /// neither READ nor WRITE is set.
    pub fn sync(&self, flags: u64) -> Result<()> {
        if flags & !DMA_BUF_SYNC_VALID_FLAGS_MASK != 0 {
            return Err(einval("unknown dma-buf sync flags"));
        }
        if flags & DMA_BUF_SYNC_RW == 0 {
            return Err(einval("dma-buf sync needs READ and/or WRITE"));
        }
        Ok(())
    }

    /// `dma_resv_add_fence` on the buffer's reservation: work that will
    /// use the buffer as `usage` completes when `fence` signals.
    pub fn add_fence(&self, fence: Arc<Fence>, usage: Usage) {
        self.meta.lock().recover().get_or_insert_default().resv.add_fence(fence, usage);
    }

    /// The fences of pending work a user of the buffer as `usage` waits for.
    pub fn fences(&self, usage: Usage) -> Vec<Arc<Fence>> {
        self.meta.lock().recover().as_ref().map(|m| m.resv.fences(usage)).unwrap_or_default()
    }

    /// A device attaches; the attachment keeps the buffer alive.
    ///
    /// # Errors
    /// What the exporter's `attach` returns.
    pub fn attach(self: &Arc<Self>, dev: Master) -> Result<Attachment> {
        self.ops.attach(dev)?;
        self.meta.lock().recover().get_or_insert_default().attachments.push(dev);
        Ok(Attachment { buf: Arc::clone(self), dev })
    }

    /// Maps the buffer for the normal-world CPU. The mapping keeps the
    /// buffer alive; its accesses go through the platform's firewall as
    /// [`Master::NsCpu`].
    ///
    /// # Errors
    /// `EINVAL` if the exporter has no mmap (every protected buffer).
    pub fn mmap(self: &Arc<Self>, platform: &Arc<Platform>) -> Result<CpuMapping> {
        self.ops.mmap()?;
        Ok(CpuMapping { buf: Arc::clone(self), platform: Arc::clone(platform) })
    }

    /// Counts a TEE shared-memory registration of the buffer (it holds a
    /// reference for as long as it lives).
    pub fn tee_registered(&self) {
        self.tee_registrations.fetch_add(1, Ordering::Relaxed);
    }

    /// Uncounts a registration from [`Self::tee_registered`].
    pub fn tee_unregistered(&self) {
        self.tee_registrations.fetch_sub(1, Ordering::Relaxed);
    }

    /// A snapshot for bufinfo.
    pub fn info(&self) -> DmaBufInfo {
        let (name, attachments) = match self.meta.lock().recover().as_deref() {
            Some(m) => (m.name.as_deref().map(escape_name), m.attachments.clone()),
            None => (None, Vec::new()),
        };
        DmaBufInfo {
            id: self.id,
            size: self.size.bytes(),
            heap: self.ops.heap(),
            tee_registrations: self.tee_registrations.load(Ordering::Relaxed),
            exporter: self.exporter(),
            name,
            protected: self.is_protected(),
            ranges: self.sg_table().ranges().to_vec(),
            attachments,
            age_ms: self.created.elapsed().as_millis() as u64,
        }
    }
}

impl Drop for DmaBuf {
    fn drop(&mut self) {
        if let Some(list) = self.list.upgrade() {
            list.remove(self.id);
        }
        tracing::trace!(id = self.id.0, exporter = self.ops.exporter(), "dma-buf released");
        self.ops.release();
    }
}

/// A buffer name's bytes as text for observability: valid UTF-8 as it is
/// (with `\\` doubled and control characters escaped), every other byte as
/// `\xNN`, so that any name reads back unambiguously.
///
/// ```
/// use teeheap_kernel::dma_buf::escape_name;
/// assert_eq!(escape_name(b"decoder-out"), "decoder-out");
/// assert_eq!(escape_name(b"caf\xc3\xa9 \xff\\"), "caf\u{e9} \\xff\\\\");
/// assert_eq!(escape_name(b"a\nb"), "a\\nb");
/// ```
pub fn escape_name(name: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(name.len());
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' || c.is_control() {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// What bufinfo shows of one buffer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DmaBufInfo {
    /// Identity.
    pub id: BufId,
    /// Size in bytes.
    pub size: u64,
    /// The heap it came from.
    pub heap: Option<&'static str>,
    /// TEE shared-memory registrations holding it.
    pub tee_registrations: u32,
    /// Exporter name.
    pub exporter: &'static str,
    /// Name set by user space, escaped as [`escape_name`] does.
    pub name: Option<String>,
    /// Whether it is protected memory.
    pub protected: bool,
    /// Physical ranges.
    pub ranges: Vec<PhysRange>,
    /// Attached devices.
    pub attachments: Vec<Master>,
    /// Milliseconds since export.
    pub age_ms: u64,
}

/// A device's attachment to a buffer. Holds a reference on the buffer;
/// dropping it detaches.
#[derive(Debug)]
pub struct Attachment {
    buf: Arc<DmaBuf>,
    dev: Master,
}

impl Attachment {
    /// The attached device.
    pub fn device(&self) -> Master {
        self.dev
    }

    /// The buffer.
    pub fn buffer(&self) -> &Arc<DmaBuf> {
        &self.buf
    }

    /// Maps the buffer for the device: its own copy of the scatter list.
    ///
    /// # Errors
    /// What the exporter's `map` returns.
    pub fn map(&self) -> Result<SgTable> {
        self.buf.ops.map(self.dev)
    }

    /// Unmaps a scatter list from [`Self::map`].
    pub fn unmap(&self, sgt: SgTable) {
        self.buf.ops.unmap(self.dev, sgt);
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        let mut meta = self.buf.meta.lock().recover();
        if let Some(list) = meta.as_mut().map(|m| &mut m.attachments)
            && let Some(i) = list.iter().position(|d| *d == self.dev)
        {
            list.remove(i);
        }
        drop(meta);
        self.buf.ops.detach(self.dev);
    }
}

/// A normal-world CPU mapping of a buffer (what `mmap` of the fd gives).
/// Holds a reference on the buffer, as a VMA does.
#[derive(Debug)]
pub struct CpuMapping {
    buf: Arc<DmaBuf>,
    platform: Arc<Platform>,
}

impl CpuMapping {
    fn pieces(&self, offset: u64, len: usize) -> Result<Vec<PhysRange>> {
        self.buf.sg_table().resolve(offset, len as u64).ok_or(Error::new(Errno::EFAULT, "access past the mapping"))
    }

    /// Reads `buf.len()` bytes at `offset` of the buffer.
    ///
    /// # Errors
    /// `EFAULT` past the end or if the firewall refuses (a fault on real
    /// hardware).
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let mut done = 0;
        for r in self.pieces(offset, buf.len())? {
            let n = r.len() as usize;
            self.platform
                .read(Master::NsCpu, r.start(), &mut buf[done..done + n])
                .map_err(|_| Error::new(Errno::EFAULT, "CPU access refused"))?;
            done += n;
        }
        Ok(())
    }

    /// Writes `data` at `offset` of the buffer.
    ///
    /// # Errors
    /// As [`Self::read`].
    pub fn write(&self, offset: u64, data: &[u8]) -> Result<()> {
        let mut done = 0;
        for r in self.pieces(offset, data.len())? {
            let n = r.len() as usize;
            self.platform
                .write(Master::NsCpu, r.start(), &data[done..done + n])
                .map_err(|_| Error::new(Errno::EFAULT, "CPU access refused"))?;
            done += n;
        }
        Ok(())
    }

    /// The first physical address (for diagnostics).
    pub fn phys_start(&self) -> Option<PhysAddr> {
        self.buf.sg_table().ranges().first().map(PhysRange::start)
    }
}

/// The list of live buffers (debugfs `dma_buf/bufinfo`). Buffers remove
/// themselves on release.
#[derive(Debug, Default)]
pub struct DmaBufList {
    bufs: Mutex<BTreeMap<BufId, Weak<DmaBuf>>>,
}

impl DmaBufList {
    fn insert(&self, buf: &Arc<DmaBuf>) {
        self.bufs.lock().recover().insert(buf.id, Arc::downgrade(buf));
    }

    fn remove(&self, id: BufId) {
        self.bufs.lock().recover().remove(&id);
    }

    /// How many buffers are alive.
    pub fn len(&self) -> usize {
        self.bufs.lock().recover().len()
    }

    /// Whether no buffer is alive.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A snapshot of every live buffer, by id.
    pub fn snapshot(&self) -> Vec<DmaBufInfo> {
        let live: Vec<Arc<DmaBuf>> = self.bufs.lock().recover().values().filter_map(Weak::upgrade).collect();
        live.iter().map(|b| b.info()).collect()
    }
}

/// Two live buffers of `bufs` (a [`DmaBufList`] snapshot)
/// whose pages share physical memory (the same id twice if one buffer's own
/// ranges overlap), or `None`. The invariant is that there are none, across
/// heaps, pools and generations.
pub fn overlapping_buffers(bufs: &[DmaBufInfo]) -> Option<(BufId, BufId)> {
    crate::pool::first_overlap(bufs.iter().flat_map(|b| b.ranges.iter().map(move |r| (b.id, *r))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    struct Counting {
        sg: SgTable,
        released: Arc<AtomicUsize>,
    }

    impl DmaBufOps for Counting {
        fn exporter(&self) -> &'static str {
            "test"
        }
        fn sg_table(&self) -> &SgTable {
            &self.sg
        }
        fn is_protected(&self) -> bool {
            true
        }
        fn release(&mut self) {
            self.released.fetch_add(1, Ordering::SeqCst);
        }
        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
    }

    fn range(start: u64, len: u64) -> PhysRange {
        PhysRange::new(PhysAddr(start), len).unwrap()
    }

    fn buf(list: &Arc<DmaBufList>) -> (Arc<DmaBuf>, Arc<AtomicUsize>) {
        let released = Arc::new(AtomicUsize::new(0));
        let sg = SgTable::new(vec![range(0x1000, 0x1000), range(0x8000, 0x2000)]);
        let ops = Counting { sg, released: Arc::clone(&released) };
        (DmaBuf::export(Len::from_pages(3).unwrap(), Box::new(ops), Some(list)), released)
    }

    #[test]
    fn release_runs_once_after_the_last_reference() {
        let list = Arc::new(DmaBufList::default());
        let (b, released) = buf(&list);
        let handle2 = Arc::clone(&b);
        let att = b.attach(Master::Display).unwrap();
        assert_eq!(att.map().unwrap(), *b.sg_table());
        assert_eq!(b.info().attachments, [Master::Display]);
        drop(b);
        drop(handle2);
        assert_eq!(released.load(Ordering::SeqCst), 0, "the attachment still holds it");
        assert_eq!(list.len(), 1);
        drop(att);
        assert_eq!(released.load(Ordering::SeqCst), 1);
        assert!(list.is_empty());
    }

    #[test]
    fn protected_exporter_has_no_mmap_and_sync_validates() {
        let list = Arc::new(DmaBufList::default());
        let (b, _) = buf(&list);
        let p = Arc::new(Platform::embedded_default().unwrap());
        assert_eq!(b.mmap(&p).unwrap_err().errno(), Errno::EINVAL);
        b.sync(teeheap_uapi::dma_buf::DMA_BUF_SYNC_RW).unwrap();
        assert_eq!(b.sync(8).unwrap_err().errno(), Errno::EINVAL);
        assert_eq!(b.sync(0).unwrap_err().errno(), Errno::EINVAL);
        assert_eq!(b.sync(teeheap_uapi::dma_buf::DMA_BUF_SYNC_END).unwrap_err().errno(), Errno::EINVAL);
        b.set_name(b"decoder-out").unwrap();
        assert_eq!(b.name().as_deref(), Some("decoder-out"));
        assert_eq!(b.set_name(&[b'x'; 32]).unwrap_err().errno(), Errno::EINVAL);
        // Bytes, not text: 31 bytes of 0xff fit (issue 19).
        b.set_name(&[0xff; 31]).unwrap();
        assert_eq!(b.name_bytes().as_deref(), Some(&[0xff; 31][..]));
        assert_eq!(b.info().name.unwrap(), "\\xff".repeat(31));
    }
}
