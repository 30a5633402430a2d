//! Open files of the model: objects with operations, and a small fd table
//! for in-process users.
//!
//! A [`File`] is what an fd refers to: a reference to an object
//! implementing [`FileOps`] — the model's `file_operations`. Each kind (heap
//! node, dma-buf, sync file, TEE context, TEE shared memory, ...) implements
//! the trait in its own module; the kernel and the serving layer dispatch
//! through it and never list the kinds. Cloning a `File` clones the
//! reference (as `dup` does), so an object stays alive while any fd to it
//! is open. The serving layer keeps its own per-client tables; [`FdTable`]
//! is for tests, the demo and in-process users. docs/file-operations.md
//! says how to add a kind.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use teeheap_platform::{Len, PhysRange};
use teeheap_uapi::dma_heap::{O_ACCMODE, O_CLOEXEC};

use crate::error::{Errno, Error, Result};
use crate::uaccess::{UserMemory, UserPtr};

/// What kind of file an fd refers to, by the name logs and reports use
/// (`dma-buf`, `tee-context`, ...). Each kind defines its own constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileKind(&'static str);

impl FileKind {
    /// An open `/dev/dma_heap/<name>` node.
    pub const DMA_HEAP: FileKind = FileKind("heap");
    /// A dma-buf.
    pub const DMA_BUF: FileKind = FileKind("dma-buf");
    /// An open `/dev/tee<N>` or `/dev/teepriv<N>`: a TEE context.
    pub const TEE_CONTEXT: FileKind = FileKind("tee-context");
    /// A TEE shared-memory object.
    pub const TEE_SHM: FileKind = FileKind("tee-shm");
    /// A sync file.
    pub const SYNC_FILE: FileKind = FileKind("sync-file");

    /// A kind named `name` (for kinds defined outside this module).
    pub const fn new(name: &'static str) -> FileKind {
        FileKind(name)
    }

    /// Its name.
    pub const fn name(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// What the serving layer gives a program for a file: the object behind
/// the program's fd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backing {
    /// Nothing of its own: a node of `/dev` the program opened itself (the
    /// program's description of the node is the file).
    Node,
    /// Bytes: a file of `size` bytes (a memfd when served).
    Pages {
        /// The name the served file shows (`dmabuf`, `tee_shm`, ...).
        name: &'static str,
        /// Its size in bytes (page-aligned).
        size: u64,
        /// The physical memory a CPU mapping of the file reaches, in file
        /// order; `None` if the normal-world CPU must never reach its bytes.
        cpu: Option<CpuPages>,
    },
    /// No bytes: a file that becomes readable once [`FileOps::poll`] says
    /// so and stays readable (a sync file); see [`FileOps::watch_ready`].
    Signal,
}

/// The normal memory a CPU-mappable file's bytes live in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuPages {
    /// Its physical ranges, in file order.
    pub ranges: Vec<PhysRange>,
    /// Whether devices or TAs may write them whether or not a program has
    /// mapped the file (so a served file must share them from the start).
    pub eager: bool,
}

/// Readiness bits of `poll(2)` (the kernel's `POLL*` values).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PollEvents(pub u16);

impl PollEvents {
    /// Nothing ready.
    pub const NONE: PollEvents = PollEvents(0);
    /// `POLLIN`: readable.
    pub const IN: PollEvents = PollEvents(0x1);
    /// `POLLOUT`: writable.
    pub const OUT: PollEvents = PollEvents(0x4);

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: PollEvents) -> bool {
        self.0 & other.0 == other.0
    }
}

/// A wait for a file's readiness ([`FileOps::watch_ready`]); dropping it
/// takes the callback back.
pub struct ReadyWatch(Box<dyn fmt::Debug + Send + Sync>);

impl ReadyWatch {
    /// A watch whose drop is `guard`'s drop.
    pub fn new(guard: impl fmt::Debug + Send + Sync + 'static) -> ReadyWatch {
        ReadyWatch(Box::new(guard))
    }
}

impl fmt::Debug for ReadyWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What holding a file charges its holder (see the daemon's limits): one
/// dma-buf, in full.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Charge {
    /// The buffer charged (its `BufId`'s number).
    pub buf: u64,
    /// Its size in bytes.
    pub bytes: u64,
    /// The heap it came from, if any.
    pub heap: Option<&'static str>,
}

/// The operations of an open file (the kernel's `file_operations`). Every
/// method but [`Self::kind`] has the default of a file without that
/// operation, with the errno Linux gives then.
pub trait FileOps: Any + Send + Sync + fmt::Debug {
    /// Its kind.
    fn kind(&self) -> FileKind;

    /// An ioctl on the file. `files` is the caller's fd table (new fds are
    /// installed into it, fd arguments looked up in it).
    ///
    /// # Errors
    /// The kind's; `ENOTTY` by default (no `unlocked_ioctl`).
    fn ioctl(&self, _cmd: u32, _arg: UserPtr, _mem: &dyn UserMemory, _files: &mut dyn Files) -> Result<i64> {
        Err(Error::new(Errno::ENOTTY, "this file has no ioctls"))
    }

    /// Whether a shared CPU mapping of the file is allowed (its bytes are
    /// [`Backing::Pages`] with CPU pages).
    ///
    /// # Errors
    /// The kind's refusal; `ENODEV` by default (no `mmap` op).
    fn mmap(&self) -> Result<()> {
        Err(Error::new(Errno::ENODEV, "this file has no mmap"))
    }

    /// What the serving layer gives a program for it. [`Backing::Node`] by
    /// default.
    fn backing(&self) -> Backing {
        Backing::Node
    }

    /// `llseek` other than to offset 0 from the start or the end (which
    /// every served file answers natively).
    ///
    /// # Errors
    /// `ESPIPE` by default (`no_llseek`).
    fn llseek(&self, _offset: i64, _whence: u32) -> Result<u64> {
        Err(Error::new(Errno::ESPIPE, "this file cannot seek"))
    }

    /// What holding this file charges its holder, if anything.
    fn charge(&self) -> Option<Charge> {
        None
    }

    /// Its readiness now. Nothing by default.
    fn poll(&self) -> PollEvents {
        PollEvents::NONE
    }

    /// Runs `wake` once when the file becomes ready (now, in this thread, if
    /// it is); `None` if its readiness never changes (the default).
    fn watch_ready(&self, _wake: Box<dyn FnOnce() + Send>) -> Option<ReadyWatch> {
        None
    }
}

/// A reference to an open file (what an fd holds). See the module
/// documentation.
#[derive(Clone)]
pub struct File(Arc<dyn FileOps>);

impl File {
    /// A file of the object `ops`.
    pub fn new<T: FileOps>(ops: Arc<T>) -> File {
        File(ops)
    }

    /// The object behind the file, if it is a `T` (for the few import
    /// paths that take one kind only, as `dma_buf_get` does).
    pub fn downcast<T: FileOps>(&self) -> Option<Arc<T>> {
        let any: Arc<dyn Any + Send + Sync> = Arc::clone(&self.0) as Arc<dyn Any + Send + Sync>;
        any.downcast::<T>().ok()
    }

    /// Whether the object behind the file is a `T`.
    pub fn is<T: FileOps>(&self) -> bool {
        (&*self.0 as &dyn Any).is::<T>()
    }

    /// Whether both refer to the same object.
    pub fn ptr_eq(&self, other: &File) -> bool {
        std::ptr::addr_eq(Arc::as_ptr(&self.0), Arc::as_ptr(&other.0))
    }

    /// How many references to the object exist (fds, the model's own).
    pub fn strong_count(&self) -> usize {
        Arc::strong_count(&self.0)
    }
}

impl<T: FileOps> From<Arc<T>> for File {
    fn from(ops: Arc<T>) -> File {
        File(ops)
    }
}

impl std::ops::Deref for File {
    type Target = dyn FileOps;

    fn deref(&self) -> &(dyn FileOps + 'static) {
        &*self.0
    }
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
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

    /// The charging hook: asked by an allocating ioctl (ALLOC) once it has
    /// parsed and validated its argument and before any memory is
    /// allocated, whether the caller may have `len` more bytes (whole
    /// pages) from heap `heap` — a memcg-like limit. The values are the
    /// kernel's own copy: the caller's memory is not read again.
    ///
    /// # Errors
    /// `ENOMEM` over a limit; the default admits everything.
    fn admit_allocation(&mut self, _heap: &str, _len: Len) -> Result<()> {
        Ok(())
    }

    /// Whether the caller gave up on the call (a signal interrupted it, or
    /// it died): a call that blocks until an event asks this while it
    /// waits and ends with `EINTR` once it says so. Default: never.
    fn gave_up(&self) -> bool {
        false
    }

    /// Whether the description the call came through is `O_NONBLOCK`: a
    /// call that would wait for an event (V4L2 `DQBUF`) answers `EAGAIN`
    /// instead. Default: yes (an in-process caller never waits).
    fn nonblocking(&self) -> bool {
        true
    }
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
