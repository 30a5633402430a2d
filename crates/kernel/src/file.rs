//! Open files of the model and a small fd table for in-process users.
//!
//! A [`File`] is what an fd refers to: a heap node, a dma-buf, a sync
//! file, a TEE context or shared-memory object. Cloning a `File` clones the reference
//! (as `dup` does), so a buffer stays alive while any fd to it is open. The
//! serving layer keeps its own per-client tables; [`FdTable`] is for tests,
//! the demo and in-process users.

use std::collections::BTreeMap;
use std::sync::Arc;

use teeheap_uapi::dma_heap::{O_ACCMODE, O_CLOEXEC};

use crate::dma_buf::DmaBuf;
use crate::dma_heap::DmaHeap;
use crate::error::{Errno, Error, Result};
use crate::sync_file::SyncFile;
use crate::tee::context::TeeFile;
use crate::tee::shm::Shm;

/// What an fd refers to.
#[derive(Clone, Debug)]
pub enum File {
    /// An open `/dev/dma_heap/<name>` node.
    DmaHeap(Arc<DmaHeap>),
    /// A dma-buf.
    DmaBuf(Arc<DmaBuf>),
    /// An open `/dev/tee<N>` or `/dev/teepriv<N>`: a TEE context.
    Tee(Arc<TeeFile>),
    /// A TEE shared-memory object (from SHM_ALLOC, SHM_REGISTER or
    /// SHM_REGISTER_FD).
    TeeShm(Arc<Shm>),
    /// A sync file (from EXPORT_SYNC_FILE or SYNC_IOC_MERGE).
    SyncFile(Arc<SyncFile>),
}

impl File {
    /// The dma-buf behind this file, if it is one.
    pub fn as_dma_buf(&self) -> Option<&Arc<DmaBuf>> {
        match self {
            File::DmaBuf(b) => Some(b),
            _ => None,
        }
    }
}

/// The caller's fd table as an ioctl sees it: new fds are installed into
/// it (what `dma_buf_fd` and `anon_inode_getfd` do) and fds passed as
/// arguments are looked up in it (`dma_buf_get`).
pub trait Files {
    /// Installs `file` with `flags` (`O_CLOEXEC` and access mode) and
    /// returns the fd number.
    ///
    /// # Errors
    /// `EMFILE` if the caller has no free fd.
    fn install(&mut self, file: File, flags: u32) -> Result<i32>;

    /// The file behind the caller's `fd`.
    ///
    /// # Errors
    /// `EBADF` if `fd` is not open, or is not a file of this model.
    fn lookup(&self, fd: i64) -> Result<File>;
}

/// An in-process fd table. Fds start at 3, as 0-2 are taken in a process.
#[derive(Debug)]
pub struct FdTable {
    files: BTreeMap<i32, (File, u32)>,
    limit: usize,
}

impl Default for FdTable {
    fn default() -> Self {
        FdTable::with_limit(1024)
    }
}

impl FdTable {
    /// A table holding at most `limit` open fds.
    pub fn with_limit(limit: usize) -> FdTable {
        FdTable { files: BTreeMap::new(), limit }
    }

    /// The file behind `fd`.
    ///
    /// # Errors
    /// `EBADF` if `fd` is not open.
    pub fn get(&self, fd: i32) -> Result<&File> {
        self.files.get(&fd).map(|(f, _)| f).ok_or(Error::new(Errno::EBADF, "fd not open"))
    }

    /// The flags `fd` was opened with.
    ///
    /// # Errors
    /// `EBADF` if `fd` is not open.
    pub fn flags(&self, fd: i32) -> Result<u32> {
        self.files.get(&fd).map(|(_, fl)| *fl).ok_or(Error::new(Errno::EBADF, "fd not open"))
    }

    /// Closes `fd`, dropping its reference.
    ///
    /// # Errors
    /// `EBADF` if `fd` is not open.
    pub fn close(&mut self, fd: i32) -> Result<()> {
        self.files.remove(&fd).map(drop).ok_or(Error::new(Errno::EBADF, "fd not open"))
    }

    /// Duplicates `fd` (without `O_CLOEXEC`, as `dup`).
    ///
    /// # Errors
    /// `EBADF` if `fd` is not open, `EMFILE` if the table is full.
    pub fn dup(&mut self, fd: i32) -> Result<i32> {
        let (file, flags) = self.files.get(&fd).cloned().ok_or(Error::new(Errno::EBADF, "fd not open"))?;
        self.install(file, flags & !O_CLOEXEC)
    }

    /// Number of open fds.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether no fd is open.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

impl Files for FdTable {
    fn lookup(&self, fd: i64) -> Result<File> {
        let fd = i32::try_from(fd).map_err(|_| Error::new(Errno::EBADF, "fd out of range"))?;
        self.get(fd).cloned()
    }

    fn install(&mut self, file: File, flags: u32) -> Result<i32> {
        if self.files.len() >= self.limit {
            return Err(Error::new(Errno::EMFILE, "fd table full"));
        }
        let fd = (3..).find(|fd| !self.files.contains_key(fd)).expect("a free fd exists below the limit");
        self.files.insert(fd, (file, flags & (O_CLOEXEC | O_ACCMODE)));
        Ok(fd)
    }
}
