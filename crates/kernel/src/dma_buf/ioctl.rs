//! `dma_buf_ioctl`: what a program can ask of a dma-buf fd — CPU access
//! brackets, a name, and its implicit fences as sync files (6.18, with
//! `CONFIG_SYNC_FILE`). Validation order and errno as drivers/dma-buf/dma-buf.c.

use std::sync::Arc;

use teeheap_uapi::dma_buf::{
    DMA_BUF_IOCTL_EXPORT_SYNC_FILE, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, DMA_BUF_IOCTL_SYNC, DMA_BUF_NAME_LEN,
    DMA_BUF_SET_NAME_A, DMA_BUF_SET_NAME_B, DMA_BUF_SYNC_RW, DMA_BUF_SYNC_WRITE, DmaBufExportSyncFile,
    DmaBufImportSyncFile, DmaBufSync,
};
use zerocopy::IntoBytes;

use super::{DmaBuf, Usage};
use crate::error::{Errno, Error, Result, efault, einval};
use crate::file::{Backing, Charge, CpuPages, File, FileKind, FileOps, Files};
use crate::sync_file::{SyncFile, install_and_report};
use crate::uaccess::{UserMemory, UserPtr, read_obj};

/// The READ/WRITE flags of EXPORT/IMPORT_SYNC_FILE: within RW, not none.
fn sync_file_flags(flags: u32) -> Result<()> {
    if u64::from(flags) & !DMA_BUF_SYNC_RW != 0 {
        return Err(einval("sync file flags outside READ|WRITE"));
    }
    if u64::from(flags) & DMA_BUF_SYNC_RW == 0 {
        return Err(einval("sync file flags need READ and/or WRITE"));
    }
    Ok(())
}

impl DmaBuf {
    /// An ioctl on the dma-buf's fd (`dma_buf_ioctl`): SYNC, SET_NAME,
    /// EXPORT_SYNC_FILE and IMPORT_SYNC_FILE.
    ///
    /// EXPORT_SYNC_FILE installs a new sync file fd (`O_CLOEXEC`) whose
    /// fence is the buffer's pending work that a reader (flag READ: the
    /// writers) or writer (flag WRITE: everyone) must wait for; with none
    /// pending it is the signalled stub. IMPORT_SYNC_FILE adds a sync
    /// file's fences to the buffer as writes (flag WRITE) or reads.
    ///
    /// # Errors
    /// `EFAULT` for unreadable (or, on export, unwritable) arguments;
    /// `EINVAL` for bad flags, a name of 32 bytes or more, or an import fd
    /// that is not a sync file; `EMFILE` when no fd is free; `ENOTTY` for
    /// other requests.
    pub fn ioctl(&self, cmd: u32, arg: UserPtr, mem: &dyn UserMemory, files: &mut dyn Files) -> Result<i64> {
        match cmd {
            DMA_BUF_IOCTL_SYNC => {
                let s: DmaBufSync = read_obj(mem, arg)?;
                self.sync(s.flags).map(|()| 0)
            }
            DMA_BUF_SET_NAME_A | DMA_BUF_SET_NAME_B => {
                let name = strndup_user(mem, arg, DMA_BUF_NAME_LEN)?;
                self.set_name(&name).map(|()| 0)
            }
            DMA_BUF_IOCTL_EXPORT_SYNC_FILE => {
                let mut a: DmaBufExportSyncFile = read_obj(mem, arg)?;
                sync_file_flags(a.flags)?;
                let write = u64::from(a.flags) & DMA_BUF_SYNC_WRITE != 0;
                let sync = SyncFile::new(self.fences(Usage::for_access(write)));
                install_and_report(File::new(sync), mem, arg, files, |fd| {
                    a.fd = fd;
                    a.as_bytes().to_vec()
                })
            }
            DMA_BUF_IOCTL_IMPORT_SYNC_FILE => {
                let a: DmaBufImportSyncFile = read_obj(mem, arg)?;
                sync_file_flags(a.flags)?;
                // sync_file_get_fence: any fd that is not a sync file, or
                // not open, is EINVAL here (not EBADF).
                let Some(sync) = files.lookup(i64::from(a.fd)).ok().and_then(|f| f.downcast::<SyncFile>()) else {
                    return Err(einval("not a sync file"));
                };
                let usage = if u64::from(a.flags) & DMA_BUF_SYNC_WRITE != 0 { Usage::Write } else { Usage::Read };
                for f in sync.fences() {
                    self.add_fence(Arc::clone(f), usage);
                }
                Ok(0)
            }
            _ => Err(Error::new(Errno::ENOTTY, "unknown dma-buf ioctl")),
        }
    }
}

impl File {
    /// The dma-buf behind this file, if it is one (`dma_buf_get`).
    pub fn as_dma_buf(&self) -> Option<Arc<DmaBuf>> {
        self.downcast()
    }
}

impl Charge {
    /// The charge for holding `buf`.
    pub fn of(buf: &DmaBuf) -> Charge {
        Charge { buf: buf.id().0, bytes: buf.size().bytes(), heap: buf.ops().heap() }
    }
}

/// `SEEK_SET`.
const SEEK_SET: u32 = 0;
/// `SEEK_END`.
const SEEK_END: u32 = 2;

/// A dma-buf's fd: the ioctls above; a shared mmap where the exporter
/// allows one; seeks to its start or end only (`dma_buf_llseek`).
impl FileOps for DmaBuf {
    fn kind(&self) -> FileKind {
        FileKind::DMA_BUF
    }

    fn ioctl(&self, cmd: u32, arg: UserPtr, mem: &dyn UserMemory, files: &mut dyn Files) -> Result<i64> {
        DmaBuf::ioctl(self, cmd, arg, mem, files)
    }

    /// `EINVAL` for a protected buffer (its exporter has no mmap).
    fn mmap(&self) -> Result<()> {
        if self.is_protected() { Err(einval("protected memory cannot be mapped")) } else { Ok(()) }
    }

    fn backing(&self) -> Backing {
        let cpu = (!self.is_protected()).then(|| CpuPages { ranges: self.sg_table().ranges().to_vec(), eager: false });
        Backing::Pages { name: "dmabuf", size: self.size().bytes(), cpu }
    }

    /// `EINVAL` but for offset 0 from the start or the end.
    fn llseek(&self, offset: i64, whence: u32) -> Result<u64> {
        match (offset, whence) {
            (0, SEEK_SET) => Ok(0),
            (0, SEEK_END) => Ok(self.size().bytes()),
            _ => Err(einval("a dma-buf seeks to its start or end only")),
        }
    }

    fn charge(&self) -> Option<Charge> {
        Some(Charge::of(self))
    }
}

/// `strndup_user(ptr, n)`: the bytes before the NUL, which must come
/// within `n` bytes (else `EINVAL`); `EFAULT` if a byte before it cannot be
/// read. Reads byte by byte, so a string that ends right before an
/// unmapped page is fine.
fn strndup_user(mem: &dyn UserMemory, ptr: UserPtr, n: usize) -> Result<Vec<u8>> {
    let mut s = Vec::with_capacity(n);
    for i in 0..n as u64 {
        let mut b = [0u8];
        let at = ptr.checked_add(i).ok_or(efault("pointer overflow"))?;
        mem.read(at, &mut b).map_err(|_| efault("cannot read the string"))?;
        if b[0] == 0 {
            return Ok(s);
        }
        s.push(b[0]);
    }
    Err(einval("string too long"))
}
